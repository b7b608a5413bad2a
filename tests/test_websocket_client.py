"""cyclone's WebSocket client (``cyclone.websocket.websocket_connect``) over
real sockets on 127.0.0.1: against cyclone's own server, against the
``websockets`` library's server (a peer we did not write, in a thread), and
against raw sockets for broken or silent servers."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
import types

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, ssl, threads
from websockets.sync.server import serve as ws_serve

from cyclone import web
from cyclone import websocket_codec as wc
from cyclone.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketHandler,
    WebSocketHandshakeError,
    WebSocketTimeoutError,
    websocket_connect,
)

from .conftest import poll_until

inline = pytest_twisted.inlineCallbacks


class Recorder:
    def __init__(self):
        self.events = []
        self.handlers = []
        self.closed = defer.Deferred()


class Server(WebSocketHandler):
    """Echoes; a few commands make it do something else."""

    def initialize(self, rec, compression=None, subprotocol=None, greet=()):
        self.rec = rec
        self.compression = compression
        self.subprotocol = subprotocol
        self.greet = greet
        rec.handlers.append(self)

    def check_origin(self, origin):
        return origin != "http://evil.example"

    def get_compression_options(self):
        return self.compression

    def select_subprotocol(self, subprotocols):
        self.rec.events.append(("subprotocols", subprotocols))
        return self.subprotocol if self.subprotocol in subprotocols else None

    def open(self):
        self.rec.events.append(("headers", dict(self.request.headers.get_all())))
        for message in self.greet:
            self.write_message(message, binary=isinstance(message, bytes))

    def on_message(self, message):
        self.rec.events.append(("message", message))
        if message == "close-me":
            self.close(4001, "as asked")
            return None
        if isinstance(message, str) and message.startswith("big:"):
            return self.write_message("x" * int(message[4:]))
        return self.write_message(message, binary=isinstance(message, bytes))

    def on_ping(self, data):
        self.rec.events.append(("ping", data))

    def on_pong(self, data):
        self.rec.events.append(("pong", data))

    def on_close(self):
        self.rec.events.append(("on_close", self.close_code, self.close_reason))
        self.rec.closed.callback((self.close_code, self.close_reason))


@pytest.fixture
def serve(listen):
    def _serve(**kwargs):
        rec = Recorder()
        settings = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith("websocket_")}
        app = web.Application([(r"/ws", Server, dict(rec=rec, **kwargs))], **settings)
        return f"ws://127.0.0.1:{listen(app)}/ws", rec
    return _serve


# -- against cyclone's server ---------------------------------------------------------------------


@inline
def test_text_binary_json_and_order(serve):
    url, rec = serve()
    conn = yield websocket_connect(url)
    assert isinstance(conn, WebSocketClientConnection)
    for message in ["hello", "ünïcødé €", "", b"", b"\x00\xff" * 40_000, "y" * 200_000]:
        yield conn.write_message(message, binary=isinstance(message, bytes))
        echoed = yield conn.read_message()
        assert echoed == message and type(echoed) is type(message)
    conn.write_message({"a": [1, 2]})
    assert (yield conn.read_message()) == '{"a": [1, 2]}'
    # several in flight come back in order, kept until read
    for i in range(20):
        conn.write_message(str(i))
    yield poll_until(lambda: len([e for e in rec.events if e[0] == "message"]) == 27)
    got = []
    for _ in range(20):
        got.append((yield conn.read_message()))
    assert got == [str(i) for i in range(20)]
    assert conn.selected_subprotocol is None
    assert conn.headers["Upgrade"] == "websocket"
    conn.close()
    yield rec.closed


@inline
def test_messages_before_read_message_are_kept(serve):
    url, rec = serve(greet=("one", b"two", "three"))
    conn = yield websocket_connect(url)
    yield poll_until(lambda: len(conn._messages) >= 1)
    # one message waits unread: the client reads no further meanwhile
    assert len(conn._messages) == 1 and conn.protocol._reading_paused
    assert (yield conn.read_message()) == "one"
    assert (yield conn.read_message()) == b"two"
    assert (yield conn.read_message()) == "three"
    conn.close(1000)
    assert (yield conn.read_message()) is None
    assert (yield conn.read_message()) is None


@inline
def test_on_message_callback_gets_messages_then_none(serve):
    url, rec = serve(greet=("hi",))
    got = []
    done = defer.Deferred()

    def callback(message):
        got.append(message)
        if message is None:
            done.callback(None)
        elif message == "hi":
            conn_holder[0].write_message("close-me")

    conn_holder = []
    d = websocket_connect(url, on_message_callback=callback)
    d.addCallback(conn_holder.append)
    yield d
    yield done
    assert got == ["hi", None]
    assert conn_holder[0].close_code == 4001 and conn_holder[0].close_reason == "as asked"


@pytest.mark.parametrize(
    "client_options, server_options, response, params",
    [
        ({}, {}, "permessage-deflate", dict(local_max_window_bits=15, remote_max_window_bits=15)),
        ({"client_max_window_bits": 10, "server_no_context_takeover": True, "compression_level": 1}, {},
         "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
         dict(local_max_window_bits=10, remote_no_context_takeover=True)),
        ({"server_max_window_bits": 9}, {"client_no_context_takeover": True},
         "permessage-deflate; client_no_context_takeover; server_max_window_bits=9",
         dict(local_no_context_takeover=True, remote_max_window_bits=9)),
    ],
)
@inline
def test_compression_negotiated(serve, client_options, server_options, response, params):
    url, rec = serve(compression=server_options)
    conn = yield websocket_connect(url, compression_options=client_options)
    assert conn.headers["Sec-WebSocket-Extensions"] == response
    deflate = conn.protocol.codec.deflate
    assert deflate is not None
    for name, value in params.items():
        assert getattr(deflate, name) == value, name
    sent = []
    write = conn.protocol._write  # what goes to the socket (straight, or through transport.write)
    conn.protocol._write = lambda data: (sent.append(len(data)), write(data))
    for message in ["abc" * 10_000, b"\x01" * 70_000, "ünï" * 3, "abc" * 10_000]:
        conn.write_message(message, binary=isinstance(message, bytes))
        assert (yield conn.read_message()) == message
    assert sent[0] < 1000  # compressed on the wire
    conn.close()
    yield rec.closed


@inline
def test_no_compression_unless_asked(serve):
    url, rec = serve(compression={})
    conn = yield websocket_connect(url)
    assert "Sec-WebSocket-Extensions" not in conn.headers
    assert conn.protocol.codec.deflate is None
    conn.write_message("plain")
    assert (yield conn.read_message()) == "plain"
    conn.close()
    yield rec.closed


@inline
def test_pings_both_ways(serve):
    url, rec = serve()
    conn = yield websocket_connect(url)
    pongs = []
    conn.on_pong = pongs.append
    conn.ping(b"from client")
    conn.ping("text too")
    with pytest.raises(ValueError):
        conn.ping(b"x" * 126)
    yield poll_until(lambda: len(pongs) == 2)
    assert pongs == [b"from client", b"text too"]
    assert ("ping", b"from client") in rec.events

    pings = []
    conn.on_ping = pings.append
    rec.handlers[0].ping(b"from server")
    yield poll_until(lambda: ("pong", b"from server") in rec.events)  # answered on its own
    assert pings == [b"from server"]
    conn.close()
    yield rec.closed


@inline
def test_keepalive_pings(serve):
    url, rec = serve()
    conn = yield websocket_connect(url, ping_interval=0.02, ping_timeout=5)
    yield poll_until(lambda: sum(1 for e in rec.events if e == ("ping", b"")) >= 3)
    assert conn.close_code is None and not conn._lost  # answered: still open
    conn.close()
    yield rec.closed


@inline
def test_close_from_client(serve):
    url, rec = serve()
    conn = yield websocket_connect(url)
    conn.close(4000, "client bye")
    assert (yield rec.closed) == (4000, "client bye")
    assert (yield conn.read_message()) is None
    assert conn.close_code == 4000  # the server echoes the code
    with pytest.raises(WebSocketClosedError):
        conn.write_message("too late")
    with pytest.raises(WebSocketClosedError):
        conn.ping()
    with pytest.raises(ValueError):
        conn.close(1005)
    conn.close()  # closing again does nothing


@inline
def test_close_from_server(serve):
    url, rec = serve()
    conn = yield websocket_connect(url)
    pending = conn.read_message()
    conn.write_message("close-me")
    assert (yield pending) is None
    assert (conn.close_code, conn.close_reason) == (4001, "as asked")
    assert (yield rec.closed) == (4001, "")  # our client echoed the code


@inline
def test_close_without_code(serve):
    url, rec = serve()
    conn = yield websocket_connect(url)
    conn.close()
    assert (yield rec.closed) == (None, None)
    assert (yield conn.read_message()) is None
    assert conn.close_code is None


@pytest.mark.parametrize("compression", [None, {}])
@inline
def test_oversized_message_is_1009(serve, compression):
    url, rec = serve(compression={})
    conn = yield websocket_connect(url, max_message_size=1000, compression_options=compression)
    conn.write_message("big:1000")
    assert (yield conn.read_message()) == "x" * 1000
    conn.write_message("big:1001")
    assert (yield conn.read_message()) is None
    assert (yield rec.closed) == (1009, "message too big" + (" after decompression" if compression is not None else ""))


@inline
def test_subprotocol_selection(serve):
    url, rec = serve(subprotocol="beta")
    conn = yield websocket_connect(url, subprotocols=["alpha", "beta"])
    assert conn.selected_subprotocol == "beta"
    assert ("subprotocols", ["alpha", "beta"]) in rec.events
    conn.close()
    yield rec.closed

    url, rec = serve(subprotocol="beta")
    conn = yield websocket_connect(url, subprotocols=["gamma"])
    assert conn.selected_subprotocol is None
    conn.close()
    yield rec.closed
    with pytest.raises(ValueError):
        websocket_connect(url, subprotocols=["bad value"])


@inline
def test_extra_headers_and_request_object(serve):
    url, rec = serve()
    conn = yield websocket_connect(url, headers={"X-Token": "abc", "Cookie": "a=1"})
    conn.close()
    yield rec.closed
    headers = rec.events[0][1]
    assert headers["X-Token"] == "abc" and headers["Cookie"] == "a=1"
    assert headers["Host"] == url.split("/")[2]
    assert headers["Sec-Websocket-Version"] == "13"
    assert len(base64.b64decode(headers["Sec-Websocket-Key"])) == 16

    # a Tornado-style request object: its url and headers are used
    url, rec = serve()
    request = types.SimpleNamespace(url=url, headers={"X-From": "request"}, connect_timeout=5)
    conn = yield websocket_connect(request)
    conn.close()
    yield rec.closed
    assert rec.events[0][1]["X-From"] == "request"

    from cyclone.testing.httpclient import HTTPRequest

    url, rec = serve()
    conn = yield websocket_connect(HTTPRequest(url, headers={"X-From": "cyclone.testing"}))
    conn.close()
    yield rec.closed
    assert rec.events[0][1]["X-From"] == "cyclone.testing"

    with pytest.raises(ValueError):
        websocket_connect(url, headers={"X-Bad": "a\r\nInjected: 1"})
    with pytest.raises(ValueError):
        websocket_connect("ftp://127.0.0.1/")


@inline
def test_fresh_key_per_connection(serve):
    url, rec = serve()
    keys = []
    for _ in range(2):
        conn = yield websocket_connect(url)
        conn.close()
        yield poll_until(lambda: conn._lost)
    keys = [e[1]["Sec-Websocket-Key"] for e in rec.events if e[0] == "headers"]
    assert len(keys) == 2 and keys[0] != keys[1]


@inline
def test_refused_handshakes_carry_the_status(serve):
    url, rec = serve()
    with pytest.raises(WebSocketHandshakeError) as info:
        yield websocket_connect(url, headers={"Origin": "http://evil.example"})
    assert info.value.code == 403
    assert b"Cross origin" in info.value.body
    assert "403" in str(info.value)

    with pytest.raises(WebSocketHandshakeError) as info:
        yield websocket_connect(url + "/nowhere")
    assert info.value.code == 404


# -- raw servers that misbehave ---------------------------------------------------------------------


def raw_server(answer):
    """A one-connection server in a thread: reads the request head, calls
    ``answer(request_head, sock)``. Returns (port, Deferred of its result)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)

    def run():
        try:
            sock, _ = listener.accept()
        finally:
            listener.close()
        with sock:
            sock.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
            return answer(head, sock)

    return listener.getsockname()[1], threads.deferToThread(run)


def accept_for(head):
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "sec-websocket-key":
            return base64.b64encode(hashlib.sha1(value.strip().encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
    raise AssertionError("no key")


def read_until_closed(sock):
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


@pytest.mark.parametrize(
    "response, code, fragment",
    [
        (lambda a: f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Accept: {base64.b64encode(b'x' * 20).decode()}\r\n\r\n", 101, "Accept"),
        (lambda a: f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {a}\r\n\r\n",
         101, "Upgrade"),
        (lambda a: f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Accept: {a}\r\nSec-WebSocket-Protocol: other\r\n\r\n", 101, "subprotocol"),
        (lambda a: f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Accept: {a}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
         101, "extension"),
        (lambda a: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "OK"),
        (lambda a: "HTTP/1.1 503 Busy\r\n\r\n", 503, "Busy"),
    ],
)
@inline
def test_bad_handshake_responses(response, code, fragment):
    def answer(head, sock):
        sock.sendall(response(accept_for(head)).encode())
        return read_until_closed(sock)

    port, served = raw_server(answer)
    with pytest.raises(WebSocketHandshakeError) as info:
        yield websocket_connect(f"ws://127.0.0.1:{port}/", connect_timeout=10)
    assert info.value.code == code
    assert fragment in str(info.value)
    yield served  # the client closed the connection
    if code == 200:
        assert info.value.body == b"hello"


@inline
def test_connection_closed_during_handshake():
    port, served = raw_server(lambda head, sock: None)
    with pytest.raises(WebSocketClosedError):
        yield websocket_connect(f"ws://127.0.0.1:{port}/", connect_timeout=10)
    yield served


@inline
def test_connect_timeout_against_a_silent_server():
    # the kernel accepts the connection (backlog); nobody ever answers
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        started = reactor.seconds()
        with pytest.raises(WebSocketTimeoutError) as info:
            yield websocket_connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", connect_timeout=0.2)
        assert isinstance(info.value, TimeoutError)
        assert 0.2 <= reactor.seconds() - started < 5
    finally:
        listener.close()


@inline
def test_connection_refused():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with pytest.raises(Exception) as info:
        yield websocket_connect(f"ws://127.0.0.1:{port}/", connect_timeout=5)
    assert "refused" in str(info.value).lower()


@inline
def test_cancelling_the_connect(serve):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
        d = websocket_connect(url, connect_timeout=10)
        d.cancel()  # while connecting
        with pytest.raises(defer.CancelledError):
            yield d
        d = websocket_connect(url, connect_timeout=10)
        yield poll_until(lambda: _tcp_connected(listener))
        d.cancel()  # during the handshake
        with pytest.raises(defer.CancelledError):
            yield d
    finally:
        listener.close()


def _tcp_connected(listener):
    import select
    return bool(select.select([listener], [], [], 0)[0])  # a connection waits to be accepted


@inline
def test_server_that_stops_answering_pings_is_closed():
    def answer(head, sock):
        sock.sendall((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_for(head)}\r\n\r\n").encode())
        return wc.Codec(client=False).receive(read_until_closed(sock))  # never answers

    port, served = raw_server(answer)
    conn = yield websocket_connect(f"ws://127.0.0.1:{port}/", ping_interval=0.05, ping_timeout=0.05)
    assert (yield conn.read_message()) is None  # closed by the client
    events = yield served
    assert type(events[0]) is wc.Ping
    assert type(events[-1]) is wc.Close and events[-1].code == 1001


@inline
def test_masked_frame_from_server_fails_with_1002():
    def answer(head, sock):
        sock.sendall((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_for(head)}\r\n\r\n").encode()
                     + wc.Codec(client=True).message("masked"))  # a client's frame, from the server
        return wc.Codec(client=False).receive(read_until_closed(sock))

    port, served = raw_server(answer)
    conn = yield websocket_connect(f"ws://127.0.0.1:{port}/")
    assert (yield conn.read_message()) is None
    events = yield served
    assert type(events[-1]) is wc.Close and events[-1].code == 1002


@inline
def test_frames_right_after_the_101_are_read():
    def answer(head, sock):
        server = wc.Codec(client=False)
        sock.sendall((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_for(head)}\r\n\r\n").encode()
                     + server.message("first") + server.message(b"second") + server.close(1000, "done"))
        events = []
        while not events or type(events[-1]) is not wc.Close:
            events += server.receive(sock.recv(65536))
        got_close.append(events)
        assert release.wait(10)
        return events  # and the server closes TCP first, as RFC 6455 says

    got_close, release = [], threading.Event()
    port, served = raw_server(answer)
    conn = yield websocket_connect(f"ws://127.0.0.1:{port}/")
    assert (yield conn.read_message()) == "first"
    assert (yield conn.read_message()) == b"second"
    last = conn.read_message()
    yield poll_until(lambda: got_close)
    assert type(got_close[0][-1]) is wc.Close and got_close[0][-1].code == 1000  # echoed
    assert (conn.close_code, conn.close_reason) == (1000, "done")
    assert not last.called and not conn._lost  # the client waits for the server to close TCP
    release.set()
    assert (yield last) is None
    yield served


# -- wss ------------------------------------------------------------------------------------------------


@pytest.fixture
def serve_tls(self_signed):
    cert, key = self_signed
    ports = []

    def _serve():
        rec = Recorder()
        app = web.Application([(r"/ws", Server, dict(rec=rec))])
        port = reactor.listenSSL(0, app, ssl.DefaultOpenSSLContextFactory(key, cert), interface="127.0.0.1")
        ports.append(port)
        return f"wss://127.0.0.1:{port.getHost().port}/ws", rec

    yield _serve, cert
    for port in ports:
        pytest_twisted.blockon(port.stopListening())


@inline
def test_wss_with_a_self_signed_certificate(serve_tls):
    serve, cert = serve_tls
    url, rec = serve()
    conn = yield websocket_connect(url, ca_certs=cert)
    conn.write_message("over tls" * 10_000)
    assert (yield conn.read_message()) == "over tls" * 10_000
    conn.close(4002, "tls bye")
    assert (yield rec.closed) == (4002, "tls bye")
    assert (yield conn.read_message()) is None
    assert rec.handlers[0].request.protocol == "https"

    url, rec = serve()
    conn = yield websocket_connect(url, validate_cert=False)
    conn.write_message(b"unchecked", binary=True)
    assert (yield conn.read_message()) == b"unchecked"
    conn.close()
    yield rec.closed

    url, rec = serve()
    conn = yield websocket_connect(url, ssl_options=ssl.optionsForClientTLS(
        "localhost", trustRoot=ssl.Certificate.loadPEM(open(cert, "rb").read())))
    conn.close()
    yield rec.closed

    # the system's trust roots do not know the certificate
    url, rec = serve()
    with pytest.raises(Exception) as info:
        yield websocket_connect(url, connect_timeout=10)
    assert "certificate" in repr(info.value).lower()
    assert rec.handlers == []


# -- against the websockets library's server -------------------------------------------------------------


@pytest.fixture
def websockets_server():
    servers = []

    def _start(handler, **kwargs):
        server = ws_serve(handler, "127.0.0.1", 0, **kwargs)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"

    yield _start
    for server, thread in servers:
        server.shutdown()
        thread.join(10)


def echo_with_commands(ws):
    """The websockets library's side: echo, and some commands."""
    for message in ws:
        if message == "fragments":
            ws.send(["frag", "men", "ted", ""])
            ws.send([b"\x01", b"\x02" * 70_000])
        elif message == "subprotocol":
            ws.send(str(ws.subprotocol))
        elif message == "ping-me":
            ws.ping(b"lib ping").wait(5)
            ws.send("pinged")
        elif message == "close-me":
            ws.close(4003, "lib bye")
        elif message == "big":
            ws.send("z" * 2000)
        else:
            ws.send(message)


@pytest.mark.parametrize("compression", [None, {}])
@inline
def test_against_websockets_library(websockets_server, compression):
    url = websockets_server(echo_with_commands, compression="deflate" if compression is not None else None,
                            subprotocols=["chat"])
    conn = yield websocket_connect(url, compression_options=compression, subprotocols=["chat", "other"])
    assert conn.selected_subprotocol == "chat"
    assert ("Sec-WebSocket-Extensions" in conn.headers) == (compression is not None)
    for message in ["text", "ünï", b"\x00\x01", "", b"", "q" * 300_000, b"\xfe" * 70_000]:
        conn.write_message(message, binary=isinstance(message, bytes))
        echoed = yield conn.read_message()
        assert echoed == message and type(echoed) is type(message)
    conn.write_message("fragments")
    assert (yield conn.read_message()) == "fragmented"
    assert (yield conn.read_message()) == b"\x01" + b"\x02" * 70_000
    conn.write_message("subprotocol")
    assert (yield conn.read_message()) == "chat"

    pings, pongs = [], []
    conn.on_ping, conn.on_pong = pings.append, pongs.append
    conn.write_message("ping-me")
    assert (yield conn.read_message()) == "pinged"  # the library got its pong
    assert pings == [b"lib ping"]
    conn.ping(b"our ping")
    yield poll_until(lambda: pongs == [b"our ping"])

    conn.write_message("close-me")
    assert (yield conn.read_message()) is None
    assert (conn.close_code, conn.close_reason) == (4003, "lib bye")


@inline
def test_close_from_client_against_websockets_library(websockets_server):
    seen = []

    def handler(ws):
        try:
            for message in ws:
                ws.send(message)
        finally:
            seen.append((ws.close_code, ws.close_reason))

    url = websockets_server(handler)
    conn = yield websocket_connect(url)
    conn.write_message("x")
    assert (yield conn.read_message()) == "x"
    conn.close(4004, "client bye")
    assert (yield conn.read_message()) is None
    assert conn.close_code == 4004
    yield poll_until(lambda: seen)
    assert seen == [(4004, "client bye")]


@inline
def test_1009_against_websockets_library(websockets_server):
    seen = []

    def handler(ws):
        try:
            for message in ws:
                ws.send(message)
        finally:
            seen.append(ws.close_code)

    url = websockets_server(handler)
    conn = yield websocket_connect(url, max_message_size=1000)
    conn.write_message("a" * 1000)
    assert (yield conn.read_message()) == "a" * 1000
    conn.write_message("a" * 1001)  # the server may take it; its echo is too big for us
    assert (yield conn.read_message()) is None
    yield poll_until(lambda: seen)
    assert seen == [1009]


# -- the Autobahn fuzzingserver client ------------------------------------------------------------------


class FakeFuzzingServer(WebSocketHandler):
    """Autobahn's fuzzingserver protocol, in miniature: /getCaseCount says 3,
    /runCase sends a few messages and closes once they are echoed (case 2
    refuses the handshake), /updateReports closes at once."""

    def initialize(self, rec):
        self.rec = rec

    def get_compression_options(self):
        return {}

    def prepare(self):
        if self.request.path == "/runCase" and self.get_argument("case") == "2":
            self.rec.events.append(("refused", 2))
            raise web.HTTPError(400)

    def open(self):
        path = self.request.path
        self.rec.events.append((path, dict(self.request.query_arguments and {
            k: self.get_argument(k) for k in self.request.query_arguments})))
        if path == "/getCaseCount":
            self.write_message("3")
            self.close()
        elif path == "/runCase":
            self.rec.events.append(("deflate", self.ws_connection.codec.deflate is not None))
            self.expected = ["hello", b"\x00\x01", "z" * 100_000]
            for message in self.expected:
                self.write_message(message, binary=isinstance(message, bytes))
        else:
            self.close()

    def on_message(self, message):
        self.rec.events.append(("echo", message if len(message) < 100 else len(message)))
        if message == self.expected[-1]:
            self.close(1000)


@inline
def test_autobahn_client_script(listen):
    import subprocess
    import sys

    rec = Recorder()
    port = listen(web.Application([(r"/.*", FakeFuzzingServer, dict(rec=rec))]))

    import cyclone

    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(cyclone.__file__))))

    def client():
        return subprocess.run(
            [sys.executable, "-m", "cyclone.websocket_autobahn_client", "--url", f"ws://127.0.0.1:{port}",
             "--agent", "tester"], capture_output=True, text=True, timeout=60, env=env)

    result = yield threads.deferToThread(client)
    assert result.returncode == 0, result.stderr
    assert "3 cases run, reports updated for tester" in result.stdout
    assert "case 2/3" in result.stderr and "400" in result.stderr
    paths = [e for e in rec.events if isinstance(e[0], str) and e[0].startswith("/")]
    assert paths == [("/getCaseCount", {}), ("/runCase", {"case": "1", "agent": "tester"}),
                     ("/runCase", {"case": "3", "agent": "tester"}), ("/updateReports", {"agent": "tester"})]
    assert ("refused", 2) in rec.events
    assert [e[1] for e in rec.events if e[0] == "echo"] == ["hello", b"\x00\x01", 100_000] * 2
    assert [e[1] for e in rec.events if e[0] == "deflate"] == [True, True]


@inline
def test_server_that_never_answers_our_close_is_cut_off(caplog):
    """``close_timeout``: the client closes, the server reads the close
    frame and stays silent with its socket open; the client drops the
    connection after close_timeout (the log line names the value used; the
    server's socket timeout, 3 s, is below the 5 s default, so with the
    default the server would time out first and fail the test)."""
    import logging

    caplog.set_level(logging.INFO, logger="cyclone.general")

    def answer(head, sock):
        sock.sendall((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_for(head)}\r\n\r\n").encode())
        sock.settimeout(3)
        try:
            data = read_until_closed(sock)  # never answers
        except ConnectionResetError:  # the client aborted
            data = None
        return data

    port, served = raw_server(answer)
    conn = yield websocket_connect(f"ws://127.0.0.1:{port}/", close_timeout=0.2)
    assert conn.protocol.handler.close_timeout == 0.2
    conn.close(1000, "bye")
    data = yield served
    if data is not None:
        events = wc.Codec(client=False).receive(data)
        assert type(events[-1]) is wc.Close and events[-1].code == 1000
    assert (yield conn.read_message()) is None
    assert "no close within 0.2s" in caplog.text
