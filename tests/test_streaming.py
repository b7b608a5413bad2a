"""cyclone.streaming over real sockets: write_stream() of generators and
async generators with backpressure, and long polling with cancel_on_close().
http.client and raw sockets are the clients, in a thread."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import zlib

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads

from cyclone import web

from .conftest import parse_responses, poll_until, raw_exchange

inline = pytest_twisted.inlineCallbacks


class Seen:
    def __init__(self):
        self.events: list = []
        self.produced = 0
        self.waiters: list[defer.Deferred] = []
        self.handlers: list = []


class Lines(web.RequestHandler):
    def initialize(self, seen):
        self.seen = seen

    def get(self):
        def lines():
            try:
                for n in range(int(self.get_argument("n", "5"))):
                    yield f"line {n}\n"
            finally:
                self.seen.events.append("lines closed")

        return self.write_stream(lines())


class Endless(web.RequestHandler):
    """64 KiB chunks for ever: only backpressure holds it."""

    def initialize(self, seen):
        self.seen = seen

    def get(self):
        seen = self.seen
        seen.handlers.append(self)

        def chunks():
            try:
                while True:
                    seen.produced += 1
                    yield b"z" * 65536
            finally:
                seen.events.append("endless closed")

        return self.write_stream(chunks())


class Ticks(web.RequestHandler):
    def initialize(self, seen):
        self.seen = seen

    async def get(self):
        seen = self.seen

        async def ticks():
            try:
                for n in range(3):
                    await task.deferLater(reactor, 0.01, lambda: None)
                    yield {"tick": n}
                if self.get_argument("hang", None):
                    waiter = defer.Deferred(lambda d: seen.events.append("wait cancelled"))
                    seen.waiters.append(waiter)
                    await waiter
            finally:
                seen.events.append("ticks closed")

        await self.write_stream(ticks())
        self.write("\nend")


class Paced(web.RequestHandler):
    """Yields "first", then waits for the test before "second"."""

    def initialize(self, seen):
        self.seen = seen

    def get(self):
        self.set_header("Content-Type", "text/plain")
        seen = self.seen

        async def chunks():
            yield "first " * 300  # over gzip's minimum length
            waiter = defer.Deferred()
            seen.waiters.append(waiter)
            await waiter
            yield "second"

        return self.write_stream(chunks())


class NotIterable(web.RequestHandler):
    def get(self):
        return self.write_stream(42)


class Poll(web.RequestHandler):
    """Long polling: waits for the test to publish."""

    def initialize(self, seen):
        self.seen = seen

    async def get(self):
        waiter = defer.Deferred(lambda d: self.seen.events.append("poll cancelled"))
        self.seen.waiters.append(waiter)
        timeout = self.get_argument("timeout", None)
        try:
            messages = await self.cancel_on_close(waiter, timeout=float(timeout) if timeout else None)
        except TimeoutError:
            messages = []
        self.write({"messages": messages})

    def on_connection_close(self):
        self.seen.events.append("client gone")


def make_app(seen: Seen, **settings) -> web.Application:
    kwargs = {"seen": seen}
    return web.Application(
        [
            (r"/lines", Lines, kwargs),
            (r"/endless", Endless, kwargs),
            (r"/ticks", Ticks, kwargs),
            (r"/paced", Paced, kwargs),
            (r"/bad", NotIterable),
            (r"/poll", Poll, kwargs),
        ],
        **settings,
    )


def get(port: int, path: str) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@inline
def test_a_generator_is_streamed_chunk_by_chunk(listen):
    seen = Seen()
    port = listen(make_app(seen))
    raw = yield threads.deferToThread(
        raw_exchange, port, b"GET /lines?n=3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    # each chunk flushed on its own: one chunk of the chunked body per line
    assert raw.endswith(b"7\r\nline 0\n\r\n7\r\nline 1\n\r\n7\r\nline 2\n\r\n0\r\n\r\n")
    ((status, headers, body),) = parse_responses(raw)
    assert (status, body) == (200, b"line 0\nline 1\nline 2\n")
    assert "Content-Length" not in headers and headers["Transfer-Encoding"] == "chunked"
    assert seen.events == ["lines closed"]


@inline
def test_an_async_generator_is_streamed_then_the_method_goes_on(listen):
    seen = Seen()
    port = listen(make_app(seen))
    status, _, body = yield threads.deferToThread(get, port, "/ticks")
    assert status == 200
    assert body == b'{"tick": 0}{"tick": 1}{"tick": 2}\nend'
    assert seen.events == ["ticks closed"]


@pytest.mark.parametrize("gzipped", [False, True])
@inline
def test_each_chunk_reaches_the_client_before_the_next_exists(listen, gzipped):
    seen = Seen()
    port = listen(make_app(seen, compress_response=True))
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    accept = b"Accept-Encoding: gzip\r\n" if gzipped else b""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def body_so_far(data: bytes) -> bytes:
        """The chunked body's bytes in ``data``, decoded as far as they go."""
        body = b""
        rest = data.split(b"\r\n\r\n", 1)[1]
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0 or len(rest) < size + 2:
                break
            body, rest = body + rest[:size], rest[size + 2 :]
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body) if gzipped else body

    def read_first():
        data = b""
        while not (b"\r\n\r\n" in data and b"first " * 300 in body_so_far(data)):
            chunk = sock.recv(65536)
            assert chunk, "closed early"
            data += chunk
        return data

    try:
        sock.sendall(b"GET /paced HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + accept + b"\r\n")
        head = yield threads.deferToThread(read_first)
        assert (b"Content-Encoding: gzip" in head) == gzipped
        assert len(seen.waiters) == 1 and not seen.waiters[0].called  # "second" does not exist yet
        seen.waiters[0].callback(None)
        rest = yield threads.deferToThread(raw_read_all, sock)
    finally:
        sock.close()
    ((status, _, body),) = parse_responses(head + rest)
    if gzipped:
        body = decoder.decompress(body)
    assert (status, body) == (200, ("first " * 300 + "second").encode())


def raw_read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@inline
def test_not_an_iterable_is_a_clear_500(listen, caplog):
    port = listen(make_app(Seen()))
    status, _, _ = yield threads.deferToThread(get, port, "/bad")
    assert status == 500
    assert any("write_stream() takes an iterable" in r.getMessage() or
               (r.exc_info and "write_stream() takes an iterable" in str(r.exc_info[1]))
               for r in caplog.records)


@inline
def test_a_client_that_does_not_read_holds_the_generator(listen, caplog):
    caplog.set_level(logging.INFO)
    seen = Seen()
    port = listen(make_app(seen))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: a\r\n\r\n")
        yield poll_until(lambda: seen.handlers and seen.handlers[0].request.connection._write_paused)
        held_at = seen.produced
        # the socket and the transport hold a few MiB at most: the generator waits
        assert held_at < 200, held_at
        yield task.deferLater(reactor, 0.3, lambda: None)  # time passes, the client still reads nothing
        assert seen.produced == held_at
        sock.setblocking(False)
        received = [0]

        def read_some():
            try:
                while True:
                    data = sock.recv(1 << 20)
                    if not data:
                        break
                    received[0] += len(data)
            except BlockingIOError:
                pass
            return seen.produced > held_at + 50  # reading lets it go on

        yield poll_until(read_some, timeout=20)
    finally:
        sock.close()
    # the client left: the generator is closed, the request ends quietly
    yield poll_until(lambda: "endless closed" in seen.events)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@inline
def test_an_async_generator_waiting_is_cancelled_when_the_client_leaves(listen, caplog):
    seen = Seen()
    port = listen(make_app(seen))
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET /ticks?hang=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        yield poll_until(lambda: seen.waiters)
    finally:
        sock.close()
    yield poll_until(lambda: "ticks closed" in seen.events)
    assert seen.events == ["wait cancelled", "ticks closed"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


SHORT_TIMEOUTS = {"idle_connection_timeout": 0.2, "header_timeout": 0.2, "body_timeout": 0.2}


@inline
def test_a_long_poll_outlives_every_server_timeout(listen):
    seen = Seen()
    port = listen(make_app(seen, **SHORT_TIMEOUTS))
    answer = threads.deferToThread(get, port, "/poll")
    yield poll_until(lambda: seen.waiters)
    yield task.deferLater(reactor, 1.0, lambda: None)  # five times every timeout of the server
    assert not answer.called
    seen.waiters[0].callback(["hello"])
    status, _, body = yield answer
    assert (status, json.loads(body)) == (200, {"messages": ["hello"]})
    assert seen.events == []


@inline
def test_an_abandoned_long_poll_is_cancelled_quietly(listen, caplog):
    seen = Seen()
    port = listen(make_app(seen))
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: a\r\n\r\n")
        yield poll_until(lambda: seen.waiters)
    finally:
        sock.close()
    yield poll_until(lambda: "poll cancelled" in seen.events)
    assert seen.events == ["client gone", "poll cancelled"]
    assert seen.waiters[0].called  # cancelled: whoever would fire it can forget it
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@inline
def test_a_long_poll_with_a_timeout_answers_empty(listen):
    seen = Seen()
    port = listen(make_app(seen))
    status, _, body = yield threads.deferToThread(get, port, "/poll?timeout=0.1")
    assert (status, json.loads(body)) == (200, {"messages": []})
    assert seen.events == ["poll cancelled"]


@inline
def test_cancel_on_close_after_the_client_left_cancels_at_once(listen):
    results = []

    class Late(web.RequestHandler):
        async def get(self):
            self.finish("done")
            waiter = defer.Deferred(lambda d: results.append("cancelled"))
            try:
                await self.cancel_on_close(waiter)
            except Exception as exc:
                results.append(type(exc).__name__)

    port = listen(web.Application([(r"/late", Late)]))
    status, _, body = yield threads.deferToThread(get, port, "/late")
    assert (status, body) == (200, b"done")
    yield poll_until(lambda: len(results) == 2)
    assert results == ["cancelled", "StreamClosedError"]


@inline
def test_a_returned_bare_generator_is_still_inlinecallbacks(listen, caplog):
    class Legacy(web.RequestHandler):
        def get(self):
            value = yield task.deferLater(reactor, 0, lambda: "from a Deferred")
            self.write(value)

    port = listen(web.Application([(r"/legacy", Legacy)]))
    status, _, body = yield threads.deferToThread(get, port, "/legacy")
    assert (status, body) == (200, b"from a Deferred")  # the yielded Deferred was waited on, not written
    (warning,) = [r for r in caplog.records if "returned a generator" in r.getMessage()]
    assert "self.write_stream(generator)" in warning.getMessage()
