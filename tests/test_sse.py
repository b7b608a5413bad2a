"""cyclone.sse over real sockets on 127.0.0.1: sseclient-py over http.client
(clients we did not write) reads the events; raw sockets for what those
clients cannot do (not read, send bytes after the request). Blocking
clients run in a thread (deferToThread) while the reactor serves."""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import socket

import pytest
import pytest_twisted
from sseclient import SSEClient
from twisted.internet import reactor, task, threads

from cyclone import web
from cyclone.sse import EventChannel, SSEHandler, StreamClosedError

from .conftest import parse_responses, poll_until, raw_exchange

inline = pytest_twisted.inlineCallbacks


class Recorder:
    """What the stream handlers of one test saw."""

    def __init__(self, channel: EventChannel | None = None):
        self.calls: list[tuple] = []
        self.handlers: list[SSEHandler] = []
        self.channel = channel if channel is not None else EventChannel()


class Stream(SSEHandler):
    def initialize(self, rec: Recorder):
        self.rec = rec

    def prepare(self):
        if self.get_argument("deny", None):
            raise web.HTTPError(403)

    def bind(self, *args):
        self.rec.calls.append(("bind", args, self.last_event_id))
        self.rec.handlers.append(self)
        if self.get_argument("hello", None):
            self.sendEvent("one\ntwo", event="greeting", eid="1", retry=1500)
            self.send_event({"n": 2}, id=2)
        self.rec.channel.subscribe(self)

    def unbind(self):
        self.rec.calls.append(("unbind",))

    def on_connection_closed(self):
        self.rec.calls.append(("closed",))


class LoginFirst(Stream):
    def get_current_user(self):
        return None

    @web.authenticated
    def bind(self, *args):
        raise AssertionError("not reached")


class AsyncBind(Stream):
    async def bind(self, *args):
        await task.deferLater(reactor, 0, lambda: None)
        if self.get_argument("refuse", None):
            raise web.HTTPError(401)
        await self.send_event("after await")


def make_app(rec: Recorder, **settings) -> web.Application:
    return web.Application(
        [
            (r"/events/(\w*)", Stream, {"rec": rec}),
            (r"/login-first", LoginFirst, {"rec": rec}),
            (r"/async", AsyncBind, {"rec": rec}),
        ],
        login_url="/login",
        **settings,
    )


def open_stream(port: int, path: str, headers: dict | None = None, timeout: float = 10):
    """(connection, response, events iterator) of an http.client request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    return connection, response, SSEClient(response).events()


def read_events(port: int, path: str, count: int, headers: dict | None = None) -> tuple:
    connection, response, events = open_stream(port, path, headers)
    try:
        got = [next(events) for _ in range(count)]
        return response, got
    finally:
        connection.close()


@inline
def test_events_read_by_sseclient_with_the_stream_headers(listen):
    rec = Recorder()
    port = listen(make_app(rec, compress_response=True))
    response, (first, second) = yield threads.deferToThread(
        read_events, port, "/events/room1?hello=1", 2, {"Accept-Encoding": "gzip"}
    )
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("Cache-Control") == "no-cache"
    assert response.getheader("X-Accel-Buffering") == "no"
    assert response.getheader("Transfer-Encoding") == "chunked"
    for absent in ("Content-Length", "Etag", "Content-Encoding"):
        assert response.getheader(absent) is None, absent
    assert (first.event, first.id, first.retry, first.data) == ("greeting", "1", "1500", "one\ntwo")
    assert (second.event, second.id, second.data) == ("message", "2", '{"n": 2}')
    assert rec.calls[0] == ("bind", ("room1",), None)
    # the client closed: noticed, and unbind() follows on_connection_closed()
    yield poll_until(lambda: ("unbind",) in rec.calls)
    assert rec.calls[1:] == [("closed",), ("unbind",)]
    assert len(rec.channel) == 0


@inline
def test_refusals_come_before_the_stream(listen):
    rec = Recorder()
    port = listen(make_app(rec))
    denied = yield threads.deferToThread(
        raw_exchange, port, b"GET /events/x?deny=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    ((status, headers, _),) = parse_responses(denied)
    assert status == 403 and "event-stream" not in headers["Content-Type"]
    login = yield threads.deferToThread(
        raw_exchange, port, b"GET /login-first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    ((status, headers, _),) = parse_responses(login)
    assert status == 302 and headers["Location"] == "/login?next=%2Flogin-first"
    refused = yield threads.deferToThread(
        raw_exchange, port, b"GET /async?refuse=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    ((status, headers, _),) = parse_responses(refused)
    assert status == 401 and "event-stream" not in headers["Content-Type"]
    assert len(rec.channel) == 0  # the refused async stream left its channel
    # once for each bind() called (the redirecting and the refusing one), not
    # for the request refused by prepare()
    assert rec.calls == [("unbind",), ("unbind",)]


@inline
def test_an_async_bind_sends_after_awaiting(listen):
    rec = Recorder()
    port = listen(make_app(rec))
    _, (event,) = yield threads.deferToThread(read_events, port, "/async", 1)
    assert event.data == "after await"


@inline
def test_head_gets_the_stream_head_and_ends(listen):
    rec = Recorder()
    port = listen(make_app(rec))
    data = yield threads.deferToThread(
        raw_exchange, port, b"HEAD /events/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    ((status, headers, body),) = parse_responses(data, methods=["HEAD"])
    assert status == 200 and headers["Content-Type"] == "text/event-stream" and body == b""
    assert "Etag" not in headers
    assert rec.calls == []  # no bind() for HEAD


def read_until(sock: socket.socket, marker: bytes, limit: int = 1 << 20) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > limit:
            raise AssertionError(f"{marker!r} not received; got {data[-300:]!r}")
        data += chunk
    return data


@inline
def test_an_idle_stream_gets_heartbeat_comments(listen):
    rec = Recorder()
    port = listen(make_app(rec, sse_heartbeat_interval=0.05))

    def two_heartbeats():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /events/x HTTP/1.1\r\nHost: a\r\n\r\n")
            data = read_until(sock, b"\r\n\r\n")
            data = read_until(sock, b":\n\n")  # the chunk framing wraps each comment
            return data + read_until(sock, b":\n\n")

    data = yield threads.deferToThread(two_heartbeats)
    assert data.count(b"3\r\n:\n\n\r\n") >= 2


@inline
def test_a_busy_stream_gets_no_heartbeat_in_between(listen):
    rec = Recorder()
    port = listen(make_app(rec, sse_heartbeat_interval=0.2))
    sent = []

    def publish():
        sent.append(rec.channel.publish("busy"))

    def read():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /events/x HTTP/1.1\r\nHost: a\r\n\r\n")
            read_until(sock, b"\r\n\r\n")
            return read_until(sock, b":\n\n")

    loop = task.LoopingCall(publish)
    reading = threads.deferToThread(read)
    yield poll_until(lambda: len(rec.channel) == 1)
    loop.start(0.02)
    yield poll_until(lambda: len(sent) > 25)  # 0.5 s of events every 20 ms: two ticks passed
    loop.stop()
    data = yield reading  # then the stream goes quiet and a heartbeat comes
    # the first heartbeat came after every event: none while events flowed
    assert data[: data.index(b":\n\n")].count(b"data: busy\n\n") == len(sent)


@inline
def test_last_event_id_replays_only_what_was_missed(listen):
    rec = Recorder(EventChannel(history=10))
    port = listen(make_app(rec))
    for n in range(1, 6):
        rec.channel.publish(f"event {n}")

    def reconnect():
        connection, response, events = open_stream(port, "/events/x", {"Last-Event-ID": "3"})
        try:
            replayed = [next(events) for _ in range(2)]
            reactor.callFromThread(rec.channel.publish, "live")
            return replayed + [next(events)]
        finally:
            connection.close()

    got = yield threads.deferToThread(reconnect)
    assert [(e.id, e.data) for e in got] == [("4", "event 4"), ("5", "event 5"), ("6", "live")]
    assert rec.calls[0] == ("bind", ("x",), "3")
    # an id no longer kept: everything kept is sent
    _, got = yield threads.deferToThread(read_events, port, "/events/x", 6, {"Last-Event-ID": "old"})
    assert [e.id for e in got] == ["1", "2", "3", "4", "5", "6"]


@inline
def test_a_broadcast_reaches_1000_concurrent_subscribers(listen):
    rec = Recorder()
    port = listen(make_app(rec, sse_heartbeat_interval=0))
    count = 1000

    def connect_all():
        return [open_stream(port, f"/events/{n}") for n in range(count)]

    streams = yield threads.deferToThread(connect_all)
    try:
        assert all(response.status == 200 for _, response, _ in streams)
        yield poll_until(lambda: len(rec.channel) == count)
        assert rec.channel.publish("to all", event="news", id="b1") == count

        def read_all():
            return [next(events) for _, _, events in streams]

        got = yield threads.deferToThread(read_all)
        assert {(e.event, e.id, e.data) for e in got} == {("news", "b1", "to all")}
        assert len(got) == count
    finally:
        for connection, _, _ in streams:
            connection.close()
    yield poll_until(lambda: len(rec.channel) == 0)
    assert rec.calls.count(("unbind",)) == count


@inline
def test_a_stuck_subscriber_is_cut_off_while_others_go_on(listen, caplog):
    rec = Recorder()
    port = listen(make_app(rec, sse_max_buffer_size=128 * 1024, sse_heartbeat_interval=0))
    caplog.set_level(logging.WARNING, logger="cyclone.general")
    # the stuck client: a small receive buffer, and it never reads
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", port))
    stuck.sendall(b"GET /events/stuck HTTP/1.1\r\nHost: a\r\n\r\n")
    yield poll_until(lambda: len(rec.channel) == 1)
    event = "x" * 16384
    total = 2000  # 32 MiB: far past any socket buffer and the limit

    def read_everything():
        connection, response, events = open_stream(port, "/events/good", timeout=30)
        try:
            for n in range(total):
                got = next(events)
                assert got.data == event and got.id == str(n), (n, got.id)
            return total
        finally:
            connection.close()

    reading = threads.deferToThread(read_everything)
    yield poll_until(lambda: len(rec.channel) == 2)
    good = next(h for h in rec.handlers if h.path_args == ["good"])
    cut_at = None
    for n in range(total):
        rec.channel.publish(event, id=n)
        if cut_at is None and len(rec.channel) == 1:
            cut_at = n
        # keep pace with the reader that reads (the stuck one is never waited for)
        yield good.send_comment()
    assert (yield reading) == total
    stuck.close()
    assert cut_at is not None, "the stuck subscriber was never cut off"
    cut = [r for r in caplog.records if "does not read" in r.getMessage()]
    assert len(cut) == 1 and "/events/stuck" in cut[0].getMessage()
    assert rec.calls.count(("unbind",)) >= 1


@inline
def test_bytes_after_the_request_break_nothing_and_a_close_is_noticed(listen):
    rec = Recorder()
    port = listen(make_app(rec))
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET /events/x HTTP/1.1\r\nHost: a\r\n\r\n")
        yield poll_until(lambda: len(rec.channel) == 1)
        sock.sendall(b"garbage that is no request\r\n\r\nGET / HTTP/1.1\r\n\r\n" + b"z" * 5000)
        rec.channel.publish("still here")
        data = yield threads.deferToThread(read_until, sock, b"data: still here\n\n")
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        sock.close()
    yield poll_until(lambda: ("unbind",) in rec.calls)
    assert ("closed",) in rec.calls and len(rec.channel) == 0


@inline
def test_send_event_after_the_end_fails_and_sendevent_is_quiet(listen):
    rec = Recorder()
    port = listen(make_app(rec))
    _, (event,) = yield threads.deferToThread(read_events, port, "/events/x?hello=1", 1)
    yield poll_until(lambda: ("unbind",) in rec.calls)
    handler = rec.handlers[0]
    assert not handler.stream_open
    with pytest.raises(StreamClosedError):
        yield handler.send_event("too late")
    assert handler.sendEvent("too late") is None


@inline
def test_finish_ends_the_stream_cleanly(listen):
    rec = Recorder()
    port = listen(make_app(rec))

    def read_to_the_end():
        connection, response, events = open_stream(port, "/events/x")
        first = next(events)
        reactor.callFromThread(rec.handlers[0].finish)
        rest = list(events)  # ends: the chunked body is complete
        connection.close()
        return first, rest

    reading = threads.deferToThread(read_to_the_end)
    yield poll_until(lambda: len(rec.channel) == 1)
    yield rec.handlers[0].send_event("last", id="9")
    first, rest = yield reading
    assert (first.id, first.data, rest) == ("9", "last", [])
    assert rec.calls[-1] == ("unbind",) and ("closed",) not in rec.calls


@inline
def test_close_drops_the_connection(listen):
    rec = Recorder()
    port = listen(make_app(rec))

    def read_until_dropped():
        connection, response, events = open_stream(port, "/events/x")
        try:
            list(events)
        except (http.client.IncompleteRead, ConnectionResetError):
            return "dropped"  # an abort: RST, or a FIN in the middle of the chunked body
        finally:
            connection.close()
        return "ended"

    reading = threads.deferToThread(read_until_dropped)
    yield poll_until(lambda: len(rec.channel) == 1)
    rec.handlers[0].close()
    assert (yield reading) == "dropped"
    assert rec.calls.count(("unbind",)) == 1


@inline
def test_send_event_waits_while_the_client_does_not_read(listen):
    rec = Recorder()
    port = listen(make_app(rec, sse_heartbeat_interval=0, sse_max_buffer_size=64 << 20))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(b"GET /events/x HTTP/1.1\r\nHost: a\r\n\r\n")
        yield poll_until(lambda: len(rec.channel) == 1)
        handler = rec.handlers[0]
        big = "y" * 65536
        waits = []
        for _ in range(400):  # 25 MiB: more than the socket buffers take
            d = handler.send_event(big)
            waits.append(d)
            if not d.called:
                break
        assert not waits[-1].called, "the client never pushed back"
        sock.setblocking(False)

        def drain():
            try:
                while sock.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass
            return waits[-1].called

        yield poll_until(drain, timeout=20)
    finally:
        sock.close()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"sse_max_buffer_size": -1}, "sse_max_buffer_size must be"),
        ({"sse_max_buffer_size": "big"}, "sse_max_buffer_size must be"),
        ({"sse_heartbeat_interval": -5}, "sse_heartbeat_interval must be"),
        ({"sse_heartbeat_interval": "15"}, "sse_heartbeat_interval must be"),
    ],
)
@inline
def test_a_bad_setting_is_a_500_that_says_which(listen, caplog, settings, message):
    rec = Recorder()
    port = listen(make_app(rec, **settings))
    data = yield threads.deferToThread(
        raw_exchange, port, b"GET /events/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    ((status, _, _),) = parse_responses(data)
    assert status == 500
    assert any(message in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert len(rec.channel) == 0


def test_event_channel_history_is_bounded_and_replays_in_order():
    channel = EventChannel(history=3)
    for n in range(5):
        assert channel.publish(f"e{n}") == 0  # nobody subscribed yet
    assert [event_id for event_id, _ in channel._history] == ["3", "4", "5"]
    assert channel._missed_after("4") == [b"id: 5\ndata: e4\n\n"]
    assert channel._missed_after("5") == []
    assert len(channel._missed_after("1")) == 3  # too old: everything kept
    with pytest.raises(ValueError):
        EventChannel(history=-1)
    with pytest.raises(ValueError):
        channel.publish("x", id="a\nb")


@inline
def test_unsubscribe_stops_the_events_of_a_channel(listen):
    rec = Recorder()
    other = EventChannel()
    port = listen(make_app(rec))

    def read_two():
        connection, response, events = open_stream(port, "/events/x")
        try:
            return [next(events) for _ in range(2)]
        finally:
            connection.close()

    reading = threads.deferToThread(read_two)
    yield poll_until(lambda: len(rec.channel) == 1)
    handler = rec.handlers[0]
    other.subscribe(handler)
    assert handler in other.subscribers and len(other) == 1
    other.unsubscribe(handler)
    other.unsubscribe(handler)  # twice: no error
    assert other.publish("not for it") == 0
    rec.channel.publish("first")
    other.subscribe(handler)
    other.publish("second")
    got = yield reading
    assert [e.data for e in got] == ["first", "second"]
    yield poll_until(lambda: len(other) == 0)  # removed when its stream ended


_NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            # nginx's defaults: the proxied response is buffered
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
        }}
    }}
}}
"""


@pytest.fixture
def nginx_in_front(tmp_path):
    """``start(upstream_port) -> port`` of an nginx proxying to it, with
    nginx's default buffering (skipped without nginx, except under CI)."""
    from tests.test_plugin import Server, free_port

    program = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if program is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed; CI must run this test")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    servers = []

    def start(upstream: int) -> int:
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(tmp=tmp_path, port=port, upstream=upstream))
        server = Server([program, "-p", str(tmp_path), "-c", str(conf)], tmp_path, tmp_path / "nginx.log")
        servers.append(server)
        server.wait_tcp(port)
        return port

    yield start
    for server in servers:
        server.stop()


@inline
def test_events_pass_nginx_at_once(listen, nginx_in_front):
    rec = Recorder()
    port = nginx_in_front(listen(make_app(rec, sse_heartbeat_interval=0)))

    def read_one_at_a_time():
        connection, response, events = open_stream(port, "/events/x")
        try:
            got = []
            for text in ("one", "two"):
                # each event is published only after the last one arrived
                reactor.callFromThread(rec.channel.publish, text)
                got.append(next(events).data)
            return response.status, got
        finally:
            connection.close()

    reading = threads.deferToThread(read_one_at_a_time)
    status, got = yield reading
    assert (status, got) == (200, ["one", "two"])
