"""Shared pytest fixtures for the cyclone test suite.

Servers listen on 127.0.0.1 on a free port; clients that block (http.client,
raw sockets) run in a thread through ``deferToThread`` so the reactor keeps
serving while they wait.
"""

from __future__ import annotations

import io
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import reactor, task, threads


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


def http_request(port: int, path: str, method: str = "GET", body=None, headers=None,
                 encode_chunked: bool = False, timeout: float = 20.0):
    """One request with ``http.client`` (blocking): ``(status, headers, body)``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=encode_chunked)
        response = conn.getresponse()
        return response.status, response.msg, response.read()
    finally:
        conn.close()


def http_request_in_thread(port: int, path: str, **kwargs):
    """``http_request`` in a thread, so the reactor serves it: a Deferred."""
    return threads.deferToThread(http_request, port, path, **kwargs)


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


# -- a real redis-server ---------------------------------------------------------------------


class RedisServer:
    """Debian's ``redis-server`` on 127.0.0.1, no persistence, its files in a tmp dir.

    ``address`` is ``(host, port)``; ``restart()`` stops it and starts it again
    on the same port (its data is gone: nothing is saved), for tests of
    reconnection; ``stop()`` leaves it down until ``start()``.
    """

    START_TIMEOUT = 10.0

    def __init__(self, binary: str, directory) -> None:
        self.binary = binary
        self.directory = directory
        self.host = "127.0.0.1"
        with socket.socket() as sock:
            sock.bind((self.host, 0))
            self.port = sock.getsockname()[1]
        self.proc = None
        self.starts = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.starts += 1
        log = open(self.directory / f"redis-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", self.host,
                "--dir", str(self.directory), "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--protected-mode", "yes", "--databases", "16",
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + self.START_TIMEOUT
        while True:  # ready when it answers PING
            try:
                with socket.create_connection(self.address, timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"redis-server did not start: {self.log()}")
            time.sleep(0.02)  # pacing the readiness poll, bounded by the deadline

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.directory.glob("redis-*.log")))


def redis_problem() -> str | None:
    """Why a real Redis cannot be used here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    return None


@pytest.fixture
def redis_server(tmp_path_factory):
    """A fresh ``RedisServer`` for the test (``.address`` is ``(host, port)``,
    ``.url``, ``.restart()``). Skipped without ``redis-server``, except when
    ``CI`` is set: there the test fails."""
    problem = redis_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI is set, so the Redis tests must run")
        pytest.skip(problem)
    server = RedisServer(shutil.which("redis-server"), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- headless Chromium (tests/browser.py) for the demo tests --------------------------------

from tests.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, browser_problem, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    problem = browser_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}; CI is set, so the browser tests must run")
        pytest.skip(problem)
    # Playwright's launch() gives the browser a fresh temporary profile (user data dir)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser):
    """A fresh browser context (its own cookies and storage); its pages are tabs."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    yield context
    context.close()
    assert errors == [], "errors in the page's JavaScript"


@pytest.fixture(autouse=True)
def close_shared_http_client():
    """cyclone.httpclient's shared client keeps connections alive: close them
    after each test that used it, so no connection outlives its server (and
    trial-style tests that follow find the reactor clean)."""
    yield
    httpclient = sys.modules.get("cyclone.httpclient")
    shared = httpclient.AsyncHTTPClient._shared if httpclient is not None else None
    if shared is not None:
        pytest_twisted.blockon(shared.close())
