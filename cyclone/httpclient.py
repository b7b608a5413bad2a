"""An asynchronous HTTP/1.1 client on Twisted: ``fetch(url, **kwargs)``.

``fetch`` returns a Deferred firing with an ``HTTPResponse`` (``code``,
``reason``, ``headers``, ``body``, ``effective_url``, ``request_time``,
``error``, ``rethrow()``). Keyword arguments are Tornado's ``HTTPRequest``
options, and the original cyclone's names still work (``postdata``,
``followRedirect``, ``maxRedirects``, ``timeout``, ``proxy=(host, port)``)::

    response = await cyclone.httpclient.fetch("https://api.example/v1/x",
                                               headers={"Accept": "application/json"})
    data = json.loads(response.body)

``AsyncHTTPClient().fetch(request_or_url, **kwargs)`` is Tornado's interface:
it fails with ``HTTPClientError`` for a non-2xx response unless
``raise_error=False``. The module-level ``fetch`` returns non-2xx responses
(with ``response.error`` set), as the original cyclone's did.

Requests are written and responses read by ``cyclone.http1client`` (sans-IO)
rather than Twisted's ``Agent``: ``Agent`` takes ``Content-Length``,
``Connection`` and ``Transfer-Encoding`` out of the headers it reports,
cannot tunnel through a proxy with CONNECT, and costs more per request.
Here ``response.headers`` holds exactly what the server sent.

Connections are kept alive and reused per origin (and per TLS and proxy
settings); every setting is per request, nothing global is changed by a
call. Redirects (``follow_redirects``, at most ``max_redirects``): 303
turns any method but HEAD into a GET without body, 301 and 302 turn a POST
into one (as browsers and the Fetch standard do), 307 and 308 keep method
and body; a relative ``Location`` is resolved against the request's URL;
``Authorization`` and ``Cookie`` are dropped when a redirect leaves the
origin (scheme, host, port). CR, LF or another control character in the
method, URL or a header is refused (``ValueError``) before anything is
sent. ``max_body_size`` limits the body after decompression.
"""

from __future__ import annotations

import base64
import functools
import http.client
import io
import re
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    UNIXClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from cyclone import http1client
from cyclone.httputil import HTTPHeaders, HTTPInputError
from cyclone.netutil import tls_client_creator

__all__ = [
    "AsyncHTTPClient",
    "HTTPBodyTooLargeError",
    "HTTPClient",
    "HTTPClientError",
    "HTTPError",
    "HTTPRequest",
    "HTTPResponse",
    "HTTPStreamClosedError",
    "HTTPTimeoutError",
    "InvalidHeaderError",
    "fetch",
]

#: Default of ``max_body_size``: the most body bytes (after decompression) a response may have.
DEFAULT_MAX_BODY_SIZE = 100 * 1024 * 1024
#: Default of ``max_header_size``: the most bytes of a response head.
DEFAULT_MAX_HEADER_SIZE = http1client.DEFAULT_MAX_HEAD_SIZE

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Headers describing a body, dropped when a redirect turns the request into a GET.
_BODY_HEADERS = ("Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding")
# Credentials never follow a redirect to another origin.
_CREDENTIAL_HEADERS = ("Authorization", "Cookie")
# Requests a client may send again on a fresh connection when a kept-alive
# one turned out to be closed by the server (RFC 9110 9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: The methods Tornado's client sends without ``allow_nonstandard_methods``.
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
# Methods that must carry a body (and the others must not) unless allow_nonstandard_methods.
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})


_the_reactor: Any = None


def _reactor() -> Any:
    # Imported on first use, not with this module, so that an application
    # can still install another reactor (asyncio) after importing cyclone;
    # then kept, as the import costs more than a request's parsing.
    global _the_reactor
    if _the_reactor is None:
        from twisted.internet import reactor

        _the_reactor = reactor
    return _the_reactor


# -- errors -------------------------------------------------------------------------


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


#: Tornado's older name.
HTTPError = HTTPClientError


class HTTPTimeoutError(HTTPClientError):
    """The request did not complete within ``request_timeout`` (or a
    connection within ``connect_timeout``); code 599."""

    def __init__(self, message: str = "Timeout") -> None:
        super().__init__(599, message)


class HTTPStreamClosedError(HTTPClientError):
    """The connection closed before a complete response arrived (code 599)."""

    def __init__(self, message: str = "Stream closed") -> None:
        super().__init__(599, message)


class HTTPBodyTooLargeError(HTTPClientError):
    """The response body (decompressed) is over ``max_body_size``, or its head
    over ``max_header_size`` (code 599); the connection is closed."""

    def __init__(self, message: str) -> None:
        super().__init__(599, message)


class InvalidHeaderError(HTTPInputError, ValueError):
    """A request header that cannot be sent (a name that is not a token, a
    value with CR, LF or NUL): raised by ``fetch`` before anything is sent."""


# -- requests -----------------------------------------------------------------------


def _text(value: str | bytes, what: str) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")  # encodes back to the same bytes
    if isinstance(value, str):
        return value
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def _to_headers(headers: Mapping[Any, Any] | HTTPHeaders | Iterable[tuple[Any, Any]] | None) -> HTTPHeaders:
    """``HTTPHeaders`` from a dict (values may be lists, as the original
    cyclone's), ``HTTPHeaders`` or pairs; names and values str or bytes."""
    result = HTTPHeaders()
    if headers is None:
        return result
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(headers, HTTPHeaders):
        pairs = headers.get_all()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    for name, value in pairs:
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if not isinstance(item, (str, bytes)):
                item = str(item)
            try:
                result.add(_text(name, "a header name"), _text(item, "a header value"))
            except HTTPInputError as e:  # CR, LF, NUL or a bad name: nothing is sent
                raise InvalidHeaderError(str(e)) from None
    return result


class HTTPRequest:
    """What to fetch, with Tornado's ``HTTPRequest`` options.

    ``url``, ``method``, header names and values may be str or bytes;
    ``body`` str (sent as UTF-8) or bytes. ``body_producer(write)`` streams
    the body instead: it calls ``write(chunk)`` (which returns a Deferred to
    wait on) and returns a Deferred or awaitable; without a Content-Length
    header the body goes chunked. The original cyclone's names are accepted
    too: ``postdata`` (a body that makes the default method POST and the
    default type a form), ``followRedirect``, ``maxRedirects``, ``timeout``
    (``request_timeout``: the original's limited only the connection) and
    ``proxy=(host, port)`` (or ``proxy="http://user:password@host:port"``).

    ``request_timeout`` (20 s) covers the whole fetch: waiting for a
    connection, redirects, and reading the body. ``connect_timeout`` (20 s)
    limits each TCP/TLS connection attempt. ``max_body_size`` (100 MiB)
    limits the body after decompression, ``max_header_size`` (64 KiB) the
    response head. ``unix_socket`` sends the request over a UNIX socket (the
    URL's host then only fills ``Host``); a URL ``http+unix://<quoted socket
    path>/path`` does the same. ``proxy_host``/``proxy_port`` (and
    ``proxy_username``/``proxy_password``) send http URLs through an HTTP
    proxy and tunnel https ones with CONNECT.
    """

    def __init__(
        self,
        url: str | bytes,
        method: str | bytes | None = None,
        headers: Mapping[Any, Any] | HTTPHeaders | None = None,
        body: str | bytes | None = None,
        auth_username: str | None = None,
        auth_password: str | None = None,
        auth_mode: str | None = None,
        connect_timeout: float | None = 20.0,
        request_timeout: float | None = 20.0,
        if_modified_since: float | Any | None = None,
        follow_redirects: bool | None = None,
        max_redirects: int | None = None,
        user_agent: str | None = None,
        use_gzip: bool | None = None,
        decompress_response: bool | None = None,
        streaming_callback: Callable[[bytes], Any] | None = None,
        header_callback: Callable[[str], Any] | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        proxy_username: str | None = None,
        proxy_password: str | None = None,
        proxy_auth_mode: str | None = None,
        allow_nonstandard_methods: bool = False,
        validate_cert: bool = True,
        ca_certs: str | None = None,
        client_key: str | None = None,
        client_cert: str | None = None,
        body_producer: Callable[[Callable[[bytes], Any]], Any] | None = None,
        expect_100_continue: bool = False,
        max_body_size: int | None = None,
        max_header_size: int | None = None,
        unix_socket: str | None = None,
        http_version: str = "HTTP/1.1",
        # the original cyclone's names
        postdata: str | bytes | None = None,
        followRedirect: bool | None = None,
        maxRedirects: int | None = None,
        timeout: float | None = None,
        proxy: tuple[str, int] | str | None = None,
    ) -> None:
        url = _text(url, "url")
        if postdata is not None:
            if body is not None:
                raise ValueError("pass either body or postdata, not both")
            body = postdata
        if method is None:
            method = "POST" if postdata is not None else "GET"
        self.method = _text(method, "method").upper()
        self.headers = _to_headers(headers)
        if postdata is not None and "Content-Type" not in self.headers:
            self.headers["Content-Type"] = "application/x-www-form-urlencoded"
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is not None and not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError(f"body must be str or bytes, not {type(body).__name__}")
        if body is not None and body_producer is not None:
            raise ValueError("pass either body or body_producer, not both")
        self.body: bytes | None = bytes(body) if body is not None else None
        self.body_producer = body_producer
        self.expect_100_continue = expect_100_continue
        self.allow_nonstandard_methods = allow_nonstandard_methods
        if followRedirect is not None and follow_redirects is None:
            follow_redirects = bool(followRedirect)
        self.follow_redirects = True if follow_redirects is None else follow_redirects
        if maxRedirects is not None and max_redirects is None:
            max_redirects = maxRedirects
        self.max_redirects = 5 if max_redirects is None else max_redirects
        self.request_timeout = timeout if timeout is not None else request_timeout
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
        self.client_cert = client_cert
        self.client_key = client_key
        if isinstance(proxy, str):
            proxy_parts = urllib.parse.urlsplit(proxy)
            if proxy_parts.scheme != "http" or not proxy_parts.hostname:
                raise ValueError(f"proxy must be an http:// URL or (host, port), not {proxy!r}")
            proxy_host, proxy_port = proxy_parts.hostname, proxy_parts.port or 80
            if proxy_parts.username is not None and proxy_username is None:
                proxy_username = urllib.parse.unquote(proxy_parts.username)
                proxy_password = urllib.parse.unquote(proxy_parts.password or "")
        elif proxy is not None:
            proxy_host, proxy_port = proxy[0], int(proxy[1])
        self.proxy_host = _text(proxy_host, "proxy_host") if proxy_host is not None else None
        self.proxy_port = proxy_port
        self.proxy_username = proxy_username
        self.proxy_password = proxy_password
        if proxy_auth_mode not in (None, "basic"):
            raise ValueError(f"unsupported proxy_auth_mode {proxy_auth_mode!r} (only 'basic')")
        self.max_body_size = DEFAULT_MAX_BODY_SIZE if max_body_size is None else max_body_size
        self.max_header_size = DEFAULT_MAX_HEADER_SIZE if max_header_size is None else max_header_size
        if http_version not in ("HTTP/1.0", "HTTP/1.1"):
            raise ValueError(f"http_version must be 'HTTP/1.0' or 'HTTP/1.1', not {http_version!r}")
        self.http_version = http_version
        parts = urllib.parse.urlsplit(url) if url.startswith("http+unix:") or "@" in url else None
        if parts is not None and parts.scheme == "http+unix":
            if unix_socket is None:
                unix_socket = urllib.parse.unquote(parts.netloc)
            url = urllib.parse.urlunsplit(("http", "localhost", parts.path, parts.query, parts.fragment))
            parts = urllib.parse.urlsplit(url)
        self.unix_socket = unix_socket
        self.url = url
        if user_agent is not None and "User-Agent" not in self.headers:
            self.headers["User-Agent"] = user_agent
        if auth_username is None and parts is not None and parts.username is not None:
            auth_username = urllib.parse.unquote(parts.username)
            auth_password = urllib.parse.unquote(parts.password or "")
        self.auth_username = auth_username
        self.auth_password = auth_password
        if auth_username is not None:
            if auth_mode not in (None, "basic"):
                raise ValueError(f"unsupported auth_mode {auth_mode!r} (only 'basic')")
            if "Authorization" not in self.headers:
                self.headers["Authorization"] = _basic(auth_username, auth_password)
        if if_modified_since is not None and "If-Modified-Since" not in self.headers:
            from cyclone.httputil import format_timestamp

            self.headers["If-Modified-Since"] = format_timestamp(if_modified_since)
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
        return f"HTTPRequest({self.method} {self.url})"


def _basic(username: str, password: str | None) -> str:
    secret = f"{username}:{password or ''}".encode()
    return "Basic " + base64.b64encode(secret).decode("ascii")


# -- responses ----------------------------------------------------------------------


class HTTPResponse:
    """A response, with Tornado's attributes.

    ``code``, ``reason``, ``headers`` (``HTTPHeaders``, exactly as received
    but for a decoded ``Content-Encoding``, renamed
    ``X-Consumed-Content-Encoding``), ``body`` (bytes), ``effective_url``
    (after redirects), ``request`` (the first ``HTTPRequest``),
    ``request_time`` (seconds), ``start_time`` (epoch), ``error`` (an
    ``HTTPClientError`` unless the code is 2xx), ``buffer``. ``content`` and
    ``get_status()`` are the names the original ``cyclone.testing.Client``
    used.
    """

    def __init__(
        self,
        request: HTTPRequest,
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


# -- reading a body -----------------------------------------------------------------


class _BodySink:
    """Collects (or streams) a body, decoding its content coding, within ``limit`` bytes."""

    def __init__(self, callback: Callable[[bytes], Any] | None, coding: str | None, limit: int) -> None:
        self._callback = callback
        self._chunks: list[bytes] = []
        self._left = limit
        self._limit = limit
        self._coding = coding
        self._decoder: Any = None
        if coding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._decoder = zlib.decompressobj(zlib.MAX_WBITS)
            self._first = True

    def feed(self, data: bytes) -> None:
        if self._decoder is not None:
            data = self._decode(data)
        self._take(data)

    def _decode(self, data: bytes) -> bytes:
        try:
            # max_length bounds what one call may inflate, so a small
            # compressed body cannot blow up memory before the check.
            out = self._decoder.decompress(data, self._left + 1)
        except zlib.error:
            if self._coding == "deflate" and getattr(self, "_first", False):
                # Some servers send a raw deflate stream without the zlib wrapper.
                self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                return self._decode(data)
            raise HTTPClientError(599, f"Malformed response: invalid {self._coding} body") from None
        self._first = False
        return out

    def _take(self, data: bytes) -> None:
        if not data:
            return
        self._left -= len(data)
        if self._left < 0:
            raise HTTPBodyTooLargeError(f"response body larger than max_body_size ({self._limit} bytes)")
        if self._callback is not None:
            self._callback(data)
        else:
            self._chunks.append(data)

    def finish(self) -> bytes:
        if self._decoder is not None:
            try:
                rest = self._decoder.flush()
            except zlib.error:
                raise HTTPClientError(599, f"Malformed response: invalid {self._coding} body") from None
            self._decoder = None
            self._take(rest)
        if len(self._chunks) == 1:
            return self._chunks[0]
        return b"".join(self._chunks)


# -- one connection -----------------------------------------------------------------


@implementer(IPushProducer)
class _Gate:
    """Tells a streamed request body when the socket's buffer is full (an IPushProducer)."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self._waiters: list[defer.Deferred[None]] = []

    def wait(self) -> defer.Deferred[None]:
        if not self.paused:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def stopProducing(self) -> None:
        self.stopped = True
        self.resumeProducing()



class _Exchange:
    """One request written and its response read on a ``_Connection``.

    ``finished`` fires with ``(ResponseHead, body)`` or fails.
    ``on_head(head)`` is called with the final head and returns the
    ``_BodySink`` for its body (it may raise to abort).
    """

    def __init__(
        self,
        head: bytes,
        body: bytes | Callable[[Callable[[bytes], Any]], Any] | None,
        chunked: bool,
        parser: http1client.ResponseParser,
        expect_continue: bool,
        on_head: Callable[[http1client.ResponseHead], _BodySink],
    ) -> None:
        self.finished: defer.Deferred[tuple[http1client.ResponseHead, bytes]] = defer.Deferred(self._cancel)
        self.head = head
        self.body = body
        self.chunked = chunked
        self.parser = parser
        self.expect_continue = expect_continue and body is not None
        self.on_head = on_head
        self.connection: _Connection | None = None
        self.sink: _BodySink | None = None
        self.body_sent = body is None
        self._body_started = False
        self.done = False

    def _cancel(self, d: Any) -> None:
        self.done = True
        if self.connection is not None:
            self.connection.abort()


class _Connection(protocol.Protocol):
    """A client connection carrying one exchange at a time, kept alive between them."""

    def __init__(self, pool: _Pool, key: tuple) -> None:
        self.pool = pool
        self.key = key
        self.exchange: _Exchange | None = None
        self.gate = _Gate()
        self.uses = 0
        self.lost = False
        self.idle_since = 0.0
        #: fired by connectionLost
        self.closed: defer.Deferred[None] = defer.Deferred()
        # set while a CONNECT tunnel is being opened
        self._tunnel: tuple[defer.Deferred[None], http1client.ResponseParser] | None = None

    def connectionMade(self) -> None:
        self.transport.registerProducer(self.gate, True)
        self.pool.track(self)

    # -- CONNECT through a proxy -------------------------------------------------------

    def open_tunnel(self, authority: str, headers: list[tuple[str, str]], creator: Any) -> defer.Deferred[None]:
        """Ask the proxy for a tunnel to ``authority`` and start TLS in it."""
        head = http1client.request_head("CONNECT", authority, "HTTP/1.1", [("Host", authority), *headers])
        done: defer.Deferred[None] = defer.Deferred(lambda _: self.abort())
        self._tunnel = (done, http1client.ResponseParser("CONNECT"))
        self._tls_creator = creator
        self.transport.write(head)
        return done

    def _tunnel_data(self, data: bytes) -> None:
        done, parser = self._tunnel  # type: ignore[misc]
        try:
            events = parser.feed(data)
        except http1client.ProtocolError as e:
            self._tunnel = None
            self.abort()
            done.errback(HTTPClientError(599, f"Malformed response from the proxy: {e}"))
            return
        for event in events:
            if isinstance(event, http1client.ResponseHead) and not event.interim:
                self._tunnel = None
                if not 200 <= event.code < 300:
                    self.abort()
                    done.errback(HTTPClientError(
                        599, f"The proxy refused the tunnel: {event.code} {event.reason}".rstrip()))
                    return
                if parser.trailing:
                    self.abort()
                    done.errback(HTTPClientError(599, "The proxy sent data before the TLS handshake"))
                    return
                self.transport.startTLS(self._tls_creator)
                done.callback(None)
                return

    # -- exchanges ---------------------------------------------------------------------

    def send(self, exchange: _Exchange) -> defer.Deferred[tuple[http1client.ResponseHead, bytes]]:
        self.exchange = exchange
        exchange.connection = self
        self.uses += 1
        if self.lost:
            self._fail(exchange, Failure(error.ConnectionDone("the connection closed")))
            return exchange.finished
        self.transport.write(exchange.head)
        if exchange.body is not None and not exchange.expect_continue:
            self._send_body(exchange)
        return exchange.finished

    def _send_body(self, exchange: _Exchange) -> None:
        if exchange._body_started:
            return
        exchange._body_started = True
        body = exchange.body
        if isinstance(body, bytes):
            if body:
                self.transport.write(body)
            exchange.body_sent = True
            return
        from cyclone.concurrent import ensure_deferred

        def write(chunk: bytes | str) -> defer.Deferred[None]:
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            if exchange.done or self.exchange is not exchange or self.gate.stopped:
                return defer.succeed(None)  # the response is in or the socket is gone: drop
            if chunk:
                self.transport.write(http1client.encode_chunk(chunk) if exchange.chunked else chunk)
            return self.gate.wait()

        def end(_: Any) -> None:
            if exchange.done or self.exchange is not exchange or self.gate.stopped:
                return
            if exchange.chunked:
                self.transport.write(http1client.LAST_CHUNK)
            exchange.body_sent = True

        try:
            d = ensure_deferred(body(write))  # type: ignore[operator]
        except Exception:
            self._fail(exchange, Failure())
            return
        d.addCallbacks(end, lambda f: self._fail(exchange, f))

    def dataReceived(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel_data(data)
            return
        exchange = self.exchange
        if exchange is None:
            # Bytes on an idle connection: the server is out of step; drop it.
            self.abort()
            return
        try:
            events = exchange.parser.feed(data)
            for event in events:
                if exchange.done:
                    return
                self._event(exchange, event)
        except Exception:
            self._fail(exchange, Failure())

    def _event(self, exchange: _Exchange, event: object) -> None:
        if type(event) is http1client.Data:
            exchange.sink.feed(event.data)  # type: ignore[union-attr]
        elif type(event) is http1client.EndOfMessage:
            self._complete(exchange, event.keep_alive)
        else:
            head: http1client.ResponseHead = event  # type: ignore[assignment]
            if head.interim:
                if head.code == 100 and exchange.expect_continue:
                    self._send_body(exchange)
                return
            exchange.sink = exchange.on_head(head)

    def _complete(self, exchange: _Exchange, keep_alive: bool) -> None:
        exchange.done = True
        body = exchange.sink.finish()  # type: ignore[union-attr]
        self.exchange = None
        reusable = keep_alive and exchange.body_sent and not exchange.parser.trailing and not self.lost
        if reusable:
            self.pool.release(self)
        else:
            self.transport.loseConnection()
        exchange.finished.callback((exchange.parser.head, body))

    def _fail(self, exchange: _Exchange, reason: Failure) -> None:
        exchange.done = True
        self.exchange = None
        self.abort()
        if not exchange.finished.called:
            exchange.finished.errback(reason)

    def abort(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.abortConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.lost = True
        self.gate.stopProducing()
        self.pool.forget(self)
        if self._tunnel is not None:
            done, _ = self._tunnel
            self._tunnel = None
            if not done.called:
                done.errback(HTTPStreamClosedError("The proxy closed the connection"))
        exchange, self.exchange = self.exchange, None
        if exchange is not None and not exchange.done:
            try:
                for event in exchange.parser.feed_eof():
                    self._event(exchange, event)
            except http1client.ProtocolError:
                exchange.done = True
                if not exchange.finished.called:
                    exchange.finished.errback(reason)
            except Exception:
                exchange.done = True
                if not exchange.finished.called:
                    exchange.finished.errback(Failure())
        self.closed.callback(None)


class _Pool:
    """Idle kept-alive connections by key, and every open connection (to close them all)."""

    def __init__(self, max_idle_per_key: int, idle_timeout: float) -> None:
        self.max_idle_per_key = max_idle_per_key
        self.idle_timeout = idle_timeout
        self.idle: dict[tuple, list[_Connection]] = {}
        self.open: set[_Connection] = set()
        self._sweep: Any = None

    def track(self, connection: _Connection) -> None:
        self.open.add(connection)

    def take(self, key: tuple) -> _Connection | None:
        idle = self.idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.lost:
                return connection
        return None

    def release(self, connection: _Connection) -> None:
        idle = self.idle.setdefault(connection.key, [])
        if len(idle) >= self.max_idle_per_key:
            connection.transport.loseConnection()
            return
        reactor = _reactor()
        connection.idle_since = reactor.seconds()
        idle.append(connection)
        # One timer for the whole pool, not one per release: it closes
        # connections idle for idle_timeout, then waits for the next oldest.
        if self.idle_timeout and self._sweep is None:
            self._sweep = reactor.callLater(self.idle_timeout, self._expire)

    def _expire(self) -> None:
        self._sweep = None
        reactor = _reactor()
        now = reactor.seconds()
        oldest: float | None = None
        for idle in list(self.idle.values()):
            for connection in list(idle):
                if now - connection.idle_since >= self.idle_timeout:
                    self.forget(connection)
                    connection.transport.loseConnection()
                elif oldest is None or connection.idle_since < oldest:
                    oldest = connection.idle_since
        if oldest is not None:
            self._sweep = reactor.callLater(oldest + self.idle_timeout - now, self._expire)

    def forget(self, connection: _Connection) -> None:
        self.open.discard(connection)
        idle = self.idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)
            if not idle:
                del self.idle[connection.key]

    def close(self) -> defer.Deferred[Any]:
        closing = [c.closed for c in self.open if not c.lost]
        for connection in list(self.open):
            connection.abort()
        self.idle.clear()
        if self._sweep is not None and self._sweep.active():
            self._sweep.cancel()
        self._sweep = None
        return defer.gatherResults(closing)


# -- the client ---------------------------------------------------------------------


class AsyncHTTPClient:
    """Fetches URLs; ``fetch`` returns a Deferred firing with an ``HTTPResponse``.

    ``AsyncHTTPClient()`` is one shared instance (as in Tornado), unless
    ``force_instance=True`` or settings are given. Settings:
    ``max_clients`` (100) requests in flight, more wait in line (their wait
    counts in ``request_timeout``); ``keep_alive`` (True) reuses connections,
    at most ``max_idle_per_host`` (64) idle ones per origin, each closed after
    ``idle_timeout`` (60 s) unused; ``defaults``, a dict of ``HTTPRequest``
    options used when a call does not give them; ``max_body_size`` and
    ``max_header_size`` as defaults for every request. The shared instance
    takes the settings given to ``configure(None, **settings)``.
    """

    _shared: AsyncHTTPClient | None = None
    _configured: dict[str, Any] = {}
    _initialized = False

    def __new__(cls, force_instance: bool = False, **kwargs: Any) -> AsyncHTTPClient:
        if cls is AsyncHTTPClient and not force_instance and not kwargs:
            shared = AsyncHTTPClient._shared
            if shared is None or shared._closed:
                shared = AsyncHTTPClient._shared = super().__new__(cls)
                shared._setup(**AsyncHTTPClient._configured)
            return shared
        return super().__new__(cls)

    def __init__(self, force_instance: bool = False, **settings: Any) -> None:
        if not self._initialized:  # the shared instance is set up by __new__, once
            self._setup(**settings)

    @classmethod
    def configure(cls, impl: Any = None, **settings: Any) -> None:
        """Tornado's ``AsyncHTTPClient.configure(None, max_clients=...)``: the
        settings of the shared instance made next. ``impl`` must be None or
        this class (cyclone has one implementation)."""
        if impl not in (None, AsyncHTTPClient, "cyclone.httpclient.AsyncHTTPClient"):
            raise ValueError(f"cyclone has one HTTP client implementation, not {impl!r}")
        AsyncHTTPClient._configured = dict(settings)

    def _setup(
        self,
        max_clients: int = 100,
        keep_alive: bool = True,
        max_idle_per_host: int = 64,
        idle_timeout: float = 60.0,
        defaults: Mapping[str, Any] | None = None,
        max_body_size: int | None = None,
        max_header_size: int | None = None,
    ) -> None:
        self._initialized = True
        self._closed = False
        self.keep_alive = keep_alive
        self.max_clients = max_clients
        self._slots = defer.DeferredSemaphore(max_clients)
        self._pool = _Pool(max_idle_per_host, idle_timeout)
        self.defaults = dict(defaults or {})
        if max_body_size is not None:
            self.defaults.setdefault("max_body_size", max_body_size)
        if max_header_size is not None:
            self.defaults.setdefault("max_header_size", max_header_size)

    def fetch(
        self, request: str | bytes | HTTPRequest, raise_error: bool = True, **kwargs: Any
    ) -> defer.Deferred[HTTPResponse]:
        """Fetch ``request`` (a URL or an ``HTTPRequest``).

        Keyword arguments are ``HTTPRequest``'s. With ``raise_error`` the
        Deferred fails with ``HTTPClientError`` for any code that is not 2xx;
        timeouts (``HTTPTimeoutError``), connections closed early
        (``HTTPStreamClosedError``), refused (``ConnectionRefusedError``) and
        bodies over ``max_body_size`` (``HTTPBodyTooLargeError``) fail it
        either way. A request that cannot be sent (CR/LF in a header, an
        unknown scheme) raises ``ValueError`` at once.
        """
        if self._closed:
            raise RuntimeError("fetch() on a closed AsyncHTTPClient")
        if isinstance(request, HTTPRequest):
            if kwargs:
                raise TypeError("pass options in the HTTPRequest or as keywords, not both")
            request.url = self._absolute(request.url)
        else:
            options = {**self.defaults, **kwargs}
            request = HTTPRequest(self._absolute(_text(request, "url")), **options)
        request.check()
        # The first head is built now, so a request that cannot be sent raises here.
        prepared = _Prepared(request, self.keep_alive)
        d = defer.Deferred.fromCoroutine(self._fetch(prepared))
        if request.request_timeout:
            d.addTimeout(request.request_timeout, _reactor(), onTimeoutCancel=_request_timed_out)
        d.addErrback(_translate_failure)

        def check(response: HTTPResponse) -> HTTPResponse:
            if raise_error and response.error is not None:
                raise response.error
            return response

        return d.addCallback(check)

    def _absolute(self, url: str) -> str:
        return url

    def close(self) -> defer.Deferred[Any]:
        """Stop: abort open connections; the Deferred fires once all are closed."""
        self._closed = True
        if AsyncHTTPClient._shared is self:
            AsyncHTTPClient._shared = None
        return self._pool.close()

    async def _fetch(self, prepared: _Prepared) -> HTTPResponse:
        start_time = time.time()
        started = time.monotonic()
        first = prepared.request
        await self._slots.acquire()
        try:
            request = first
            redirects_left = first.max_redirects
            while True:
                follow = request.follow_redirects and redirects_left > 0
                head, body = await self._exchange(prepared, follow)
                if prepared.next_request is not None:
                    request = prepared.next_request
                    prepared = _Prepared(request, self.keep_alive)
                    redirects_left -= 1
                    continue
                headers = HTTPHeaders._from_pairs(head.headers)
                if prepared.decoded_coding is not None:
                    del headers["Content-Encoding"]
                    headers["X-Consumed-Content-Encoding"] = prepared.decoded_coding
                return HTTPResponse(
                    first,
                    head.code,
                    headers,
                    body,
                    effective_url=request.url,
                    reason=head.reason,
                    request_time=time.monotonic() - started,
                    start_time=start_time,
                )
        finally:
            self._slots.release()

    async def _exchange(self, prepared: _Prepared, follow: bool) -> tuple[http1client.ResponseHead, bytes]:
        request = prepared.request
        while True:
            connection = self._pool.take(prepared.key) if self.keep_alive else None
            reused = connection is not None
            if connection is None:
                connection = await self._connect(prepared)
            parser = http1client.ResponseParser(
                request.method, request.max_header_size, request_close=not prepared.keep_alive
            )

            def on_head(head: http1client.ResponseHead) -> _BodySink:
                location = _header(head, "Location")
                if follow and head.code in _REDIRECTS and location is not None:
                    prepared.next_request = _redirected(request, head.code, location)
                if prepared.next_request is not None:
                    # Its body is read and dropped; callbacks see only the final response.
                    return _BodySink(None, None, request.max_body_size)
                if request.header_callback is not None:
                    for line in head.lines:
                        request.header_callback(line)
                lengths = head.get_list("Content-Length")
                if lengths and lengths[0].strip().isdigit() and int(lengths[0]) > request.max_body_size:
                    raise HTTPBodyTooLargeError(
                        f"response body larger than max_body_size ({request.max_body_size} bytes)")
                coding = None
                if request.decompress_response:
                    value = (_header(head, "Content-Encoding") or "").strip().lower()
                    if value in ("gzip", "x-gzip", "deflate"):
                        coding = value
                prepared.decoded_coding = coding
                return _BodySink(request.streaming_callback, coding, request.max_body_size)

            exchange = _Exchange(prepared.head, prepared.body, prepared.chunked, parser,
                                 request.expect_100_continue, on_head)
            try:
                return await connection.send(exchange)
            except (error.ConnectionDone, error.ConnectionLost):
                # A kept-alive connection the server closed as the request went
                # out: send it again on another connection, if that is safe (an
                # idempotent method, and not a streamed body, which may be
                # partly consumed). A fresh connection is never retried.
                stale = (reused and not parser.started and request.method in _IDEMPOTENT
                         and request.body_producer is None)
                if not stale:
                    raise

    async def _connect(self, prepared: _Prepared) -> _Connection:
        request = prepared.request
        factory = protocol.Factory()
        key = prepared.key
        pool = self._pool
        factory.protocol = lambda: _Connection(pool, key)  # type: ignore[assignment]
        reactor = _reactor()
        timeout = request.connect_timeout or 30
        creator = None
        if prepared.scheme == "https":
            creator = tls_client_creator(prepared.host, request.validate_cert, request.ca_certs,
                                         request.client_cert, request.client_key)
        if request.unix_socket is not None:
            endpoint: Any = UNIXClientEndpoint(reactor, request.unix_socket, timeout=timeout)
            if creator is not None:
                endpoint = wrapClientTLS(creator, endpoint)
            return await endpoint.connect(factory)
        if request.proxy_host is not None:
            endpoint = _tcp_endpoint(reactor, request.proxy_host, request.proxy_port or 80, timeout)
            connection: _Connection = await endpoint.connect(factory)
            if creator is not None:
                authority = _authority(prepared.host, prepared.port)
                await connection.open_tunnel(authority, prepared.proxy_headers, creator)
            return connection
        endpoint = _tcp_endpoint(reactor, prepared.host, prepared.port, timeout)
        if creator is not None:
            endpoint = wrapClientTLS(creator, endpoint)
        # wrapClientTLS's connect fires with our protocol, not the TLS wrapper.
        return await endpoint.connect(factory)


def _tcp_endpoint(reactor: Any, host: str, port: int, timeout: float) -> Any:
    if isIPAddress(host):
        return TCP4ClientEndpoint(reactor, host, port, timeout=timeout)
    if isIPv6Address(host):
        return TCP6ClientEndpoint(reactor, host, port, timeout=timeout)
    return HostnameEndpoint(reactor, host.encode("idna"), port, timeout=timeout)


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _header(head: http1client.ResponseHead, name: str) -> str | None:
    return head.get(name)


# What urllib.parse.quote changes in a URL: spaces, non-ASCII, and the
# printable characters a URL may not hold.
_NEEDS_QUOTING = re.compile(r'[^\x00-\x7f]|[ "<>\\^`{|}]')
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"
# urlsplit silently drops TAB, CR and LF: such a URL is refused instead.
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _ascii_url(url: str) -> str:
    # A request target is made of URL characters; quote anything else.
    if _NEEDS_QUOTING.search(url) is None:
        return url
    return urllib.parse.quote(url, safe=_URL_SAFE)


@functools.lru_cache(maxsize=512)
def _split_url(url: str) -> tuple[str, str, int, int | None, str, str, str]:
    """``(scheme, host, port, port as written, netloc without userinfo, path,
    query)`` of an http(s) URL; ValueError for anything else. Cached: clients
    fetch the same URLs again and again."""
    if _URL_CONTROL.search(url):
        raise ValueError(f"cannot fetch {url!r}: a control character (CR, LF, TAB, NUL, ...) in the URL")
    parts = urllib.parse.urlsplit(_ascii_url(url))
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"cannot fetch {url!r}: the scheme must be http or https")
    host = parts.hostname
    if not host:
        raise ValueError(f"cannot fetch {url!r}: no host")
    try:
        explicit_port = parts.port
    except ValueError:
        raise ValueError(f"cannot fetch {url!r}: bad port") from None
    port = explicit_port or (443 if parts.scheme == "https" else 80)
    netloc = parts.netloc.rpartition("@")[2]
    return parts.scheme, host, port, explicit_port, netloc, parts.path, parts.query


class _Prepared:
    """An ``HTTPRequest`` turned into what goes on the wire: the head's bytes,
    the body, where to connect (``key`` names the connections it may reuse)."""

    def __init__(self, request: HTTPRequest, keep_alive: bool) -> None:
        self.request = request
        scheme, host, port, explicit_port, netloc, path, query = _split_url(request.url)
        self.scheme = scheme
        self.host = host
        self.port = port
        self.keep_alive = keep_alive and request.http_version == "HTTP/1.1"
        self.decoded_coding: str | None = None
        #: set when the response is a redirect to follow
        self.next_request: HTTPRequest | None = None
        proxied = request.proxy_host is not None and request.unix_socket is None
        self.proxy_headers: list[tuple[str, str]] = []
        if proxied and request.proxy_username is not None:
            self.proxy_headers.append(("Proxy-Authorization", _basic(request.proxy_username, request.proxy_password)))
        if proxied and scheme == "http":
            # An HTTP proxy takes the absolute URL (RFC 9112 3.2.2).
            target = urllib.parse.urlunsplit((scheme, netloc, path or "/", query, ""))
        else:
            target = (path or "/") + (f"?{query}" if query else "")
        headers: list[tuple[str, str]] = []
        if "Host" not in request.headers:
            host = self.host.encode("idna").decode("ascii") if not self.host.isascii() else self.host
            if ":" in host:
                host = f"[{host}]"
            if explicit_port is not None:
                host = f"{host}:{explicit_port}"
            headers.append(("Host", host))
        if not self.keep_alive and request.http_version == "HTTP/1.1" and "Connection" not in request.headers:
            headers.append(("Connection", "close"))
        elif "close" in request.headers.get("Connection", "").lower():
            self.keep_alive = False
        headers.extend(request.headers.get_all())
        if proxied and scheme == "http":
            headers.extend(self.proxy_headers)
        self.chunked = False
        has_body = request.body is not None or request.body_producer is not None
        if request.body is not None:
            if "Content-Length" not in request.headers:
                headers.append(("Content-Length", str(len(request.body))))
        elif request.body_producer is not None and "Content-Length" not in request.headers:
            if request.http_version == "HTTP/1.0":
                raise ValueError("body_producer over HTTP/1.0 needs a Content-Length header")
            headers.append(("Transfer-Encoding", "chunked"))
            self.chunked = True
        elif request.method in _BODY_EXPECTED and "Content-Length" not in request.headers:
            headers.append(("Content-Length", "0"))
        # As Tornado's client: a POST body without a type is a form.
        if request.method == "POST" and has_body and "Content-Type" not in request.headers:
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        if request.expect_100_continue and has_body and "Expect" not in request.headers:
            headers.append(("Expect", "100-continue"))
        self.head = http1client.request_head(request.method, target, request.http_version, headers)
        self.body: Any = request.body if request.body_producer is None else request.body_producer
        tls = (request.validate_cert, request.ca_certs, request.client_cert, request.client_key)
        proxy = (request.proxy_host, request.proxy_port, request.proxy_username, request.proxy_password)
        self.key = (self.scheme, self.host, self.port, request.unix_socket,
                    tls if self.scheme == "https" else None, proxy if proxied else None)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _redirected(request: HTTPRequest, code: int, location: str) -> HTTPRequest | None:
    """The request to send after ``code`` redirected ``request`` to
    ``location``, or None when it cannot be followed (another scheme, a body
    that cannot be sent twice)."""
    url = urllib.parse.urljoin(request.url, location.strip())
    try:
        _split_url(url)
    except ValueError:  # another scheme, a control character, a bad port: not followed
        return None
    method, body, producer = request.method, request.body, request.body_producer
    headers = request.headers.copy()
    headers.pop("Host", None)
    if (code == 303 and method != "HEAD") or (code in (301, 302) and method == "POST"):
        method, body, producer = "GET", None, None
        for name in _BODY_HEADERS:
            headers.pop(name, None)
    elif producer is not None:
        return None  # a streamed body cannot be sent again for 307/308
    same_origin = _origin(url) == _origin(request.url)
    if not same_origin:
        for name in _CREDENTIAL_HEADERS:
            headers.pop(name, None)
    redirected = HTTPRequest.__new__(HTTPRequest)
    redirected.__dict__.update(request.__dict__)
    redirected.url = url
    redirected.method = method
    redirected.headers = headers
    redirected.body = body
    redirected.body_producer = producer
    if not same_origin:
        redirected.auth_username = redirected.auth_password = None
    return redirected


def _request_timed_out(result: Any, timeout: float) -> Failure:
    return Failure(HTTPTimeoutError(f"Timeout after {timeout:g} s"))


def _translate_failure(failure: Failure) -> Failure:
    """Twisted's connection errors as the exceptions Tornado's client raises."""
    if failure.check(error.ConnectionRefusedError):
        raise ConnectionRefusedError(str(failure.value))
    if failure.check(ConnectionRefusedError, HTTPClientError):
        return failure
    # error.TimeoutError: connect_timeout.
    if failure.check(error.TimeoutError, TimeoutError):
        raise HTTPTimeoutError(f"Timeout: {failure.getErrorMessage()}")
    if failure.check(http1client.ProtocolError):
        raise HTTPClientError(599, f"Malformed response: {failure.getErrorMessage()}")
    from OpenSSL import SSL

    # SSL.Error: the TLS handshake failed (e.g. the certificate was refused).
    if failure.check(error.ConnectionLost, error.ConnectionDone, ConnectionError, SSL.Error):
        raise HTTPStreamClosedError(f"Stream closed: {failure.getErrorMessage()}")
    return failure


def fetch(url: str | bytes | HTTPRequest, **kwargs: Any) -> defer.Deferred[HTTPResponse]:
    """Fetch ``url`` with the shared ``AsyncHTTPClient``; a Deferred of an ``HTTPResponse``.

    Keyword arguments are ``HTTPRequest``'s (Tornado's names and the original
    cyclone's). As the original's ``fetch``, a response with a 4xx or 5xx code
    is returned (``response.error`` set), not raised, unless
    ``raise_error=True``; no response at all (refused, timed out, closed
    early, too large) fails the Deferred. Any method may carry a body or
    none (Tornado's check is ``AsyncHTTPClient.fetch``'s).
    """
    kwargs.setdefault("raise_error", False)
    if not isinstance(url, HTTPRequest):
        kwargs.setdefault("allow_nonstandard_methods", True)
    return AsyncHTTPClient().fetch(url, **kwargs)


class HTTPClient:
    """The original cyclone's ``HTTPClient(url, **kwargs).fetch()``: the same
    as ``fetch(url, **kwargs)``, kept so that code written for it runs."""

    def __init__(self, url: str | bytes, **kwargs: Any) -> None:
        self.url = url
        self.kwargs = kwargs

    def fetch(self) -> defer.Deferred[HTTPResponse]:
        return fetch(self.url, **self.kwargs)


def __getattr__(name: str) -> Any:
    # JsonRPC (the original cyclone's name) is cyclone.jsonrpc's client; it is
    # imported on first use, so that importing this module never loads the
    # web framework that cyclone.jsonrpc's server side needs.
    if name == "JsonRPC":
        from cyclone.jsonrpc import JsonRPCProxy

        return JsonRPCProxy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
