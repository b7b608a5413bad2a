"""cyclone.testing's client (cyclone.httpclient with cyclone.http1client reading the wire),
against servers we did not write: the standard library's http.server (in a
thread), twisted.web, and byte-exact scripted answers for the framing cases
(chunked with extensions and trailers, close-delimited, 1xx, 204/304, HEAD,
malformed heads)."""

from __future__ import annotations

import gzip
import http.server
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.web import resource, server

from cyclone.httputil import HTTPInputError
from cyclone.testing import AsyncHTTPClient, HTTPClientError, HTTPStreamClosedError, HTTPTimeoutError


@pytest.fixture
def client():
    c = AsyncHTTPClient()
    yield c
    pytest_twisted.blockon(c.close())


# -- a scripted server: answers each request with given bytes -------------------------------


class _Scripted(protocol.Protocol):
    def connectionMade(self) -> None:
        self.received = b""
        self.answered = False
        self.factory.connections.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.factory.requests.append(self.received)
        if not self.answered and b"\r\n\r\n" in self.received:
            self.answered = True
            self.factory.on_head(self)

    def connectionLost(self, reason=None) -> None:
        self.factory.closed.append(self.received)


class Scripted(protocol.Factory):
    """Answers with ``answer`` once a request head is in; closes when ``close``."""

    protocol = _Scripted

    def __init__(self, answer: bytes = b"", close: bool = True, on_head=None) -> None:
        self.answer = answer
        self.close = close
        self.requests: list[bytes] = []
        self.closed: list[bytes] = []
        self.connections: list[_Scripted] = []
        self.on_head = on_head or self._answer

    def _answer(self, conn: _Scripted) -> None:
        conn.transport.write(self.answer)
        if self.close:
            conn.transport.loseConnection()


def _serve(listen, factory) -> str:
    return f"http://127.0.0.1:{listen(factory)}"


@pytest_twisted.inlineCallbacks
def test_headers_are_the_ones_received_and_content_length_frames_the_body(listen, client):
    answer = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
              b"X-Two: a\r\nX-Two: b\r\n\r\nhelloTRAILING-GARBAGE")
    scripted = Scripted(answer, close=False)  # the client closes after the 5 bytes
    response = yield client.fetch(_serve(listen, scripted) + "/p?q=1")
    assert response.body == b"hello"
    assert response.headers["Content-Length"] == "5"
    assert response.headers["Connection"] == "keep-alive"
    assert response.headers.get_list("X-Two") == ["a", "b"]
    head = scripted.requests[-1].decode("latin-1")
    assert head.startswith("GET /p?q=1 HTTP/1.1\r\n")
    assert "\r\nConnection: close\r\n" in head
    assert f"\r\nHost: 127.0.0.1:{scripted.connections[0].transport.getHost().port}\r\n" in head


@pytest_twisted.inlineCallbacks
def test_chunked_with_extensions_and_trailers(listen, client):
    answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5;ext=1\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    response = yield client.fetch(_serve(listen, Scripted(answer, close=False)))
    assert response.body == b"hello, world"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "X-Trailer" not in response.headers


@pytest_twisted.inlineCallbacks
def test_body_until_close_and_early_close(listen, client):
    response = yield client.fetch(_serve(listen, Scripted(b"HTTP/1.0 200 OK\r\n\r\nall of it")))
    assert response.body == b"all of it"
    truncated = Scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    with pytest.raises(HTTPStreamClosedError):
        yield client.fetch(_serve(listen, truncated))
    with pytest.raises(HTTPStreamClosedError):
        yield client.fetch(_serve(listen, Scripted(b"HTTP/1.1 200 OK\r\n")))  # head cut short


@pytest_twisted.inlineCallbacks
def test_no_body_for_head_204_304_and_interim_responses_skipped(listen, client):
    # Content-Length on a HEAD/304 answer describes the GET's body: none follows.
    for method, answer in (
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\nETag: \"x\"\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ):
        response = yield client.fetch(_serve(listen, Scripted(answer, close=False)), method=method,
                                      raise_error=False)
        assert response.body == b""
        assert response.headers.get("Content-Length") == ("42" if b"42" in answer else None)
    interim = b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    final = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    response = yield client.fetch(_serve(listen, Scripted(interim + final)))
    assert (response.code, response.reason, response.body) == (201, "Created", b"ok")
    assert "Link" not in response.headers


@pytest_twisted.inlineCallbacks
def test_malformed_answers_are_599(listen, client):
    for answer in (b"NOT HTTP\r\n\r\n", b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
                   b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx",
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
        with pytest.raises(HTTPClientError) as caught:
            yield client.fetch(_serve(listen, Scripted(answer)))
        assert caught.value.code == 599
        assert "Malformed response" in str(caught.value)


@pytest_twisted.inlineCallbacks
def test_header_callback_sees_the_final_head(listen, client):
    lines: list[str] = []
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n"
    yield client.fetch(_serve(listen, Scripted(answer)), header_callback=lines.append)
    assert lines == ["HTTP/1.1 200 OK\r\n", "Content-Length: 0\r\n", "X-A: 1\r\n", "\r\n"]


@pytest_twisted.inlineCallbacks
def test_expect_100_continue_holds_the_body_until_100(listen, client):
    def on_head(conn):
        # Only the head has arrived: the body waits for our 100.
        assert conn.received.endswith(b"\r\n\r\n")
        assert b"\r\nExpect: 100-continue\r\n" in conn.received
        conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        reactor.callLater(0, check_body, conn)

    def check_body(conn):
        if not conn.received.endswith(b"payload"):
            reactor.callLater(0.01, check_body, conn)
            return
        conn.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ngot")
        conn.transport.loseConnection()

    scripted = Scripted(on_head=on_head)
    response = yield client.fetch(_serve(listen, scripted), method="PUT", body=b"payload",
                                  expect_100_continue=True)
    assert response.body == b"got"
    # A final answer instead of 100: the body is never sent.
    refusing = Scripted(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n")
    response = yield client.fetch(_serve(listen, refusing), method="PUT", body=b"payload",
                                  expect_100_continue=True, raise_error=False)
    assert response.code == 413
    assert b"payload" not in refusing.closed[0]


@pytest_twisted.inlineCallbacks
def test_body_producer_is_sent_chunked_or_with_the_given_length(listen, client):
    @defer.inlineCallbacks
    def producer(write):
        yield write(b"abc")
        yield write("déf")

    def respond_when_complete(conn):
        def check():
            if not conn.received.endswith((b"0\r\n\r\n", "abcdéf".encode())):
                reactor.callLater(0.01, check)
                return
            conn.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            conn.transport.loseConnection()
        check()

    chunked = Scripted(on_head=respond_when_complete)
    yield client.fetch(_serve(listen, chunked), method="POST", body_producer=producer)
    sent = chunked.closed[0]
    assert b"\r\nTransfer-Encoding: chunked\r\n" in sent
    assert sent.endswith(b"\r\n\r\n3\r\nabc\r\n4\r\nd\xc3\xa9f\r\n0\r\n\r\n")
    sized = Scripted(on_head=respond_when_complete)
    yield client.fetch(_serve(listen, sized), method="POST", body_producer=producer,
                       headers={"Content-Length": "7"})
    assert sized.closed[0].endswith("\r\n\r\nabcdéf".encode())
    assert b"Transfer-Encoding" not in sized.closed[0]


@pytest_twisted.inlineCallbacks
def test_a_failing_body_producer_fails_the_fetch(listen, client):
    async def producer(write):
        await write(b"x")
        raise RuntimeError("producer broke")

    with pytest.raises(RuntimeError, match="producer broke"):
        yield client.fetch(_serve(listen, Scripted(close=False, on_head=lambda conn: None)),
                           method="POST", body_producer=producer)


@pytest_twisted.inlineCallbacks
def test_request_timeout_aborts_a_silent_server(listen, client):
    scripted = Scripted(on_head=lambda conn: None)
    with pytest.raises(HTTPTimeoutError):
        yield client.fetch(_serve(listen, scripted), request_timeout=0.2)
    yield _poll(lambda: scripted.closed)  # the connection is closed, not left open


def _poll(predicate, limit: float = 5.0):
    from tests.conftest import poll_until

    return poll_until(predicate, timeout=limit)


def test_method_body_and_header_checks_as_tornado(client):
    url = "http://127.0.0.1:1/"
    with pytest.raises(ValueError, match="Body must not be None for method POST"):
        client.fetch(url, method="POST")
    with pytest.raises(ValueError, match="Body must be None for method GET"):
        client.fetch(url, body="x")
    with pytest.raises(KeyError, match="unknown method PROPFIND"):
        client.fetch(url, method="PROPFIND")
    # A header that would split the request head never reaches the wire.
    with pytest.raises(HTTPInputError):
        client.fetch(url, headers={"X-A": "a\r\nX-Injected: 1"})
    with pytest.raises(HTTPInputError):
        client.fetch(url, headers={"X A": "1"})



@pytest_twisted.inlineCallbacks
def test_nonstandard_methods_when_allowed(listen, client):
    scripted = Scripted(b"HTTP/1.1 207 Multi-Status\r\nContent-Length: 0\r\n\r\n")
    response = yield client.fetch(_serve(listen, scripted), method="PROPFIND", body=b"<x/>",
                                  allow_nonstandard_methods=True)
    assert response.code == 207
    assert scripted.closed[0].startswith(b"PROPFIND / HTTP/1.1\r\n")
    assert scripted.closed[0].endswith(b"\r\nContent-Length: 4\r\n\r\n<x/>")


# -- the standard library's http.server -----------------------------------------------------


class StdlibHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # so that it answers Expect: 100-continue

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/close-delimited":
            self.protocol_version = "HTTP/1.0"
            self.close_connection = True
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"until close")
            return
        if self.path == "/gzip":
            body = gzip.compress(b"unzipped " * 50)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/target")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"{self.command} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Expect", self.headers.get("Expect", ""))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stdlib_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StdlibHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest_twisted.inlineCallbacks
def test_stdlib_server(stdlib_server, client):
    response = yield client.fetch(stdlib_server + "/plain")
    assert (response.code, response.body) == (200, b"GET /plain")
    assert response.headers["Content-Length"] == "10"
    head = yield client.fetch(stdlib_server + "/plain", method="HEAD")
    assert (head.body, head.headers["Content-Length"]) == (b"", "11")
    closing = yield client.fetch(stdlib_server + "/close-delimited")
    assert closing.body == b"until close"
    assert "Content-Length" not in closing.headers
    zipped = yield client.fetch(stdlib_server + "/gzip", use_gzip=True)
    assert zipped.body == b"unzipped " * 50
    assert zipped.headers["X-Consumed-Content-Encoding"] == "gzip"
    raw = yield client.fetch(stdlib_server + "/gzip", use_gzip=False, headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(raw.body) == b"unzipped " * 50
    redirected = yield client.fetch(stdlib_server + "/redirect")
    assert redirected.effective_url == stdlib_server + "/target"
    assert redirected.body == b"GET /target"
    put = yield client.fetch(stdlib_server + "/echo", method="PUT", body=b"sent after 100",
                             expect_100_continue=True)
    assert (put.body, put.headers["X-Expect"]) == (b"sent after 100", "100-continue")
    old = yield client.fetch(stdlib_server + "/v10", http_version="HTTP/1.0")
    assert old.body == b"GET /v10"


# -- twisted.web -------------------------------------------------------------------------------


class Streamed(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        # No length given: twisted.web answers HTTP/1.1 with chunked coding.
        request.write(b"part one, ")
        request.write(b"part two")
        request.finish()
        return server.NOT_DONE_YET


@pytest_twisted.inlineCallbacks
def test_twisted_web_chunked(listen, client):
    port = listen(server.Site(Streamed()))
    chunks: list[bytes] = []
    response = yield client.fetch(f"http://127.0.0.1:{port}/", streaming_callback=chunks.append)
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert b"".join(chunks) == b"part one, part two"
    assert response.body == b""
    whole = yield client.fetch(f"http://127.0.0.1:{port}/")
    assert whole.body == b"part one, part two"
