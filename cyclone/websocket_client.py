"""The WebSocket client: ``websocket_connect(url)`` → a Deferred of a
``WebSocketClientConnection`` with Tornado's client API.

::

    conn = yield websocket_connect("ws://127.0.0.1:8888/ws", compression_options={})
    conn.write_message("hello")            # a dict is sent as JSON
    message = yield conn.read_message()    # str (text), bytes (binary), None once closed
    conn.close(1000, "bye")

Messages that arrive before ``read_message()`` asks are kept, in order; with
an ``on_message_callback`` they go to it instead (and None once closed). Like
Tornado's, the client reads no further while a message waits unread (or while
the Deferred or coroutine the callback returned runs): a slow reader slows the
server down instead of filling memory.

It is the server's frame loop (``cyclone.websocket.WebSocketProtocol``: the
codec, the close handshake, keepalive pings, 1002/1007/1009 on protocol errors)
run by a subclass that first does the opening handshake as a client: a
random ``Sec-WebSocket-Key``, the ``Sec-WebSocket-Accept`` checked, the
subprotocol and the permessage-deflate parameters the server chose checked
against what was offered. Frames are masked (``Codec(client=True)``), and
after the close handshake the client waits for the server to close TCP
(RFC 6455 §7.1.1), dropping it after ``close_timeout`` seconds.

``wss://`` URLs use TLS, checked against the system's trust roots by default;
``ca_certs`` (a PEM file) trusts those certificates instead, and
``validate_cert=False`` checks nothing (for tests). ``ssl_options`` may also
be a Twisted client connection creator (``twisted.internet.ssl.optionsForClientTLS``).

Everything must be called from the reactor thread (``reactor.callFromThread``
from another one).
"""

from __future__ import annotations

import base64
import inspect
import logging
import os
import urllib.parse
from collections import deque
from typing import Any, Callable, Iterable, Mapping

from twisted.internet import defer, error, protocol
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.python import failure

from cyclone import websocket_codec as wc
from cyclone.escape import json_encode
from cyclone.httputil import HTTPHeaders
from cyclone.netutil import tls_client_creator
from cyclone.websocket import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    WebSocketClosedError,
    WebSocketError,
    WebSocketProtocol,
    _tokens,
    accept_key,
)

__all__ = [
    "websocket_connect",
    "WebSocketClientConnection",
    "WebSocketClientProtocol",
    "WebSocketHandshakeError",
    "WebSocketTimeoutError",
]

gen_log = logging.getLogger("cyclone.general")
app_log = logging.getLogger("cyclone.application")

#: seconds for the TCP (and TLS) connection and the opening handshake, when not given
DEFAULT_CONNECT_TIMEOUT = 20.0
#: the largest response head the client reads during the handshake
MAX_RESPONSE_HEAD = 65536
#: the most of a refusal's body kept for ``WebSocketHandshakeError.body``
MAX_REFUSAL_BODY = 65536


class WebSocketHandshakeError(WebSocketError):
    """The server did not open the WebSocket: ``code`` is its status (a
    101 with something wrong in it keeps 101), ``message`` says why,
    ``headers`` and ``body`` are what it answered (like Tornado's
    ``HTTPClientError``: ``code``, ``message``, ``response``)."""

    def __init__(self, code: int, message: str, headers: HTTPHeaders | None = None, body: bytes = b"") -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.headers = headers
        self.body = body

    def __str__(self) -> str:
        return f"WebSocket handshake failed: HTTP {self.code}: {self.message}"


class WebSocketTimeoutError(WebSocketError, TimeoutError):
    """The connection or its opening handshake took longer than ``connect_timeout``."""


# -- the protocol --------------------------------------------------------------------------------


class WebSocketClientProtocol(WebSocketProtocol):
    """The client end: the opening handshake, then the server's frame loop."""

    _handshaking = True  # until the response's head has been read
    _open = False  # the handshake succeeded: the server's frame loop runs

    def __init__(self, connection: WebSocketClientConnection, request: bytes, key: str,
                 compression_options: dict | None, subprotocols: list[str], peer: str,
                 tls: bool, clock: Any = None) -> None:
        super().__init__(connection, None, clock)
        self._request = request
        self._key = key
        self._compression_options = compression_options
        self._subprotocols = subprotocols
        self._peer = peer
        self._tls = tls
        self._head = b""
        self._refusal: tuple | None = None  # (status, message, headers, length) while reading a refusal's body

    # -- the handshake ------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.transport.write(self._request)

    def dataReceived(self, data: bytes) -> None:
        if not self._handshaking:
            WebSocketProtocol.dataReceived(self, data)
            return
        data = self._head + data
        if self._refusal is not None:
            self._head = data
            if len(data) >= self._refusal[3]:
                self._refused()
            return
        while True:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_RESPONSE_HEAD:
                    self._handshake_failed(WebSocketHandshakeError(0, "response head too large"))
                else:
                    self._head = data
                return
            head, data = data[:end], data[end + 4:]
            try:
                status, message, headers = _parse_head(head)
            except ValueError as e:
                self._handshake_failed(WebSocketHandshakeError(0, f"malformed response: {e}"))
                return
            if 100 <= status < 200 and status != 101:
                continue  # an interim response
            break
        self._head = b""
        if status != 101:
            length = headers.get("Content-Length", "")
            length = int(length) if length.isdigit() else 0
            self._refusal = (status, message, headers, min(length, MAX_REFUSAL_BODY))
            self._head = data
            if len(data) >= self._refusal[3]:
                self._refused()
            return
        try:
            self._check_101(headers)
        except (ValueError, WebSocketHandshakeError) as e:
            if not isinstance(e, WebSocketHandshakeError):
                e = WebSocketHandshakeError(101, str(e), headers)
            self._handshake_failed(e)
            return
        self._opened_as_client(data)

    def _check_101(self, headers: HTTPHeaders) -> None:
        if headers.get("Upgrade", "").strip().lower() != "websocket":
            raise ValueError('no "Upgrade: websocket"')
        if "upgrade" not in _tokens(",".join(headers.get_list("Connection"))):
            raise ValueError('no "Connection: Upgrade"')
        if headers.get("Sec-WebSocket-Accept", "").strip() != accept_key(self._key):
            raise ValueError("wrong Sec-WebSocket-Accept")
        connection: WebSocketClientConnection = self.handler
        connection.headers = headers
        protocols = headers.get_list("Sec-WebSocket-Protocol")
        if protocols:
            if len(protocols) != 1 or protocols[0].strip() not in self._subprotocols:
                raise ValueError(f"the server chose a subprotocol not offered: {', '.join(protocols)!r}")
            connection.selected_subprotocol = protocols[0].strip()
        extensions = headers.get_list("Sec-WebSocket-Extensions")
        deflate = None
        if extensions:
            if self._compression_options is None:
                raise ValueError("the server chose an extension not offered")
            deflate = wc.accept_deflate_response(extensions, self._compression_options)
        self.codec = wc.Codec(client=True, max_message_size=connection.max_message_size, deflate=deflate)

    def _opened_as_client(self, rest: bytes) -> None:
        self._handshaking = False
        self._open = True
        self._request = None
        WebSocketProtocol.connectionMade(self)  # the producer, TCP_NODELAY, keepalive pings
        self._busy = False
        self.handler._handshake_done(self)
        if rest and not self._lost:
            WebSocketProtocol.dataReceived(self, rest)

    def _refused(self) -> None:
        status, message, headers, length = self._refusal
        self._handshake_failed(WebSocketHandshakeError(status, message, headers, self._head[:length]))

    def _handshake_failed(self, reason: Exception) -> None:
        self._handshaking = False  # whatever else comes is dropped
        self._discarding = True
        self.handler._handshake_failed(reason)
        self.transport.loseConnection()

    def connectionLost(self, reason: failure.Failure = protocol.connectionDone) -> None:
        if self._open:
            WebSocketProtocol.connectionLost(self, reason)
            return
        self._lost = True
        if self._handshaking:
            self._handshaking = False
            if self._refusal is not None:
                self._refused()
            elif reason.check(error.ConnectionDone, error.ConnectionLost):
                self.handler._handshake_failed(
                    WebSocketClosedError(f"connection closed during the handshake: {reason.getErrorMessage()}"))
            else:
                self.handler._handshake_failed(reason.value)  # e.g. the TLS certificate was refused

    def readConnectionLost(self) -> None:
        if self._handshaking:
            self.transport.loseConnection()
            return
        WebSocketProtocol.readConnectionLost(self)

    # -- where the client differs from the server ---------------------------------------------------

    def _peer_name(self) -> str:
        return f"WebSocket to {self._peer}"

    def _summary(self) -> str:
        return f"WebSocket client of {self._peer}"

    def _can_half_close(self) -> bool:
        return not self._tls

    def _close_handshake_done(self) -> None:
        # the server closes TCP first; wait for it (but not for ever)
        if self._close_timer is None and not self._lost:
            self._start_close_timer()


# -- the connection --------------------------------------------------------------------------------


class WebSocketClientConnection:
    """One client WebSocket connection (what ``websocket_connect`` gives).

    Tornado's API: ``read_message()``, ``write_message(message, binary=False)``,
    ``close(code=None, reason=None)``, ``ping(data=b"")``, ``on_ping(data)``
    and ``on_pong(data)`` (hooks), ``selected_subprotocol``, ``close_code``,
    ``close_reason``, ``headers`` (the handshake's response headers),
    ``protocol`` (the ``WebSocketClientProtocol``) and ``request_url``.
    """

    _nodelay = True  # small messages go at once

    def __init__(self, url: str, *, on_message_callback: Callable[[Any], Any] | None = None,
                 ping_interval: float | None = None, ping_timeout: float | None = None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> None:
        self.request_url = url
        self.protocol: WebSocketClientProtocol | None = None
        self.headers: HTTPHeaders | None = None
        self.selected_subprotocol: str | None = None
        self.max_message_size = max_message_size
        self.close_timeout = close_timeout or None
        self.ping_interval = ping_interval or None
        if ping_timeout is None:
            ping_timeout = self.ping_interval
        elif self.ping_interval and ping_timeout > self.ping_interval:
            ping_timeout = self.ping_interval
        self.ping_timeout = ping_timeout or None
        self._on_message_callback = on_message_callback
        self._messages: deque = deque()
        self._readers: deque = deque()
        self._room: defer.Deferred | None = None  # the frame loop waits on it while a message is unread
        self._closing = False
        self._lost = False
        self._connect_deferred: defer.Deferred | None = None
        self._connecting: defer.Deferred | None = None
        self._timer: Any = None
        self._timed_out = False

    # -- Tornado's API --------------------------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        """The code of the server's close frame (None: none yet, or none in it)."""
        return self.protocol.close_code if self.protocol is not None else None

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason if self.protocol is not None else None

    def read_message(self) -> defer.Deferred:
        """A Deferred of the next message (str or bytes), or of None once
        the connection is closed and every message was read."""
        messages = self._messages
        if messages:
            message = messages.popleft()
            if not messages:
                self._make_room()
            return defer.succeed(message)
        if self._lost:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._readers.append(d)
        return d

    def write_message(self, message: str | bytes | dict, binary: bool = False) -> defer.Deferred:
        """Send a message (a dict as JSON); the Deferred fires once the
        transport can take more. Raises ``WebSocketClosedError`` once closed."""
        ws = self.protocol
        if ws is None or ws.closing:
            raise WebSocketClosedError("WebSocket closed")
        if isinstance(message, dict):
            message = json_encode(message)
        return ws.write_message(message, binary)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Start the closing handshake (no code when both are None)."""
        if code is not None and not wc.is_valid_close_code(code):
            raise ValueError(f"invalid close code {code}")
        ws = self.protocol
        if ws is None or self._lost:
            return
        self._closing = True
        self._make_room()  # read on until the server's close frame, whatever is unread
        ws.close(code, reason)

    def ping(self, data: str | bytes = b"") -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if len(data) > 125:
            raise ValueError("ping data is at most 125 bytes")
        ws = self.protocol
        if ws is None or self._lost:
            raise WebSocketClosedError("WebSocket closed")
        ws.write_ping(bytes(data))

    def on_ping(self, data: bytes) -> None:
        """A ping came (the pong was sent already)."""

    def on_pong(self, data: bytes) -> None:
        """A pong came."""

    # -- called by the protocol --------------------------------------------------------------------

    def on_message(self, message: str | bytes) -> Any:
        callback = self._on_message_callback
        if callback is not None:
            result = callback(message)
            if isinstance(result, defer.Deferred) or inspect.isawaitable(result):
                return result  # the next message waits for it
            return None
        readers = self._readers
        if readers:
            readers.popleft().callback(message)
            return None
        self._messages.append(message)
        if self._closing:
            return None
        self._room = defer.Deferred()
        return self._room

    def _make_room(self) -> None:
        room, self._room = self._room, None
        if room is not None:
            room.callback(None)

    def _connection_lost(self, reason: failure.Failure) -> None:
        if self._lost:
            return
        self._lost = True
        self._room = None
        readers, self._readers = self._readers, deque()
        for d in readers:
            d.callback(None)
        if self._on_message_callback is not None:
            try:
                self._on_message_callback(None)
            except Exception:
                app_log.error("Exception in on_message_callback(None) of %s", self.request_url, exc_info=True)

    # -- connecting ----------------------------------------------------------------------------------

    def _connect(self, endpoint: Any, ws: WebSocketClientProtocol, timeout: float | None, clock: Any) -> defer.Deferred:
        self._connect_deferred = d = defer.Deferred(self._cancel)
        self.protocol = ws
        self._connecting = endpoint.connect(_OneProtocol(ws))
        self._connecting.addErrback(self._connect_failed)
        if timeout:
            self._timer = clock.callLater(timeout, self._timeout)
        return d

    def _fire(self, result: Any) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
        d = self._connect_deferred
        if d is not None and not d.called:
            self._connect_deferred = None
            if isinstance(result, Exception):
                d.errback(failure.Failure(result))
            else:
                d.callback(result)

    def _connect_failed(self, reason: failure.Failure) -> None:
        if not self._timed_out:  # (a timeout fails with WebSocketTimeoutError)
            self._fire(reason.value)

    def _timeout(self) -> None:
        self._timer = None
        self._timed_out = True
        self._fire(WebSocketTimeoutError(f"connecting to {self.request_url} timed out"))
        self._stop_connecting()

    def _cancel(self, d: defer.Deferred) -> None:
        self._connect_deferred = None
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
        self._stop_connecting()

    def _stop_connecting(self) -> None:
        connecting = self._connecting
        if connecting is not None and not connecting.called:
            connecting.cancel()
            return
        ws = self.protocol
        if ws is not None and ws.transport is not None and ws._handshaking:
            ws._handshaking = False
            ws._discarding = True
            ws.transport.abortConnection()

    def _handshake_done(self, ws: WebSocketClientProtocol) -> None:
        self._fire(self)

    def _handshake_failed(self, reason: Exception) -> None:
        self._fire(reason)


class _OneProtocol(protocol.Factory):
    def __init__(self, ws: WebSocketClientProtocol) -> None:
        self._ws = ws

    def buildProtocol(self, addr: Any) -> WebSocketClientProtocol:
        return self._ws


# -- websocket_connect -----------------------------------------------------------------------------


def websocket_connect(
    url: Any,
    *,
    on_message_callback: Callable[[Any], Any] | None = None,
    compression_options: dict | None = None,
    ping_interval: float | None = None,
    ping_timeout: float | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
    subprotocols: Iterable[str] | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    connect_timeout: float | None = None,
    ssl_options: Any = None,
    validate_cert: bool | None = None,
    ca_certs: str | None = None,
    reactor: Any = None,
) -> defer.Deferred:
    """Open a WebSocket; a Deferred firing with a ``WebSocketClientConnection``.

    ``url``: ``ws://`` or ``wss://`` (``http``/``https`` too), or a request
    object with ``.url`` and ``.headers`` (Tornado's ``HTTPRequest``; its
    ``connect_timeout``, ``validate_cert``, ``ca_certs`` and ``ssl_options``
    are used when not given here). ``compression_options``: None for no
    compression, a dict to offer permessage-deflate (``compression_level``,
    ``mem_level``, ``client_no_context_takeover``,
    ``server_no_context_takeover``, ``client_max_window_bits``,
    ``server_max_window_bits``). ``connect_timeout`` (20 s when None) bounds
    the TCP and TLS connection and the handshake together. ``close_timeout``
    (5 s; None or 0: for ever) is how long the client waits, after a close
    frame, for the server's close frame and then for it to close TCP.

    Fails with ``WebSocketHandshakeError`` (``.code``: the HTTP status) when
    the server refuses or answers wrongly, ``WebSocketTimeoutError`` (a
    ``TimeoutError``) on timeout, and Twisted's connection errors (e.g.
    ``ConnectionRefusedError``).
    """
    request_headers: Any = headers
    if not isinstance(url, str):
        request = url
        url = request.url
        if request_headers is None:
            request_headers = getattr(request, "headers", None)
        if connect_timeout is None:
            connect_timeout = getattr(request, "connect_timeout", None)
        if validate_cert is None:
            validate_cert = getattr(request, "validate_cert", None)
        if ca_certs is None:
            ca_certs = getattr(request, "ca_certs", None)
        if ssl_options is None:
            ssl_options = getattr(request, "ssl_options", None)
    if reactor is None:
        from twisted.internet import reactor
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss", "http", "https"):
        raise ValueError(f"not a WebSocket URL: {url!r}")
    tls = scheme in ("wss", "https")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in {url!r}")
    port = parts.port or (443 if tls else 80)
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    protocols = [p for p in (subprotocols or ())]
    for p in protocols:
        if not wc._is_token(p):
            raise ValueError(f"bad subprotocol {p!r}")
    request_bytes = _request(parts, host, port, tls, key, protocols, compression_options, request_headers)
    connection = WebSocketClientConnection(
        url, on_message_callback=on_message_callback, ping_interval=ping_interval,
        ping_timeout=ping_timeout, max_message_size=max_message_size, close_timeout=close_timeout)
    peer = f"{host}:{port}"
    ws = WebSocketClientProtocol(connection, request_bytes, key, compression_options, protocols, peer, tls,
                                 clock=reactor)
    timeout = DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    endpoint: Any
    if isIPAddress(host):
        endpoint = TCP4ClientEndpoint(reactor, host, port)
    elif isIPv6Address(host):
        endpoint = TCP6ClientEndpoint(reactor, host, port)
    else:
        endpoint = HostnameEndpoint(reactor, host.encode("idna"), port)
    if tls:
        endpoint = wrapClientTLS(_tls_creator(host, ssl_options, validate_cert, ca_certs), endpoint)
    return connection._connect(endpoint, ws, timeout, reactor)


def _request(parts: urllib.parse.SplitResult, host: str, port: int, tls: bool, key: str,
             protocols: list[str], compression_options: dict | None, extra: Any) -> bytes:
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = f"[{host}]" if ":" in host else host
    if parts.port is not None and parts.port != (443 if tls else 80):
        host_header += f":{port}"
    lines = [f"GET {path} HTTP/1.1"]
    given: list[tuple[str, str]] = []
    if extra is not None:
        if hasattr(extra, "get_all"):
            given = list(extra.get_all())
        elif hasattr(extra, "items"):
            given = list(extra.items())
        else:
            given = list(extra)
    names = {name.lower() for name, _ in given}
    if "host" not in names:
        lines.append(f"Host: {host_header}")
    if parts.username is not None and "authorization" not in names:
        credentials = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        lines.append("Authorization: Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii"))
    ours = {"upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
            "sec-websocket-protocol", "sec-websocket-extensions"}
    for name, value in given:
        if name.lower() in ours:
            continue  # the handshake's own headers are not the caller's to change
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        value = str(value)
        if not wc._is_token(name) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"bad request header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
              "Sec-WebSocket-Version: 13"]
    if protocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
    if compression_options is not None:
        lines.append("Sec-WebSocket-Extensions: " + wc.deflate_offer(compression_options))
    text = "\r\n".join(lines) + "\r\n\r\n"
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _parse_head(head: bytes) -> tuple[int, str, HTTPHeaders]:
    status_line, _, rest = head.partition(b"\r\n")
    version, _, tail = status_line.decode("latin-1").partition(" ")
    code, _, message = tail.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ValueError(f"bad status line {status_line[:100]!r}")
    return int(code), message.strip(), HTTPHeaders.parse(rest.decode("latin-1") + "\r\n")


# -- TLS -------------------------------------------------------------------------------------------


def _tls_creator(host: str, ssl_options: Any, validate_cert: bool | None, ca_certs: str | None) -> Any:
    """What makes the TLS connection: ``ssl_options`` if it is a Twisted
    client connection creator; else checked against ``ca_certs`` (a PEM
    file) or the system's roots, or not at all with ``validate_cert=False``
    (or ``ssl_options={"cert_reqs": ssl.CERT_NONE}``)."""
    if IOpenSSLClientConnectionCreator.providedBy(ssl_options):
        return ssl_options
    if ssl_options is not None and not isinstance(ssl_options, dict):
        raise TypeError("ssl_options: a dict or a Twisted client connection creator "
                        "(twisted.internet.ssl.optionsForClientTLS), not " + type(ssl_options).__name__)
    options = ssl_options or {}
    ca_certs = ca_certs or options.get("ca_certs")
    if validate_cert is None:
        import ssl as stdlib_ssl

        validate_cert = options.get("cert_reqs", stdlib_ssl.CERT_REQUIRED) != stdlib_ssl.CERT_NONE
    return tls_client_creator(host, validate_cert, ca_certs)
