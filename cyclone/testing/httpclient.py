"""The test client (``cyclone.httpclient`` without keep-alive and with a
base URL), and a server listening for tests.

``AsyncHTTPClient`` is ``cyclone.httpclient.AsyncHTTPClient`` with
Tornado's test-client habits: one connection per request (``Connection:
close``, like Tornado's simple client) and paths fetched against a
``base_url``. Responses are read by ``cyclone.http1client``, so their headers
are exactly those received (``Content-Length``, ``Connection`` and
``Transfer-Encoding`` included).

Every connection, on both sides, is tracked, so ``AsyncHTTPClient.close()``
and ``LiveServer.stop()`` return Deferreds that fire once the sockets are
really closed: trial fails a test that leaves sockets or timers behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, protocol
from twisted.protocols.policies import WrappingFactory

from cyclone import httpclient as _httpclient
from cyclone.httpclient import (
    STANDARD_METHODS,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
    HTTPStreamClosedError,
    HTTPTimeoutError,
    _to_headers,
)

__all__ = [
    "STANDARD_METHODS",
    "AsyncHTTPClient",
    "ClientRequest",
    "HTTPClientError",
    "HTTPRequest",
    "HTTPResponse",
    "HTTPStreamClosedError",
    "HTTPTimeoutError",
    "LiveServer",
    "_to_headers",
]

#: The name this module used before the client moved to ``cyclone.httpclient``.
ClientRequest = HTTPRequest


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class AsyncHTTPClient(_httpclient.AsyncHTTPClient):
    """Fetches URLs for tests; each ``fetch`` returns a Deferred firing with an ``HTTPResponse``.

    Connections are not reused (requests carry ``Connection: close``, like
    Tornado's simple client) and cookies are not remembered. ``base_url``
    (a URL such as ``http://127.0.0.1:8888``, or a function returning one)
    lets ``fetch`` take a path that starts with "/".
    """

    def __init__(self, base_url: str | Callable[[], str] | None = None) -> None:
        super().__init__(force_instance=True, keep_alive=False)
        self._base_url = base_url

    def _absolute(self, url: str) -> str:
        if not url.startswith("/"):
            return url
        base = self._base_url() if callable(self._base_url) else self._base_url
        if base is None:
            raise ValueError(f"{url!r} is not a URL (give the client a base_url to fetch paths)")
        return base.rstrip("/") + url


# -- connection tracking ----------------------------------------------------------------


class _ConnectionSet:
    """The open connections of a server or client, to close and wait for at the end."""

    def __init__(self) -> None:
        self.live: set[Any] = set()
        self._waiters: list[defer.Deferred[None]] = []

    def add(self, connection: Any) -> None:
        self.live.add(connection)

    def discard(self, connection: Any) -> None:
        self.live.discard(connection)
        if not self.live:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def when_empty(self) -> defer.Deferred[None]:
        if not self.live:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def abort_all(self) -> None:
        for connection in list(self.live):
            connection.transport.abortConnection()


class _TrackingFactory(WrappingFactory):
    """Builds the wrapped factory's protocols and records them while connected."""

    def __init__(self, wrapped: protocol.Factory, connections: _ConnectionSet) -> None:
        super().__init__(wrapped)
        self._connections = connections

    def registerProtocol(self, p: Any) -> None:
        super().registerProtocol(p)
        self._connections.add(p)

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)
        self._connections.discard(p)


# -- the server ------------------------------------------------------------------------


class LiveServer:
    """``factory`` (e.g. a ``cyclone.web.Application``) listening on a free port
    (over TLS when given ``tls``, a Twisted server context factory).

    ``port`` is the port number, ``url(path)`` a URL on it; ``stop()``
    returns a Deferred that fires once the port and every connection it
    accepted are closed.
    """

    def __init__(
        self, factory: protocol.Factory, interface: str = "127.0.0.1", port: int = 0, tls: Any = None
    ) -> None:
        self.factory = factory
        self.interface = interface
        self._connections = _ConnectionSet()
        tracking = _TrackingFactory(factory, self._connections)
        if tls is None:
            self._listening = _reactor().listenTCP(port, tracking, interface=interface)
        else:  # a Twisted server context factory, e.g. ssl.CertificateOptions
            self._listening = _reactor().listenSSL(port, tracking, tls, interface=interface)
        self.port: int = self._listening.getHost().port

    def url(self, path: str = "/", protocol: str = "http") -> str:
        # A wildcard interface is reached through loopback.
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.interface, self.interface)
        host = f"[{host}]" if ":" in host else host
        return f"{protocol}://{host}:{self.port}{path}"

    @property
    def connections(self) -> int:
        """How many accepted connections are open."""
        return len(self._connections.live)

    def stop(self) -> defer.Deferred[None]:
        """Stop listening and abort open connections (the test is over).

        Safe to call more than once.
        """
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        # stopListening returns None when the port is already closed.
        await defer.maybeDeferred(self._listening.stopListening)
        self._connections.abort_all()
        await self._connections.when_empty()
