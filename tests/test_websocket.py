"""cyclone.websocket over real sockets on 127.0.0.1: the ``websockets``
library as the client (one we did not write), and raw sockets for malformed
handshakes and frames. Blocking clients run in a thread (deferToThread)."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import struct
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from cyclone import web
from cyclone import websocket_codec as wc
from cyclone.websocket import WebSocketClosedError, WebSocketHandler, accept_key

from .conftest import poll_until

inline = pytest_twisted.inlineCallbacks


class Recorder:
    """What the handlers of one test saw."""

    def __init__(self):
        self.events = []
        self.handlers = []
        self.lost = defer.Deferred()

    def lost_once(self, reason):
        self.events.append(("lost", reason.type.__name__))
        if not self.lost.called:
            self.lost.callback(reason.type.__name__)


class Echo(WebSocketHandler):
    def initialize(self, rec, compression=None, subprotocol=None):
        self.rec = rec
        self.compression = compression
        self.subprotocol = subprotocol
        rec.handlers.append(self)

    def get_compression_options(self):
        return self.compression

    def select_subprotocol(self, subprotocols):
        self.rec.events.append(("subprotocols", subprotocols))
        return self.subprotocol

    def open(self, *args):
        self.rec.events.append(("open", args))

    def on_message(self, message):
        self.rec.events.append(("message", message))
        if message == "close-me":
            self.close(4001, "as asked")
            return None
        if message == "boom":
            raise RuntimeError("handler bug")
        return self.write_message(message, binary=isinstance(message, bytes))

    def on_ping(self, data):
        self.rec.events.append(("ping", data))

    def on_pong(self, data):
        self.rec.events.append(("pong", data))

    def on_close(self):
        self.rec.events.append(("on_close", self.close_code, self.close_reason))

    def connectionLost(self, reason):
        self.rec.lost_once(reason)


@pytest.fixture
def serve(listen):
    def _serve(handler=Echo, **settings):
        rec = Recorder()
        kwargs = {"rec": rec}
        for key in ("compression", "subprotocol"):
            if key in settings:
                kwargs[key] = settings.pop(key)
        app = web.Application([(r"/ws/?(\w*)", handler, kwargs)], **settings)
        return listen(app), rec
    return _serve


def in_thread(func, *args, **kwargs):
    return threads.deferToThread(func, *args, **kwargs)


# -- with the websockets library ------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, {}, {"compression_level": 1, "mem_level": 5}])
@inline
def test_echo_text_binary_fragmented(serve, compression):
    port, rec = serve(compression=compression)

    def client():
        with connect(f"ws://127.0.0.1:{port}/ws/abc", compression="deflate") as ws:
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            out = [extensions]
            for message in ["hello", "ünïcødé €", b"\x00\xff" * 50, "x" * 100_000, b"", ""]:
                ws.send(message)
                out.append(ws.recv())
            ws.send(["frag", "men", "ted"])
            out.append(ws.recv())
            ws.send([b"\x01", b"\x02"])
            out.append(ws.recv())
        return out

    out = yield in_thread(client)
    assert out[0] == (None if compression is None else "permessage-deflate")
    assert out[1:] == ["hello", "ünïcødé €", b"\x00\xff" * 50, "x" * 100_000, b"", "", "fragmented", b"\x01\x02"]
    assert ("open", ("abc",)) in rec.events
    yield rec.lost
    assert rec.events[-2:] == [("on_close", 1000, ""), ("lost", "ConnectionDone")]


@inline
def test_pings_both_ways(serve):
    port, rec = serve()

    def client():
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            assert ws.ping(b"from client").wait(5)
            ws.send("sync")
            return ws.recv(timeout=5)

    assert (yield in_thread(client)) == "sync"
    assert ("ping", b"from client") in rec.events

    # the server pings; the client's automatic pong reaches on_pong
    port, rec = serve()
    done = threading.Event()

    def client2():
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            done.wait(5)
            ws.send("x")
            ws.recv(timeout=5)

    d = in_thread(client2)
    yield poll_until(lambda: rec.handlers and rec.handlers[0].ws_connection is not None)
    rec.handlers[0].ping("hi")
    yield poll_until(lambda: ("pong", b"hi") in rec.events)
    done.set()
    yield d


@inline
def test_close_codes_both_ways(serve):
    port, rec = serve()

    def client():
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.close(4000, "client bye")
            return ws.close_code, ws.close_reason

    assert (yield in_thread(client)) == (4000, "")  # the server echoes the code
    yield rec.lost
    assert ("on_close", 4000, "client bye") in rec.events
    assert [e for e in rec.events if e[0] in ("on_close", "lost")] == [
        ("on_close", 4000, "client bye"), ("lost", "ConnectionDone")]

    port, rec = serve()

    def client2():
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send("close-me")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            return info.value.rcvd.code, info.value.rcvd.reason

    assert (yield in_thread(client2)) == (4001, "as asked")
    yield rec.lost
    handler = rec.handlers[0]
    assert handler.close_code == 4001  # what the client answered: websockets echoes the code
    with pytest.raises(WebSocketClosedError):
        handler.write_message("too late")
    with pytest.raises(ValueError):
        handler.close(1005)


@inline
def test_oversized_message_is_1009(serve):
    port, rec = serve(compression={}, websocket_max_message_size=1000)

    def client(compression):
        with connect(f"ws://127.0.0.1:{port}/ws", compression=compression, max_size=None) as ws:
            ws.send("a" * 1000)
            assert ws.recv(timeout=5) == "a" * 1000
            ws.send("a" * 1001)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            return info.value.rcvd.code

    assert (yield in_thread(client, None)) == 1009
    assert (yield in_thread(client, "deflate")) == 1009  # after decompression: 1001 "a" are 10 bytes


@inline
def test_handler_exception_closes_with_1011(serve, caplog):
    port, rec = serve()

    def client():
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send("boom")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            return info.value.rcvd.code

    with caplog.at_level(logging.ERROR):
        assert (yield in_thread(client)) == 1011
    assert "handler bug" in caplog.text


@inline
def test_subprotocols(serve):
    port, rec = serve(subprotocol="beta")

    def client(protocols):
        with connect(f"ws://127.0.0.1:{port}/ws", subprotocols=protocols) as ws:
            return ws.subprotocol

    assert (yield in_thread(client, ["alpha", "beta"])) == "beta"
    assert ("subprotocols", ["alpha", "beta"]) in rec.events
    assert rec.handlers[0].selected_subprotocol == "beta"


class Producer(Echo):
    """Writes 200 messages of 64 KiB, each after the previous one drained."""

    count = 200

    def open(self, *args):
        self.sent = 0
        self.blocked = False
        self.max_buffered = 0
        self.produce()

    def produce(self, _=None):
        while self.sent < self.count:
            d = self.write_message(b"\x00" * 65536, binary=True)
            self.sent += 1
            t = self.ws_connection.transport
            buffered = len(t.dataBuffer) - t.offset + t._tempDataLen
            self.max_buffered = max(self.max_buffered, buffered)
            if not d.called:
                self.blocked = True
                d.addCallback(self.produce)
                return
        self.blocked = False


@inline
def test_slow_reader_backpressure(serve):
    port, rec = serve(Producer)
    go = threading.Event()

    def client():
        # websockets stops reading from its socket when 4 messages wait unread
        with connect(f"ws://127.0.0.1:{port}/ws", max_queue=4, max_size=None) as ws:
            go.wait(10)
            return sum(len(ws.recv(timeout=10)) for _ in range(Producer.count))

    d = in_thread(client)
    yield poll_until(lambda: rec.handlers and getattr(rec.handlers[0], "blocked", False))
    handler = rec.handlers[0]
    for _ in range(50):  # the kernel's buffers may take a little more at first
        sent = handler.sent
        yield task.deferLater(reactor, 0.1, lambda: None)
        if handler.sent == sent:
            break
    assert handler.blocked and handler.sent == sent < Producer.count // 2
    assert handler.max_buffered < 256 * 1024  # bounded by the transport's buffer, not 12.5 MiB
    go.set()
    assert (yield d) == Producer.count * 65536
    assert handler.sent == Producer.count


class Ordered(Echo):
    """on_message returns a Deferred; open is a coroutine that takes a while."""

    async def open(self, *args):
        self.rec.events.append("open-start")
        await task.deferLater(reactor, 0.1, lambda: None)
        self.rec.events.append("open-end")

    def on_message(self, message):
        self.rec.events.append(("start", message))

        def end():
            self.rec.events.append(("end", message))
            return self.write_message(message)

        return task.deferLater(reactor, 0.02, end)


@inline
def test_open_and_on_message_are_waited_for(serve):
    port, rec = serve(Ordered)

    def client():
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            for i in range(3):
                ws.send(str(i))
            return [ws.recv(timeout=5) for _ in range(3)]

    assert (yield in_thread(client)) == ["0", "1", "2"]
    order = [e for e in rec.events if e in ("open-start", "open-end") or (isinstance(e, tuple) and e[0] in ("start", "end"))]
    assert order == ["open-start", "open-end", ("start", "0"), ("end", "0"), ("start", "1"), ("end", "1"),
                     ("start", "2"), ("end", "2")]


class Legacy(WebSocketHandler):
    """The original cyclone's API."""

    def initialize(self, rec):
        self.rec = rec

    def headersReceived(self):
        if self.get_argument("deny", None):
            self.forbidConnection("go away")

    def connectionMade(self, *args):
        self.rec.events.append(("made", args))

    def messageReceived(self, message):
        self.sendMessage({"echo": message})

    def connectionLost(self, reason):
        self.rec.lost_once(reason)


@inline
def test_original_cyclone_api(serve):
    port, rec = serve(Legacy)

    def client():
        with connect(f"ws://127.0.0.1:{port}/ws/x") as ws:
            ws.send("hi")
            return json.loads(ws.recv(timeout=5))

    assert (yield in_thread(client)) == {"echo": "hi"}
    yield rec.lost
    assert rec.events == [("made", ("x",)), ("lost", "ConnectionDone")]
    status, _, body = yield in_thread(raw_handshake, port, path="/ws?deny=1")
    assert status == 403 and body == b"go away"


# -- raw sockets -------------------------------------------------------------------------------------


KEY = base64.b64encode(b"0123456789abcdef").decode()


def handshake_bytes(path="/ws", method="GET", version="HTTP/1.1", **overrides):
    headers = {"Host": "127.0.0.1", "Upgrade": "websocket", "Connection": "keep-alive, Upgrade",
               "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}
    headers.update({k.replace('_', '-'): v for k, v in overrides.items()})
    lines = [f"{method} {path} {version}"] + [f"{k.replace('_', '-')}: {v}" for k, v in headers.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def read_all(sock, rest=b""):
    chunks = [rest]
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def raw_handshake(port, path="/ws", **kwargs):
    """(status, headers, body) of a handshake the server refuses (it closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(handshake_bytes(path, **kwargs))
        status, headers, rest = read_head(sock)
        if status == 101:
            return status, headers, b""
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            rest += sock.recv(4096)
        return status, headers, rest


def raw_frames(port, frames, path="/ws"):
    """Open a WebSocket, send ``frames``, and return what the server sends
    until it closes, parsed with a client-side codec."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(handshake_bytes(path))
        status, headers, rest = read_head(sock)
        assert status == 101, status
        sock.sendall(frames)
        data = read_all(sock, rest)
    return wc.Codec(client=True, max_message_size=None).receive(data)


def masked(opcode, payload=b"", fin=True, rsv=0, mask=True):
    first = (0x80 if fin else 0) | rsv | opcode
    key = b"\x11\x22\x33\x44"
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if mask else payload
    assert len(payload) < 126
    return bytes((first, (0x80 if mask else 0) | len(payload))) + (key if mask else b"") + body


@inline
def test_handshake_response(serve):
    port, rec = serve(compression={})
    status, headers, _ = yield in_thread(raw_handshake, port, Sec_WebSocket_Extensions="permessage-deflate; client_max_window_bits")
    assert status == 101
    assert headers["upgrade"] == "websocket" and headers["connection"] == "Upgrade"
    assert headers["sec-websocket-accept"] == accept_key(KEY) == base64.b64encode(
        __import__("hashlib").sha1(KEY.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
    assert headers["sec-websocket-extensions"] == "permessage-deflate"
    assert "content-length" not in headers and "transfer-encoding" not in headers
    assert "sec-websocket-protocol" not in headers


@pytest.mark.parametrize("kwargs, status", [
    ({"Sec_WebSocket_Version": "8"}, 426),
    ({"Sec_WebSocket_Version": None}, 426),
    ({"Sec_WebSocket_Key": base64.b64encode(b"short").decode()}, 400),
    ({"Sec_WebSocket_Key": "not base64!!!!!!!!!!!!=="}, 400),
    ({"Sec_WebSocket_Key": None}, 400),
    ({"Upgrade": None}, 400),
    ({"Upgrade": "h2c"}, 400),
    ({"Connection": "keep-alive"}, 400),
    ({"version": "HTTP/1.0"}, 400),
    ({"method": "POST"}, 405),
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "http://127.0.0.1"}, 101),
    ({"Origin": "HTTP://127.0.0.1"}, 101),
    ({"Upgrade": "WebSocket", "Connection": "UPGRADE"}, 101),
])
@inline
def test_handshake_validation(serve, kwargs, status):
    port, rec = serve()
    got, headers, body = yield in_thread(raw_handshake, port, **kwargs)
    assert got == status, body
    if status == 426:
        assert headers["sec-websocket-version"] == "13"
    if status == 403:
        assert b"Cross origin" in body
    if status != 101:
        assert not any(e[0] == "open" for e in rec.events)


@inline
def test_plain_get_is_400_with_a_message(serve):
    port, rec = serve()

    def plain():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return read_all(sock)

    data = yield in_thread(plain)
    assert data.startswith(b"HTTP/1.1 400 ") and data.endswith(b'Can "Upgrade" only to "WebSocket".')


@pytest.mark.parametrize("frames, code", [
    (masked(wc.TEXT, b"unmasked", mask=False), 1002),
    (masked(wc.TEXT, b"x", rsv=0x40), 1002),
    (masked(0x3), 1002),
    (masked(wc.PING, b"x", fin=False), 1002),
    (masked(wc.CLOSE, struct.pack("!H", 1005)), 1002),
    (masked(wc.CLOSE, struct.pack("!H", 999)), 1002),
    (masked(wc.CLOSE, b"\x03"), 1002),
    (masked(wc.TEXT, b"\xce\xba\xf4\x90\x80\x80"), 1007),
    (masked(wc.CLOSE, struct.pack("!H", 1000) + b"\xff"), 1007),
])
@inline
def test_malformed_frames_close_with_a_code(serve, caplog, frames, code):
    port, rec = serve()
    with caplog.at_level(logging.INFO, logger="cyclone.general"):
        events = yield in_thread(raw_frames, port, masked(wc.TEXT, b"before") + frames)
    assert events[0].data == "before"
    assert type(events[-1]) is wc.Close and events[-1].code == code
    assert "WebSocket protocol error" in caplog.text
    assert "Traceback" not in caplog.text
    yield rec.lost


@inline
def test_close_handshake_on_raw_socket(serve):
    port, rec = serve()
    events = yield in_thread(raw_frames, port, masked(wc.PING, b"p") + masked(wc.CLOSE, struct.pack("!H", 1001) + b"bye"))
    assert [type(e) for e in events] == [wc.Pong, wc.Close]
    assert events[0].data == b"p" and events[1].code == 1001
    yield rec.lost
    assert ("on_close", 1001, "bye") in rec.events


@inline
def test_empty_close_is_answered_with_an_empty_close(serve):
    port, rec = serve()
    events = yield in_thread(raw_frames, port, masked(wc.CLOSE))
    assert len(events) == 1 and events[0].code == 1005  # no code came back
    yield rec.lost
    assert rec.handlers[0].close_code is None


@inline
def test_tcp_drop_calls_connection_lost_once(serve):
    port, rec = serve()

    def drop():
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(handshake_bytes())
        assert read_head(sock)[0] == 101
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
        sock.close()

    yield in_thread(drop)
    yield rec.lost
    yield task.deferLater(reactor, 0.05, lambda: None)
    assert [e for e in rec.events if e[0] in ("on_close", "lost")] == [("on_close", None, None), ("lost", "ConnectionLost")]
    assert rec.handlers[0].ws_connection is None


@inline
def test_peer_that_stops_answering_pings_is_closed(serve):
    port, rec = serve(websocket_ping_interval=0.1, websocket_ping_timeout=0.1)

    def silent():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(handshake_bytes())
            status, _, rest = read_head(sock)
            return wc.Codec(client=True).receive(read_all(sock, rest))  # never answers

    events = yield in_thread(silent)
    assert type(events[0]) is wc.Ping
    assert type(events[-1]) is wc.Close and events[-1].code == 1001
    yield rec.lost


@inline
def test_peer_answering_pings_stays_open(serve):
    port, rec = serve(websocket_ping_interval=0.05)

    def client():
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            import time
            deadline = time.monotonic() + 0.4
            while time.monotonic() < deadline:  # several ping intervals, answered in the background
                ws.send("still here")
                assert ws.recv(timeout=5) == "still here"
            return ws.close_code

    assert (yield in_thread(client)) is None  # not closed while in use
    assert sum(1 for e in rec.events if e[0] == "pong") >= 2


# -- the close timeout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0.2, 0.3])
@inline
def test_peer_that_never_answers_our_close_is_cut_off(serve, caplog, timeout):
    """``websocket_close_timeout``: after our close frame the peer gets that
    long to answer; this one reads the close frame and stays silent, with
    its socket open. The log line names the timeout used (so the setting,
    not the 5 s default, is what cut it off), and the client sees the TCP
    connection end well before the default would have ended it."""
    caplog.set_level(logging.INFO, logger="cyclone.general")
    port, rec = serve(websocket_close_timeout=timeout)

    def silent():
        # the socket's own timeout (3 s) is below the 5 s default: with the
        # default, recv() would raise socket.timeout and the test would fail
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(handshake_bytes() + masked(wc.TEXT, b"close-me"))
            status, _, rest = read_head(sock)
            assert status == 101
            try:
                data = read_all(sock, rest)
            except ConnectionResetError:
                data = None  # the server aborted: what it sent may be lost with the reset
            return data

    data = yield in_thread(silent)
    if data is not None:
        events = wc.Codec(client=True).receive(data)
        assert type(events[-1]) is wc.Close and events[-1].code == 4001
    yield rec.lost
    assert f"no close within {timeout}s" in caplog.text
    assert ("on_close", None, None) in rec.events  # the peer never sent a code


def test_close_timeout_setting_default_and_off():
    app = web.Application([(r"/ws", Echo, {"rec": Recorder()})])
    from cyclone.httputil import HTTPServerRequest

    request = HTTPServerRequest(method="GET", uri="/ws")
    assert Echo(app, request, rec=Recorder()).close_timeout == 5.0
    app.settings["websocket_close_timeout"] = 0
    assert Echo(app, request, rec=Recorder()).close_timeout is None  # waits for ever
    app.settings["websocket_close_timeout"] = 1.5
    assert Echo(app, request, rec=Recorder()).close_timeout == 1.5


# -- memory per idle connection --------------------------------------------------------------------


class Idle(WebSocketHandler):
    def initialize(self, opened):
        self.opened = opened

    def get_compression_options(self):
        return {}

    def open(self):
        self.opened.append(self)

    def on_message(self, message):
        return self.write_message(message)


@inline
def test_idle_connections_hold_no_per_connection_buffers(listen):
    """200 idle WebSockets with permessage-deflate negotiated, measured with
    tracemalloc in this process. About 4 KB each today (the transport, the
    HTTP request, the handler, the codec); the bound (8 KiB) is generous,
    but a zlib compressor made per connection (~260 KiB) or a decompressor
    (~7 KiB) would break it, as would a per-connection read buffer."""
    import gc
    import tracemalloc

    count = 200
    opened = []
    port = listen(web.Application([(r"/ws", Idle, {"opened": opened})]))
    offer = {"Sec_WebSocket_Extensions": "permessage-deflate; client_max_window_bits"}

    def open_sockets(socks):
        for sock in socks:
            sock.settimeout(10)
            sock.connect(("127.0.0.1", port))
            sock.sendall(handshake_bytes(**offer))
            status, headers, rest = read_head(sock)
            assert status == 101 and headers["sec-websocket-extensions"].startswith("permessage-deflate")
            assert rest == b""

    # a few first, so that caches filled once (header names, handler class
    # data) are not counted
    warm = [socket.socket() for _ in range(5)]
    yield in_thread(open_sockets, warm)
    yield poll_until(lambda: len(opened) == 5)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    socks = [socket.socket() for _ in range(count)]  # the client's sockets are not the server's cost
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        yield in_thread(open_sockets, socks)
        yield poll_until(lambda: len(opened) == 5 + count, timeout=30)
        gc.collect()
        per_connection = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        if started:
            tracemalloc.stop()
    try:
        assert per_connection < 8 * 1024, f"{per_connection:.0f} bytes per idle WebSocket"
        # and they work: the last one echoes (compressed: messages may go
        # uncompressed, the server's come compressed)
        def echo(sock):
            sock.sendall(wc.Codec(client=True).message("still here"))
            data = b""
            while len(data) < 2 or len(data) < 2 + (data[1] & 0x7F):
                data += sock.recv(4096)
            return data

        reply = yield in_thread(echo, socks[-1])
        assert reply[0] & 0x40  # RSV1: the echo was compressed
    finally:
        for sock in warm + socks:
            sock.close()
    yield poll_until(lambda: all(h.ws_connection is None for h in opened))
