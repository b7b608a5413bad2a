"""The Twisted side of cyclone's HTTP/1.1 server.

``HTTPConnection`` is the ``Protocol`` a ``cyclone.web.Application`` (or an
``HTTPServer``) hands each socket. It drives the sans-IO parser in
``cyclone.http1`` and adds what needs a reactor: buffering, timeouts,
keep-alive, strictly ordered pipelining, backpressure in both directions and
handing the transport to another protocol after a ``101`` response
(``take_over``), or to the caller at any time (``detach``).

The application side is a *request delegate*. For each request the connection
asks the factory for one::

    delegate = factory.start_request(connection, request)

and calls ``delegate.headers_received()``, ``delegate.data_received(chunk)``
for each piece of the body, ``delegate.finish()`` at the end of the body, and
``delegate.on_connection_close()`` if the client goes away before the
response is finished. ``headers_received`` and ``data_received`` may return a
Deferred: reading stops until it fires (that is how a streaming body consumer
slows the client down). A factory without ``start_request`` is called as
``factory(request)`` once the whole body is in ``request.body`` (the original
cyclone's interface).

The delegate answers through the connection: ``write_head(status, headers)``,
``write(chunk)``, ``finish()``, and ``when_drained()`` to wait until the
transport has sent what was written.

Output: on Twisted's TCP and UNIX socket transports (not TLS), what a
connection writes during one reactor turn is kept and given straight to the
socket when the turn's events have been handled (``_TurnSender``), instead of
waiting for the reactor to report the socket writable. Whatever the socket
does not take goes through ``transport.write`` as usual; ``when_drained()``,
``take_over()`` and closing send what is kept first. A connection that closes
after its response is closed as soon as the socket has taken it, with the FIN
in the response's last segment. A new connection's first bytes are read
straight from its socket at the end of the turn that accepted it
(``_FirstReader``).

Input: a request followed by the peer's FIN (a half-close) gets its response;
a request still being answered when the FIN comes is told the connection
closed.

Settings (read from ``factory.settings`` when the first connection is made):

``xheaders`` (False)
    trust ``X-Real-Ip``/``X-Forwarded-For`` and ``X-Scheme``/``X-Forwarded-Proto``.
``trusted_downstream`` (())
    proxy addresses skipped when taking the client from ``X-Forwarded-For``.
``no_keep_alive`` (False)
    close the connection after every response.
``max_request_line`` (8192), ``max_header_size`` (65536), ``max_header_count`` (100),
``max_header_field_size`` (8192), ``max_body_size`` (100 MiB), ``max_chunk_size_line`` (256)
    parser limits, see ``cyclone.http1.Limits``; they answer 414, 431, 413, 400.
``idle_connection_timeout`` (75 s)
    close a keep-alive connection that sends nothing for this long, and one
    whose ``101`` response is not followed by ``take_over()`` within it
    (``header_timeout`` if this one is disabled, 30 s if both are).
``header_timeout`` (30 s)
    answer 408 and close when a request head takes longer than this to arrive.
``body_timeout`` (300 s)
    answer 408 and close when a request body takes longer than this to arrive.
``protocol`` (None)
    the scheme of the requests (``request.protocol``), e.g. ``"https"`` behind
    a proxy that terminates TLS; None: ``"https"`` on TLS, else ``"http"``.
``chunk_size`` (65536)
    the largest piece of a body given to ``data_received`` at once.
``decompress_request`` (False)
    decode request bodies sent with ``Content-Encoding: gzip``: the handler
    gets the decoded body, the header is renamed ``X-Consumed-Content-Encoding``
    (as Tornado does), and ``max_body_size`` applies to the decoded size too
    (413). A body that is not valid gzip, or ends mid-stream, gets 400.

A timeout of ``None`` or ``0`` disables it; but in ``HTTPServer``'s own
keyword arguments None means the default, as in Tornado.

Tornado's lower-level interface is served too: ``HTTPServer(delegate)`` with a
``cyclone.httputil.HTTPServerConnectionDelegate`` calls
``delegate.start_request(connection, connection)`` and gives the returned
``HTTPMessageDelegate`` ``headers_received(start_line, headers)``,
``data_received``, ``finish`` and ``on_connection_close``; responses are written
with ``connection.write_headers(start_line, headers, chunk)``,
``connection.write(chunk)`` (both return Deferreds) and ``connection.finish()``.
One ``HTTPConnection`` is both of Tornado's server and request connections.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import time
import zlib
from typing import Any, Callable, Iterable

from twisted.internet import defer, protocol, tcp
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IOpenSSLServerConnectionCreator,
    IPushProducer,
    ISSLTransport,
)
from twisted.python import failure
from zope.interface import implementer

from cyclone import http1
from cyclone.httputil import (
    HTTPHeaders,
    HTTPInputError,
    HTTPServerRequest,
    RequestStartLine,
    _built_on_first_use,
)

#: the request class (Tornado's name is ``cyclone.httputil.HTTPServerRequest``)
HTTPRequest = HTTPServerRequest

__all__ = [
    "HTTPConnection",
    "HTTPRequest",
    "HTTPServer",
    "StreamClosedError",
    "ServerConfig",
    "date_header",
]

gen_log = logging.getLogger("cyclone.general")
app_log = logging.getLogger("cyclone.application")

_date_cache = http1.DateCache()


def date_header() -> str:
    """The current ``Date`` header value, formatted at most once per second."""
    return _date_cache.text(time.time())

# Seconds a 101 response waits for take_over() when both
# idle_connection_timeout and header_timeout are disabled.
_SWITCH_TIMEOUT = 30.0

# Pipelined bytes held while a request is in flight before reading pauses.
_MAX_PIPELINE_BUFFER = 65536
#: the largest body piece given to a delegate at once (the chunk_size setting)
_DEFAULT_CHUNK_SIZE = 65536


class StreamClosedError(IOError):
    """The client went away before the written data could be sent."""


class ServerConfig:
    """Settings of an HTTP server, resolved once per factory."""

    __slots__ = (
        "limits",
        "xheaders",
        "trusted_downstream",
        "no_keep_alive",
        "idle_timeout",
        "header_timeout",
        "body_timeout",
        "shortest_timeout",
        "sweeper",
        "start_request",
        "decompress_request",
        "scheme",
        "chunk_size",
        "lost_callback",
    )

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        settings = settings or {}
        defaults = http1.DEFAULT_LIMITS
        self.limits = http1.Limits(
            max_request_line=settings.get("max_request_line", defaults.max_request_line),
            max_header_size=settings.get("max_header_size", defaults.max_header_size),
            max_header_count=settings.get("max_header_count", defaults.max_header_count),
            max_header_field_size=settings.get(
                "max_header_field_size", defaults.max_header_field_size
            ),
            max_body_size=settings.get("max_body_size", defaults.max_body_size),
            max_chunk_size_line=settings.get(
                "max_chunk_size_line", defaults.max_chunk_size_line
            ),
        )
        self.xheaders = bool(settings.get("xheaders", False))
        self.trusted_downstream = frozenset(settings.get("trusted_downstream") or ())
        self.no_keep_alive = bool(settings.get("no_keep_alive", False))
        self.decompress_request = bool(settings.get("decompress_request", False))
        scheme = settings.get("protocol")
        if scheme is not None and not isinstance(scheme, str):
            raise TypeError(f"protocol must be a scheme such as 'https', not {scheme!r}")
        self.scheme: str | None = scheme or None
        self.chunk_size = int(settings.get("chunk_size") or _DEFAULT_CHUNK_SIZE)
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive: {self.chunk_size}")
        #: called with each connection once it is closed (set by _config_for)
        self.lost_callback: Callable | None = None
        self.idle_timeout = settings.get("idle_connection_timeout", 75.0) or None
        self.header_timeout = settings.get("header_timeout", 30.0) or None
        self.body_timeout = settings.get("body_timeout", 300.0) or None
        timeouts = [t for t in (self.idle_timeout, self.header_timeout, self.body_timeout) if t]
        self.shortest_timeout = min(timeouts) if timeouts else None
        #: the _DeadlineSweeper of this server's connections (set by _config_for)
        self.sweeper: _DeadlineSweeper | None = None
        #: the factory's ``start_request`` (set by _config_for)
        self.start_request: Callable | None = None


class _DeadlineSweeper:
    """Checks the timeout deadlines of a server's connections with one timer.

    A ``DelayedCall`` per connection costs about 2 µs to create and cancel,
    paid in full by every short-lived (``Connection: close``) connection; a
    set add and discard cost a tenth of that. A deadline is noticed up to one
    tick late: the tick is 1 s, or a quarter of the shortest timeout of the
    connections seen, if shorter. The timer runs only while connections are
    watched.
    """

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.connections: set[HTTPConnection] = set()
        self.tick = 1.0
        self._call: Any = None

    def watch(self, connection: "HTTPConnection", shortest_timeout: float | None) -> None:
        self.connections.add(connection)
        if self._call is not None and not self._call.active():
            # cancelled behind our back (trial's dirty-reactor cleanup does that)
            self._call = None
        if shortest_timeout and shortest_timeout / 4 < self.tick:
            self.tick = max(shortest_timeout / 4, 0.001)
            if self._call is not None and self._call.getTime() > self.clock.seconds() + self.tick:
                self._call.reset(self.tick)
        if self._call is None:
            self._call = self.clock.callLater(self.tick, self.sweep)

    def unwatch(self, connection: "HTTPConnection") -> None:
        connections = self.connections
        connections.discard(connection)
        if not connections and self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def sweep(self) -> None:
        self._call = None
        now = self.clock.seconds()
        passed = [c for c in self.connections if c._deadline is not None and c._deadline <= now]
        for connection in passed:
            try:
                connection._deadline_passed()
            except Exception:
                gen_log.error("Error closing a timed-out connection", exc_info=True)
        if self.connections and self._call is None:
            self._call = self.clock.callLater(self.tick, self.sweep)


_the_reactor: Any = None


def _reactor() -> Any:
    """The global reactor, imported on first use (not at module import, so
    an application can install another reactor first)."""
    global _the_reactor
    if _the_reactor is None:
        from twisted.internet import reactor

        _the_reactor = reactor
    return _the_reactor


def _config_for(factory: Any) -> ServerConfig:
    config = getattr(factory, "_cyclone_server_config", None)
    if config is None:
        config = ServerConfig(getattr(factory, "settings", None))
        # the factory's own answers, taken once like its settings
        config.start_request = getattr(factory, "start_request", None)
        config.lost_callback = getattr(factory, "_connection_lost", None)
        config.sweeper = _DeadlineSweeper(getattr(factory, "clock", None) or _reactor())
        try:
            factory._cyclone_server_config = config
        except AttributeError:  # a factory with __slots__: resolve every time
            pass
    return config


class _BufferingDelegate:
    """Collects the body, parses form arguments, then calls ``callback(request)``."""

    __slots__ = ("connection", "request", "callback", "chunks")

    def __init__(self, connection: "HTTPConnection", request: HTTPRequest, callback: Callable) -> None:
        self.connection = connection
        self.request = request
        self.callback = callback
        self.chunks: list[bytes] = []

    def headers_received(self) -> None:
        return None

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.request._body_chunk(chunk)

    def finish(self) -> None:
        request = self.request
        chunks = self.chunks
        self.chunks = []
        try:
            request._set_body(chunks)
        except HTTPInputError as exc:
            self.connection.reject(400, str(exc))
            return
        self.callback(request)

    def on_connection_close(self) -> None:
        self.chunks = []


class _GzipBodyDecoder:
    """Wraps a request delegate for ``decompress_request``: the delegate gets
    the gzip-decoded body (in pieces of at most ``chunk_size`` bytes), and
    the decoded size is held to the request's body size limit, since a few
    KiB of gzip can decode to gigabytes."""

    __slots__ = ("connection", "delegate", "_decoder", "_decoded")

    def __init__(self, connection: "HTTPConnection", delegate: Any) -> None:
        self.connection = connection
        self.delegate = delegate
        self._decoder = _gzip_decoder()
        self._decoded = 0

    def headers_received(self) -> Any:
        return self.delegate.headers_received()

    def data_received(self, chunk: bytes) -> Any:
        pieces = self._decode(chunk)
        return None if pieces is None else self._deliver(pieces)

    def finish(self) -> None:
        pieces = self._decode(b"")
        if pieces is None:
            return
        if not self._decoder.eof:
            self.connection.reject(400, "gzip request body ends before its end")
            return
        result = self._deliver(pieces)
        if isinstance(result, defer.Deferred):
            result.addCallback(lambda _: self.delegate.finish())
            result.addErrback(self.connection._delegate_failed)
        else:
            self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()

    def _decode(self, data: bytes) -> list[bytes] | None:
        """The decoded pieces of ``data``; None once the request was rejected."""
        connection = self.connection
        limit = connection._parser.max_body_size
        pieces = []
        decoder = self._decoder
        piece_size = connection._chunk_size
        try:
            while True:
                piece = decoder.decompress(data, piece_size)
                if piece:
                    self._decoded += len(piece)
                    if self._decoded > limit:
                        connection.reject(413, f"gzip request body decodes to more than {limit} bytes")
                        return None
                    pieces.append(piece)
                if decoder.eof:
                    data = decoder.unused_data
                    if not data:
                        break
                    # RFC 1952: a gzip file may be several members back to back
                    decoder = self._decoder = _gzip_decoder()
                    continue
                data = decoder.unconsumed_tail
                if not data and len(piece) < piece_size:
                    break  # all input used and no output left pending
        except zlib.error as exc:
            connection.reject(400, f"invalid gzip request body: {exc}")
            return None
        return pieces

    def _deliver(self, pieces: list[bytes]) -> Any:
        """Give ``pieces`` to the delegate in order, waiting on any Deferred it
        returns; a Deferred if one had to wait."""
        data_received = self.delegate.data_received
        for index, piece in enumerate(pieces):
            result = data_received(piece)
            if isinstance(result, defer.Deferred) and not result.called:
                rest = pieces[index + 1 :]
                return result.addCallback(lambda _: self._deliver(rest) if rest else None)
        return None


def _gzip_decoder() -> Any:
    return zlib.decompressobj(16 + zlib.MAX_WBITS)  # a gzip header and trailer


#: pending output above this many bytes is sent at once, not at the turn's end
_SEND_NOW_SIZE = 65536


_DIRECT_SEND: dict[type, bool] = {}
#: send() flag (Linux): more data follows, so the kernel holds the last
#: segment; the FIN of the close that follows is sent in it. The peer then
#: gets the last response and the end of the stream in one segment.
_MSG_MORE = getattr(socket, "MSG_MORE", 0)


def _can_send_directly(transport: Any) -> bool:
    """Whether ``transport`` is a socket transport of Twisted's posix reactors
    (TCP or UNIX) whose socket we may write to while its own buffer is empty.
    """
    kind = type(transport)
    able = _DIRECT_SEND.get(kind)
    if able is None:
        able = _DIRECT_SEND[kind] = _has_direct_send_attributes(transport)
    return able


def _has_direct_send_attributes(transport: Any) -> bool:
    return (
        isinstance(transport, tcp.Connection)
        and hasattr(transport, "socket")
        and isinstance(getattr(transport, "dataBuffer", None), bytes)
        and isinstance(getattr(transport, "_tempDataBuffer", None), list)
        and hasattr(transport, "_writeDisconnected")
        and hasattr(transport, "TLS")
    )


class _AtTurnEnd:
    """Connections queued during a reactor turn, handled together by
    ``run()`` once the turn is over (a ``callLater(0)``)."""

    def __init__(self) -> None:
        self._queued: list[HTTPConnection] = []

    def add(self, connection: HTTPConnection) -> None:
        queued = self._queued
        queued.append(connection)
        if len(queued) == 1:
            _reactor().callLater(0, self.run)

    def run(self) -> None:
        raise NotImplementedError


class _TurnSender(_AtTurnEnd):
    """Sends what connections wrote during a reactor turn, together, straight
    to their sockets, once the turn's events and the next poll's have been
    handled.

    Twisted's ``transport.write()`` buffers and sends when the reactor next
    finds the socket writable: two ``epoll_ctl`` calls and a ``doWrite`` per
    response. Sending each response at once instead wakes the peer once per
    response, which costs more (measured: ~10% fewer requests/s at 50
    connections). Sending a turn's responses back to back wakes it once.

    The flush waits for one more poll of the reactor (non-blocking, as a call
    is due): requests that arrived while the turn ran are answered in the same
    batch. Flushing right after the turn splits busy connections into two
    groups that take turns, each waiting for the other's: at 50 connections
    the p99 latency was twice the median (1.8 ms); with the extra poll it is
    within 1.3× (1.2–1.4 ms), at the same throughput. (Sending every N
    responses, for N from 4 to 32, measured slower and no better at p99.)

    The last responses of closing connections do not wait for that poll: no
    request can follow on them, and the sooner they close the less the
    server carries. Neither does a lone connection's (this batch and the
    last had one connection each): there is nothing to batch it with, and the
    poll is a reactor turn more per request (measured with one connection:
    9.2k -> 10.0k requests/s).
    """

    def __init__(self) -> None:
        super().__init__()
        self._polled = False
        self._last_size = 0
        self._shutdown_reactor: Any = None

    def add(self, connection: HTTPConnection) -> None:
        queued = self._queued
        queued.append(connection)
        if len(queued) == 1:
            reactor = _reactor()
            reactor.callLater(0, self.run)
            if self._shutdown_reactor is not reactor:
                # what was written before reactor.stop() (e.g. by the handler
                # that stops it) is sent before the shutdown closes connections
                self._shutdown_reactor = reactor
                reactor.addSystemEventTrigger("before", "shutdown", self._send_queued)

    def run(self) -> None:
        if not self._polled:
            if len(self._queued) == 1 and self._last_size == 1:
                self._send_queued()  # a lone connection: nothing to batch with
                return
            self._polled = True  # once more round the reactor first
            _reactor().callLater(0, self.run)
            self.send_closing()
            return
        self._polled = False
        self._send_queued()

    def _send_queued(self) -> None:
        queued = self._queued
        self._queued = []
        self._last_size = len(queued)
        for connection in queued:
            _send_pending_of(connection)

    def send_closing(self) -> None:
        """Send the output of the connections that close after it now."""
        queued = self._queued
        for connection in queued:
            if connection._close_when_sent:
                break
        else:
            return
        self._queued = [c for c in queued if not c._close_when_sent]
        for connection in queued:
            if connection._close_when_sent:
                _send_pending_of(connection)


def _send_pending_of(connection: HTTPConnection) -> None:
    # one connection's failure must not keep the others' output unsent
    try:
        connection._send_pending()
    except Exception:
        gen_log.error("Error sending to %r", connection.transport, exc_info=True)
        connection.transport.abortConnection()


_turn_sender = _TurnSender()


class _FirstReader(_AtTurnEnd):
    """Reads what new connections have received straight from their sockets,
    once the reactor turn that accepted them is over, before the next poll.

    A client sends its request as soon as its connection is up, so by the end
    of the turn that accepted it the request is usually there (about 70% of
    the time at 50 connections with ``Connection: close``). Reading it here
    saves the reactor's read dispatch, about 2 µs of Twisted's per event;
    when nothing is there yet the reactor reads it as usual.
    """

    def run(self) -> None:
        fresh = self._queued
        self._queued = []
        for connection in fresh:
            connection._read_first()
        # the requests read here that close their connection are answered
        # now, together (as _TurnSender's first pass would, a poll later)
        _turn_sender.send_closing()


_first_reader = _FirstReader()


def _peer_ip(transport: Any) -> str:
    peer = transport.getPeer()
    host = getattr(peer, "host", None)
    if host is not None:
        return host
    name = getattr(peer, "name", None) or getattr(transport.getHost(), "name", None)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return f"unix:{name or ''}"


def _valid_ip(ip: str) -> bool:
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return False
    return True


@implementer(IPushProducer)
class DrainSignal:
    """The ``IPushProducer`` side of a protocol that writes to its transport.

    The transport pauses it when its write buffer is full and resumes it when
    the buffer has drained; on resume, the Deferreds in ``_drain_waiters``
    (the protocol's "wait until the peer has taken what I wrote") fire.
    Subclasses hold ``_write_paused`` and ``_drain_waiters`` themselves.
    """

    __slots__ = ()
    _write_paused: bool
    _drain_waiters: list | None

    def pauseProducing(self) -> None:
        self._write_paused = True

    def resumeProducing(self) -> None:
        self._write_paused = False
        waiters = self._drain_waiters
        if waiters:
            self._drain_waiters = None
            for d in waiters:
                d.callback(None)

    def stopProducing(self) -> None:
        self._write_paused = True


@implementer(IPushProducer, IHalfCloseableProtocol)
class HTTPConnection(DrainSignal, protocol.Protocol):
    """One HTTP/1.1 server connection (a Twisted ``Protocol``)."""

    #: the request being answered, or None between requests
    _request: HTTPRequest | None = None
    #: output written this reactor turn, not yet given to the socket
    _pending: list[bytes] | None = None
    #: the socket written to directly (see ``_TurnSender``), or None
    _socket: Any = None
    _pending_size = 0
    #: close once the kept output is sent
    _close_when_sent = False
    #: a handler sets this to close the connection after its response
    no_keep_alive = False
    #: trust X-Real-Ip / X-Forwarded-For and X-Scheme / X-Forwarded-Proto
    xheaders = False

    # The state of a fresh connection, read from the class until changed
    # (connectionMade sets those read on every request).
    _scheme = "http"
    _chunk_size = _DEFAULT_CHUNK_SIZE
    _close_callback: Callable[[], Any] | None = None
    _head: http1.RequestHead | None = None
    _delegate: Any = None
    _writer: http1.ResponseWriter | None = None
    _message_complete = False
    _continue_sent = False
    _blocked = False  # waiting on a delegate's Deferred
    _processing = False
    _reading_paused = False
    _write_paused = False
    _drain_waiters: list[defer.Deferred] | None = None
    _closed = False
    _upgraded: protocol.Protocol | None = None
    _deadline: float | None = None
    _deadline_kind = ""
    _decompress = False  # the decompress_request setting

    #: the peer's IP address (found when first asked for)
    remote_ip: str = _built_on_first_use(lambda self: _peer_ip(self.transport))

    @property
    def request_callback(self) -> Any:
        """The factory serving this connection (the original cyclone's name)."""
        return self.factory

    def connectionMade(self) -> None:
        config = _config_for(self.factory)
        self._config = config
        self._parser = http1.RequestParser(config.limits)
        self._start_request = config.start_request
        self.xheaders = config.xheaders
        self.no_keep_alive = config.no_keep_alive
        self._decompress = config.decompress_request
        transport = self.transport
        self._socket = transport.socket if _can_send_directly(transport) else None
        self._pending = None
        scheme = config.scheme or ("https" if ISSLTransport.providedBy(transport) else "http")
        if scheme != "http":
            self._scheme = scheme
        if config.chunk_size != _DEFAULT_CHUNK_SIZE:
            self._chunk_size = config.chunk_size
        # read on every request: instance attributes are the fastest to read
        self._blocked = self._closed = self._reading_paused = self._continue_sent = False
        self._upgraded = None
        transport.registerProducer(self, True)
        self._sweeper = sweeper = config.sweeper
        self._clock = sweeper.clock
        self._set_deadline("idle")
        sweeper.watch(self, config.shortest_timeout)
        if self._socket is not None:
            _first_reader.add(self)

    def _read_first(self) -> None:
        """Read the socket of this new connection now (see ``_FirstReader``)."""
        if (
            self._closed
            or self._request is not None
            or self._pending is not None
            or self._upgraded is not None
            or self._reading_paused
            or self._parser.buffered
        ):
            return  # the reactor has read from it already
        transport = self.transport
        if not transport.connected or transport.disconnecting:
            return
        try:
            data = self._socket.recv(65536)
        except OSError:  # nothing yet, or an error the reactor will report
            return
        if not data:
            return  # the end of the stream: the reactor sees it too
        try:
            self.dataReceived(data)
        except Exception:
            # what the reactor does when dataReceived raises
            gen_log.error("Unhandled error reading %r", self, exc_info=True)
            transport.connectionLost(failure.Failure())

    # -- reading --------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        upgraded = self._upgraded
        if upgraded is not None:
            upgraded.dataReceived(data)
            return
        if self._closed:
            return
        self._parser.feed(data)
        if not self._processing:
            self._process()

    def _process(self) -> None:
        """Turn parser events into delegate calls until blocked or out of data."""
        parser = self._parser
        self._processing = True
        try:
            while not self._blocked and not self._closed and self._upgraded is None:
                event = parser.next_event()
                kind = type(event)
                if kind is http1.Data:
                    self._on_data(event.data)
                elif kind is http1.RequestHead:
                    self._on_head(event)
                elif kind is http1.EndOfMessage:
                    self._on_end_of_message()
                elif event is http1.NEED_DATA:
                    self._on_need_data()
                    return
                elif event is http1.PAUSED:
                    if parser.buffered > _MAX_PIPELINE_BUFFER and not self._reading_paused:
                        self._reading_paused = True
                        self.transport.pauseProducing()
                    return
                else:
                    self._on_protocol_error(event)
                    return
        finally:
            self._processing = False

    def _on_need_data(self) -> None:
        parser = self._parser
        if self._request is None:  # between requests (a finished one is never in its body)
            if parser.buffered:
                if self._deadline_kind != "head":
                    self._set_deadline("head")
            elif self._deadline_kind != "idle":
                self._set_deadline("idle")
            return
        if parser.in_body:
            head = self._head
            if (
                head is not None
                and head.expect_continue
                and not self._continue_sent
                and not parser.body_started
                and self._writer is None
            ):
                self._continue_sent = True
                self._send(http1.CONTINUE_RESPONSE)

    def _on_head(self, head: http1.RequestHead) -> None:
        self._head = head
        self._message_complete = False
        if self._continue_sent:
            self._continue_sent = False
        headers = HTTPHeaders._from_pairs(head.headers)  # validated by the parser
        remote_ip = None  # the request reads the connection's when asked
        scheme = self._scheme
        if self.xheaders:
            remote_ip, scheme = self._apply_xheaders(headers, self.remote_ip, scheme)
        gzipped = self._decompress and self._consume_gzip_encoding(head, headers)
        request = HTTPRequest._from_head(head, headers, self, remote_ip, scheme)
        self._request = request
        if head.chunked or head.content_length:
            self._set_deadline("body")
        else:  # the whole request is in: no timeout until the response is done
            self._deadline = None
            self._deadline_kind = ""
        start_request = self._start_request
        try:
            if start_request is not None:
                delegate = start_request(self, request)
            else:
                delegate = _BufferingDelegate(self, request, self.factory)
            if gzipped:
                delegate = _GzipBodyDecoder(self, delegate)
            self._delegate = delegate
            result = delegate.headers_received()
            if result is not None:
                self._wait_for(result)
        except Exception:
            self._application_error()

    @staticmethod
    def _consume_gzip_encoding(head: http1.RequestHead, headers: HTTPHeaders) -> bool:
        """For ``decompress_request``: whether the body is to be gzip-decoded;
        if so, Content-Encoding becomes X-Consumed-Content-Encoding."""
        encoding = headers.get("Content-Encoding")
        if encoding is None or encoding.strip().lower() != "gzip":
            return False
        del headers["Content-Encoding"]
        headers.add("X-Consumed-Content-Encoding", encoding)
        return bool(head.chunked or head.content_length)

    def _on_data(self, chunk: bytes) -> None:
        try:
            if len(chunk) > self._chunk_size:
                self._wait_for(self._deliver_pieces(self._delegate, chunk, 0))
            else:
                self._wait_for(self._delegate.data_received(chunk))
        except Exception:
            self._application_error()

    def _deliver_pieces(self, delegate: Any, chunk: bytes, start: int) -> Any:
        """Give ``chunk[start:]`` to ``delegate`` in pieces of ``chunk_size``,
        waiting on any Deferred it returns; a Deferred if one had to wait."""
        size = self._chunk_size
        end = len(chunk)
        while start < end:
            if self._closed or self._delegate is not delegate:
                return None  # the request was rejected or the client went away
            piece = chunk[start : start + size]
            start += size
            result = delegate.data_received(piece)
            if isinstance(result, defer.Deferred) and not result.called and start < end:
                return result.addCallback(lambda _, at=start: self._deliver_pieces(delegate, chunk, at))
            if start >= end:
                return result
        return None

    def _on_end_of_message(self) -> None:
        self._message_complete = True
        if self._deadline_kind:
            self._set_deadline(None)
        try:
            self._delegate.finish()
        except Exception:
            self._application_error()

    def _wait_for(self, result: Any) -> None:
        """Stop reading until a delegate's Deferred fires."""
        if not isinstance(result, defer.Deferred) or result.called:
            return
        self._blocked = True
        if not self._reading_paused:
            self._reading_paused = True
            self.transport.pauseProducing()
        result.addBoth(self._unblock)

    def _unblock(self, result: Any) -> Any:
        self._blocked = False
        if isinstance(result, failure.Failure):
            return self._delegate_failed(result)
        if self._closed:
            return None
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resumeProducing()
        if not self._processing:
            self._process()
        return None

    def _delegate_failed(self, reason: failure.Failure) -> None:
        """A delegate's Deferred failed: log it and answer 500."""
        app_log.error(
            "Error in request delegate for %s",
            self._request,
            exc_info=(reason.type, reason.value, reason.getTracebackObject()),
        )
        self._application_error(log=False)
        return None

    def _apply_xheaders(self, headers: HTTPHeaders, remote_ip: str, scheme: str) -> tuple[str, str]:
        forwarded = headers.get("X-Forwarded-For")
        ip = remote_ip
        if forwarded:
            for hop in reversed(forwarded.split(",")):
                hop = hop.strip()
                if hop and hop not in self._config.trusted_downstream:
                    ip = hop
                    break
        ip = headers.get("X-Real-Ip", ip).strip()
        if ip != remote_ip and _valid_ip(ip):
            remote_ip = ip
        proto = headers.get("X-Scheme") or headers.get("X-Forwarded-Proto")
        if proto:
            proto = proto.split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                scheme = proto
        return remote_ip, scheme

    # -- errors ---------------------------------------------------------------------

    def _on_protocol_error(self, event: http1.ProtocolError) -> None:
        gen_log.info(
            "%d %s from %s: %s",
            event.status,
            http1.REASONS.get(event.status, ""),
            self.remote_ip,
            event.reason,
        )
        self.reject(event.status)

    def reject(self, status: int, reason: str | None = None) -> None:
        """Answer ``status`` with a plain error response, then close.

        If a response has already started, the connection is just closed.
        """
        if reason is not None:
            gen_log.info("%d %s from %s: %s", status, http1.REASONS.get(status, ""),
                         self.remote_ip, reason)
        if self._closed:
            return
        if self._writer is None:
            self._send(http1.error_response(status, _date_cache(time.time())))
        self._close_request(reason="request rejected")
        self._shutdown()

    def _application_error(self, log: bool = True) -> None:
        if log:
            app_log.error("Uncaught exception while serving %r", self._request, exc_info=True)
        if self._closed:
            return
        if self._writer is None:
            self._send(http1.error_response(500, _date_cache(time.time())))
        self._close_request(reason="application error")
        self._shutdown()

    # -- writing -----------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        """``transport.write(data)``; for a plain socket transport, keep it to
        send straight to the socket at the turn's end (see ``_TurnSender``)."""
        pending = self._pending
        if pending is None:
            if self._socket is None:
                self.transport.write(data)
                return
            self._pending = [data]
            self._pending_size = len(data)
            _turn_sender.add(self)
        else:
            pending.append(data)
            self._pending_size += len(data)
        if self._pending_size > _SEND_NOW_SIZE:
            self._send_pending()

    def _send_pending(self) -> None:
        """Give the kept output to the socket now.

        What the socket does not take, and every error, goes through
        ``transport.write``, so Twisted still handles partial writes,
        backpressure and broken connections.
        """
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        data = b"".join(pending) if len(pending) > 1 else pending[0]
        transport = self.transport
        if (
            self._socket is None
            or transport.dataBuffer
            or transport._tempDataBuffer
            or transport.TLS
            or transport._writeDisconnected
            or not transport.connected
        ):
            transport.write(data)
        else:
            try:
                if self._close_when_sent:
                    # the FIN that follows at once goes in the same segment
                    sent = self._socket.send(data, _MSG_MORE)
                else:
                    sent = self._socket.send(data)
            except OSError:  # EAGAIN, or an error doWrite will report
                sent = 0
            if sent < len(data):
                transport.write(data[sent:] if sent else data)
            elif self._close_when_sent:
                # Nothing is left to send: close now, as Twisted's own
                # loseConnection does once its buffer has drained.
                transport.connectionLost(protocol.connectionDone)
                return
        if self._close_when_sent:
            self._lose_connection()

    def write_head(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        reason: str | None = None,
        body: bytes = b"",
        finish: bool = False,
    ) -> None:
        """Send the status line and headers, optionally with a body and the end.

        Raises ``ValueError`` for header injection (CR/LF in names or values),
        ``HTTPOutputError`` for a ``body`` longer than the ``Content-Length``
        given (or shorter, with ``finish``) and ``RuntimeError`` when a head
        was already written. Nothing is sent when it raises, so the caller
        can still answer with another head.
        """
        if self._writer is not None:
            raise RuntimeError("response head already written")
        if self._closed:
            return
        keep_alive = not self.no_keep_alive and self._message_complete
        writer = http1.ResponseWriter(self._head, keep_alive)
        data = writer.head(status, headers, reason)
        if body:
            data += writer.body(body)
        if finish:
            data += writer.end()
        self._writer = writer
        self._send(data)
        if finish:
            self._end_response()

    def write(self, chunk: bytes) -> defer.Deferred:
        """Send a piece of the body; the Deferred is ``when_drained()``'s (it
        fails with ``StreamClosedError`` if the connection is closed).

        Raises ``HTTPOutputError`` (and sends nothing of ``chunk``) when it
        would go past the ``Content-Length`` of the head; the connection then
        closes when the response is finished.
        """
        self._write(chunk)
        return self.when_drained()

    def _write(self, chunk: bytes) -> None:
        """``write()`` without the Deferred (a closed connection ignores it)."""
        if self._closed or not chunk:
            return
        writer = self._writer
        if writer is None:
            raise RuntimeError("write_head() must come before write()")
        data = writer.body(chunk)
        if data:
            self._send(data)

    def write_headers(self, start_line: Any, headers: Any, chunk: bytes | None = None) -> defer.Deferred:
        """Tornado's ``write_headers``: ``start_line`` is a
        ``httputil.ResponseStartLine`` (its version is ignored: the framing
        follows the request), ``headers`` a ``HTTPHeaders`` (or a mapping),
        ``chunk`` the first piece of the body. A Deferred as ``write()``'s."""
        if hasattr(headers, "get_all"):
            pairs = list(headers.get_all())
        else:
            pairs = list(headers.items())
        self.write_head(start_line.code, pairs, start_line.reason or None, body=chunk or b"")
        return self.when_drained()

    def set_close_callback(self, callback: Callable[[], Any] | None) -> None:
        """Call ``callback()`` when the connection closes (None: no longer)."""
        self._close_callback = callback

    @property
    def stream(self) -> Any:
        """The Twisted transport (Tornado's ``stream`` is an ``IOStream``):
        ``write``, ``loseConnection``, ``getPeer``, ``getHost``."""
        return self.transport

    @property
    def context(self) -> Any:
        """What a request made by a Tornado-style delegate reads its
        ``remote_ip`` and ``protocol`` from (``X-Real-Ip``/``X-Scheme``
        applied when ``xheaders`` is on): the current request."""
        return self._request

    def finish(self, trailers: Iterable[tuple[str, str]] | None = None) -> None:
        """End the response; the next pipelined request is handled after this.

        A body shorter than its ``Content-Length`` raises ``HTTPOutputError``
        after closing the connection (the client would wait for the rest).
        """
        if self._closed:
            return
        writer = self._writer
        if writer is None:
            raise RuntimeError("write_head() must come before finish()")
        try:
            data = writer.end(trailers)
        except http1.HTTPOutputError:
            self._end_response()  # the writer no longer keeps alive: closes
            raise
        if data:
            self._send(data)
        self._end_response()

    def when_drained(self) -> defer.Deferred:
        """A Deferred fired when the transport wants more data.

        It fires at once unless the transport's buffer is full; it fails with
        ``StreamClosedError`` if the connection closes first.
        """
        if self._closed:
            return defer.fail(StreamClosedError("connection closed"))
        self._send_pending()
        if not self._write_paused:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(d)
        return d

    def notifyFinish(self) -> defer.Deferred:
        """The current request's ``notifyFinish()`` (cyclone's name)."""
        request = self._request
        if request is None:
            return defer.succeed(None)
        return request.notifyFinish()

    def set_max_body_size(self, size: int) -> None:
        """Body size limit for the current request (call before the body is read)."""
        self._parser.set_max_body_size(size)

    def set_body_timeout(self, seconds: float | None) -> None:
        """Body timeout for the current request."""
        if self._deadline_kind == "body":
            self._set_deadline("body", seconds)

    def take_over(self, new_protocol: protocol.Protocol) -> None:
        """Hand the transport to ``new_protocol`` (after a ``101`` response).

        The HTTP parser steps aside; bytes already received after the request
        are delivered to ``new_protocol`` at once, and from then on
        ``dataReceived`` and ``connectionLost`` go to it.
        """
        rest = self._parser.switch_protocol()
        self._set_deadline(None)
        self._sweeper.unwatch(self)  # the new protocol keeps its own time
        self._send_pending()  # the 101 goes before anything the new protocol writes
        self.transport.unregisterProducer()
        request = self._request
        self._request = None
        self._upgraded = new_protocol
        if request is not None:
            request._notify_finished(None)
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resumeProducing()
        self._forget_http_state()
        new_protocol.makeConnection(self.transport)
        if rest:
            new_protocol.dataReceived(rest)

    # What only HTTP needs: those with a class default fall back to it.
    _HTTP_STATE = ("_parser", "_head", "_delegate", "_message_complete", "_continue_sent", "_blocked",
                   "_start_request", "_decompress", "_deadline", "_deadline_kind", "_pending_size", "_clock")

    def _forget_http_state(self) -> None:
        """An upgraded connection (a WebSocket) may stay open for hours and
        only passes bytes on: drop the parser and the per-request state, and
        rebuild the instance dict at the size of what is left (an idle
        WebSocket costs ~0.4 KiB less)."""
        state = self.__dict__
        for name in self._HTTP_STATE:
            state.pop(name, None)
        self.__dict__ = {name: value for name, value in state.items()}

    def detach(self, new_protocol: protocol.Protocol | None = None) -> Any:
        """Stop all HTTP processing and return the transport (Tornado's
        ``HTTP1Connection.detach``, which returns its IOStream).

        What was written so far is sent first. No response is finished and
        the connection is not closed: the caller owns the transport and
        closes it with ``transport.loseConnection()``. The bytes the peer
        sends from now on (and those already received after the request)
        go to ``new_protocol``, which is connected to the transport as with
        ``take_over()``; without one they are dropped.
        """
        if self._closed or self._upgraded is not None:
            raise RuntimeError("connection already closed or taken over")
        transport = self.transport
        self.take_over(new_protocol if new_protocol is not None else protocol.Protocol())
        return transport

    def _end_response(self) -> None:
        writer = self._writer
        request = self._request
        keep_alive = writer is not None and writer.keep_alive and self._message_complete
        self._request = None
        self._delegate = None
        self._head = None
        if request is not None:
            request._notify_finished(None)
        if writer is not None and writer.switching:
            # The caller hands the transport over with take_over(); one that
            # never does must not hold the connection open forever.
            config = self._config
            self._set_deadline("switch", config.idle_timeout or config.header_timeout or _SWITCH_TIMEOUT)
            return
        if not keep_alive or self.no_keep_alive:
            self._shutdown()
            return
        self._writer = None
        parser = self._parser
        parser.start_next_request()
        if self._reading_paused and not self._blocked:
            self._reading_paused = False
            self.transport.resumeProducing()
        if parser.buffered:
            self._set_deadline("head")
            if not self._processing:
                self._process()
        else:
            self._set_deadline("idle")

    def _close_request(self, reason: str) -> None:
        """The request in flight will get no (further) response."""
        request = self._request
        delegate = self._delegate
        self._request = None
        self._delegate = None
        if delegate is not None:
            try:
                delegate.on_connection_close()
            except Exception:
                app_log.error("Exception in on_connection_close", exc_info=True)
        if request is not None:
            request._notify_finished(reason)

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._set_deadline(None)
        if self._pending is not None:
            self._close_when_sent = True
            return
        self._lose_connection()

    def _lose_connection(self) -> None:
        """``transport.loseConnection()``, with this connection unregistered as
        the transport's producer first: while one is registered, a TLS
        transport never closes, and a TCP one whose producer was paused stays
        open after its buffer drains (Twisted's documented behaviour)."""
        transport = self.transport
        transport.unregisterProducer()  # registered in connectionMade
        transport.loseConnection()

    # -- timeouts ---------------------------------------------------------------------------

    def _set_deadline(self, kind: str | None, seconds: float | None = None) -> None:
        """Set the connection's deadline for ``kind``; None clears it.

        The connection's ``_DeadlineSweeper`` finds it when it has passed.
        """
        if kind is None:
            self._deadline = None
            self._deadline_kind = ""
            return
        if seconds is None:
            config = self._config
            seconds = (
                config.idle_timeout
                if kind == "idle"
                else config.header_timeout if kind == "head" else config.body_timeout
            )
        self._deadline_kind = kind
        self._deadline = self._clock.seconds() + seconds if seconds else None

    def _deadline_passed(self) -> None:
        kind = self._deadline_kind
        self._deadline = None
        if self._closed:
            return
        if kind == "idle":
            self._shutdown()
            return
        if kind == "switch":
            gen_log.info("Closing the connection from %s: its 101 response was not followed "
                         "by take_over()", self.remote_ip)
            self._shutdown()
            return
        gen_log.info("408 Request Timeout from %s: %s timeout", self.remote_ip,
                     "header" if kind == "head" else "body")
        self.reject(408)

    # -- connection loss ---------------------------------------------------------------------

    def readConnectionLost(self) -> None:
        """The peer sends nothing more (a FIN): what was written is sent,
        then the connection closes.

        As with Tornado and twisted.web, a request still being answered is
        told the connection closed (``on_connection_close``): a client that
        has gone cannot be told from one that only half-closed. Without this,
        a response already written but not yet sent would be lost.
        """
        upgraded = self._upgraded
        if upgraded is not None:
            half_closeable = IHalfCloseableProtocol(upgraded, None)
            if half_closeable is not None:
                half_closeable.readConnectionLost()
            else:
                self.transport.loseConnection()
            return
        self._shutdown()

    def writeConnectionLost(self) -> None:
        upgraded = self._upgraded
        if upgraded is not None:
            half_closeable = IHalfCloseableProtocol(upgraded, None)
            if half_closeable is not None:
                half_closeable.writeConnectionLost()

    def connectionLost(self, reason: failure.Failure = protocol.connectionDone) -> None:
        try:
            self._lost(reason)
        finally:
            # after the request was told: Tornado's order
            if self._close_callback is not None:
                callback = self._close_callback
                self._close_callback = None
                try:
                    callback()
                except Exception:
                    app_log.error("Exception in close callback %r", callback, exc_info=True)
            lost = self._config.lost_callback
            if lost is not None:
                lost(self)

    def _lost(self, reason: failure.Failure) -> None:
        upgraded = self._upgraded
        if upgraded is not None:
            self._upgraded = None
            upgraded.connectionLost(reason)
            return
        self._closed = True
        self._deadline = None
        self._pending = None
        self._sweeper.unwatch(self)
        if self._request is not None:
            message = reason.getErrorMessage() if reason is not None else "connection lost"
            self._close_request(message)
        waiters = self._drain_waiters
        if waiters:
            self._drain_waiters = None
            for d in waiters:
                d.errback(StreamClosedError("connection closed"))


class _MessageDelegateAdapter:
    """Serves a Tornado-style ``HTTPMessageDelegate`` through the connection's
    own delegate interface (whose ``headers_received`` takes no arguments)."""

    __slots__ = ("request", "delegate")

    def __init__(self, request: HTTPRequest, delegate: Any) -> None:
        self.request = request
        self.delegate = delegate

    def headers_received(self) -> Any:
        request = self.request
        start_line = RequestStartLine(request.method, request.uri, request.version)
        return _as_deferred(self.delegate.headers_received(start_line, request.headers))

    def data_received(self, chunk: bytes) -> Any:
        return _as_deferred(self.delegate.data_received(chunk))

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()


#: per delegate type: whether its headers_received is Tornado's (start_line, headers)
_TORNADO_MESSAGE_DELEGATE_TYPES: dict[type, bool] = {}


def _is_tornado_message_delegate(delegate: Any) -> bool:
    """Whether ``delegate`` is a Tornado-style ``HTTPMessageDelegate``:
    one subclassing ``httputil.HTTPMessageDelegate``, or whose
    ``headers_received`` requires positional arguments."""
    kind = type(delegate)
    known = _TORNADO_MESSAGE_DELEGATE_TYPES.get(kind)
    if known is not None:
        return known
    from cyclone.httputil import HTTPMessageDelegate

    if isinstance(delegate, HTTPMessageDelegate):
        tornado_style = True
    else:
        tornado_style = False
        method = getattr(delegate, "headers_received", None)
        if method is not None:
            import inspect

            try:
                parameters = inspect.signature(method).parameters.values()
            except (TypeError, ValueError):
                parameters = ()
            tornado_style = any(
                p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
                for p in parameters
            )
    _TORNADO_MESSAGE_DELEGATE_TYPES[kind] = tornado_style
    return tornado_style


def _adapt_message_delegate(request: HTTPRequest, delegate: Any) -> Any:
    """``delegate`` as a cyclone request delegate: a Tornado-style
    ``HTTPMessageDelegate`` (see ``_is_tornado_message_delegate``) is wrapped
    in a ``_MessageDelegateAdapter``; anything else is returned as is."""
    if delegate is None or not _is_tornado_message_delegate(delegate):
        return delegate
    return _MessageDelegateAdapter(request, delegate)


def _as_deferred(result: Any) -> Any:
    """None or a Deferred for what a Tornado-style delegate returned."""
    if result is None or isinstance(result, defer.Deferred):
        return result
    from cyclone.concurrent import ensure_deferred

    return ensure_deferred(result)


class _MissingCertfile(ValueError, KeyError):
    """``ssl_options`` without ``certfile``: a ``ValueError``, and the
    ``KeyError`` Tornado raises."""

    __str__ = BaseException.__str__


#: the keys of a Tornado ``ssl_options`` dict
_SSL_OPTION_KEYS = frozenset(("ssl_version", "certfile", "keyfile", "cert_reqs", "ca_certs", "ciphers"))


@implementer(IOpenSSLServerConnectionCreator)
class _TLSOptions:
    """A pyOpenSSL server context made from a Tornado ``ssl_options`` dict,
    for Twisted's TLS (an ``IOpenSSLServerConnectionCreator``).

    The files are read, and the key checked against the certificate, when it
    is made: a bad option is a ``ValueError`` at once, not at the first
    connection. It negotiates TLS 1.2 or later, without compression.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        import ssl as stdlib_ssl

        from OpenSSL import SSL

        unknown = set(options) - _SSL_OPTION_KEYS
        if unknown:
            raise ValueError(
                f"unknown ssl_options keys {sorted(unknown)}; known: {sorted(_SSL_OPTION_KEYS)}"
            )
        if "certfile" not in options:
            raise _MissingCertfile('missing key "certfile" in ssl_options')
        for key in ("certfile", "keyfile", "ca_certs"):
            path = options.get(key)
            if path is not None and not os.path.exists(path):
                raise ValueError(f'{key} "{path}" does not exist')
        version = options.get("ssl_version")
        if version not in (None, stdlib_ssl.PROTOCOL_TLS_SERVER, stdlib_ssl.PROTOCOL_TLS):
            raise ValueError(
                f"ssl_version {version!r} is not supported: TLS 1.2 or later is negotiated"
            )
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_options(SSL.OP_NO_COMPRESSION)
        context.set_session_id(b"cyclone")  # needed once clients are verified
        certfile = options["certfile"]
        try:
            context.use_certificate_chain_file(certfile)
            context.use_privatekey_file(options.get("keyfile") or certfile)
            context.check_privatekey()
            if options.get("ca_certs"):
                context.load_verify_locations(options["ca_certs"])
            if options.get("ciphers"):
                context.set_cipher_list(options["ciphers"].encode("ascii"))
        except SSL.Error as exc:
            raise ValueError(f"ssl_options: {exc}") from None
        cert_reqs = options.get("cert_reqs", stdlib_ssl.CERT_NONE)
        if cert_reqs == stdlib_ssl.CERT_REQUIRED:
            context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verified)
        elif cert_reqs == stdlib_ssl.CERT_OPTIONAL:
            context.set_verify(SSL.VERIFY_PEER, _verified)
        elif cert_reqs != stdlib_ssl.CERT_NONE:
            raise ValueError(f"cert_reqs must be an ssl.CERT_* value, not {cert_reqs!r}")
        self._context = context

    def getContext(self) -> Any:
        return self._context

    def serverConnectionForTLS(self, tls_protocol: Any) -> Any:
        from OpenSSL import SSL

        return SSL.Connection(self._context, None)


def _verified(connection: Any, certificate: Any, errno: int, depth: int, ok: int) -> bool:
    return bool(ok)  # OpenSSL's own verdict against ca_certs


def _tls_context_factory(ssl_options: Any) -> Any:
    """Twisted's TLS context factory for ``ssl_options``; None for plain HTTP."""
    if ssl_options is None:
        return None
    if isinstance(ssl_options, dict):
        return _TLSOptions(ssl_options)
    import ssl as stdlib_ssl

    if isinstance(ssl_options, stdlib_ssl.SSLContext):
        raise TypeError(
            "ssl_options: an ssl.SSLContext cannot be used, as Twisted's TLS is pyOpenSSL's; give "
            "a dict (certfile, keyfile, ca_certs, cert_reqs, ciphers) or a Twisted context "
            "factory such as twisted.internet.ssl.CertificateOptions"
        )
    if IOpenSSLServerConnectionCreator.providedBy(ssl_options) or hasattr(ssl_options, "getContext"):
        return ssl_options
    raise TypeError(f"ssl_options must be a dict or a Twisted context factory, not {ssl_options!r}")


class HTTPServer(protocol.ServerFactory):
    """Tornado's ``HTTPServer``; also a Twisted ``ServerFactory``
    (``reactor.listenTCP(port, server)``).

    ``request_callback`` is a ``cyclone.web.Application`` (or an object with
    cyclone's ``start_request(connection, request)``), a Tornado-style
    ``httputil.HTTPServerConnectionDelegate``, or a callable taking the
    ``HTTPRequest`` once its body is read (it answers through
    ``request.connection``).

    The keyword arguments are Tornado's (None: the default) and the other
    settings documented in this module; an application's own settings are
    the defaults (so ``Application(xheaders=True)`` is honoured).
    ``ssl_options`` is a dict as Tornado's (``certfile``, ``keyfile``,
    ``ca_certs``, ``cert_reqs``, ``ciphers``, ``ssl_version``) or a Twisted
    context factory; a bad one is an error here, not when serving.
    ``max_buffer_size`` is the default of ``max_body_size``, as in Tornado.

    ``listen``, ``bind``/``start``, ``add_socket(s)`` serve; ``stop()`` stops
    listening; ``close_all_connections()`` closes the connections.
    """

    protocol = HTTPConnection

    def __init__(
        self,
        request_callback: Any,
        no_keep_alive: bool | None = None,
        xheaders: bool | None = None,
        ssl_options: Any = None,
        protocol: str | None = None,
        decompress_request: bool | None = None,
        chunk_size: int | None = None,
        max_header_size: int | None = None,
        idle_connection_timeout: float | None = None,
        body_timeout: float | None = None,
        max_body_size: int | None = None,
        max_buffer_size: int | None = None,
        trusted_downstream: list[str] | None = None,
        **settings: Any,
    ) -> None:
        self.request_callback = request_callback
        connection_class = getattr(request_callback, "protocol", None)
        if isinstance(connection_class, type) and issubclass(connection_class, HTTPConnection):
            self.protocol = connection_class  # an Application subclass's own connection class
        merged = {}
        app_settings = getattr(request_callback, "settings", None)
        if isinstance(app_settings, dict):
            merged.update(app_settings)
        tornado_style = {
            "no_keep_alive": no_keep_alive,
            "xheaders": xheaders,
            "protocol": protocol,
            "decompress_request": decompress_request,
            "chunk_size": chunk_size,
            "max_header_size": max_header_size,
            "idle_connection_timeout": idle_connection_timeout,
            "body_timeout": body_timeout,
            "max_body_size": max_body_size if max_body_size is not None else max_buffer_size,
            "trusted_downstream": trusted_downstream,
        }
        merged.update((k, v) for k, v in tornado_style.items() if v is not None)
        merged.update(settings)  # cyclone's own settings, as given (None disables a timeout)
        self.settings = merged
        ServerConfig(merged)  # a bad setting is an error now
        self.ssl_options = ssl_options
        self._tls = _tls_context_factory(ssl_options)
        self._ports: list[Any] = []
        self._pending_sockets: list[socket.socket] = []
        self._connections: set[HTTPConnection] = set()
        self._all_closed: list[defer.Deferred] = []
        self._tornado_delegate = None
        if _is_tornado_style_delegate(request_callback):
            self._tornado_delegate = request_callback
            self.start_request = self._start_tornado_request
        elif hasattr(request_callback, "start_request"):
            self.start_request = request_callback.start_request

    def __call__(self, request: HTTPRequest) -> Any:
        return self.request_callback(request)

    def _start_tornado_request(self, connection: HTTPConnection, request: HTTPRequest) -> Any:
        delegate = self._tornado_delegate.start_request(connection, connection)
        return _adapt_message_delegate(request, delegate)

    # -- the Twisted factory -------------------------------------------------------------

    def startFactory(self) -> None:
        start = getattr(self.request_callback, "startFactory", None)
        if start is not None:  # an Application's (it bridges the logs)
            start()

    def buildProtocol(self, addr: Any) -> Any:
        connection = protocol.ServerFactory.buildProtocol(self, addr)
        self._connections.add(connection)
        return connection

    def _connection_lost(self, connection: HTTPConnection) -> None:
        """Called by each connection once closed (see ``ServerConfig.lost_callback``)."""
        self._connections.discard(connection)
        if self._tornado_delegate is not None:
            try:
                self._tornado_delegate.on_close(connection)
            except Exception:
                app_log.error("Exception in on_close of %r", self._tornado_delegate, exc_info=True)
        if not self._connections and self._all_closed:
            waiters, self._all_closed = self._all_closed, []
            for d in waiters:
                d.callback(None)

    # -- listening -------------------------------------------------------------------------

    def listen(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = 128,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Serve on ``port`` of ``address`` (None or "": every interface, IPv4
        and IPv6); the arguments are ``cyclone.netutil.bind_sockets``'."""
        from cyclone.netutil import bind_sockets

        self.add_sockets(bind_sockets(port, address, family, backlog, flags, reuse_port))

    def bind(
        self,
        port: int,
        address: str | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = 128,
        flags: int | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Bind the sockets now; ``start()`` serves them."""
        from cyclone.netutil import bind_sockets

        self._pending_sockets.extend(bind_sockets(port, address, family, backlog, flags, reuse_port))

    def start(self, num_processes: int | None = 1, max_restarts: int | None = None) -> None:
        """Serve the sockets of ``bind()`` in this process.

        Only ``num_processes=1``: forking a process that has a reactor is not
        supported (``NotImplementedError``). For several processes, start each
        with ``bind(port, reuse_port=True)`` (or share sockets from
        ``netutil.bind_sockets`` made before they start) and ``start()``.
        """
        if num_processes != 1:
            raise NotImplementedError(
                f"start(num_processes={num_processes!r}): cyclone serves in one process; run one "
                "process per CPU, each with bind(port, reuse_port=True) and start()"
            )
        sockets, self._pending_sockets = self._pending_sockets, []
        self.add_sockets(sockets)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Serve on listening sockets (e.g. from ``netutil.bind_sockets``)."""
        for sock in sockets:
            self.add_socket(sock)

    def add_socket(self, sock: socket.socket) -> None:
        """Serve on a listening socket (TCP or UNIX). The reactor serves a
        copy of it (``adoptStreamPort``): ``sock`` itself is closed."""
        from cyclone.ioloop import ensure_reactor

        reactor = ensure_reactor()
        factory: Any = self
        if self._tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            factory = TLSMemoryBIOFactory(self._tls, False, self)
        try:
            port = reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
        finally:
            sock.close()
        self._ports.append(port)

    @property
    def ports(self) -> list[Any]:
        """The Twisted ports (``IListeningPort``) served."""
        return list(self._ports)

    def getHost(self) -> Any:
        """The address of the first port served (as ``IListeningPort.getHost``,
        for code written when ``Application.listen`` returned the port)."""
        if not self._ports:
            raise RuntimeError("the server is not listening")
        return self._ports[0].getHost()

    def stop(self) -> defer.Deferred:
        """Stop listening; open connections stay (``close_all_connections()``).

        A Deferred fired once every port is closed.
        """
        ports, self._ports = self._ports, []
        for sock in self._pending_sockets:
            sock.close()
        self._pending_sockets = []
        return defer.gatherResults(
            [defer.maybeDeferred(port.stopListening) for port in ports], consumeErrors=True
        ).addCallback(lambda _: None)

    stopListening = stop

    def close_all_connections(self) -> defer.Deferred:
        """Close every open connection (responses under way are cut); a
        Deferred fired once all are closed."""
        d: defer.Deferred = defer.Deferred()
        if not self._connections:
            d.callback(None)
            return d
        self._all_closed.append(d)
        for connection in list(self._connections):
            transport = connection.transport
            if transport is not None:
                transport.abortConnection()
        return d


def _is_tornado_style_delegate(callback: Any) -> bool:
    """A ``httputil.HTTPServerConnectionDelegate`` whose ``start_request``
    takes Tornado's (server_conn, request_conn), not a cyclone Application."""
    from cyclone.httputil import HTTPServerConnectionDelegate

    if not isinstance(callback, HTTPServerConnectionDelegate):
        return False
    from cyclone.web import Application

    return not isinstance(callback, Application)
