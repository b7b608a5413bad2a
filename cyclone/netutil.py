"""Listening sockets made before serving, as Tornado's ``netutil`` makes them.

``bind_sockets`` and ``bind_unix_socket`` return bound, listening,
non-blocking ``socket.socket`` objects; hand them to
``cyclone.httpserver.HTTPServer.add_sockets`` (which gives them to the
reactor with ``adoptStreamPort``), or to any other process.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Any

from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer

__all__ = ["bind_sockets", "bind_unix_socket"]

#: the listen() backlog when none is given (Tornado's default)
DEFAULT_BACKLOG = 128


def bind_sockets(
    port: int,
    address: str | None = None,
    family: socket.AddressFamily = socket.AF_UNSPEC,
    backlog: int = DEFAULT_BACKLOG,
    flags: int | None = None,
    reuse_port: bool = False,
) -> list[socket.socket]:
    """Listening sockets for every address ``address`` resolves to.

    ``address`` None or ``""`` means every interface: one IPv4 and one IPv6
    socket where the system has both (the IPv6 one with ``IPV6_V6ONLY``, so
    they do not collide). ``port`` 0 picks a free port, the same one for every
    socket. ``family`` narrows the families (``AF_INET``, ``AF_INET6``);
    ``flags`` are ``getaddrinfo`` flags (default ``AI_PASSIVE``);
    ``reuse_port`` sets ``SO_REUSEPORT`` so that several processes can
    listen on the port (``ValueError`` where the system has no such option).
    Sockets have ``SO_REUSEADDR`` and are non-blocking and not inherited by
    child processes.
    """
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port: this system has no SO_REUSEPORT")
    if address == "":
        address = None
    if family == socket.AF_UNSPEC and not socket.has_ipv6:
        family = socket.AF_INET
    if flags is None:
        flags = socket.AI_PASSIVE
    infos = []
    for info in socket.getaddrinfo(address, port, family, socket.SOCK_STREAM, 0, flags):
        if info not in infos:  # getaddrinfo repeats entries on some systems
            infos.append(info)
    infos.sort(key=lambda info: info[0])  # IPv4 first: its free port is then reused for IPv6
    sockets: list[socket.socket] = []
    chosen_port: int | None = None
    try:
        for af, socktype, proto, _, sockaddr in infos:
            if af == socket.AF_INET6 and len(sockaddr) > 3 and sockaddr[3]:
                continue  # a scoped (link-local) address: not a place to serve from
            try:
                sock = socket.socket(af, socktype, proto)
            except OSError as exc:
                if exc.errno == errno.EAFNOSUPPORT:
                    continue  # the system resolves this family but cannot use it
                raise
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if sockaddr[1] == 0 and chosen_port is not None:
                    sockaddr = (sockaddr[0], chosen_port) + tuple(sockaddr[2:])
                sock.setblocking(False)
                try:
                    sock.bind(sockaddr)
                except OSError as exc:
                    if exc.errno == errno.EADDRNOTAVAIL and af == socket.AF_INET6 and address == "localhost":
                        sock.close()  # "localhost" resolves to ::1 on a host without IPv6 loopback
                        continue
                    raise
                chosen_port = sock.getsockname()[1]
                sock.listen(backlog)
            except BaseException:
                sock.close()
                raise
            sockets.append(sock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise OSError(f"no address to listen on for {address!r} port {port}")
    return sockets


def bind_unix_socket(file: str, mode: int = 0o600, backlog: int = DEFAULT_BACKLOG) -> socket.socket:
    """A listening UNIX-domain socket at the path ``file``, with permissions ``mode``.

    A stale socket file left at the path is replaced; any other file there is
    a ``ValueError``.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setblocking(False)
        try:
            st = os.stat(file)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise ValueError(f"{file} exists and is not a socket")
            os.remove(file)
        sock.bind(file)
        os.chmod(file, mode)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def tls_client_creator(
    host: str,
    validate_cert: bool = True,
    ca_certs: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> Any:
    """What makes a TLS client connection to ``host`` (for
    ``twisted.internet.endpoints.wrapClientTLS``): the certificate checked
    against ``ca_certs`` (a PEM file) or the system's trust roots, or, with
    ``validate_cert=False``, not checked at all (tests, self-signed peers).
    ``client_cert`` (a PEM file, holding the key too unless ``client_key``
    names another) is presented to servers that ask for one."""
    from twisted.internet import ssl

    client_identity: Any = None
    if client_cert is not None:
        with open(client_cert, "rb") as pem:
            cert_pem = pem.read()
        key_pem = cert_pem
        if client_key is not None:
            with open(client_key, "rb") as pem:
                key_pem = pem.read()
        client_identity = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    if not validate_cert:
        return _UncheckedTLS(client_identity)
    if ca_certs is not None:
        with open(ca_certs, "rb") as pem:
            trust_root: Any = ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(pem.read())])
    else:
        trust_root = ssl.platformTrust()
    return ssl.optionsForClientTLS(host, trustRoot=trust_root, clientCertificate=client_identity)


@implementer(IOpenSSLClientConnectionCreator)
class _UncheckedTLS:
    """A TLS client connection creator that accepts any certificate."""

    def __init__(self, client_identity: Any = None) -> None:
        from twisted.internet import ssl

        if client_identity is None:
            options = ssl.CertificateOptions(verify=False)
        else:
            options = ssl.CertificateOptions(
                verify=False,
                privateKey=client_identity.privateKey.original,
                certificate=client_identity.original,
            )
        self._context = options.getContext()

    def clientConnectionForTLS(self, tls_protocol: Any) -> Any:
        from OpenSSL import SSL

        return SSL.Connection(self._context, None)  # Twisted sets its state and app data
