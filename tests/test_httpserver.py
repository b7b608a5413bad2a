"""cyclone.httpserver over real sockets: keep-alive, pipelining, 100-continue,
HEAD, chunked bodies, limits, timeouts, takeover, backpressure, disconnects.

Clients are the stdlib's ``http.client`` and raw sockets (for byte-exact
requests), run in threads so the reactor keeps serving.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import ssl
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor, threads

from cyclone import http1
from cyclone.httpserver import HTTPServer, StreamClosedError

from .conftest import parse_responses, poll_until, raw_exchange

inline = pytest_twisted.inlineCallbacks


class Recorder:
    """A request delegate factory that serves a handful of test routes."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.connections: list[int] = []
        self.closed: list[str] = []
        self.finish_results: list = []
        self.big_generated = 0
        self.big_waiting = False
        self.big_total = 0
        self.stream_chunks: list[bytes] = []
        self.upgraded: list[protocol.Protocol] = []
        self.transports: list = []
        self.connection_transports: list = []

    def start_request(self, connection, request):
        self.connections.append(id(connection))
        self.connection_transports.append(connection.transport)
        return RouteDelegate(self, connection, request)


class Echo(protocol.Protocol):
    lost = False

    def dataReceived(self, data):
        self.transport.write(data.upper())

    def connectionLost(self, reason):
        self.lost = True


class RouteDelegate:
    def __init__(self, app: Recorder, connection, request) -> None:
        self.app = app
        self.connection = connection
        self.request = request
        self.chunks: list[bytes] = []

    def headers_received(self):
        if self.request.path == "/stream-slow":
            # the consumer needs time for each chunk: reading must pause
            return None
        return None

    def data_received(self, chunk):
        if self.request.path == "/stream-slow":
            self.app.stream_chunks.append(chunk)
            d = defer.Deferred()
            reactor.callLater(0.01, d.callback, None)
            return d
        self.chunks.append(chunk)
        return None

    def on_connection_close(self):
        self.app.closed.append(self.request.path)

    def reply(self, body: bytes, status: int = 200, headers=None) -> None:
        head = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        head += headers or []
        self.connection.write_head(status, head, body=body, finish=True)

    def finish(self):
        app, request = self.app, self.request
        request.body = b"".join(self.chunks)
        path = request.path
        app.events.append("start " + path)
        request.notifyFinish().addCallback(app.finish_results.append)
        if path == "/":
            self.reply(b"hello")
        elif path == "/slow":
            def later():
                app.events.append("finish /slow")
                self.reply(b"slow")
            reactor.callLater(0.2, later)
        elif path == "/echo":
            self.reply(request.body)
        elif path == "/encoding":
            headers = request.headers
            self.reply(json.dumps({
                "content_encoding": headers.get("Content-Encoding"),
                "consumed": headers.get("X-Consumed-Content-Encoding"),
                "body": request.body.decode("latin-1"),
            }).encode())
        elif path == "/stream-slow":
            self.reply(b"%d" % sum(len(c) for c in app.stream_chunks))
        elif path == "/info":
            request._parse_body()
            info = {
                "method": request.method,
                "uri": request.uri,
                "path": request.path,
                "query": request.query,
                "version": request.version,
                "remote_ip": request.remote_ip,
                "protocol": request.protocol,
                "host": request.host,
                "host_name": request.host_name,
                "full_url": request.full_url(),
                "arguments": {k: [v.decode() for v in vs] for k, vs in request.arguments.items()},
                "query_arguments": {k: [v.decode() for v in vs] for k, vs in request.query_arguments.items()},
                "body_arguments": {k: [v.decode() for v in vs] for k, vs in request.body_arguments.items()},
                "files": {k: [f.filename for f in fs] for k, fs in request.files.items()},
                "cookies": {k: m.value for k, m in request.cookies.items()},
                "header": request.headers.get("X-Test", ""),
                "http11": request.supports_http_1_1(),
            }
            self.reply(json.dumps(info).encode(), headers=[("X-Json", "1")])
        elif path == "/chunked":
            self.connection.write_head(200, [("Content-Type", "text/plain")])
            for piece in (b"one,", b"two,", b"three"):
                self.connection.write(piece)
            self.connection.finish()
        elif path == "/hold":
            pass  # never answered: the client hangs up
        elif path == "/close-me":
            self.connection.no_keep_alive = True
            self.reply(b"bye")
        elif path == "/upgrade":
            self.connection.write_head(101, [("Upgrade", "echo"), ("Connection", "Upgrade")],
                                       finish=True)
            echo = Echo()
            app.upgraded.append(echo)
            self.connection.take_over(echo)
        elif path == "/big":
            self.stream_big()
        elif path == "/sized":
            # a small send buffer, so the socket takes only part of the response
            transport = self.connection.transport
            transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            app.transports.append(transport)
            size = int(request.headers["X-Size"])
            self.reply(bytes(range(256)) * (size // 256))
        else:
            self.reply(b"not found", status=404)

    @defer.inlineCallbacks
    def stream_big(self):
        app = self.app
        piece = b"x" * 65536
        total = app.big_total
        self.connection.write_head(200, [("Content-Length", str(total))])
        sent = 0
        while sent < total:
            self.connection.write(piece)
            sent += len(piece)
            app.big_generated = sent
            app.big_waiting = True
            try:
                yield self.connection.when_drained()
            except StreamClosedError:
                return
            app.big_waiting = False
        self.connection.finish()


@pytest.fixture
def app():
    return Recorder()


@pytest.fixture
def serve(listen, app):
    def _serve(**settings) -> int:
        return listen(HTTPServer(app, **settings))
    return _serve


def fetch(port: int, method: str, path: str, body=None, headers=None, conn=None):
    """One request with http.client; returns (status, headers, body, connection)."""
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.msg, response.read(), conn


def in_thread(fn, *args, **kwargs):
    return threads.deferToThread(fn, *args, **kwargs)


# -- keep-alive ---------------------------------------------------------------------------


@inline
def test_keep_alive_reuses_one_connection(serve, app):
    port = serve()

    def client():
        status1, _, body1, conn = fetch(port, "GET", "/")
        status2, _, body2, _ = fetch(port, "GET", "/echo", body=b"abc", conn=conn)
        conn.close()
        return status1, body1, status2, body2

    result = yield in_thread(client)
    assert result == (200, b"hello", 200, b"abc")
    assert len(app.connections) == 2 and len(set(app.connections)) == 1


@inline
def test_http10_closes_unless_keep_alive_asked(serve):
    port = serve()
    data = yield in_thread(raw_exchange, port, b"GET / HTTP/1.0\r\n\r\n")
    # RFC 9110 §2.5: the status line names HTTP/1.1 (as Tornado's does); the
    # connection semantics stay those of HTTP/1.0
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    [(status, headers, body)] = parse_responses(data)
    assert (status, body) == (200, b"hello")
    assert "Connection" not in headers  # closing is HTTP/1.0's default (as Tornado)

    two = (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
           b"GET /echo HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
    data = yield in_thread(raw_exchange, port, two)
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2 and b"HTTP/1.0" not in data
    responses = parse_responses(data)
    assert [(s, b) for s, _, b in responses] == [(200, b"hello"), (200, b"hi")]
    assert b"Connection: Keep-Alive\r\n\r\n" in data  # Tornado's casing
    assert "Connection" not in responses[1][1] and b"Connection: close" not in data


@pytest.mark.parametrize("token", ["close", "Close", "CLOSE", "keep-alive, close"])
@inline
def test_connection_close_is_echoed_and_honoured(serve, token):
    port = serve()
    request = f"GET / HTTP/1.1\r\nHost: x\r\nConnection: {token}\r\n\r\n".encode()
    # a second request after close must not be answered
    data = yield in_thread(raw_exchange, port, request + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    [(status, headers, body)] = parse_responses(data)
    assert status == 200 and headers["Connection"] == "close"


@inline
def test_handler_no_keep_alive_closes(serve):
    port = serve()
    data = yield in_thread(raw_exchange, port,
                           b"GET /close-me HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    [(status, headers, body)] = parse_responses(data)
    assert (status, body, headers["Connection"]) == (200, b"bye", "close")


@inline
def test_server_setting_no_keep_alive(serve):
    port = serve(no_keep_alive=True)
    data = yield in_thread(raw_exchange, port,
                           b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(parse_responses(data)) == 1


# -- pipelining -----------------------------------------------------------------------------


@inline
def test_pipelining_waits_for_slow_first_response(serve, app):
    port = serve()
    requests = (b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nend")
    data = yield in_thread(raw_exchange, port, requests)
    bodies = [body for _, _, body in parse_responses(data)]
    assert bodies == [b"slow", b"hello", b"end"]
    assert app.events == ["start /slow", "finish /slow", "start /", "start /echo"]


@inline
def test_pipelined_head_then_get(serve):
    port = serve()
    data = yield in_thread(raw_exchange, port,
                           b"HEAD /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    responses = parse_responses(data, methods=["HEAD", "HEAD", "GET"])
    assert [(s, b) for s, _, b in responses] == [(200, b""), (200, b""), (200, b"one,two,three")]
    # HEAD carries the headers of the GET (Content-Length of the body) but no bytes
    assert responses[1][1]["Content-Length"] == "5"
    assert data.count(b"hello") == 0


# -- bodies ------------------------------------------------------------------------------------


@inline
def test_chunked_request_body_and_chunked_response(serve):
    port = serve()
    request = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n"
               b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = yield in_thread(raw_exchange, port, request)
    (s1, _, b1), (s2, h2, b2) = parse_responses(data)
    assert (s1, b1) == (200, b"Wikipedia")
    assert (s2, b2) == (200, b"one,two,three")
    assert h2["Transfer-Encoding"] == "chunked" and "Content-Length" not in h2


@inline
def test_http_client_reads_chunked_response(serve):
    port = serve()
    status, headers, body, conn = yield in_thread(fetch, port, "GET", "/chunked")
    conn.close()
    assert (status, body) == (200, b"one,two,three")


@inline
def test_request_attributes(serve):
    port = serve()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/info?a=1&a=2&empty=&b=%C3%A9",
                     body="c=3&a=4",
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Cookie": 'k=v; q="quoted"', "X-Test": "caf\xe9",
                              "Host": "Example.COM:8080"})
        response = conn.getresponse()
        return json.loads(response.read())

    info = yield in_thread(client)
    assert info["method"] == "POST"
    assert info["path"] == "/info"
    assert info["query"] == "a=1&a=2&empty=&b=%C3%A9"
    assert info["query_arguments"] == {"a": ["1", "2"], "empty": [""], "b": ["é"]}
    assert info["body_arguments"] == {"c": ["3"], "a": ["4"]}
    assert info["arguments"] == {"a": ["1", "2", "4"], "empty": [""], "b": ["é"], "c": ["3"]}
    assert info["host"] == "Example.COM:8080" and info["host_name"] == "example.com"
    assert info["full_url"] == "http://Example.COM:8080/info?a=1&a=2&empty=&b=%C3%A9"
    assert info["cookies"] == {"k": "v", "q": "quoted"}
    assert info["header"] == "caf\xe9"  # obs-text decoded as latin-1
    assert info["remote_ip"] == "127.0.0.1" and info["protocol"] == "http"
    assert info["http11"] is True


@inline
def test_multipart_files(serve):
    port = serve()
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nfile body\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\nv\r\n--XyZ--\r\n")

    def client():
        status, _, data, conn = fetch(port, "POST", "/info", body=body,
                                      headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
        conn.close()
        return json.loads(data)

    info = yield in_thread(client)
    assert info["files"] == {"f": ["a.txt"]}
    assert info["body_arguments"] == {"n": ["v"]}


@inline
def test_streaming_consumer_pauses_reading(serve, app):
    port = serve()
    body = b"z" * 300_000
    status, _, data, conn = yield in_thread(fetch, port, "POST", "/stream-slow", body=body)
    conn.close()
    assert status == 200 and data == b"300000"
    assert b"".join(app.stream_chunks) == body
    assert len(app.stream_chunks) > 1


# -- 100-continue -------------------------------------------------------------------------------


def continue_exchange(port: int, head: bytes, body: bytes) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        first = sock.recv(65536)
        if first.startswith(b"HTTP/1.1 100"):
            sock.sendall(body)
        rest = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return first, rest


@inline
def test_expect_100_continue(serve):
    port = serve()
    head = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
    first, rest = yield in_thread(continue_exchange, port, head, b"12345")
    assert first == http1.CONTINUE_RESPONSE
    [(status, _, body)] = parse_responses(rest)
    assert (status, body) == (200, b"12345")


@inline
def test_expect_100_continue_not_sent_when_body_too_large(serve):
    port = serve(max_body_size=4)
    head = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n")
    first, rest = yield in_thread(continue_exchange, port, head, b"12345")
    [(status, headers, _)] = parse_responses(first + rest)
    assert status == 413 and headers["Connection"] == "close"


@inline
def test_expect_100_continue_ignored_for_http10(serve):
    port = serve()
    request = (b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n12345")
    data = yield in_thread(raw_exchange, port, request)
    assert not data.startswith(b"HTTP/1.1 100")
    [(status, _, body)] = parse_responses(data)
    assert (status, body) == (200, b"12345")


# -- bad input -----------------------------------------------------------------------------------

BAD_REQUESTS = [
    ("cl-and-te", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("smuggle-te-cl", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Length: 40\r\n\r\n0\r\n\r\nGET /hold HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("bad-cl", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400),
    ("dup-cl", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("te-gzip", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("space-colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("bare-lf", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("nul", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    ("no-host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("http2", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("bad-version", b"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400),
    ("utf8-target", "GET /caf\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n".encode("utf-8"), 400),
    ("latin1-garbage-target", b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("bad-chunk", b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),
    ("expect-other", b"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417),
]


@pytest.mark.parametrize("name,request_bytes,status", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
@inline
def test_bad_input_gets_status_and_close(serve, app, caplog, name, request_bytes, status):
    port = serve()
    # a keep-alive neighbour must keep working around the bad request
    neighbour = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    first = yield in_thread(fetch, port, "GET", "/", conn=neighbour)
    with caplog.at_level(logging.INFO, logger="cyclone"):
        data = yield in_thread(raw_exchange, port, request_bytes)
    [(got, headers, body)] = parse_responses(data)
    assert got == status
    assert headers["Connection"] == "close"
    assert body.startswith(str(status).encode())
    assert "/hold" not in app.events and "start /hold" not in app.events
    records = [r for r in caplog.records if r.name.startswith("cyclone")]
    assert len(records) == 1 and records[0].exc_info is None
    second = yield in_thread(fetch, port, "GET", "/echo", body=b"still", conn=neighbour)
    neighbour.close()
    assert first[:1] == (200,) and second[2] == b"still"


# -- limits -------------------------------------------------------------------------------------------

LIMIT_CASES = [
    ("request-line", {"max_request_line": 64},
     b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("request-line-no-crlf", {"max_request_line": 64}, b"GET /" + b"a" * 100, 414),
    ("header-size", {"max_header_size": 100},
     b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200 + b"\r\n\r\n", 431),
    ("header-field", {},
     b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 8200 + b"\r\n\r\n", 431),
    ("header-field-setting", {"max_header_field_size": 100},
     b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100 + b"\r\n\r\n", 431),
    ("header-count", {"max_header_count": 5},
     b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(10)) + b"\r\n", 431),
    ("body-cl", {"max_body_size": 10},
     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", 413),
    ("body-chunked", {"max_body_size": 10},
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n", 413),
    ("chunk-line", {"max_chunk_size_line": 16},
     b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;" + b"e" * 40 + b"\r\n", 400),
]


@pytest.mark.parametrize("name,settings,request_bytes,status", LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
@inline
def test_limits(serve, name, settings, request_bytes, status):
    port = serve(**settings)
    data = yield in_thread(raw_exchange, port, request_bytes)
    [(got, headers, _)] = parse_responses(data)
    assert got == status and headers["Connection"] == "close"


@inline
def test_limits_allow_requests_under_them(serve):
    port = serve(max_body_size=10, max_header_count=5, max_request_line=64)
    data = yield in_thread(raw_exchange, port,
                           b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789")
    [(status, _, body)] = parse_responses(data)
    assert (status, body) == (200, b"0123456789")


# -- timeouts -------------------------------------------------------------------------------------------


@inline
def test_idle_timeout_closes_silently(serve):
    port = serve(idle_connection_timeout=0.2)
    data = yield in_thread(raw_exchange, port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    [(status, _, body)] = parse_responses(data)  # one answer, then a silent close
    assert (status, body) == (200, b"hello")


@inline
def test_idle_timeouts_of_many_connections_and_no_timer_left(listen, app):
    """One timer watches every connection's deadline, and stops with the last."""
    factory = HTTPServer(app, idle_connection_timeout=0.2)
    port = listen(factory)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
    try:
        socks[0].sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

        def read_until_closed(sock):
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

        results = yield in_thread(lambda: [read_until_closed(s) for s in socks])
    finally:
        for sock in socks:
            sock.close()
    [(status, _, body)] = parse_responses(results[0])
    assert (status, body) == (200, b"hello")
    assert results[1:] == [b""] * 19  # closed by the server, silently
    sweeper = factory._cyclone_server_config.sweeper
    yield poll_until(lambda: not sweeper.connections)
    assert sweeper._call is None


@inline
def test_header_timeout_answers_408(serve):
    port = serve(header_timeout=0.2)
    data = yield in_thread(raw_exchange, port, b"GET / HTTP/1.1\r\nHost: x\r\n")
    [(status, headers, _)] = parse_responses(data)
    assert status == 408 and headers["Connection"] == "close"


@inline
def test_body_timeout_answers_408(serve, app):
    port = serve(body_timeout=0.2)
    data = yield in_thread(raw_exchange, port,
                           b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    [(status, headers, _)] = parse_responses(data)
    assert status == 408 and headers["Connection"] == "close"
    assert app.closed == ["/echo"]


@inline
def test_timeouts_do_not_hit_active_requests(serve):
    # the slow handler takes longer than every timeout; it must still answer
    port = serve(idle_connection_timeout=0.05, header_timeout=0.05, body_timeout=0.05)
    data = yield in_thread(raw_exchange, port, b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    [(status, _, body)] = parse_responses(data)
    assert (status, body) == (200, b"slow")


# -- takeover -------------------------------------------------------------------------------------------


@inline
def test_takeover_after_101(serve, app):
    port = serve()

    def client():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n"
                         b"Connection: Upgrade\r\n\r\nearly bytes|")
            received = b""
            while not received.endswith(b"EARLY BYTES|"):
                received += sock.recv(65536)
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            while not received.endswith(b"GET / HTTP/1.1\r\n\r\n".upper()):
                received += sock.recv(65536)
            return received

    data = yield in_thread(client)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert b"Transfer-Encoding" not in head and b"Connection: close" not in head
    assert rest == b"EARLY BYTES|GET / HTTP/1.1\r\n\r\n".upper()
    assert len(app.upgraded) == 1


# -- backpressure -------------------------------------------------------------------------------------------


@inline
def test_slow_reader_does_not_grow_server_memory(serve, app):
    app.big_total = 64 * 1024 * 1024
    port = serve()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        # the client reads nothing: the server must stop producing
        yield poll_until(lambda: app.big_waiting and app.big_generated > 0)
        stalled_at = app.big_generated
        yield poll_until(lambda: True)  # let the reactor run a little more
        assert app.big_generated == stalled_at
        assert stalled_at < 16 * 1024 * 1024  # buffers only, not the whole 64 MiB

        def read_all():
            total = 0
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return total
                total += len(chunk)

        received = yield in_thread(read_all)
    finally:
        sock.close()
    head_len = received - app.big_total
    assert 0 < head_len < 200
    assert app.big_generated == app.big_total


@inline
def test_response_the_socket_takes_in_part_arrives_whole(serve, app):
    """Responses go straight to the socket at the end of the reactor turn; what
    it does not take stays with the transport and follows in order."""
    port = serve()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(b"GET /sized HTTP/1.1\r\nHost: x\r\nX-Size: 61440\r\n\r\n"
                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        yield poll_until(lambda: app.transports)
        transport = app.transports[0]
        # the client has read nothing yet: the rest waits in Twisted's buffer
        yield poll_until(lambda: transport.dataBuffer or transport._tempDataBuffer)

        def read_two_responses():
            data = b""
            while data.count(b"HTTP/1.1 200 OK") < 2 or not data.endswith(b"hello"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data

        data = yield in_thread(read_two_responses)
    finally:
        sock.close()
    (status1, _, body1), (status2, _, body2) = parse_responses(data)
    assert (status1, status2) == (200, 200)
    assert body1 == bytes(range(256)) * 240
    assert body2 == b"hello"


@inline
def test_close_response_is_sent_then_the_connection_leaves_the_reactor(serve, app):
    """The last response goes straight to the socket, and the connection is
    closed at once (FIN, not RST) and forgotten by the reactor."""
    port = serve()
    data = yield in_thread(raw_exchange, port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    [(status, headers, body)] = parse_responses(data)
    assert (status, headers["Connection"], body) == (200, "close", b"hello")
    [transport] = app.connection_transports
    yield poll_until(lambda: transport.disconnected)
    assert transport not in reactor.getReaders() and transport not in reactor.getWriters()
    assert not hasattr(transport, "socket")  # closed by Twisted's connectionLost
    assert app.finish_results == [None] and app.closed == []


def segments_received(sock) -> int:
    """tcpi_segs_in of Linux's struct tcp_info (at byte 140 since Linux 4.2)."""
    import struct

    return struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256), 140)[0]


@pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(socket, "TCP_INFO")),
                    reason="counts segments with Linux's TCP_INFO")
@inline
def test_close_response_and_fin_arrive_in_one_segment(serve, app):
    """The last response goes out with the FIN in its segment (MSG_MORE): a
    Connection: close exchange takes no more segments than a keep-alive one."""
    port = serve()

    def exchange(close: bool) -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n"
                         + (b"Connection: close\r\n" if close else b"") + b"\r\n")
            data = recv_until(sock, b"hello")
            if close:
                assert sock.recv(10) == b""  # the end of the stream
            return segments_received(sock), data

    keep_alive_segments, _ = yield threads.deferToThread(exchange, False)
    close_segments, data = yield threads.deferToThread(exchange, True)
    assert [(s, b) for s, _, b in parse_responses(data)] == [(200, b"hello")]
    assert close_segments == keep_alive_segments


@inline
def test_close_response_the_socket_takes_in_part_arrives_whole(serve, app):
    """What the socket does not take of the last response stays with the
    transport, which closes once it has sent it."""
    port = serve()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(b"GET /sized HTTP/1.1\r\nHost: x\r\nX-Size: 61440\r\nConnection: close\r\n\r\n")
        yield poll_until(lambda: app.transports)
        transport = app.transports[0]
        yield poll_until(lambda: transport.dataBuffer or transport._tempDataBuffer)
        assert transport.connected  # waiting for the client to read the rest

        def read_to_end():
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

        data = yield in_thread(read_to_end)
    finally:
        sock.close()
    [(status, headers, body)] = parse_responses(data)
    assert (status, headers["Connection"]) == (200, "close")
    assert body == bytes(range(256)) * 240
    yield poll_until(lambda: transport.disconnected)
    assert transport not in reactor.getWriters()


# -- the first read of a new connection -------------------------------------------------------------


class MadeConnections(HTTPServer):
    """The HTTPServer of the tests, keeping the connections it makes."""

    def __init__(self, app, **settings):
        super().__init__(app, **settings)
        self.made = []

    def buildProtocol(self, addr):
        connection = super().buildProtocol(addr)
        self.made.append(connection)
        return connection


@pytest.fixture
def reads(monkeypatch):
    """How many times the reactor read each transport (Twisted's doRead)."""
    from twisted.internet import tcp

    counts: dict = {}
    original = tcp.Connection.doRead

    def counting(transport):
        counts[transport] = counts.get(transport, 0) + 1
        return original(transport)

    monkeypatch.setattr(tcp.Connection, "doRead", counting)
    return counts


def recv_until(sock, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@inline
def test_request_there_when_accepted_is_read_without_the_reactor(listen, app, reads):
    """A request already in the socket when the connection is accepted is read
    at the end of that reactor turn, not by another dispatch of the reactor."""
    server = MadeConnections(app)
    port = listen(server)
    # the kernel completes the handshake before the reactor accepts: the
    # request waits in the socket
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = yield threads.deferToThread(recv_until, sock, b"hello")
        [connection] = server.made
        assert reads.get(connection.transport, 0) == 0
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        second = yield threads.deferToThread(recv_until, sock, b"hello")
        assert reads[connection.transport] >= 1  # later requests: the reactor reads
    finally:
        sock.close()
    assert [(s, b) for s, _, b in parse_responses(first + second)] == [(200, b"hello")] * 2


@inline
def test_request_after_the_first_read_is_read_by_the_reactor(listen, app, reads):
    server = MadeConnections(app)
    port = listen(server)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHo")  # part of the head before the accept
        yield poll_until(lambda: server.made)
        connection = server.made[0]
        yield poll_until(lambda: connection._parser.buffered)  # the first read took it
        sock.sendall(b"st: x\r\nConnection: close\r\n\r\n")
        data = yield threads.deferToThread(recv_until, sock, b"hello")
        assert sock.recv(10) == b""  # closed after the response
    finally:
        sock.close()
    [(status, headers, body)] = parse_responses(data)
    assert (status, headers["Connection"], body) == (200, "close", b"hello")
    assert reads[connection.transport] >= 1


@inline
def test_end_of_stream_before_the_accept_closes_the_connection(listen, app):
    server = MadeConnections(app)
    port = listen(server)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.shutdown(socket.SHUT_WR)  # no request, only the end of the stream
        assert (yield threads.deferToThread(sock.recv, 10)) == b""
    finally:
        sock.close()
    [connection] = server.made
    yield poll_until(lambda: connection.transport.disconnected)
    assert app.events == []


@inline
def test_request_and_end_of_stream_before_the_accept_get_the_response(listen, app):
    server = MadeConnections(app)
    port = listen(server)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = yield threads.deferToThread(recv_until, sock, b"<never>")
    finally:
        sock.close()
    assert [(s, b) for s, _, b in parse_responses(data)] == [(200, b"hello")]


@inline
def test_a_connection_failing_as_it_closes_does_not_hold_back_the_others(listen, app, caplog):
    """Three closing responses are sent in one batch; the first connection's
    connectionLost raises, and the other two are still answered."""
    from cyclone.httpserver import HTTPConnection

    class FailingFirst(HTTPConnection):
        made = []

        def connectionLost(self, reason):
            super().connectionLost(reason)
            if self is self.made[0]:
                raise RuntimeError("boom in connectionLost")

        def connectionMade(self):
            self.made.append(self)
            super().connectionMade()

    server = HTTPServer(app)
    server.protocol = FailingFirst
    port = listen(server)
    # all three are accepted and read in one reactor turn
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    try:
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        replies = yield defer.gatherResults(
            [threads.deferToThread(recv_until, sock, b"<end>") for sock in socks])
    finally:
        for sock in socks:
            sock.close()
    assert [[(s, b) for s, _, b in parse_responses(r)] for r in replies] == [[(200, b"hello")]] * 3
    assert "boom in connectionLost" in caplog.text


@inline
def test_end_of_stream_during_a_request_tells_it_the_connection_closed(serve, app):
    """A FIN while a request waits for its answer counts as the client gone."""
    port = serve()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        yield poll_until(lambda: "start /hold" in app.events)
        sock.shutdown(socket.SHUT_WR)
        assert (yield threads.deferToThread(sock.recv, 10)) == b""
    finally:
        sock.close()
    yield poll_until(lambda: app.closed)
    assert app.closed == ["/hold"]


@inline
def test_end_of_stream_after_takeover_closes_the_connection(serve, app):
    port = serve()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhi|")
        data = yield threads.deferToThread(recv_until, sock, b"HI|")
        sock.shutdown(socket.SHUT_WR)
        assert (yield threads.deferToThread(sock.recv, 10)) == b""
    finally:
        sock.close()
    assert data.startswith(b"HTTP/1.1 101 ")
    [echo] = app.upgraded
    yield poll_until(lambda: echo.lost)


# -- disconnect notification ------------------------------------------------------------------------------


@inline
def test_disconnect_notifies_request_in_flight_once(serve, app):
    port = serve()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    yield poll_until(lambda: "start /hold" in app.events)
    sock.close()
    yield poll_until(lambda: app.closed)
    yield poll_until(lambda: app.finish_results)
    assert app.closed == ["/hold"]
    assert len(app.finish_results) == 1 and app.finish_results[0] is not None


@inline
def test_disconnect_after_finished_request_notifies_nothing(serve, app):
    port = serve()

    def client():
        status, _, body, conn = fetch(port, "GET", "/")
        status, _, body, conn = fetch(port, "GET", "/", conn=conn)
        conn.close()
        return status

    assert (yield in_thread(client)) == 200
    yield poll_until(lambda: len(app.finish_results) == 2)
    assert app.closed == []
    assert app.finish_results == [None, None]


# -- xheaders and TLS ---------------------------------------------------------------------------------------


def info(port, headers):
    status, _, body, conn = fetch(port, "GET", "/info", headers=headers)
    conn.close()
    return json.loads(body)


@pytest.mark.parametrize("headers,remote_ip,proto", [
    ({"X-Real-Ip": "10.1.2.3"}, "10.1.2.3", "http"),
    ({"X-Forwarded-For": "1.1.1.1, 10.0.0.9"}, "10.0.0.9", "http"),
    ({"X-Forwarded-For": "1.1.1.1, 10.0.0.9, 10.0.0.1"}, "10.0.0.9", "http"),  # 10.0.0.1 trusted
    ({"X-Forwarded-For": "not-an-ip"}, "127.0.0.1", "http"),
    ({"X-Real-Ip": "::1"}, "::1", "http"),
    ({"X-Scheme": "https"}, "127.0.0.1", "https"),
    ({"X-Forwarded-Proto": "https"}, "127.0.0.1", "https"),
    ({"X-Forwarded-Proto": "gopher"}, "127.0.0.1", "http"),
])
@inline
def test_xheaders(serve, headers, remote_ip, proto):
    port = serve(xheaders=True, trusted_downstream=["10.0.0.1"])
    result = yield in_thread(info, port, headers)
    assert (result["remote_ip"], result["protocol"]) == (remote_ip, proto)


@inline
def test_xheaders_ignored_when_off(serve):
    port = serve()
    result = yield in_thread(info, port, {"X-Real-Ip": "10.1.2.3", "X-Scheme": "https"})
    assert (result["remote_ip"], result["protocol"]) == ("127.0.0.1", "http")


@pytest.mark.parametrize("path", ["/", "/sized"], ids=["small", "60-KiB"])
@inline
def test_tls_connection_close_closes_the_connection(app, self_signed, path):
    """Over TLS, a Connection: close response is followed by the close: the
    connection must not stay registered as the transport's producer, which
    keeps Twisted's TLS transport from ever shutting down."""
    from twisted.internet import ssl as tssl

    cert, key = self_signed
    port = reactor.listenSSL(0, HTTPServer(app), tssl.DefaultOpenSSLContextFactory(key, cert),
                             interface="127.0.0.1")
    try:
        def client():
            ctx = ssl.create_default_context(cafile=str(cert))
            with socket.create_connection(("127.0.0.1", port.getHost().port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
                    sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Size: 61440\r\n"
                                 b"Connection: close\r\n\r\n")
                    chunks = []
                    while chunk := sock.recv(65536):  # b"" once the server has closed
                        chunks.append(chunk)
            return b"".join(chunks)

        data = yield in_thread(client)
    finally:
        yield port.stopListening()
    [(status, headers, body)] = parse_responses(data)
    assert (status, headers["Connection"]) == (200, "close")
    assert body == (b"hello" if path == "/" else bytes(range(256)) * 240)


@inline
def test_tls_sets_protocol_https(app, self_signed):
    from twisted.internet import ssl as tssl

    cert, key = self_signed
    context = tssl.DefaultOpenSSLContextFactory(key, cert)
    port = reactor.listenSSL(0, HTTPServer(app), context, interface="127.0.0.1")
    try:
        def client():
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", port.getHost().port, context=ctx, timeout=10)
            conn.request("GET", "/info")
            return json.loads(conn.getresponse().read())

        result = yield in_thread(client)
    finally:
        yield port.stopListening()
    assert result["protocol"] == "https"
    assert result["full_url"].startswith("https://")


def test_http_server_request_is_one_class_with_tornado_and_cyclone_signatures():
    from cyclone import httputil
    from cyclone.httpserver import HTTPRequest

    assert httputil.HTTPServerRequest is HTTPRequest
    headers = httputil.HTTPHeaders({"Host": "Example.org:8080", "Cookie": "a=1"})
    # the original cyclone's positional order, and Tornado's start_line keyword
    request = HTTPRequest("GET", "/p?x=1&x=2", "HTTP/1.1", headers, b"", "10.0.0.1", "https")
    assert (request.remote_ip, request.protocol, request.host_name) == ("10.0.0.1", "https", "example.org")
    assert request.full_url() == "https://Example.org:8080/p?x=1&x=2"
    assert request.arguments == {"x": [b"1", b"2"]} and request.cookies["a"].value == "1"
    tornado_style = httputil.HTTPServerRequest(start_line=httputil.RequestStartLine("POST", "/u", "HTTP/1.0"))
    assert (tornado_style.method, tornado_style.path, tornado_style.supports_http_1_1()) == ("POST", "/u", False)
    assert tornado_style.host == "127.0.0.1"
    assert tornado_style.request_time() >= 0


# -- decompress_request ----------------------------------------------------------------------------------


def gzip_post(path: bytes, body: bytes, encoding: bytes = b"gzip", chunked_by: int = 0) -> bytes:
    head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Encoding: " + encoding + b"\r\n"
    if not chunked_by:
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + chunked_by]), body[i:i + chunked_by])
                      for i in range(0, len(body), chunked_by))
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"


def one_response(data: bytes):
    [(status, headers, body)] = parse_responses(data)
    return status, headers, body


@pytest.mark.parametrize("chunked_by", [0, 7], ids=["content-length", "chunked"])
@inline
def test_decompress_request_decodes_a_gzip_body(serve, chunked_by):
    import gzip

    port = serve(decompress_request=True)
    text = b"caf\xc3\xa9 & more " * 500
    data = yield in_thread(raw_exchange, port, gzip_post(b"/encoding", gzip.compress(text), chunked_by=chunked_by))
    status, _, body = one_response(data)
    assert status == 200
    assert json.loads(body) == {"content_encoding": None, "consumed": "gzip", "body": text.decode("latin-1")}


@inline
def test_decompress_request_decodes_gzip_members_back_to_back(serve):
    import gzip

    port = serve(decompress_request=True)
    body = gzip.compress(b"first,") + gzip.compress(b"second")
    data = yield in_thread(raw_exchange, port, gzip_post(b"/echo", body))
    assert one_response(data)[::2] == (200, b"first,second")


@inline
def test_decompress_request_large_body_arrives_whole_in_pieces(serve, app):
    import gzip
    import os

    port = serve(decompress_request=True, max_body_size=4 * 1024 * 1024)
    text = os.urandom(1024) * 1024  # 1 MiB decoded: many 64 KiB pieces
    data = yield in_thread(raw_exchange, port, gzip_post(b"/echo", gzip.compress(text), chunked_by=4096))
    assert one_response(data)[::2] == (200, text)


@pytest.mark.parametrize("body,reason", [
    (b"this is not gzip at all", "invalid"),
    (None, "truncated"),
])
@inline
def test_decompress_request_rejects_a_bad_gzip_body_with_400(serve, app, body, reason, caplog):
    import gzip

    caplog.set_level(logging.INFO, logger="cyclone.general")
    port = serve(decompress_request=True)
    if body is None:
        body = gzip.compress(b"x" * 10000)[:-12]  # cut before the end of the stream
    data = yield in_thread(raw_exchange, port, gzip_post(b"/echo", body))
    assert one_response(data)[0] == 400
    assert app.events == []  # the handler never ran
    assert "gzip request body" in caplog.text


@inline
def test_decompress_request_holds_the_decoded_size_to_max_body_size(serve, app):
    import gzip

    port = serve(decompress_request=True, max_body_size=100_000)
    bomb = gzip.compress(b"\0" * 10_000_000)  # ~10 KiB that decodes to 10 MB
    assert len(bomb) < 100_000
    data = yield in_thread(raw_exchange, port, gzip_post(b"/echo", bomb))
    assert one_response(data)[0] == 413
    assert app.events == []


@pytest.mark.parametrize("settings,encoding", [
    ({}, b"gzip"),  # off by default: the body is passed on as it came
    ({"decompress_request": True}, b"br"),  # only gzip is decoded
])
@inline
def test_bodies_not_decoded_keep_their_content_encoding(serve, settings, encoding):
    import gzip

    port = serve(**settings)
    raw = gzip.compress(b"hello")
    data = yield in_thread(raw_exchange, port, gzip_post(b"/encoding", raw, encoding=encoding))
    status, _, body = one_response(data)
    assert status == 200
    assert json.loads(body) == {"content_encoding": encoding.decode(), "consumed": None,
                                "body": raw.decode("latin-1")}


# -- mixed traffic -----------------------------------------------------------------------------------------


def mixed_client(port: int, seed: int, rounds: int, tls_context) -> list[str]:
    """``rounds`` random exchanges on fresh connections (keep-alive, pipelined,
    Connection: close, half-close, HTTP/1.0); the problems found, if any."""
    import random

    rng = random.Random(seed)
    problems = []

    def connect():
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        return tls_context.wrap_socket(sock, server_hostname="localhost") if tls_context else sock

    def request(body: bytes | None, last: bool, version: bytes = b"HTTP/1.1") -> tuple[bytes, bytes]:
        if body is None:
            head = b"GET / " + version + b"\r\nHost: x\r\n"
            expected = b"hello"
        else:
            head = b"POST /echo " + version + b"\r\nHost: x\r\nContent-Length: %d\r\n" % len(body)
            expected = body
        if last and version == b"HTTP/1.1":
            head += b"Connection: close\r\n"
        return head + b"\r\n" + (body or b""), expected

    def read_to_end(sock) -> bytes:
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    for _ in range(rounds):
        kind = rng.choice(["keep-alive", "pipelined", "close", "half-close", "http10"])
        count = rng.randint(2, 4) if kind in ("keep-alive", "pipelined") else 1
        bodies = [None if rng.random() < 0.5 else rng.randbytes(rng.choice([1, 100, 5000, 70000]))
                  for _ in range(count)]
        try:
            with connect() as sock:
                if kind == "keep-alive":  # one at a time, then the client closes
                    got = []
                    for body in bodies:
                        data, expected = request(body, last=False)
                        sock.sendall(data)
                        response = b""
                        while b"\r\n\r\n" not in response:
                            response += sock.recv(65536)
                        head, _, body_read = response.partition(b"\r\n\r\n")
                        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                        while len(body_read) < length:
                            body_read += sock.recv(65536)
                        got.append((body_read, expected))
                else:
                    version = b"HTTP/1.0" if kind == "http10" else b"HTTP/1.1"
                    exchanges = [request(body, last=i == count - 1, version=version)
                                 for i, body in enumerate(bodies)]
                    sock.sendall(b"".join(data for data, _ in exchanges))
                    if kind == "half-close" and not tls_context:
                        sock.shutdown(socket.SHUT_WR)
                    responses = parse_responses(read_to_end(sock))
                    got = list(zip([b for _, _, b in responses], [e for _, e in exchanges]))
                    if len(responses) != count:
                        problems.append(f"{kind}: {len(responses)} responses to {count} requests")
            problems += [f"{kind}: wrong body ({len(b)} bytes, not {len(e)})" for b, e in got if b != e]
        except (OSError, ValueError) as exc:
            problems.append(f"{kind}: {exc!r}")
    return problems


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@inline
def test_mixed_traffic_loses_nothing_and_leaves_no_connection_open(listen, app, self_signed, tls):
    """Eight clients at once, each making 20 random exchanges on fresh
    connections: every response arrives whole, and once the clients are done
    every connection the server accepted has closed."""
    from concurrent.futures import ThreadPoolExecutor

    server = MadeConnections(app)
    if tls:
        from twisted.internet import ssl as tssl

        cert, key = self_signed
        listening = reactor.listenSSL(0, server, tssl.DefaultOpenSSLContextFactory(key, cert),
                                      interface="127.0.0.1")
        port = listening.getHost().port
        context = ssl.create_default_context(cafile=cert)
    else:
        listening = None
        port = listen(server)
        context = None
    try:
        def clients():
            with ThreadPoolExecutor(8) as pool:
                return [p for ps in pool.map(lambda seed: mixed_client(port, seed, 20, context), range(8))
                        for p in ps]

        problems = yield in_thread(clients)
        assert problems == []
        assert len(server.made) == 8 * 20
        yield poll_until(lambda: all(c.transport.disconnected for c in server.made), timeout=10)
    finally:
        if listening is not None:
            yield listening.stopListening()


# -- Tornado's HTTPServer: listen, sockets, stop, TLS options, protocol ---------------------


class Info:
    """A plain request callback (Tornado's interface): answers through
    ``request.connection`` with the request's protocol and client."""

    def __init__(self):
        self.requests = []

    def __call__(self, request):
        from cyclone.httputil import HTTPHeaders, ResponseStartLine

        self.requests.append(request)
        body = json.dumps({"protocol": request.protocol, "remote_ip": request.remote_ip,
                           "body": request.body.decode()}).encode()
        headers = HTTPHeaders({"Content-Type": "application/json", "Content-Length": str(len(body))})
        d = request.connection.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), headers)
        assert isinstance(d, defer.Deferred)
        request.connection.write(body)
        request.connection.finish()


def get_json(port, path="/", conn=None, **kwargs):
    status, _, body, _ = fetch(port, "GET", path, conn=conn, **kwargs)
    return status, json.loads(body)


@inline
def test_plain_callback_answers_through_write_headers_write_finish():
    server = HTTPServer(Info())
    server.listen(0, "127.0.0.1")
    try:
        status, result = yield in_thread(get_json, server.getHost().port)
    finally:
        yield server.stop()
    assert (status, result) == (200, {"protocol": "http", "remote_ip": "127.0.0.1", "body": ""})


@inline
def test_protocol_setting_is_the_request_protocol():
    """protocol="https": the scheme behind a proxy that terminates TLS."""
    server = HTTPServer(Info(), protocol="https")
    server.listen(0, "127.0.0.1")
    try:
        status, result = yield in_thread(get_json, server.getHost().port)
    finally:
        yield server.stop()
    assert (status, result["protocol"]) == (200, "https")


def test_protocol_setting_must_be_a_string():
    with pytest.raises(TypeError, match="protocol"):
        HTTPServer(Info(), protocol=443)


@inline
def test_stop_stops_listening_but_keeps_connections():
    server = HTTPServer(Info())
    server.listen(0, "127.0.0.1")
    port = server.getHost().port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        status, _ = yield in_thread(get_json, port, conn=conn)
        assert status == 200
        yield server.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=10).close()
        status, _ = yield in_thread(get_json, port, conn=conn)  # the open connection still serves
        assert status == 200
    finally:
        conn.close()


def read_to_close(sock) -> bytes:
    """What arrives until the server closes ``sock`` (an abort resets it)."""
    try:
        return recv_until(sock, b"<never>")
    except ConnectionResetError:
        return b""


@inline
def test_close_all_connections_closes_idle_and_busy_connections(app):
    server = HTTPServer(app)
    server.listen(0, "127.0.0.1")
    port = server.getHost().port
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    busy = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = yield in_thread(recv_until, idle, b"hello")
        assert first.startswith(b"HTTP/1.1 200")
        busy.sendall(b"POST /stream-slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        yield poll_until(lambda: len(server._connections) == 2 and app.stream_chunks)
        yield server.stop()
        yield server.close_all_connections()
        assert server._connections == set()
        assert (yield in_thread(read_to_close, idle)) == b""  # closed by the server
        assert (yield in_thread(read_to_close, busy)) == b""
    finally:
        idle.close()
        busy.close()
    assert (yield server.close_all_connections()) is None  # none left: fires at once


@inline
def test_bind_then_start_serves_and_start_refuses_several_processes():
    server = HTTPServer(Info())
    server.bind(0, "127.0.0.1")
    with pytest.raises(NotImplementedError, match="reuse_port"):
        server.start(num_processes=2)
    with pytest.raises(NotImplementedError):
        server.start(num_processes=None)  # Tornado's "one per CPU"
    server.start()
    try:
        status, _ = yield in_thread(get_json, server.getHost().port)
    finally:
        yield server.stop()
    assert status == 200


@inline
def test_add_sockets_serves_tcp_and_unix_sockets(tmp_path):
    from cyclone import netutil

    server = HTTPServer(Info())
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    path = str(tmp_path / "http.sock")
    server.add_sockets(sockets + [netutil.bind_unix_socket(path)])
    assert all(s.fileno() == -1 for s in sockets)  # the reactor serves its own copies

    def over_unix():
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return recv_until(sock, b"<never>")

    try:
        status, tcp_result = yield in_thread(get_json, port)
        [(unix_status, _, unix_body)] = parse_responses((yield in_thread(over_unix)))
    finally:
        yield server.stop()
    assert (status, tcp_result["remote_ip"]) == (200, "127.0.0.1")
    assert unix_status == 200 and json.loads(unix_body)["protocol"] == "http"


def test_ssl_options_are_checked_when_the_server_is_made(tmp_path, self_signed):
    cert, key = self_signed
    with pytest.raises(ValueError, match="certfile") as missing:
        HTTPServer(Info(), ssl_options={"keyfile": key})
    assert isinstance(missing.value, KeyError)  # what Tornado raises
    with pytest.raises(ValueError, match='certfile ".*nowhere.pem" does not exist'):
        HTTPServer(Info(), ssl_options={"certfile": str(tmp_path / "nowhere.pem")})
    with pytest.raises(ValueError, match='keyfile ".*nowhere.key" does not exist'):
        HTTPServer(Info(), ssl_options={"certfile": cert, "keyfile": str(tmp_path / "nowhere.key")})
    with pytest.raises(ValueError, match="unknown ssl_options keys \\['certfil'\\]"):
        HTTPServer(Info(), ssl_options={"certfil": cert})
    not_a_cert = tmp_path / "garbage.pem"
    not_a_cert.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="ssl_options"):
        HTTPServer(Info(), ssl_options={"certfile": str(not_a_cert), "keyfile": key})
    with pytest.raises(ValueError, match="cert_reqs"):
        HTTPServer(Info(), ssl_options={"certfile": cert, "keyfile": key, "cert_reqs": 7})
    with pytest.raises(TypeError, match="SSLContext"):
        HTTPServer(Info(), ssl_options=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    with pytest.raises(TypeError, match="ssl_options"):
        HTTPServer(Info(), ssl_options="server.pem")


@inline
def test_ssl_options_dict_serves_https(self_signed):
    cert, key = self_signed
    server = HTTPServer(Info(), ssl_options={"certfile": cert, "keyfile": key})
    server.listen(0, "127.0.0.1")

    def client():
        ctx = ssl.create_default_context(cafile=cert)
        conn = http.client.HTTPSConnection("localhost", server.getHost().port, context=ctx, timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, json.loads(response.read()), conn.sock.version()

    try:
        status, result, version = yield in_thread(client)
    finally:
        yield server.stop()
    assert (status, result["protocol"]) == (200, "https")
    assert version in ("TLSv1.2", "TLSv1.3")


@inline
def test_ssl_options_cert_reqs_required_refuses_a_client_without_certificate(self_signed):
    cert, key = self_signed
    server = HTTPServer(Info(), ssl_options={
        "certfile": cert, "keyfile": key, "cert_reqs": ssl.CERT_REQUIRED, "ca_certs": cert})
    server.listen(0, "127.0.0.1")

    def client(with_certificate):
        ctx = ssl.create_default_context(cafile=cert)
        if with_certificate:
            ctx.load_cert_chain(cert, key)
        conn = http.client.HTTPSConnection("localhost", server.getHost().port, context=ctx, timeout=10)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status
        except (ssl.SSLError, ConnectionError) as exc:
            return type(exc).__name__
        finally:
            conn.close()

    try:
        accepted = yield in_thread(client, True)
        refused = yield in_thread(client, False)
    finally:
        yield server.stop()
    assert accepted == 200
    assert refused != 200


def test_tornado_none_arguments_mean_the_defaults():
    from cyclone.httpserver import ServerConfig

    server = HTTPServer(Info(), idle_connection_timeout=None, body_timeout=None, max_body_size=None,
                        chunk_size=None, xheaders=None)
    config = ServerConfig(server.settings)
    assert (config.idle_timeout, config.body_timeout) == (75.0, 300.0)
    assert config.limits.max_body_size == http1.DEFAULT_LIMITS.max_body_size
    assert (config.chunk_size, config.xheaders) == (65536, False)
    # max_buffer_size is max_body_size's default, as in Tornado
    assert ServerConfig(HTTPServer(Info(), max_buffer_size=1000).settings).limits.max_body_size == 1000
    # an application's settings are the defaults; HTTPServer's arguments win
    app = web_application(xheaders=True, body_timeout=5)
    assert ServerConfig(HTTPServer(app).settings).xheaders is True
    assert ServerConfig(HTTPServer(app, body_timeout=9).settings).body_timeout == 9


def web_application(**settings):
    from cyclone import web

    return web.Application([], **settings)


@inline
def test_application_listen_returns_a_server_with_stop():
    from cyclone import web

    class Hello(web.RequestHandler):
        def get(self):
            self.write(self.request.protocol)

    server = web.Application([(r"/", Hello)]).listen(0, "127.0.0.1", protocol="https")
    assert isinstance(server, HTTPServer)
    port = server.getHost().port
    try:
        status, _, body, _ = yield in_thread(fetch, port, "GET", "/")
    finally:
        yield server.stop()
    assert (status, body) == (200, b"https")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


# -- Tornado's lower-level interface: connection and message delegates ------------------


class EchoDelegate:
    """A Tornado-style HTTPMessageDelegate that records what it receives and
    answers with it; ``data_received`` is a coroutine that waits for the
    test's go-ahead on the request with ``X-Hold``."""

    def __init__(self, server_delegate, request_conn):
        self.server_delegate = server_delegate
        self.request_conn = request_conn
        self.chunks = []
        self.hold = None

    def headers_received(self, start_line, headers):
        self.start_line = start_line
        self.headers = headers
        if "X-Hold" in headers:
            self.hold = defer.Deferred()
            self.server_delegate.holds.append(self.hold)

    async def data_received(self, chunk):
        self.chunks.append(chunk)
        if self.hold is not None:
            await self.hold

    def finish(self):
        from cyclone.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine

        request = HTTPServerRequest(connection=self.request_conn, start_line=self.start_line,
                                    headers=self.headers)
        body = json.dumps({
            "start_line": list(self.start_line), "chunks": [c.decode() for c in self.chunks],
            "remote_ip": request.remote_ip, "protocol": request.protocol,
        }).encode()
        conn = self.request_conn
        conn.write_headers(ResponseStartLine("HTTP/1.1", 201, "Made"), HTTPHeaders({"X-Seen": "yes"}),
                           body[:5])
        conn.write(body[5:])
        conn.finish()

    def on_connection_close(self):
        self.server_delegate.events.append("message closed")


def make_connection_delegate():
    from cyclone.httputil import HTTPMessageDelegate, HTTPServerConnectionDelegate

    class ServerDelegate(HTTPServerConnectionDelegate):
        def __init__(self):
            self.events = []
            self.holds = []
            self.conns = []

        def start_request(self, server_conn, request_conn):
            self.conns.append((server_conn, request_conn))
            return type("Echo", (EchoDelegate, HTTPMessageDelegate), {})(self, request_conn)

        def on_close(self, server_conn):
            self.events.append("connection closed")

    return ServerDelegate()


@inline
def test_connection_delegate_gets_start_line_headers_and_chunks_of_chunk_size():
    delegate = make_connection_delegate()
    server = HTTPServer(delegate, chunk_size=4, xheaders=True)
    server.listen(0, "127.0.0.1")
    port = server.getHost().port
    try:
        status, headers, body, conn = yield in_thread(
            fetch, port, "POST", "/echo?x=1", body=b"0123456789", headers={"X-Real-Ip": "10.1.2.3"})
        conn.close()
        yield poll_until(lambda: "connection closed" in delegate.events)
    finally:
        yield server.stop()
    assert (status, headers["X-Seen"], headers["Transfer-Encoding"]) == (201, "yes", "chunked")
    assert json.loads(body) == {
        "start_line": ["POST", "/echo?x=1", "HTTP/1.1"], "chunks": ["0123", "4567", "89"],
        "remote_ip": "10.1.2.3", "protocol": "http",
    }
    [(server_conn, request_conn)] = delegate.conns
    assert server_conn is request_conn
    assert request_conn.stream is request_conn.transport
    assert delegate.events == ["connection closed"]  # the message was finished: not told


@inline
def test_connection_delegate_data_received_coroutine_holds_the_body_back():
    """While data_received's coroutine waits, no more of the body is given."""
    delegate = make_connection_delegate()
    server = HTTPServer(delegate, chunk_size=3)
    server.listen(0, "127.0.0.1")
    port = server.getHost().port
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Hold: 1\r\nContent-Length: 7\r\n"
                     b"Connection: close\r\n\r\nabcdefg")
        yield poll_until(lambda: delegate.holds)
        [hold] = delegate.holds
        yield poll_until(lambda: len(server._connections) == 1)
        [connection] = server._connections
        message = connection._delegate.delegate
        assert message.chunks == [b"abc"]
        hold.callback(None)
        data = yield in_thread(recv_until, sock, b"<never>")
    finally:
        sock.close()
        yield server.stop()
    [(status, _, body)] = parse_responses(data)
    assert (status, json.loads(body)["chunks"]) == (201, ["abc", "def", "g"])


@inline
def test_connection_delegate_is_told_when_the_client_goes_away():
    delegate = make_connection_delegate()
    server = HTTPServer(delegate)
    server.listen(0, "127.0.0.1")
    port = server.getHost().port
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        yield poll_until(lambda: delegate.conns)
    finally:
        sock.close()
    try:
        yield poll_until(lambda: "connection closed" in delegate.events)
    finally:
        yield server.stop()
    assert delegate.events == ["message closed", "connection closed"]


@inline
def test_set_close_callback_is_called_when_the_connection_closes():
    closed = []

    def callback(request):
        request.connection.set_close_callback(lambda: closed.append(request.uri))
        Info()(request)

    server = HTTPServer(callback)
    server.listen(0, "127.0.0.1")
    try:
        data = yield in_thread(raw_exchange, server.getHost().port,
                               b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        yield poll_until(lambda: closed)
    finally:
        yield server.stop()
    assert parse_responses(data)[0][0] == 200
    assert closed == ["/a"]


@inline
def test_write_on_a_closed_connection_fails_its_deferred(app):
    server = HTTPServer(app)
    server.listen(0, "127.0.0.1")
    sock = socket.create_connection(("127.0.0.1", server.getHost().port), timeout=10)
    try:
        sock.sendall(b"POST /stream-slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        yield poll_until(lambda: server._connections and app.stream_chunks)
        [connection] = server._connections
        connection.write_head(200, [("Content-Length", "10")])
        sock.close()
        yield poll_until(lambda: connection._closed)
        with pytest.raises(StreamClosedError):
            yield connection.write(b"late")
    finally:
        sock.close()
        yield server.stop()


def test_server_uses_the_connection_class_of_the_application():
    from cyclone import web
    from cyclone.httpserver import HTTPConnection

    class MyConnection(HTTPConnection):
        pass

    class MyApplication(web.Application):
        protocol = MyConnection

    assert HTTPServer(MyApplication([])).protocol is MyConnection
    assert HTTPServer(web.Application([])).protocol is HTTPConnection
    assert HTTPServer(Info()).protocol is HTTPConnection


@pytest.mark.parametrize("length", ["+10", " 10", "1_0", "-1", "0x1", "\u0661\u0660", ""])
@inline
def test_write_headers_refuses_a_content_length_that_is_not_ascii_digits(length):
    """Only ASCII digits make a response's Content-Length (not what int()
    takes): a ValueError, and nothing of that head is sent."""
    from cyclone.httputil import HTTPHeaders, ResponseStartLine

    errors = []

    def callback(request):
        conn = request.connection
        try:
            conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders({"Content-Length": length}))
        except ValueError as exc:
            errors.append(str(exc))
        conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders({"Content-Length": "2"}))
        conn.write(b"ok")
        conn.finish()

    server = HTTPServer(callback)
    server.listen(0, "127.0.0.1")
    try:
        data = yield in_thread(raw_exchange, server.getHost().port,
                               b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        yield server.stop()
    assert len(errors) == 1 and "Content-Length" in errors[0]
    [(status, headers, body)] = parse_responses(data)
    assert (status, headers.get_all("Content-Length"), body) == (200, ["2"], b"ok")
    assert data.count(b"HTTP/1.1 ") == 1


def test_deadline_sweeper_survives_its_timer_cancelled_behind_its_back():
    # trial's dirty-reactor cleanup cancels every pending DelayedCall; a
    # connection closed afterwards must not raise AlreadyCancelled in
    # connectionLost, and the next connection must get a live timer again
    from twisted.internet.task import Clock

    from cyclone.httpserver import _DeadlineSweeper

    clock = Clock()
    sweeper = _DeadlineSweeper(clock)
    first, second = object(), object()
    sweeper.watch(first, 10.0)
    clock.getDelayedCalls()[0].cancel()
    sweeper.unwatch(first)
    assert sweeper.connections == set()
    sweeper.watch(second, 10.0)
    calls = clock.getDelayedCalls()
    assert len(calls) == 1 and calls[0].active()
