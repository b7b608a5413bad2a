"""cyclone.netutil: listening sockets, checked with real connections."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from cyclone import netutil


def accepts(sock: socket.socket, family=socket.AF_INET) -> bool:
    """Whether a client can connect to the listening ``sock`` and be accepted."""
    address = sock.getsockname()
    with socket.socket(family) as client:
        client.settimeout(10)
        client.connect(address if family == socket.AF_UNIX else address[:2])
        sock.setblocking(True)
        sock.settimeout(10)
        accepted, _ = sock.accept()
        accepted.close()
    return True


def test_bind_sockets_on_one_address_listens_non_blocking():
    [sock] = netutil.bind_sockets(0, "127.0.0.1")
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
        assert sock.getblocking() is False
        assert sock.get_inheritable() is False
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        assert accepts(sock)
    finally:
        sock.close()


def test_bind_sockets_on_every_interface_shares_one_free_port():
    sockets = netutil.bind_sockets(0, "")
    try:
        families = sorted(s.family for s in sockets)
        assert socket.AF_INET in families
        assert len({s.getsockname()[1] for s in sockets}) == 1
        for sock in sockets:
            if sock.family == socket.AF_INET6:
                assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    finally:
        for sock in sockets:
            sock.close()


def test_bind_sockets_family_narrows_and_reuse_port_is_set():
    sockets = netutil.bind_sockets(0, None, family=socket.AF_INET, reuse_port=True)
    try:
        assert [s.family for s in sockets] == [socket.AF_INET]
        assert sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        # a second set of sockets on the same port, as another process would bind
        [twin] = netutil.bind_sockets(sockets[0].getsockname()[1], None, family=socket.AF_INET,
                                      reuse_port=True)
        twin.close()
    finally:
        for sock in sockets:
            sock.close()


def test_bind_sockets_on_a_busy_port_raises_and_leaves_nothing_open():
    [sock] = netutil.bind_sockets(0, "127.0.0.1")
    try:
        with pytest.raises(OSError):
            netutil.bind_sockets(sock.getsockname()[1], "127.0.0.1")
    finally:
        sock.close()


def test_bind_unix_socket_mode_and_stale_file(tmp_path):
    path = str(tmp_path / "server.sock")
    sock = netutil.bind_unix_socket(path, mode=0o640)
    try:
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        assert accepts(sock, socket.AF_UNIX)
    finally:
        sock.close()
    # the file stays after its socket closed: binding again replaces it
    again = netutil.bind_unix_socket(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert accepts(again, socket.AF_UNIX)
    finally:
        again.close()


def test_bind_unix_socket_refuses_to_replace_another_file(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not a socket"):
        netutil.bind_unix_socket(str(path))
    assert path.read_text() == "keep me"
