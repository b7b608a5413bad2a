"""A test HTTP client over real sockets, and a server listening for tests.

``AsyncHTTPClient.fetch`` has the interface of Tornado's client (keyword
arguments, ``HTTPResponse``, ``HTTPClientError``) and returns a Deferred. The
HTTP work is done by ``twisted.web.client.Agent`` -- a client written
independently of cyclone's server, so the tests exercise the server against
someone else's reading of HTTP. ``http_version="HTTP/1.0"`` sends a
hand-written HTTP/1.0 request from a thread and reads the answer with the
standard library's ``http.client`` parser (Agent only speaks HTTP/1.1).

Every connection, on both sides, is tracked, so ``AsyncHTTPClient.close()``
and ``LiveServer.stop()`` return Deferreds that fire once the sockets are
really closed: trial fails a test that leaves sockets or timers behind.
"""

from __future__ import annotations

import base64
import http.client
import io
import socket
import time
import urllib.parse
import zlib
from typing import Any, Callable, Iterable, Mapping

from twisted.internet import defer, error, protocol, ssl, threads
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    PotentialDataLoss,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IBodyProducer
from zope.interface import implementer

from cyclone.httputil import HTTPHeaders

__all__ = [
    "AsyncHTTPClient",
    "ClientRequest",
    "HTTPClientError",
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


class ClientRequest:
    """What to fetch: Tornado's ``HTTPRequest`` options that this client honours.

    ``headers`` may be a dict or ``HTTPHeaders``; str values are sent as
    Latin-1 (UTF-8 if they do not fit), bytes values as they are. ``body``
    may be str (sent as UTF-8) or bytes.
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
        decompress_response: bool = True,
        user_agent: str | None = None,
        auth_username: str | None = None,
        auth_password: str | None = None,
        auth_mode: str | None = None,
        streaming_callback: Callable[[bytes], Any] | None = None,
        http_version: str = "HTTP/1.1",
        validate_cert: bool = True,
        ca_certs: str | None = None,
    ) -> None:
        self.url = url
        self.method = method.upper()
        self.headers = _to_headers(headers)
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is not None and not isinstance(body, bytes):
            raise TypeError(f"body must be str or bytes, not {type(body).__name__}")
        self.body = body
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.decompress_response = decompress_response
        self.streaming_callback = streaming_callback
        #: https: check the server's certificate (against ``ca_certs``, a PEM
        #: file, or the system's trusted roots) and its name
        self.validate_cert = validate_cert
        self.ca_certs = ca_certs
        if http_version not in ("HTTP/1.0", "HTTP/1.1"):
            raise ValueError(f"http_version must be 'HTTP/1.0' or 'HTTP/1.1', not {http_version!r}")
        if http_version == "HTTP/1.0" and streaming_callback is not None:
            raise ValueError("streaming_callback needs http_version='HTTP/1.1'")
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

    def __repr__(self) -> str:
        return f"ClientRequest({self.method} {self.url})"


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


def _encode_header_value(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _ascii_url(url: str) -> str:
    # Agent needs bytes made of URL characters; quote anything else.
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


@implementer(IStreamClientEndpoint)
class _TrackedEndpoint:
    def __init__(self, endpoint: Any, connections: _ConnectionSet) -> None:
        self._endpoint = endpoint
        self._connections = connections

    def connect(self, factory: protocol.Factory) -> defer.Deferred[Any]:
        d = self._endpoint.connect(_TrackingFactory(factory, self._connections))
        # Agent talks to its own protocol; the wrapper only watches the connection.
        return d.addCallback(lambda wrapper: wrapper.wrappedProtocol)


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    def __init__(self, connections: _ConnectionSet, request: ClientRequest) -> None:
        self._connections = connections
        self._timeout = request.connect_timeout or 30
        self._request = request

    def endpointForURI(self, uri: Any) -> _TrackedEndpoint:
        reactor = _reactor()
        if uri.scheme not in (b"http", b"https"):
            raise ValueError(f"cyclone.testing's client speaks http and https, not {uri.scheme!r}")
        host = uri.host.decode("ascii")
        endpoint: Any
        if isIPAddress(host):
            endpoint = TCP4ClientEndpoint(reactor, host, uri.port, timeout=self._timeout)
        elif isIPv6Address(host):
            endpoint = TCP6ClientEndpoint(reactor, host, uri.port, timeout=self._timeout)
        else:
            endpoint = HostnameEndpoint(reactor, uri.host, uri.port, timeout=self._timeout)
        if uri.scheme == b"https":
            endpoint = wrapClientTLS(_tls_connection_creator(host, self._request), endpoint)
        return _TrackedEndpoint(endpoint, self._connections)


def _tls_connection_creator(host: str, request: ClientRequest) -> Any:
    """What makes the client's TLS connection: checked against ``ca_certs``
    (or the system's roots), or, with ``validate_cert=False``, not checked."""
    if not request.validate_cert:
        return _UncheckedTLS()
    if request.ca_certs is not None:
        with open(request.ca_certs, "rb") as pem:
            trust_root: Any = ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(pem.read())])
    else:
        trust_root = ssl.platformTrust()
    return ssl.optionsForClientTLS(host, trustRoot=trust_root)


@implementer(IOpenSSLClientConnectionCreator)
class _UncheckedTLS:
    """A TLS client that accepts any certificate (``validate_cert=False``)."""

    def __init__(self) -> None:
        self._context = ssl.CertificateOptions(verify=False).getContext()

    def clientConnectionForTLS(self, tls_protocol: Any) -> Any:
        from OpenSSL import SSL

        return SSL.Connection(self._context, None)  # Twisted sets its state and app data


@implementer(IBodyProducer)
class _BytesProducer:
    """A request body already in memory (sent with Content-Length)."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> defer.Deferred[None]:
        consumer.write(self._body)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class _BodyReader(protocol.Protocol):
    """Collects (or streams) a response body, un-gzipping it when asked to."""

    def __init__(self, finished: defer.Deferred[bytes], callback: Callable[[bytes], Any] | None, gunzip: bool) -> None:
        self._finished = finished
        self._callback = callback
        self._chunks: list[bytes] = []
        self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS) if gunzip else None
        self._failure: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        if self._failure is not None:
            return
        try:
            if self._decoder is not None:
                data = self._decoder.decompress(data)
            self._deliver(data)
        except Exception:
            self._failure = Failure()
            self.transport.stopProducing()

    def _deliver(self, data: bytes) -> None:
        if not data:
            return
        if self._callback is not None:
            self._callback(data)
        else:
            self._chunks.append(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self._failure is not None:
            self._finished.errback(self._failure)
            return
        # PotentialDataLoss: a body delimited by the connection closing (HTTP/1.0).
        if not reason.check(ResponseDone, PotentialDataLoss):
            self._finished.errback(reason)
            return
        try:
            if self._decoder is not None:
                self._deliver(self._decoder.flush())
        except Exception:
            self._finished.errback(Failure())
            return
        self._finished.callback(b"".join(self._chunks))


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
        self._pool = HTTPConnectionPool(_reactor(), persistent=False)
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
        if request.http_version == "HTTP/1.0":
            return await threads.deferToThread(_exchange_http10, request)
        return await self._agent_exchange(request)

    async def _agent_exchange(self, request: ClientRequest) -> tuple[int, str, HTTPHeaders, bytes]:
        agent = Agent.usingEndpointFactory(
            _reactor(), _EndpointFactory(self._connections, request), pool=self._pool
        )
        raw_headers = Headers()
        for name, value in request.headers.get_all():
            raw_headers.addRawHeader(name.encode("latin-1"), _encode_header_value(value))
        producer = _BytesProducer(request.body) if request.body is not None else None
        url = _ascii_url(request.url).encode("ascii")
        response = await agent.request(request.method.encode("ascii"), url, raw_headers, producer)
        headers = HTTPHeaders()
        for name, values in response.headers.getAllRawHeaders():
            for value in values:
                headers.add(name.decode("latin-1"), value.decode("latin-1"))
        gunzip = request.decompress_response and _gunzip_headers(headers)
        reader_ref: list[_BodyReader] = []

        def cancel(d: defer.Deferred[bytes]) -> None:
            reader_ref[0].transport.stopProducing()

        finished: defer.Deferred[bytes] = defer.Deferred(cancel)
        reader = _BodyReader(finished, request.streaming_callback, gunzip)
        reader_ref.append(reader)
        response.deliverBody(reader)
        body = await finished
        return response.code, response.phrase.decode("latin-1"), headers, body


def _exchange_http10(request: ClientRequest) -> tuple[int, str, HTTPHeaders, bytes]:
    """One HTTP/1.0 request over a blocking socket (runs in a thread)."""
    parts = urllib.parse.urlsplit(_ascii_url(request.url))
    if parts.scheme != "http":
        raise ValueError(f"cyclone.testing's client speaks plain http, not {parts.scheme!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = request.headers.copy()
    if "Host" not in headers:
        headers["Host"] = parts.netloc
    if request.body is not None:
        headers["Content-Length"] = str(len(request.body))
    lines = [f"{request.method} {target} HTTP/1.0".encode("ascii")]
    lines += [name.encode("latin-1") + b": " + _encode_header_value(value) for name, value in headers.get_all()]
    data = b"\r\n".join(lines) + b"\r\n\r\n" + (request.body or b"")
    timeout = request.request_timeout or None
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method=request.method)
        try:
            response.begin()
            body = response.read()
        finally:
            response.close()
    result = HTTPHeaders()
    for name, value in response.getheaders():
        result.add(name, value)
    if request.decompress_response and _gunzip_headers(result):
        body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
    return response.status, response.reason, result, body


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
        http_version=request.http_version,
    )


def _request_timed_out(result: Any, timeout: float) -> Failure:
    return Failure(HTTPTimeoutError(f"Timeout after {timeout:g} s"))


def _translate_failure(failure: Failure) -> Failure:
    """Twisted's connection errors as the exceptions Tornado's client raises."""
    if failure.check(error.ConnectionRefusedError):
        raise ConnectionRefusedError(str(failure.value))
    if failure.check(ConnectionRefusedError):
        return failure
    # error.TimeoutError: connect_timeout; TimeoutError: a socket timeout of the HTTP/1.0 path.
    if failure.check(error.TimeoutError, TimeoutError):
        raise HTTPTimeoutError(f"Timeout: {failure.getErrorMessage()}")
    if failure.check(
        ResponseFailed,
        ResponseNeverReceived,
        RequestTransmissionFailed,
        error.ConnectionLost,
        error.ConnectionDone,
        ConnectionError,
        http.client.HTTPException,
    ):
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
