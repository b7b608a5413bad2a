"""A test HTTP client over real sockets, and a server listening for tests.

``AsyncHTTPClient.fetch`` has the interface of Tornado's client (keyword
arguments, ``HTTPResponse``, ``HTTPClientError``) and returns a Deferred.
It writes each request and reads its response itself
(``cyclone.testing._http11``), on a Twisted connection: the response's
headers are exactly those received (``Content-Length``, ``Connection`` and
``Transfer-Encoding`` included), and bodies framed by Content-Length,
chunked coding or the connection closing, 1xx interim responses, HEAD and
204/304 responses without a body are read as HTTP/1.1 says. One connection
per request (``Connection: close``), as Tornado's simple client.

Every connection, on both sides, is tracked, so ``AsyncHTTPClient.close()``
and ``LiveServer.stop()`` return Deferreds that fire once the sockets are
really closed: trial fails a test that leaves sockets or timers behind.
"""

from __future__ import annotations

import base64
import http.client
import io
import time
import urllib.parse
from typing import Any, Callable, Iterable, Mapping

from twisted.internet import defer, error, protocol
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure

from cyclone.httputil import HTTPHeaders
from cyclone.netutil import tls_client_creator
from cyclone.testing import _http11

__all__ = [
    "AsyncHTTPClient",
    "ClientRequest",
    "HTTPClientError",
    "HTTPRequest",
    "HTTPResponse",
    "HTTPStreamClosedError",
    "HTTPTimeoutError",
    "LiveServer",
]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Headers describing a body, dropped when a redirect turns the request into a GET.
_BODY_HEADERS = ("Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding")
# Credentials never follow a redirect to another origin.
_CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


# -- errors and responses -------------------------------------------------------------


class HTTPClientError(Exception):
    """An unsuccessful fetch: ``code`` (599 when no response arrived),
    ``message`` and ``response`` (the ``HTTPResponse``, if there was one).

    A redirect that is not followed is an error too (code 3xx), as in Tornado.
    """

    def __init__(self, code: int, message: str | None = None, response: HTTPResponse | None = None) -> None:
        self.code = code
        self.message = message or http.client.responses.get(code, "Unknown")
        self.response = response
        super().__init__(code, self.message, response)

    def __str__(self) -> str:
        return f"HTTP {self.code}: {self.message}"


class HTTPTimeoutError(HTTPClientError):
    """The request did not complete within ``request_timeout`` (code 599)."""

    def __init__(self, message: str = "Timeout") -> None:
        super().__init__(599, message)


class HTTPStreamClosedError(HTTPClientError):
    """The connection closed before a complete response arrived (code 599)."""

    def __init__(self, message: str = "Stream closed") -> None:
        super().__init__(599, message)


#: The methods Tornado's client sends without ``allow_nonstandard_methods``.
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
# Methods that must carry a body (and the others must not) unless allow_nonstandard_methods.
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})


class ClientRequest:
    """What to fetch: Tornado's ``HTTPRequest`` options that this client honours.

    ``headers`` may be a dict or ``HTTPHeaders``; str values are sent as
    Latin-1 (UTF-8 if they do not fit), bytes values as they are. ``body``
    may be str (sent as UTF-8) or bytes. ``body_producer(write)`` instead
    streams the body: it calls ``write(chunk)`` (which returns a Deferred to
    wait on) and returns a Deferred or awaitable; without a Content-Length
    header the body is sent chunked. ``expect_100_continue`` sends
    ``Expect: 100-continue`` and holds the body back until the server
    answers 100. ``use_gzip`` is Tornado's old name for
    ``decompress_response``. ``header_callback`` gets each line of the
    final response head (status line first, then each header, then
    ``"\r\n"``); ``streaming_callback`` each piece of the body, which is
    then not kept.
    """

    def __init__(
        self,
        url: str,
        method: str = "GET",
        headers: Mapping[str, Any] | HTTPHeaders | None = None,
        body: str | bytes | None = None,
        follow_redirects: bool = True,
        max_redirects: int = 5,
        request_timeout: float | None = 20.0,
        connect_timeout: float | None = 20.0,
        decompress_response: bool | None = None,
        user_agent: str | None = None,
        auth_username: str | None = None,
        auth_password: str | None = None,
        auth_mode: str | None = None,
        streaming_callback: Callable[[bytes], Any] | None = None,
        header_callback: Callable[[str], Any] | None = None,
        http_version: str = "HTTP/1.1",
        validate_cert: bool = True,
        ca_certs: str | None = None,
        body_producer: Callable[[Callable[[bytes], Any]], Any] | None = None,
        expect_100_continue: bool = False,
        use_gzip: bool | None = None,
        allow_nonstandard_methods: bool = False,
    ) -> None:
        self.url = url
        self.method = method.upper()
        self.headers = _to_headers(headers)
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is not None and not isinstance(body, bytes):
            raise TypeError(f"body must be str or bytes, not {type(body).__name__}")
        if body is not None and body_producer is not None:
            raise ValueError("pass either body or body_producer, not both")
        self.body = body
        self.body_producer = body_producer
        self.expect_100_continue = expect_100_continue
        self.allow_nonstandard_methods = allow_nonstandard_methods
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        if decompress_response is None:
            decompress_response = True if use_gzip is None else use_gzip
        self.decompress_response = decompress_response
        self.streaming_callback = streaming_callback
        self.header_callback = header_callback
        #: https: check the server's certificate (against ``ca_certs``, a PEM
        #: file, or the system's trusted roots) and its name
        self.validate_cert = validate_cert
        self.ca_certs = ca_certs
        if http_version not in ("HTTP/1.0", "HTTP/1.1"):
            raise ValueError(f"http_version must be 'HTTP/1.0' or 'HTTP/1.1', not {http_version!r}")
        self.http_version = http_version
        if user_agent is not None and "User-Agent" not in self.headers:
            self.headers["User-Agent"] = user_agent
        if auth_username is not None:
            if auth_mode not in (None, "basic"):
                raise ValueError(f"unsupported auth_mode {auth_mode!r} (only 'basic')")
            if "Authorization" not in self.headers:
                secret = f"{auth_username}:{auth_password or ''}".encode("utf-8")
                self.headers["Authorization"] = "Basic " + base64.b64encode(secret).decode("ascii")
        if decompress_response and "Accept-Encoding" not in self.headers:
            self.headers["Accept-Encoding"] = "gzip"

    @property
    def use_gzip(self) -> bool:
        return self.decompress_response

    def check(self) -> None:
        """Refuse what Tornado's client refuses: an unknown method (KeyError), or
        a body on a method without one or none on POST/PUT/PATCH (ValueError),
        unless ``allow_nonstandard_methods``."""
        if self.allow_nonstandard_methods:
            return
        if self.method not in STANDARD_METHODS:
            raise KeyError(f"unknown method {self.method}")
        present = self.body is not None or self.body_producer is not None
        if self.method in _BODY_EXPECTED and not present:
            raise ValueError(f"Body must not be None for method {self.method} "
                             "(unless allow_nonstandard_methods is true)")
        if present and self.method not in _BODY_EXPECTED:
            raise ValueError(f"Body must be None for method {self.method} "
                             "(unless allow_nonstandard_methods is true)")

    def __repr__(self) -> str:
        return f"ClientRequest({self.method} {self.url})"


#: Tornado's name for it (``tornado.httpclient.HTTPRequest``).
HTTPRequest = ClientRequest


class HTTPResponse:
    """A response, with Tornado's attributes.

    ``code``, ``reason``, ``headers`` (``HTTPHeaders``), ``body`` (bytes),
    ``effective_url`` (after redirects), ``request`` (the first
    ``ClientRequest``), ``request_time`` (seconds), ``start_time`` (epoch),
    ``error`` (an ``HTTPClientError`` unless the code is 2xx), ``buffer``.
    ``content`` and ``get_status()`` are the names the original
    ``cyclone.testing.Client`` used.
    """

    def __init__(
        self,
        request: ClientRequest,
        code: int,
        headers: HTTPHeaders | None = None,
        body: bytes = b"",
        effective_url: str | None = None,
        reason: str | None = None,
        request_time: float | None = None,
        start_time: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.request = request
        self.code = code
        self.reason = reason or http.client.responses.get(code, "Unknown")
        self.headers = headers if headers is not None else HTTPHeaders()
        self.body = body
        self.effective_url = effective_url or request.url
        self.request_time = request_time
        self.start_time = start_time
        self.time_info: dict[str, float] = {}
        if error is None and not 200 <= code < 300:
            error = HTTPClientError(code, self.reason, response=self)
        self.error = error

    @property
    def content(self) -> bytes:
        return self.body

    @property
    def buffer(self) -> io.BytesIO:
        return io.BytesIO(self.body)

    def get_status(self) -> int:
        return self.code

    def rethrow(self) -> None:
        """Raise ``self.error`` if there is one."""
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        return f"HTTPResponse({self.code} {self.reason}, {self.effective_url}, {len(self.body)} bytes)"


def _to_headers(headers: Mapping[str, Any] | HTTPHeaders | None) -> HTTPHeaders:
    result = HTTPHeaders()
    if headers is None:
        return result
    pairs: Iterable[tuple[str, Any]]
    pairs = headers.get_all() if isinstance(headers, HTTPHeaders) else headers.items()
    for name, value in pairs:
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, bytes):
                item = item.decode("latin-1")  # encodes back to the same bytes
            result.add(name, str(item))
    return result


def _ascii_url(url: str) -> str:
    # A request target is made of URL characters; quote anything else.
    return urllib.parse.quote(url, safe=":/?#[]@!$&'()*+,;=%~")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


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


def _endpoint(request: ClientRequest, parts: urllib.parse.SplitResult) -> Any:
    """A client endpoint for the URL's host and port (TLS for https)."""
    reactor = _reactor()
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = request.connect_timeout or 30
    endpoint: Any
    if isIPAddress(host):
        endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    elif isIPv6Address(host):
        endpoint = TCP6ClientEndpoint(reactor, host, port, timeout=timeout)
    else:
        endpoint = HostnameEndpoint(reactor, host.encode("idna"), port, timeout=timeout)
    if parts.scheme == "https":
        endpoint = wrapClientTLS(_tls_connection_creator(host, request), endpoint)
    return endpoint


def _tls_connection_creator(host: str, request: ClientRequest) -> Any:
    """What makes the client's TLS connection: checked against ``ca_certs``
    (or the system's roots), or, with ``validate_cert=False``, not checked."""
    return tls_client_creator(host, request.validate_cert, request.ca_certs)


def _gunzip_headers(headers: HTTPHeaders) -> bool:
    """True if the body is gzipped; then rename Content-Encoding as Tornado does."""
    if headers.get("Content-Encoding", "").lower() != "gzip":
        return False
    del headers["Content-Encoding"]
    headers["X-Consumed-Content-Encoding"] = "gzip"
    return True


# -- the client ------------------------------------------------------------------------


class AsyncHTTPClient:
    """Fetches URLs; each ``fetch`` returns a Deferred firing with an ``HTTPResponse``.

    Connections are not reused (requests carry ``Connection: close``, like
    Tornado's simple client) and cookies are not remembered. ``base_url``
    (a URL such as ``http://127.0.0.1:8888``, or a function returning one)
    lets ``fetch`` take a path that starts with "/".
    """

    def __init__(self, base_url: str | Callable[[], str] | None = None) -> None:
        self._connections = _ConnectionSet()
        self._closed = False
        self._base_url = base_url

    def fetch(
        self, request: str | ClientRequest, raise_error: bool = True, **kwargs: Any
    ) -> defer.Deferred[HTTPResponse]:
        """Fetch ``request`` (a URL or a ``ClientRequest``).

        Keyword arguments are ``ClientRequest``'s. With ``raise_error`` the
        Deferred fails with ``HTTPClientError`` for any code that is not 2xx;
        timeouts (``HTTPTimeoutError``), connections closed early
        (``HTTPStreamClosedError``) and refused (``ConnectionRefusedError``)
        fail it either way.
        """
        if self._closed:
            raise RuntimeError("fetch() on a closed AsyncHTTPClient")
        if isinstance(request, ClientRequest):
            if kwargs:
                raise TypeError("pass options in the ClientRequest or as keywords, not both")
            request.url = self._absolute(request.url)
        else:
            request = ClientRequest(self._absolute(request), **kwargs)
        request.check()
        d = defer.Deferred.fromCoroutine(self._fetch(request))
        if request.request_timeout:
            d.addTimeout(request.request_timeout, _reactor(), onTimeoutCancel=_request_timed_out)
        d.addErrback(_translate_failure)

        def check(response: HTTPResponse) -> HTTPResponse:
            if raise_error and response.error is not None:
                raise response.error
            return response

        return d.addCallback(check)

    def _absolute(self, url: str) -> str:
        if not url.startswith("/"):
            return url
        base = self._base_url() if callable(self._base_url) else self._base_url
        if base is None:
            raise ValueError(f"{url!r} is not a URL (give the client a base_url to fetch paths)")
        return base.rstrip("/") + url

    def close(self) -> defer.Deferred[None]:
        """Abort connections still open; the Deferred fires once all are closed."""
        self._closed = True
        self._connections.abort_all()
        return self._connections.when_empty()

    async def _fetch(self, first: ClientRequest) -> HTTPResponse:
        start_time = time.time()
        started = time.monotonic()
        request = first
        redirects_left = first.max_redirects
        while True:
            code, reason, headers, body = await self._exchange(request)
            location = headers.get("Location")
            if request.follow_redirects and code in _REDIRECTS and location and redirects_left > 0:
                request = _redirected(request, code, location)
                redirects_left -= 1
                continue
            return HTTPResponse(
                first,
                code,
                headers,
                body,
                effective_url=request.url,
                reason=reason,
                request_time=time.monotonic() - started,
                start_time=start_time,
            )

    async def _exchange(self, request: ClientRequest) -> tuple[int, str, HTTPHeaders, bytes]:
        parts = urllib.parse.urlsplit(_ascii_url(request.url))
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"cyclone.testing's client speaks http and https, not {parts.scheme!r}")
        head, chunked = _request_head(request, parts)
        body: Any = request.body if request.body_producer is None else request.body_producer

        def on_head(response: _http11.ResponseHead) -> bool:
            if request.header_callback is not None:
                for line in response.lines:
                    request.header_callback(line)
            return bool(request.decompress_response) and _gunzip_headers(response.headers)

        factory = protocol.Factory()
        factory.protocol = lambda: _http11.Exchange(  # type: ignore[assignment]
            head, body, chunked, request.method,
            request.expect_100_continue, on_head, request.streaming_callback,
        )
        wrapper = await _endpoint(request, parts).connect(_TrackingFactory(factory, self._connections))
        exchange = wrapper.wrappedProtocol
        response, body_bytes = await exchange.finished
        return response.code, response.reason, response.headers, body_bytes


def _request_head(request: ClientRequest, parts: urllib.parse.SplitResult) -> tuple[bytes, bool]:
    """The request's head as bytes, and whether its body goes chunked."""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = HTTPHeaders()
    if "Host" not in request.headers:
        headers["Host"] = parts.netloc.rpartition("@")[2]
    if request.http_version == "HTTP/1.1" and "Connection" not in request.headers:
        headers["Connection"] = "close"
    for name, value in request.headers.get_all():
        headers.add(name, value)
    chunked = False
    if request.body is not None:
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(request.body))
    elif request.body_producer is not None and "Content-Length" not in headers:
        if request.http_version == "HTTP/1.0":
            raise ValueError("body_producer over HTTP/1.0 needs a Content-Length header")
        headers["Transfer-Encoding"] = "chunked"
        chunked = True
    has_body = request.body is not None or request.body_producer is not None
    # As Tornado's client: a POST body without a type is a form.
    if request.method == "POST" and has_body and "Content-Type" not in headers:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if request.expect_100_continue and has_body and "Expect" not in headers:
        headers["Expect"] = "100-continue"
    return _http11.serialize_head(request.method, target, request.http_version, headers), chunked


def _redirected(request: ClientRequest, code: int, location: str) -> ClientRequest:
    """The request to send after ``code`` redirected ``request`` to ``location``."""
    url = urllib.parse.urljoin(request.url, location)
    method, body = request.method, request.body
    headers = request.headers.copy()
    headers.pop("Host", None)
    if (code == 303 and method != "HEAD") or (code in (301, 302) and method == "POST"):
        method, body = "GET", None
        for name in _BODY_HEADERS:
            headers.pop(name, None)
    if _origin(url) != _origin(request.url):
        for name in _CREDENTIAL_HEADERS:
            headers.pop(name, None)
    return ClientRequest(
        url,
        method=method,
        headers=headers,
        body=body,
        follow_redirects=request.follow_redirects,
        max_redirects=request.max_redirects,
        request_timeout=request.request_timeout,
        connect_timeout=request.connect_timeout,
        # Accept-Encoding is already among the copied headers when wanted.
        decompress_response=request.decompress_response,
        streaming_callback=request.streaming_callback,
        header_callback=request.header_callback,
        http_version=request.http_version,
        validate_cert=request.validate_cert,
        ca_certs=request.ca_certs,
        body_producer=request.body_producer if method == request.method else None,
        expect_100_continue=request.expect_100_continue,
        allow_nonstandard_methods=request.allow_nonstandard_methods,
    )


def _request_timed_out(result: Any, timeout: float) -> Failure:
    return Failure(HTTPTimeoutError(f"Timeout after {timeout:g} s"))


def _translate_failure(failure: Failure) -> Failure:
    """Twisted's connection errors as the exceptions Tornado's client raises."""
    if failure.check(error.ConnectionRefusedError):
        raise ConnectionRefusedError(str(failure.value))
    if failure.check(ConnectionRefusedError):
        return failure
    # error.TimeoutError: connect_timeout.
    if failure.check(error.TimeoutError, TimeoutError):
        raise HTTPTimeoutError(f"Timeout: {failure.getErrorMessage()}")
    if failure.check(_http11.ProtocolError):
        raise HTTPClientError(599, f"Malformed response: {failure.getErrorMessage()}")
    from OpenSSL import SSL

    # SSL.Error: the TLS handshake failed (e.g. the certificate was refused).
    if failure.check(error.ConnectionLost, error.ConnectionDone, ConnectionError, SSL.Error):
        raise HTTPStreamClosedError(f"Stream closed: {failure.getErrorMessage()}")
    return failure


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
