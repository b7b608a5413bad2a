"""WebSocket (RFC 6455, with permessage-deflate, RFC 7692) for cyclone.

Subclass ``WebSocketHandler`` and map it to a URL like any other handler::

    class Echo(cyclone.websocket.WebSocketHandler):
        def open(self):
            ...                                  # may return a Deferred, or be async
        def on_message(self, message):           # str (text) or bytes (binary)
            return self.write_message(message, binary=isinstance(message, bytes))
        def on_close(self):
            ...

Tornado's API: ``open``, ``on_message``, ``write_message`` (a dict is sent as
JSON; the Deferred it returns fires once the transport can take more, so a
producer that waits on it never fills the server's memory), ``close``,
``on_close``, ``close_code``, ``close_reason``, ``ping``, ``on_ping``,
``on_pong``, ``select_subprotocol``, ``selected_subprotocol``,
``check_origin``, ``get_compression_options``, ``set_nodelay``,
``ws_connection``.

Settings (``Application`` keyword arguments):

``websocket_max_message_size`` (10 MiB)
    a larger message (also once decompressed) closes the connection with 1009.
``websocket_ping_interval`` (None: no pings)
    seconds between the server's keepalive pings.
``websocket_ping_timeout`` (the ping interval)
    a peer that does not answer a ping within this is closed (1001).
``websocket_close_timeout`` (5 s)
    after our close frame, how long the peer has to answer (or, after a
    protocol error, to close TCP) before the connection is dropped; None or
    0 waits for ever.

The original cyclone's API on the same class: ``headersReceived()``,
``connectionMade(*args, **kwargs)`` (what ``open`` calls by default),
``messageReceived(message)`` (what ``on_message`` calls by default),
``sendMessage(message)``, ``connectionLost(reason)`` (called exactly once,
also when the peer just drops the TCP connection) and
``forbidConnection(message)``.

``open()`` and ``on_message()`` may return a Deferred or be coroutines: no
message is delivered before ``open`` is done, and each message waits for the
previous one's (reading from the socket pauses meanwhile, so a slow handler
slows the peer down instead of queueing its messages).

The handshake goes through the normal request path first, so ``prepare()``,
``get_current_user()`` and ``@authenticated`` work; then it is validated (GET,
HTTP/1.1, ``Upgrade: websocket``, ``Connection: upgrade``, a 16-byte base64
``Sec-WebSocket-Key``, ``Sec-WebSocket-Version: 13``, else 400 or 426) and
``check_origin`` is asked (403).

Thread safety: like everything on a Twisted connection, the methods of a
WebSocketHandler must be called from the reactor thread; from another thread
use ``reactor.callFromThread(handler.write_message, message)``.

The frames are made and parsed by ``cyclone.websocket_codec``, a sans-IO codec.

The client, ``websocket_connect(url)`` (a Deferred of a
``WebSocketClientConnection`` with Tornado's client API), lives in
``cyclone.websocket_client`` and is importable from here too.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import logging
import urllib.parse
from typing import Any

from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.python import failure
from zope.interface import implementer

from cyclone import web
from cyclone import websocket_codec as wc
from cyclone.concurrent import ensure_deferred
from cyclone.escape import json_encode
from cyclone.httpserver import DrainSignal, StreamClosedError, _can_send_directly

__all__ = ["WebSocketHandler", "WebSocketProtocol", "WebSocketClosedError", "WebSocketError", "websocket_connect",
           "WebSocketClientConnection", "WebSocketHandshakeError", "WebSocketTimeoutError"]

gen_log = logging.getLogger("cyclone.general")
app_log = logging.getLogger("cyclone.application")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: seconds to wait for the peer's close frame (or its FIN) after ours, when
#: the ``websocket_close_timeout`` setting (client: ``close_timeout``) is not given
DEFAULT_CLOSE_TIMEOUT = 5.0
CLOSE_TIMEOUT = DEFAULT_CLOSE_TIMEOUT  # the old name
DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024
#: the read size of a connection that receives large messages (see dataReceived)
_LARGE_READ_SIZE = 256 * 1024


class WebSocketError(Exception):
    pass


class WebSocketClosedError(WebSocketError, StreamClosedError):
    """Raised (or failed with) when writing to a closed WebSocket."""


def accept_key(key: str | bytes) -> str:
    """``Sec-WebSocket-Accept`` for ``Sec-WebSocket-Key`` ``key`` (RFC 6455 §4.2.2)."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")


def _tokens(value: str | None) -> list[str]:
    return [token.strip().lower() for token in (value or "").split(",") if token.strip()]


def _valid_key(key: str | None) -> bool:
    if not key:
        return False
    try:
        return len(base64.b64decode(key.strip().encode("ascii"), validate=True)) == 16
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False


@implementer(IPushProducer, IHalfCloseableProtocol)
class WebSocketProtocol(DrainSignal, protocol.Protocol):
    """One server-side WebSocket connection: the handler's ``ws_connection``.

    It owns the transport once the HTTP connection handed it over after the
    ``101`` response, feeds what arrives to the codec and calls the handler.

    The client (``cyclone.websocket_client``) runs the same frame loop, close
    handshake and keepalive pings in a subclass; its "handler" is the
    ``WebSocketClientConnection``. What a handler must offer: ``on_message``,
    ``on_ping``, ``on_pong``, ``_connection_lost(reason)``, ``ping_interval``,
    ``ping_timeout`` and ``_nodelay``; the ``_peer_name``, ``_summary``,
    ``_can_half_close`` and ``_close_handshake_done`` methods are what a
    subclass changes.
    """

    # An idle connection should cost little memory (bench/ws_echo.py
    # --memory): slots instead of an instance dict (``transport`` and
    # ``connected`` too, Protocol's two attributes), and the queue of events
    # waiting for a busy handler made only when one has to wait.
    __slots__ = (
        "transport",
        "connected",
        "handler",
        "codec",
        "clock",
        "close_code",
        "close_reason",
        "_queue",
        "_queue_pos",
        "_busy",
        "_stopped",
        "_close_sent",
        "_close_received",
        "_discarding",
        "_lost",
        "_write_paused",
        "_drain_waiters",
        "_reading_paused",
        "_close_timer",
        "_ping_timer",
        "_pong_timer",
        "_awaiting_pong",
        "_socket",
    )

    def __init__(self, handler: WebSocketHandler, codec: wc.Codec, clock: Any = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.transport: Any = None
        self.connected = 0
        self.handler = handler
        self.codec = codec
        self.clock = clock
        self.close_code: int | None = None
        self.close_reason: str | None = None
        # events not yet delivered: _queue[_queue_pos:] (None when there are none)
        self._queue: list | None = None
        self._queue_pos = 0
        self._busy = True  # open() runs first
        self._stopped = False  # the handler failed: deliver nothing more
        self._close_sent = False
        self._close_received = False
        self._discarding = False  # after a protocol error: read and drop until the peer closes
        self._lost = False
        self._write_paused = False
        self._drain_waiters: list[defer.Deferred] | None = None
        self._reading_paused = False
        self._close_timer: Any = None
        self._ping_timer: Any = None
        self._pong_timer: Any = None
        self._awaiting_pong = False
        self._socket: Any = None  # see _write

    # -- Twisted --------------------------------------------------------------------------------

    def connectionMade(self) -> None:
        transport = self.transport
        if _can_send_directly(transport):
            self._socket = transport.socket
        transport.registerProducer(self, True)
        handler = self.handler
        if handler._nodelay is not None:
            self._set_nodelay(handler._nodelay)
        interval = handler.ping_interval
        if interval:
            self._ping_timer = self.clock.callLater(interval, self._send_keepalive_ping)

    def dataReceived(self, data: bytes) -> None:
        if self._discarding or self._lost:
            return
        if len(data) >= 65536 and self._socket is not None and self.transport.bufferSize < _LARGE_READ_SIZE:
            # A read filled Twisted's 64 KiB buffer: large messages come on
            # this connection. Read them in fewer, larger pieces (fewer
            # reactor turns and partial frames; asyncio reads 256 KiB).
            # Only then: an idle connection keeps Twisted's default. (Twisted
            # also pauses its producer, so write_message's Deferred waits,
            # from bufferSize bytes unsent: 256 KiB here, still bounded.)
            self.transport.bufferSize = _LARGE_READ_SIZE
        events = self.codec.receive(data)
        if not events:
            return
        for event in events:
            if type(event) is wc.Pong:
                self._awaiting_pong = False
        queue = self._queue
        if queue is None:
            self._queue = events
            self._queue_pos = 0
        else:
            queue.extend(events)
        if not self._busy:
            self._run()

    def readConnectionLost(self) -> None:
        # the peer sent its FIN: nothing more can come, so close our side too
        self._lose()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: failure.Failure = protocol.connectionDone) -> None:
        if self._lost:
            return
        self._lost = True
        self._busy = True
        self._queue = None
        for name in ("_close_timer", "_ping_timer", "_pong_timer"):
            timer = getattr(self, name)
            setattr(self, name, None)
            if timer is not None and timer.active():
                timer.cancel()
        waiters, self._drain_waiters = self._drain_waiters, None
        for d in waiters or ():
            d.errback(WebSocketClosedError("WebSocket closed"))
        self.handler._connection_lost(reason)

    # -- sending ----------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """``transport.write(data)``, but straight to the socket while Twisted
        has nothing buffered for it (a plain TCP transport): one ``send``
        instead of a write event, two epoll changes and a ``doWrite`` later
        (an echo of 64 KiB messages: ~10% less CPU per message). What the
        socket does not take, and every error, goes through
        ``transport.write``, so Twisted still handles partial writes,
        backpressure and broken connections, in order."""
        sock = self._socket
        transport = self.transport
        if (
            sock is None
            or transport.dataBuffer
            or transport._tempDataBuffer
            or transport.TLS
            or transport._writeDisconnected
            or not transport.connected
        ):
            transport.write(data)
            return
        try:
            sent = sock.send(data)
        except OSError:  # EAGAIN, or an error doWrite will report
            sent = 0
        if sent < len(data):
            transport.write(data[sent:] if sent else data)

    @property
    def closing(self) -> bool:
        return self._close_sent or self._lost

    def write_message(self, message: str | bytes, binary: bool = False) -> defer.Deferred:
        if self._close_sent or self._lost:
            raise WebSocketClosedError("WebSocket closed")
        self._write(self.codec.message(message, binary))
        if not self._write_paused:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(d)
        return d

    def write_ping(self, data: bytes) -> None:
        if self._close_sent or self._lost:
            raise WebSocketClosedError("WebSocket closed")
        self._write(self.codec.ping(data))

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Send a close frame (once); the TCP connection closes when the peer
        answers, or after the handler's ``close_timeout`` seconds."""
        if self._lost:
            return
        if not self._close_sent:
            if code is None and reason is not None:
                code = wc.NORMAL
            self._close_sent = True
            self._write(self.codec.close(code, reason or ""))
        if self._close_received:
            self._close_handshake_done()
        elif self._close_timer is None:
            self._start_close_timer()

    # -- what differs between the two ends (cyclone.websocket_client overrides these) ---------------

    def _peer_name(self) -> str:
        """Who the peer is, for log lines."""
        return f"WebSocket from {self.handler.request.remote_ip}"

    def _summary(self) -> str:
        """What this connection serves, for the application's error log."""
        return self.handler._request_summary()

    def _can_half_close(self) -> bool:
        """May the write side be shut alone (not over TLS)?"""
        return self.handler.request.protocol != "https"

    def _close_handshake_done(self) -> None:
        """Both close frames went: the server closes TCP (RFC 6455 §7.1.1)."""
        self._lose()

    def _start_close_timer(self) -> None:
        timeout = self.handler.close_timeout
        if timeout:
            self._close_timer = self.clock.callLater(timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._close_timer = None
        gen_log.info("%s: no close within %ss, dropping the connection", self._peer_name(),
                     self.handler.close_timeout)
        self._abort()

    def _lose(self) -> None:
        if self._lost:
            return
        transport = self.transport
        transport.unregisterProducer()  # a paused producer would keep the socket open
        if self._reading_paused:
            transport.resumeProducing()
        transport.loseConnection()

    def _abort(self) -> None:
        if self._lost:
            return
        transport = self.transport
        transport.unregisterProducer()
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            transport.loseConnection()

    def _fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol: close with ``code``, drop what else it sends."""
        gen_log.info("WebSocket protocol error (%s), closing with %d: %s", self._peer_name(), code, reason)
        self._discarding = True
        self._queue = None
        if not self._close_sent:
            self._close_sent = True
            self._write(self.codec.close(code, reason))
        # Closing at once while the peer's bytes are still unread would make
        # the kernel answer with a reset, and the close frame could be lost:
        # end our side instead, and let the peer close (or time out).
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resumeProducing()
        self.transport.unregisterProducer()
        lose_write = getattr(self.transport, "loseWriteConnection", None)
        if lose_write is not None and self._can_half_close():
            lose_write()
        else:
            self.transport.loseConnection()
        if self._close_timer is None:
            self._start_close_timer()

    # -- keepalive pings --------------------------------------------------------------------------

    def _send_keepalive_ping(self) -> None:
        self._ping_timer = None
        if self._close_sent or self._lost:
            return
        handler = self.handler
        self._awaiting_pong = True
        self._write(self.codec.ping(b""))
        timeout = handler.ping_timeout
        if timeout:
            self._pong_timer = self.clock.callLater(timeout, self._check_pong)
        self._ping_timer = self.clock.callLater(handler.ping_interval, self._send_keepalive_ping)

    def _check_pong(self) -> None:
        self._pong_timer = None
        if self._awaiting_pong and not self._lost:
            gen_log.info("%s: no pong within the ping timeout, closing", self._peer_name())
            if not self._close_sent:
                self._close_sent = True
                self._write(self.codec.close(wc.GOING_AWAY, "ping timed out"))
            self._abort_after_flush()

    def _abort_after_flush(self) -> None:
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    # -- delivering events ------------------------------------------------------------------------

    def _opened(self) -> None:
        """open() is done: deliver what came meanwhile."""
        self._resume_reading()
        self._busy = False
        if self._queue is not None:
            self._run()

    def _run(self) -> None:
        handler = self.handler
        while not self._busy:
            queue = self._queue
            if queue is None:
                return
            pos = self._queue_pos
            event = queue[pos]
            pos += 1
            if pos == len(queue):
                self._queue = None
            else:
                self._queue_pos = pos
            kind = type(event)
            if self._stopped and kind is not wc.Close:
                continue
            try:
                if kind is wc.Message:
                    result = handler.on_message(event.data)
                    if result is not None:
                        self._wait_for(result)
                elif kind is wc.Ping:
                    if not self._close_sent:
                        self._write(self.codec.pong(event.data))
                    handler.on_ping(event.data)
                elif kind is wc.Pong:
                    handler.on_pong(event.data)
                elif kind is wc.Close:
                    self._close_received = True
                    if event.code != wc.NO_STATUS:
                        self.close_code = event.code
                        self.close_reason = event.reason
                    # echo the code (none if none came), then the server closes TCP
                    self.close(event.code if event.code != wc.NO_STATUS else None,
                               None if event.code == wc.NO_STATUS else "")
                elif kind is wc.Fail:
                    self._fail(event.code, event.reason)
            except Exception:
                self._handler_failed()

    def _wait_for(self, result: Any) -> None:
        d = ensure_deferred(result)
        if d.called and not isinstance(d.result, failure.Failure):
            return  # already done
        self._busy = True
        self._pause_reading()
        d.addCallbacks(self._handler_done, self._handler_errback)

    def _handler_done(self, _: Any) -> None:
        if self._lost or self._stopped:
            return
        self._resume_reading()
        self._busy = False
        if self._queue is not None:
            self._run()

    def _handler_errback(self, reason: failure.Failure) -> None:
        if reason.check(StreamClosedError) and self._lost:
            return None
        app_log.error("Uncaught exception in %s", self._summary(),
                      exc_info=(reason.type, reason.value, reason.getTracebackObject()))
        self._internal_error()
        return None

    def _handler_failed(self) -> None:
        app_log.error("Uncaught exception in %s", self._summary(), exc_info=True)
        self._internal_error()

    def _internal_error(self) -> None:
        # no more messages for the handler; the peer's close frame is still awaited
        self._stopped = True
        self._busy = False
        if not self._lost:
            self._resume_reading()
            self.close(wc.INTERNAL_ERROR, "internal error")

    def _pause_reading(self) -> None:
        if not self._reading_paused and not self._lost:
            self._reading_paused = True
            self.transport.pauseProducing()

    def _resume_reading(self) -> None:
        if self._reading_paused and not self._lost:
            self._reading_paused = False
            self.transport.resumeProducing()

    def _set_nodelay(self, value: bool) -> None:
        set_nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if set_nodelay is not None:
            try:
                set_nodelay(value)
            except OSError:
                pass


class WebSocketHandler(web.RequestHandler):
    """A WebSocket endpoint; see the module's docstring."""

    SUPPORTED_METHODS = ("GET",)

    ws_connection: WebSocketProtocol | None = None
    close_code: int | None = None
    close_reason: str | None = None
    _nodelay: bool | None = None
    _selected_subprotocol: str | None = None
    _lost_called = False

    # -- Tornado's hooks ------------------------------------------------------------------------

    def open(self, *args: Any, **kwargs: Any) -> Any:
        """The connection is open; may return a Deferred or be a coroutine."""
        return self.connectionMade(*args, **kwargs)

    def on_message(self, message: str | bytes) -> Any:
        """A message came: str for text, bytes for binary."""
        return self.messageReceived(message)

    def on_close(self) -> None:
        """The connection closed (``close_code``/``close_reason`` tell how)."""

    def on_ping(self, data: bytes) -> None:
        """A ping came (the pong was sent already)."""

    def on_pong(self, data: bytes) -> None:
        """A pong came."""

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        """Pick one of the client's ``Sec-WebSocket-Protocol`` values, or None."""
        return None

    @property
    def selected_subprotocol(self) -> str | None:
        return self._selected_subprotocol

    def check_origin(self, origin: str) -> bool:
        """Accept ``origin`` (the ``Origin`` header)? Default: the same host only."""
        parsed = urllib.parse.urlparse(origin)
        return bool(parsed.netloc) and parsed.netloc.lower() == (self.request.host or "").lower()

    def get_compression_options(self) -> dict | None:
        """None: no compression. A dict turns permessage-deflate on, with
        ``compression_level`` and ``mem_level`` (and optionally
        ``server_no_context_takeover``, ``client_no_context_takeover``,
        ``server_max_window_bits``, ``client_max_window_bits``)."""
        return None

    @property
    def ping_interval(self) -> float | None:
        return self.settings.get("websocket_ping_interval") or None

    @property
    def ping_timeout(self) -> float | None:
        interval = self.ping_interval
        timeout = self.settings.get("websocket_ping_timeout")
        if timeout is None:
            return interval
        if interval and timeout > interval:
            return interval
        return timeout or None

    @property
    def max_message_size(self) -> int:
        return self.settings.get("websocket_max_message_size", DEFAULT_MAX_MESSAGE_SIZE)

    @property
    def close_timeout(self) -> float | None:
        """Seconds to wait for the peer's answer to our close frame (or for
        its FIN after a protocol error) before dropping the TCP connection:
        the ``websocket_close_timeout`` setting, 5 s by default; None or 0
        waits for ever."""
        return self.settings.get("websocket_close_timeout", DEFAULT_CLOSE_TIMEOUT) or None

    def set_nodelay(self, value: bool) -> None:
        """Set TCP_NODELAY (send small messages at once); callable in ``open``."""
        self._nodelay = bool(value)
        if self.ws_connection is not None:
            self.ws_connection._set_nodelay(self._nodelay)

    # -- the original cyclone's hooks -------------------------------------------------------------

    def headersReceived(self) -> None:
        """Called before the handshake is answered (``forbidConnection`` may refuse it)."""

    def connectionMade(self, *args: Any, **kwargs: Any) -> Any:
        """The original cyclone's ``open``."""

    def messageReceived(self, message: str | bytes) -> Any:
        """The original cyclone's ``on_message``."""
        raise NotImplementedError(f"{type(self).__name__} must define on_message or messageReceived")

    def connectionLost(self, reason: failure.Failure) -> None:
        """Called exactly once when the connection is gone, however it ended."""

    def sendMessage(self, message: str | bytes | dict, binary: bool = False) -> defer.Deferred:
        return self.write_message(message, binary)

    def forbidConnection(self, message: str = "Forbidden") -> None:
        """Refuse the connection: a 403 before the handshake, a 1008 close after."""
        if self.ws_connection is not None:
            self.ws_connection.close(wc.POLICY_VIOLATION, message)
            return
        if not self._finished:
            self.set_status(403)
            self.finish(message)

    @property
    def transport(self) -> Any:
        connection = self.ws_connection
        return connection.transport if connection is not None else None

    @property
    def ws_protocol(self) -> WebSocketProtocol | None:
        return self.ws_connection

    # -- writing ----------------------------------------------------------------------------------

    def write_message(self, message: str | bytes | dict, binary: bool = False) -> defer.Deferred:
        """Send a message (a dict as JSON). The Deferred fires once the
        transport can take more; raises ``WebSocketClosedError`` once closed."""
        connection = self.ws_connection
        if connection is None:
            raise WebSocketClosedError("WebSocket closed")
        if isinstance(message, dict):
            message = json_encode(message)
        return connection.write_message(message, binary)

    def ping(self, data: str | bytes = b"") -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if len(data) > 125:
            raise ValueError("ping data is at most 125 bytes")
        connection = self.ws_connection
        if connection is None:
            raise WebSocketClosedError("WebSocket closed")
        connection.write_ping(data)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Start the closing handshake (``code`` None with no ``reason``: no code)."""
        if code is not None and not wc.is_valid_close_code(code):
            raise ValueError(f"invalid close code {code}")
        connection = self.ws_connection
        if connection is not None:
            connection.close(code, reason)

    # -- the handshake ----------------------------------------------------------------------------

    def get(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        headers = request.headers
        if request.version != "HTTP/1.1":
            return self._refuse(400, "WebSocket needs HTTP/1.1")
        if headers.get("Upgrade", "").strip().lower() != "websocket":
            return self._refuse(400, 'Can "Upgrade" only to "WebSocket".')
        if "upgrade" not in _tokens(",".join(headers.get_list("Connection"))):
            return self._refuse(400, '"Connection" must be "Upgrade".')
        if headers.get("Sec-WebSocket-Version", "").strip() != "13":
            self.set_header("Sec-WebSocket-Version", "13")
            return self._refuse(426, "Sec-WebSocket-Version must be 13", reason="Upgrade Required")
        key = headers.get("Sec-WebSocket-Key")
        if len(headers.get_list("Sec-WebSocket-Key")) != 1 or not _valid_key(key):
            return self._refuse(400, "Missing/Invalid Sec-WebSocket-Key")
        origin = headers.get("Origin")
        if origin is not None and not self.check_origin(origin):
            return self._refuse(403, "Cross origin websockets not allowed")
        self.headersReceived()
        if self._finished:
            return None
        offered_raw = [p.strip() for value in headers.get_list("Sec-WebSocket-Protocol")
                       for p in value.split(",") if p.strip()]
        if offered_raw:
            selected = self.select_subprotocol(offered_raw)
            if selected is not None:
                if selected not in offered_raw:
                    raise ValueError(f"select_subprotocol returned {selected!r}, not one offered")
                self._selected_subprotocol = selected
                self.set_header("Sec-WebSocket-Protocol", selected)
        deflate = None
        options = self.get_compression_options()
        if options is not None:
            try:
                negotiated = wc.negotiate_deflate(headers.get_list("Sec-WebSocket-Extensions"), options)
            except ValueError:
                return self._refuse(400, "Invalid Sec-WebSocket-Extensions")
            if negotiated is not None:
                deflate, response = negotiated
                self.set_header("Sec-WebSocket-Extensions", response)
        self.set_status(101)
        self.set_header("Upgrade", "websocket")
        self.set_header("Connection", "Upgrade")
        self.set_header("Sec-WebSocket-Accept", accept_key(key.strip()))
        self.clear_header("Content-Type")
        connection = request.connection
        self.finish()
        # The 101 is written: what made it need not live as long as the
        # connection (bench/ws_echo.py --memory measures an idle one).
        self._headers._as_list.clear()
        self._transforms = None
        codec = wc.Codec(client=False, max_message_size=self.max_message_size, deflate=deflate)
        ws = WebSocketProtocol(self, codec)
        self.ws_connection = ws
        if getattr(connection, "_closed", False):
            # the client left before the 101 could be sent
            self.ws_connection = None
            self._connection_lost(failure.Failure(error.ConnectionDone("closed during the handshake")))
            return None
        connection.take_over(ws)
        if ws._lost:
            return None
        try:
            result = self.open(*self.path_args, **self.path_kwargs)
        except Exception:
            ws._handler_failed()
            return None
        if result is None:
            ws._opened()
        else:
            d = ensure_deferred(result)
            if not d.called:
                ws._pause_reading()
            d.addCallbacks(lambda _: ws._opened() if not ws._lost else None, ws._handler_errback)
        return None

    def _refuse(self, status: int, message: str, reason: str | None = None) -> None:
        gen_log.debug("WebSocket handshake refused (%d): %s", status, message)
        self.set_status(status, reason)
        self.finish(message)

    def on_finish(self) -> None:
        """The handshake's response was sent (the 101 too: Tornado's order)."""

    # -- the end ----------------------------------------------------------------------------------

    def _connection_lost(self, reason: failure.Failure) -> None:
        connection = self.ws_connection
        if connection is not None:
            self.close_code = connection.close_code
            self.close_reason = connection.close_reason
        self.ws_connection = None
        if self._lost_called:
            return
        self._lost_called = True
        try:
            self.on_close()
        except Exception:
            app_log.error("Exception in on_close of %s", self._request_summary(), exc_info=True)
        try:
            self.connectionLost(reason)
        except Exception:
            app_log.error("Exception in connectionLost of %s", self._request_summary(), exc_info=True)

    def _on_connection_lost(self) -> None:
        # the client went away during the handshake (before the 101)
        super()._on_connection_lost()
        if self.ws_connection is None and not self._lost_called:
            self._connection_lost(failure.Failure(error.ConnectionDone("closed during the handshake")))

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        if self.ws_connection is not None:
            # after the 101 an error can only close the WebSocket
            self.ws_connection.close(wc.INTERNAL_ERROR, "internal error")
            return
        super().send_error(status_code, **kwargs)


_CLIENT_NAMES = frozenset({"websocket_connect", "WebSocketClientConnection", "WebSocketHandshakeError",
                           "WebSocketTimeoutError"})


def __getattr__(name: str) -> Any:
    # the client lives in cyclone.websocket_client (which imports this module)
    if name in _CLIENT_NAMES:
        from cyclone import websocket_client

        return getattr(websocket_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
