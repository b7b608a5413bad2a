"""Server-Sent Events: ``SSEHandler`` streams events to a browser's
``EventSource`` (or any SSE client) over a plain HTTP response.

.. code-block:: python

    channel = cyclone.sse.EventChannel(history=100)

    class Events(cyclone.sse.SSEHandler):
        def bind(self):
            channel.subscribe(self)     # replays what a reconnecting browser missed

    channel.publish({"price": 42}, event="tick")   # to every open stream

A stream runs the normal request path first: ``prepare()``, XSRF and
``@authenticated`` (on ``bind`` or on ``get``), and ``bind(*args, **kwargs)``
(the URL's groups) may still refuse with ``HTTPError``, redirect or finish,
since the response head is sent only when ``bind`` returns (or sends its
first event). Then the stream stays open until the client goes away
(``on_connection_closed()``), the server ends it (``finish()``, after which a
browser reconnects with ``Last-Event-ID``, or ``close()``, which drops the
connection), or the stream is cut off; ``unbind()`` is called once in every
case.

Settings (``Application`` settings, read when a stream opens):

``sse_heartbeat_interval`` (default 15 seconds; 0 or None: none)
    a stream that sent nothing during one interval gets a comment line, so
    proxies and browsers keep an idle stream open. One timer serves all the
    streams of an interval.
``sse_max_buffer_size`` (default 256 KiB)
    the bytes of events a stream may hold while its client does not read
    (beyond what the socket and Twisted's transport hold, about 64 KiB);
    past it the stream is closed and a warning is logged, once per stream.

A bad value of either raises ``ValueError`` when a stream opens (a 500
before the stream's head, with the message in the log).

Bytes the client sends after its request are kept unread (up to 64 KiB,
then reading pauses), never taken as a next request while the stream is
open. The client closing its connection is noticed at once; while reading
is paused, at the next write (a heartbeat at the latest).

Framing is ``cyclone.sse_codec`` (sans-IO).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task

from cyclone import sse_codec
from cyclone.concurrent import ensure_deferred
from cyclone.httpserver import StreamClosedError
from cyclone.log import app_log, gen_log
from cyclone.web import RequestHandler

__all__ = ["EventChannel", "SSEHandler", "StreamClosedError"]

DEFAULT_HEARTBEAT_INTERVAL = 15.0
DEFAULT_MAX_BUFFER_SIZE = 256 * 1024

# stream states
_NEW, _OPEN, _ENDED = 0, 1, 2


def _check_settings(max_buffer_size: Any, interval: Any) -> None:
    if isinstance(max_buffer_size, bool) or not isinstance(max_buffer_size, int) or max_buffer_size < 0:
        raise ValueError(f"sse_max_buffer_size must be a number of bytes >= 0: {max_buffer_size!r}")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float))
                                 or interval < 0):
        raise ValueError(f"sse_heartbeat_interval must be seconds >= 0, or None: {interval!r}")


class SSEHandler(RequestHandler):
    """A ``text/event-stream`` response that stays open.

    Override ``bind()`` (called with the URL's groups) to subscribe the
    stream to a source of events, ``unbind()`` to unsubscribe it; send with
    ``send_event()`` (a Deferred for backpressure) or the original cyclone's
    ``sendEvent()``.
    """

    _stream_state = _NEW
    #: held frames while the transport does not take more (see _send_frame)
    _held: list[bytes] | None = None
    _held_size = 0
    _drain_waiters: list[defer.Deferred] | None = None
    _draining = False
    #: a frame went out since the last heartbeat tick
    _sent_since_tick = False
    _heartbeat: "_HeartbeatTimer | None" = None
    _channels: "list[EventChannel] | None" = None
    _done: defer.Deferred | None = None

    # -- hooks (the original cyclone's API) ------------------------------------------------

    def bind(self, *args: Any, **kwargs: Any) -> Any:
        """Called with the URL's groups once the request passed ``prepare()``;
        may send events, return a Deferred or be a coroutine."""

    def unbind(self) -> None:
        """Called once when the stream ends, however it ends."""

    def on_connection_closed(self) -> None:
        """Called when the client went away (before ``unbind()``)."""

    # -- the request ---------------------------------------------------------------------------

    def get(self, *args: Any, **kwargs: Any) -> Any:
        """Open the stream: ``bind()``, then the head; the Deferred returned
        fires when the stream ends (the request is finished then)."""
        self._done = defer.Deferred()
        self._set_stream_headers()
        result = self.bind(*args, **kwargs)
        if result is not None:
            d = ensure_deferred(result)
            d.addCallback(self._bound)
            return d
        return self._bound(None)

    def head(self, *args: Any, **kwargs: Any) -> None:
        """The stream's head and no body (``get()`` would never end)."""
        self._set_stream_headers()
        self.finish()

    def compute_etag(self) -> None:
        """None: an event stream (or its HEAD) never has an ETag."""
        return None

    def _set_stream_headers(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        # nginx buffers a proxied response unless told not to
        self.set_header("X-Accel-Buffering", "no")
        self._transforms = []  # never gzip: each event must reach the client as sent

    def _bound(self, _: Any) -> Any:
        if self._finished or self._stream_state == _ENDED:
            return None  # bind() answered (redirect, error, finish) or the client left
        if self._stream_state == _NEW:
            self._open()
            self.flush().addErrback(_ignore)  # fails only if closed: on_connection_close says so
        return self._done

    def _open(self) -> None:
        if self._done is None:  # an event sent before get() (from prepare())
            self._done = defer.Deferred()
            self._set_stream_headers()
        settings = self.application.settings
        # the two settings of the module's docstring, with their defaults
        self._max_buffer_size = settings.get("sse_max_buffer_size", DEFAULT_MAX_BUFFER_SIZE)
        interval = settings.get("sse_heartbeat_interval", DEFAULT_HEARTBEAT_INTERVAL)
        _check_settings(self._max_buffer_size, interval)
        self._stream_state = _OPEN
        if interval:
            self._heartbeat = _HeartbeatTimer.of(interval)
            self._heartbeat.add(self)

    @property
    def last_event_id(self) -> str | None:
        """The ``Last-Event-ID`` a reconnecting browser sends: the id of the
        last event it received (None on a first connection)."""
        return self.request.headers.get("Last-Event-ID")

    @property
    def transport(self) -> Any:
        """The connection's Twisted transport (the original cyclone's attribute)."""
        connection = self.request.connection
        return connection.transport if connection is not None else None

    @property
    def stream_open(self) -> bool:
        """Whether events can still be sent."""
        return self._stream_state != _ENDED and not self._finished

    # -- sending -------------------------------------------------------------------------------

    def send_event(
        self,
        data: Any = None,
        event: str | None = None,
        id: str | int | None = None,
        retry: int | None = None,
    ) -> defer.Deferred:
        """Send one event at once: ``data`` str, bytes (UTF-8), dict or list
        (JSON); a message with line breaks becomes several ``data:`` lines.

        The Deferred fires when the client's connection takes more data (wait
        on it to send no faster than the client reads); it fails with
        ``StreamClosedError`` once the stream has ended. ``ValueError`` for an
        ``event`` or ``id`` holding a line break, or a bad ``retry``.
        """
        frame = sse_codec.encode_event(data, event, id, retry)
        return self._send_frame(frame, True)

    def sendEvent(
        self,
        message: Any,
        event: str | None = None,
        eid: str | int | None = None,
        retry: int | None = None,
    ) -> None:
        """The original cyclone's ``send_event``: nothing to wait on, and
        nothing happens once the stream has ended."""
        self._send_frame(sse_codec.encode_event(message, event, eid, retry), False)

    def send_comment(self, text: str = "") -> defer.Deferred:
        """Send a comment line (ignored by EventSource), as ``send_event``."""
        return self._send_frame(sse_codec.encode_comment(text), True)

    def close(self) -> None:
        """Drop the connection at once: the stream ends now (``unbind()``),
        what was not sent is lost, and a browser reconnects. ``finish()``
        ends the stream cleanly instead."""
        transport = self.transport
        if transport is not None and self.stream_open:
            transport.abortConnection()
        self._end_stream()

    def _send_frame(self, frame: bytes, want_deferred: bool) -> defer.Deferred | None:
        """Write ``frame`` through ``flush()``; while the client does not take
        more, hold it here, up to ``sse_max_buffer_size``."""
        if self._stream_state != _OPEN:
            if self._stream_state == _NEW and not self._finished:
                self._open()  # an event sent from bind(): the stream opens with it
            elif want_deferred:
                return defer.fail(StreamClosedError("the event stream has ended"))
            else:
                return None
        if self._finished:
            return defer.fail(StreamClosedError("the event stream has ended")) if want_deferred else None
        self._sent_since_tick = True
        if self._draining:
            held = self._held
            if held is None:
                self._held = [frame]
            else:
                held.append(frame)
            self._held_size += len(frame)
            if self._held_size > self._max_buffer_size:
                self._overflow()
                return defer.fail(StreamClosedError("the client does not read")) if want_deferred else None
        else:
            self._write_buffer.append(frame)
            drained = self.flush()
            if drained.called:
                if drained.result is not None:  # failed: closed, as on_connection_close says
                    drained.addErrback(_ignore)
                return defer.succeed(None) if want_deferred else None
            self._draining = True
            drained.addCallbacks(self._drained, _ignore)
        if not want_deferred:
            return None
        d: defer.Deferred = defer.Deferred()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(d)
        return d

    def _drained(self, _: Any) -> None:
        self._draining = False
        if self._stream_state != _OPEN or self._finished:
            return
        held = self._held
        if held:
            self._held = None
            self._held_size = 0
            self._write_buffer.extend(held)
            drained = self.flush()
            if not drained.called:
                self._draining = True
                drained.addCallbacks(self._drained, _ignore)
                return
            drained.addErrback(_ignore)
        waiters = self._drain_waiters
        if waiters:
            self._drain_waiters = None
            for d in waiters:
                d.callback(None)

    def _overflow(self) -> None:
        gen_log.warning(
            "Closing the event stream of %s: more than %d bytes held for a client that does not read",
            self._request_summary(),
            self._max_buffer_size,
        )
        self._held = None
        self._held_size = 0
        self.close()

    # -- the end ---------------------------------------------------------------------------

    def _after_finish(self) -> None:
        # every way a response ends comes here (finish(), an error cutting the
        # stream short, the client gone while writing)
        super()._after_finish()
        self._end_stream()

    def _on_connection_lost(self) -> None:
        streaming = self._stream_state != _ENDED and not self._finished
        super()._on_connection_lost()  # on_connection_close()
        if streaming:
            try:
                self.on_connection_closed()
            except Exception:
                app_log.error("Exception in on_connection_closed of %r", self.request, exc_info=True)
        self._end_stream()

    def _end_stream(self) -> None:
        """Once, however the stream ends: unsubscribe, ``unbind()``, wake
        the waiters."""
        if self._stream_state == _ENDED:
            return
        self._stream_state = _ENDED
        self._held = None
        if self._heartbeat is not None:
            self._heartbeat.discard(self)
            self._heartbeat = None
        for channel in self._channels or ():
            channel._subscribers.discard(self)
        self._channels = None
        if self._done is not None:  # bind() was called
            try:
                self.unbind()
            except Exception:
                app_log.error("Exception in unbind of %r", self.request, exc_info=True)
        waiters = self._drain_waiters
        if waiters:
            self._drain_waiters = None
            for d in waiters:
                d.errback(StreamClosedError("the event stream has ended"))
        done = self._done
        if done is not None and not done.called:
            done.callback(None)


def _ignore(_: Any) -> None:
    return None


class EventChannel:
    """Streams that get the same events: ``publish()`` frames an event once
    and sends it to every subscriber.

    With ``history=N`` the last N events are kept, and ``subscribe()``
    replays to a reconnecting browser the events after its
    ``Last-Event-ID``: all those kept when that id is no longer among them.
    Events published without an ``id`` then get one (a counter), since
    replay needs ids.
    """

    def __init__(self, history: int = 0) -> None:
        if history < 0:
            raise ValueError(f"history must be >= 0: {history}")
        self._subscribers: set[SSEHandler] = set()
        self._history_size = history
        self._history: list[tuple[str, bytes]] = []
        self._next_id = 1

    @property
    def subscribers(self) -> frozenset[SSEHandler]:
        """The open streams subscribed."""
        return frozenset(self._subscribers)

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self, handler: SSEHandler, last_event_id: str | None = None) -> None:
        """Add ``handler``'s stream (removed when it ends); replay what it
        missed after ``last_event_id`` (default: the handler's)."""
        if not handler.stream_open:
            return
        if handler._channels is None:
            handler._channels = [self]
        elif self not in handler._channels:
            handler._channels.append(self)
        if last_event_id is None:
            last_event_id = handler.last_event_id
        if last_event_id is not None and self._history:
            for frame in self._missed_after(last_event_id):
                handler._send_frame(frame, False)
        self._subscribers.add(handler)

    def unsubscribe(self, handler: SSEHandler) -> None:
        """Remove ``handler``'s stream (no error if it is not subscribed)."""
        self._subscribers.discard(handler)
        if handler._channels is not None and self in handler._channels:
            handler._channels.remove(self)

    def _missed_after(self, last_event_id: str) -> list[bytes]:
        history = self._history
        for index in range(len(history) - 1, -1, -1):
            if history[index][0] == last_event_id:
                return [frame for _, frame in history[index + 1 :]]
        return [frame for _, frame in history]

    def publish(
        self,
        data: Any = None,
        event: str | None = None,
        id: str | int | None = None,
        retry: int | None = None,
    ) -> int:
        """Send an event (as ``SSEHandler.send_event`` takes it) to every
        subscriber; returns how many it was sent to. Nobody waits for slow
        clients: each stream holds what its client has not read, up to
        ``sse_max_buffer_size``."""
        if self._history_size and id is None:
            id = self._next_id
            self._next_id += 1
        frame = sse_codec.encode_event(data, event, id, retry)
        if self._history_size:
            history = self._history
            history.append((str(id), frame))
            if len(history) > self._history_size:
                del history[0]
        return self.publish_frame(frame)

    def publish_frame(self, frame: bytes) -> int:
        """Send bytes already framed (``cyclone.sse_codec``) to every subscriber."""
        subscribers = self._subscribers
        if not subscribers:
            return 0
        count = len(subscribers)
        # a stream that ends while it is sent to leaves the set
        for handler in list(subscribers) if count > 1 else tuple(subscribers):
            handler._send_frame(frame, False)
        return count


class _HeartbeatTimer:
    """One timer for every stream with the same heartbeat interval: each
    tick sends a comment line to the streams that sent nothing since the
    last tick."""

    _timers: dict[float, "_HeartbeatTimer"] = {}

    @classmethod
    def of(cls, interval: float) -> "_HeartbeatTimer":
        timer = cls._timers.get(interval)
        if timer is None:
            timer = cls._timers[interval] = cls(interval)
        return timer

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.streams: set[SSEHandler] = set()
        self._loop: task.LoopingCall | None = None

    def add(self, handler: SSEHandler) -> None:
        self.streams.add(handler)
        if self._loop is None:
            self._loop = task.LoopingCall(self.tick)
            self._loop.start(self.interval, now=False).addErrback(
                lambda f: app_log.error("heartbeat timer failed", exc_info=(f.type, f.value, f.tb))
            )

    def discard(self, handler: SSEHandler) -> None:
        self.streams.discard(handler)
        if not self.streams and self._loop is not None:
            loop, self._loop = self._loop, None
            loop.stop()

    def tick(self) -> None:
        heartbeat = sse_codec.HEARTBEAT
        for handler in list(self.streams):
            if handler._sent_since_tick:
                handler._sent_since_tick = False
            else:
                try:
                    handler._send_frame(heartbeat, False)
                except Exception:
                    app_log.error("Error sending a heartbeat to %r", handler.request, exc_info=True)
                handler._sent_since_tick = False
