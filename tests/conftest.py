"""Shared pytest fixtures for the cyclone test suite.

Servers listen on 127.0.0.1 on a free port; clients that block (http.client,
raw sockets) run in a thread through ``deferToThread`` so the reactor keeps
serving while they wait.
"""

from __future__ import annotations

import io
import http.client
import socket

import pytest
import pytest_twisted
from twisted.internet import reactor, task


@pytest.fixture
def listen():
    """``listen(factory) -> port``: serve ``factory`` on 127.0.0.1 until the test ends."""
    ports = []

    def _listen(factory, interface: str = "127.0.0.1") -> int:
        port = reactor.listenTCP(0, factory, interface=interface)
        ports.append(port)
        return port.getHost().port

    yield _listen
    for port in ports:
        pytest_twisted.blockon(port.stopListening())


def raw_exchange(port: int, data: bytes, timeout: float = 10.0, shutdown_write: bool = False) -> bytes:
    """Send ``data`` on a fresh socket and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shutdown_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


class _KeepOpen(io.BytesIO):
    def close(self) -> None:  # http.client closes its file after each response
        pass


class _BytesSocket:
    def __init__(self, fp: io.BytesIO) -> None:
        self._fp = fp

    def makefile(self, *args, **kwargs):
        return self._fp


def parse_responses(data: bytes, methods=None) -> list[tuple[int, http.client.HTTPMessage, bytes]]:
    """Parse consecutive HTTP responses with the stdlib's ``http.client``."""
    fp = _KeepOpen(data)
    out = []
    index = 0
    while fp.tell() < len(data):
        method = (methods[index] if methods else "GET")
        response = http.client.HTTPResponse(_BytesSocket(fp), method=method)
        response.begin()
        body = response.read()
        out.append((response.status, response.msg, body))
        index += 1
    return out


def poll_until(predicate, timeout: float = 5.0, interval: float = 0.01):
    """A Deferred that fires once ``predicate()`` is true, polling the reactor.

    Fails with ``AssertionError`` after ``timeout`` seconds.
    """
    deadline = reactor.seconds() + timeout

    def check(_=None):
        if predicate():
            return True
        if reactor.seconds() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        return task.deferLater(reactor, interval, check)

    return task.deferLater(reactor, 0, check)


@pytest.fixture
def self_signed(tmp_path):
    """(cert_path, key_path): cyclone.testing's self-signed certificate for
    localhost, 127.0.0.1 and ::1, copied into the test's own directory."""
    import shutil

    from cyclone.testing.case import _self_signed_files

    cert, key = _self_signed_files()
    cert_path, key_path = tmp_path / "server.crt", tmp_path / "server.key"
    shutil.copyfile(cert, cert_path)
    shutil.copyfile(key, key_path)
    return str(cert_path), str(key_path)
