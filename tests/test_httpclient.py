"""cyclone.httpclient against our own server (a cyclone Application) and
scripted raw servers: methods, bodies, headers as received, keep-alive,
redirects, credentials on redirects, limits, timeouts, refusals, the
original cyclone's names."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
import pytest_twisted
from twisted.internet import defer, protocol

import cyclone.web
from cyclone import httpclient
from cyclone.httpclient import (
    AsyncHTTPClient,
    HTTPBodyTooLargeError,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
    HTTPStreamClosedError,
    HTTPTimeoutError,
    fetch,
)
from cyclone.testing import AsyncHTTPTestCase, gen_test


class Echo(cyclone.web.RequestHandler):
    """Describes the request it got, and the client port it came from."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS", "PROPFIND")

    def _describe(self) -> None:
        request = self.request
        self.write({
            "method": request.method,
            "uri": request.uri,
            "body": request.body.decode("latin-1"),
            "headers": {k: v for k, v in request.headers.get_all()},
            "header_lists": {k: request.headers.get_list(k) for k in request.headers},
            "port": request.connection.transport.getPeer().port,
        })

    get = post = delete = patch = put = options = propfind = _describe

    def head(self) -> None:
        self.set_header("X-Head", "yes")


class Status(cyclone.web.RequestHandler):
    def get(self, code: str) -> None:
        self.set_status(int(code))
        self.write(f"status {code}")


class Gzipped(cyclone.web.RequestHandler):
    def get(self) -> None:
        size = int(self.get_argument("size"))
        self.set_header("Content-Encoding", self.get_argument("coding", "gzip"))
        data = b"z" * size
        if self.get_argument("coding", "gzip") == "deflate":
            self.write(zlib.compress(data))
        else:
            self.write(gzip.compress(data))


class Big(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.write(b"b" * int(self.get_argument("size")))


def make_app() -> cyclone.web.Application:
    return cyclone.web.Application([
        (r"/echo.*", Echo),
        (r"/redirect", Redirect),
        (r"/status/(\d+)", Status),
        (r"/gzip", Gzipped),
        (r"/big", Big),
    ])


@pytest.fixture
def server(listen):
    """The base URL of make_app() on 127.0.0.1."""
    return f"http://127.0.0.1:{listen(make_app())}"


@pytest.fixture
def other_server(listen):
    """A second origin (another port) serving the same app."""
    return f"http://127.0.0.1:{listen(make_app())}"


@pytest.fixture
def client():
    c = AsyncHTTPClient(force_instance=True)
    yield c
    pytest_twisted.blockon(c.close())


def _json(response: HTTPResponse) -> dict:
    return json.loads(response.body)


# -- the basics -----------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_get_returns_code_reason_headers_body_and_timing(server, client):
    response = yield client.fetch(server + "/echo?x=1")
    assert response.code == 200 and response.reason == "OK"
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.headers["Content-Length"] == str(len(response.body))
    echoed = _json(response)
    assert echoed["method"] == "GET" and echoed["uri"] == "/echo?x=1"
    assert echoed["headers"]["Host"] == server[len("http://"):]
    assert response.effective_url == server + "/echo?x=1"
    assert response.error is None and response.request_time > 0 and response.start_time > 1e9
    response.rethrow()


@pytest_twisted.inlineCallbacks
def test_post_body_and_headers_as_str_or_bytes(server, client):
    response = yield client.fetch(
        (server + "/echo").encode(), method=b"POST", body="caf\u00e9",
        headers={b"X-Bytes": b"\xff", "X-Str": "text", "Content-Type": "text/plain"},
    )
    echoed = _json(response)
    assert echoed["method"] == "POST"
    assert echoed["body"].encode("latin-1") == "caf\u00e9".encode("utf-8")
    assert echoed["headers"]["X-Str"] == "text"
    assert echoed["headers"]["X-Bytes"] == "\xff"
    assert echoed["headers"]["Content-Type"] == "text/plain"
    assert echoed["headers"]["Content-Length"] == "5"


@pytest_twisted.inlineCallbacks
def test_an_HTTPRequest_object_and_repeated_headers(server, client):
    request = HTTPRequest(server + "/echo", method="PUT", body=b"x",
                          headers={"X-Multi": ["a", "b"]}, user_agent="agent/1",
                          auth_username="u", auth_password="p")
    echoed = _json((yield client.fetch(request)))
    assert echoed["method"] == "PUT"
    assert echoed["header_lists"]["X-Multi"] == ["a", "b"]
    assert echoed["headers"]["User-Agent"] == "agent/1"
    assert echoed["headers"]["Authorization"] == "Basic dTpw"


@pytest_twisted.inlineCallbacks
def test_non_2xx_raises_from_AsyncHTTPClient_and_is_returned_by_fetch(server, client):
    with pytest.raises(HTTPClientError) as raised:
        yield client.fetch(server + "/status/404")
    assert raised.value.code == 404 and raised.value.response.body == b"status 404"
    response = yield client.fetch(server + "/status/503", raise_error=False)
    assert response.code == 503 and isinstance(response.error, HTTPClientError)
    with pytest.raises(HTTPClientError):
        response.rethrow()
    # The module's fetch, as the original cyclone's: the response, with .error.
    response = yield fetch(server + "/status/404")
    assert response.code == 404 and response.error.code == 404 and response.body == b"status 404"
    with pytest.raises(HTTPClientError):
        yield fetch(server + "/status/404", raise_error=True)


@pytest_twisted.inlineCallbacks
def test_head_has_no_body_but_its_headers(server, client):
    response = yield client.fetch(server + "/echo", method="HEAD")
    assert response.body == b"" and response.headers["X-Head"] == "yes"


# -- keep-alive ------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_sequential_requests_reuse_one_connection(server, client):
    ports = set()
    for _ in range(5):
        response = yield client.fetch(server + "/echo")
        ports.add(_json(response)["port"])
        assert "Connection" not in _json(response)["headers"]
    assert len(ports) == 1


@pytest_twisted.inlineCallbacks
def test_concurrent_requests_use_several_connections_then_reuse_them(server, client):
    first = yield defer.gatherResults([client.fetch(server + "/echo") for _ in range(4)])
    ports = {_json(r)["port"] for r in first}
    assert len(ports) == 4
    again = yield defer.gatherResults([client.fetch(server + "/echo") for _ in range(4)])
    assert {_json(r)["port"] for r in again} == ports


@pytest_twisted.inlineCallbacks
def test_a_connection_closed_by_the_server_while_idle_is_replaced(listen, client):
    # A scripted server that answers each request then closes, without saying so.
    port = listen(Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], close=True))
    for _ in range(3):
        response = yield client.fetch(f"http://127.0.0.1:{port}/")
        assert response.body == b"ok"


@pytest_twisted.inlineCallbacks
def test_connection_close_in_request_headers_is_honoured(server, client):
    ports = set()
    for _ in range(2):
        response = yield client.fetch(server + "/echo", headers={"Connection": "close"})
        ports.add(_json(response)["port"])
        assert response.headers["Connection"] == "close"
    assert len(ports) == 2


# -- redirects ------------------------------------------------------------------------


def _redirect(base: str, code: int, to: str) -> str:
    from urllib.parse import quote

    return f"{base}/redirect?code={code}&to={quote(to, safe='')}"


class Redirect(cyclone.web.RequestHandler):
    """Answers ?code= with Location: ?to=."""

    def _go(self) -> None:
        self.set_status(int(self.get_argument("code")))
        self.set_header("Location", self.get_argument("to"))

    get = post = put = delete = head = _go


@pytest.mark.parametrize("code", [301, 302, 303])
@pytest_twisted.inlineCallbacks
def test_301_302_303_turn_a_post_into_a_get_without_body(server, client, code):
    response = yield client.fetch(_redirect(server, code, "/echo/after"), method="POST", body="a=1")
    echoed = _json(response)
    assert echoed["method"] == "GET" and echoed["body"] == ""
    assert "Content-Length" not in echoed["headers"] and "Content-Type" not in echoed["headers"]
    assert response.effective_url == server + "/echo/after"


@pytest.mark.parametrize("code", [307, 308])
@pytest_twisted.inlineCallbacks
def test_307_308_keep_method_and_body(server, client, code):
    response = yield client.fetch(_redirect(server, code, "/echo/kept"), method="PUT", body="payload")
    echoed = _json(response)
    assert echoed["method"] == "PUT" and echoed["body"] == "payload"


@pytest_twisted.inlineCallbacks
def test_relative_location_and_a_chain_of_redirects(server, client):
    inner = _redirect("", 302, "../echo/end?z=9")
    response = yield client.fetch(_redirect(server, 301, inner))
    assert _json(response)["uri"] == "/echo/end?z=9"


@pytest_twisted.inlineCallbacks
def test_max_redirects_and_follow_redirects_false(server, client):
    loop = _redirect(server, 302, _redirect(server, 302, "/echo"))
    with pytest.raises(HTTPClientError) as raised:
        yield client.fetch(loop, max_redirects=1)
    assert raised.value.code == 302
    response = yield client.fetch(loop, follow_redirects=False, raise_error=False)
    assert response.code == 302 and response.headers["Location"].startswith(server)
    # The original cyclone's names.
    response = yield fetch(loop, followRedirect=False)
    assert response.code == 302
    response = yield fetch(loop, followRedirect=True, maxRedirects=2)
    assert response.code == 200


@pytest_twisted.inlineCallbacks
def test_credentials_are_dropped_on_a_cross_origin_redirect_only(server, other_server, client):
    secret = {"Authorization": "Bearer s3cret", "Cookie": "session=1", "X-Other": "kept"}
    same = yield client.fetch(_redirect(server, 302, "/echo"), headers=secret)
    assert _json(same)["headers"]["Authorization"] == "Bearer s3cret"
    assert _json(same)["headers"]["Cookie"] == "session=1"
    other = yield client.fetch(_redirect(server, 302, other_server + "/echo"), headers=secret)
    headers = _json(other)["headers"]
    assert "Authorization" not in headers and "Cookie" not in headers
    assert headers["X-Other"] == "kept"
    # Basic auth from auth_username is dropped as well.
    other = yield client.fetch(_redirect(server, 307, other_server + "/echo"),
                               auth_username="u", auth_password="p")
    assert "Authorization" not in _json(other)["headers"]


@pytest_twisted.inlineCallbacks
def test_a_redirect_to_another_scheme_is_not_followed(server, client):
    response = yield client.fetch(_redirect(server, 302, "file:///etc/passwd"), raise_error=False)
    assert response.code == 302


@pytest_twisted.inlineCallbacks
def test_a_location_that_cannot_be_fetched_is_returned_not_followed(listen, client):
    port = listen(Scripted([b"HTTP/1.1 302 Found\r\nLocation: /a\tb\r\nContent-Length: 0\r\n\r\n"]))
    response = yield client.fetch(f"http://127.0.0.1:{port}/", raise_error=False)
    assert response.code == 302 and response.headers["Location"] == "/a\tb"


# -- bodies, compression and limits ---------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
@pytest_twisted.inlineCallbacks
def test_compressed_bodies_are_decoded(server, client, coding):
    response = yield client.fetch(f"{server}/gzip?size=1000&coding={coding}")
    assert response.body == b"z" * 1000
    assert "Content-Encoding" not in response.headers
    assert response.headers["X-Consumed-Content-Encoding"] == coding
    raw = yield client.fetch(f"{server}/gzip?size=1000&coding={coding}", decompress_response=False)
    assert raw.headers["Content-Encoding"] == coding and raw.body != b"z" * 1000


@pytest_twisted.inlineCallbacks
def test_max_body_size_limits_the_decompressed_size(server, client):
    # 10 MB of "z" compresses to about 10 KB: the wire size would pass.
    with pytest.raises(HTTPBodyTooLargeError):
        yield client.fetch(f"{server}/gzip?size=10000000", max_body_size=1_000_000)
    response = yield client.fetch(f"{server}/gzip?size=1000000", max_body_size=1_000_000)
    assert len(response.body) == 1_000_000


@pytest_twisted.inlineCallbacks
def test_max_body_size_on_a_plain_body_and_the_client_still_works(server, client):
    with pytest.raises(HTTPBodyTooLargeError):
        yield client.fetch(f"{server}/big?size=2000", max_body_size=1999)
    response = yield client.fetch(f"{server}/big?size=2000", max_body_size=2000)
    assert len(response.body) == 2000


@pytest_twisted.inlineCallbacks
def test_streaming_and_header_callbacks(server, client):
    pieces, lines = [], []
    response = yield client.fetch(f"{server}/big?size=300000", streaming_callback=pieces.append,
                                  header_callback=lines.append)
    assert response.body == b"" and b"".join(pieces) == b"b" * 300000
    assert lines[0].startswith("HTTP/1.1 200") and lines[-1] == "\r\n"
    assert "Content-Length: 300000\r\n" in lines


# -- refusals before sending ----------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"headers": {"X-Evil": "a\r\nInjected: 1"}},
    {"headers": {"X-Evil": "a\nb"}},
    {"headers": {"Bad Name": "x"}},
    {"method": "GET /x HTTP/1.1\r\nHost: y\r\n\r\nGET"},
    {"user_agent": "ua\r\nX: 1"},
])
def test_cr_lf_in_method_or_header_is_refused_before_sending(listen, client, kwargs):
    scripted = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    port = listen(scripted)
    with pytest.raises((ValueError, KeyError)):
        client.fetch(f"http://127.0.0.1:{port}/", allow_nonstandard_methods=True, **kwargs)
    assert scripted.connections == []


@pytest.mark.parametrize("url", ["/path\r\nInjected: 1", "/a\r\nb", "/a\nb", "/a\tb", "/\x00", "/\x7f",
                                 "/?q=\r\n", "/#\n"])
def test_control_characters_in_the_url_are_refused_before_sending(listen, client, url):
    scripted = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    port = listen(scripted)
    with pytest.raises(ValueError):
        client.fetch(f"http://127.0.0.1:{port}{url}")
    assert scripted.connections == []


@pytest_twisted.inlineCallbacks
def test_spaces_and_non_ascii_in_the_url_are_quoted(server, client):
    response = yield client.fetch(server + "/echo/a b/caf\u00e9?q=x y&r=<\u20ac>")
    assert _json(response)["uri"] == "/echo/a%20b/caf%C3%A9?q=x%20y&r=%3C%E2%82%AC%3E"


def test_unknown_scheme_is_refused(client):
    with pytest.raises(ValueError, match="scheme"):
        client.fetch("ftp://127.0.0.1/x")


# -- failures -------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_refused_connection(client):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        yield client.fetch(f"http://127.0.0.1:{port}/")


@pytest_twisted.inlineCallbacks
def test_request_timeout_covers_a_server_that_never_answers(listen, client):
    scripted = Scripted([])  # reads the request, never answers
    port = listen(scripted)
    with pytest.raises(HTTPTimeoutError):
        yield client.fetch(f"http://127.0.0.1:{port}/", request_timeout=0.3)
    # The original's name for it.
    with pytest.raises(HTTPTimeoutError):
        yield fetch(f"http://127.0.0.1:{port}/", timeout=0.3)


@pytest_twisted.inlineCallbacks
def test_request_timeout_covers_a_body_that_trickles(listen, client):
    # The head comes at once, then the body never completes.
    port = listen(Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart"], close=False))
    with pytest.raises(HTTPTimeoutError):
        yield client.fetch(f"http://127.0.0.1:{port}/", request_timeout=0.3)


@pytest_twisted.inlineCallbacks
def test_a_server_closing_mid_body_is_a_stream_closed_error(listen, client):
    port = listen(Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart"], close=True))
    with pytest.raises(HTTPStreamClosedError):
        yield client.fetch(f"http://127.0.0.1:{port}/")


@pytest_twisted.inlineCallbacks
def test_a_malformed_response_is_a_599(listen, client):
    port = listen(Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx"], close=True))
    with pytest.raises(HTTPClientError) as raised:
        yield client.fetch(f"http://127.0.0.1:{port}/")
    assert raised.value.code == 599 and "Content-Length" in str(raised.value)


@pytest_twisted.inlineCallbacks
def test_an_oversized_head_is_refused(listen, client):
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"f" * 5000 + b"\r\n\r\n"
    port = listen(Scripted([head], close=True))
    with pytest.raises(HTTPClientError) as raised:
        yield client.fetch(f"http://127.0.0.1:{port}/", max_header_size=4096)
    assert raised.value.code == 599 and "head" in str(raised.value)


# -- the original cyclone's names and the shared client --------------------------------


@pytest_twisted.inlineCallbacks
def test_postdata_makes_a_form_post_and_headers_may_be_lists(server):
    response = yield fetch(server + "/echo", postdata="a=1&b=2", headers={"X-L": ["1", "2"]})
    echoed = _json(response)
    assert echoed["method"] == "POST" and echoed["body"] == "a=1&b=2"
    assert echoed["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert echoed["header_lists"]["X-L"] == ["1", "2"]
    response = yield fetch(server + "/echo", method="PUT", postdata=b"raw")
    assert _json(response)["method"] == "PUT"


@pytest_twisted.inlineCallbacks
def test_the_module_fetch_lets_any_method_carry_a_body_or_none(server, client):
    echoed = _json((yield fetch(server + "/echo", method="DELETE", body="gone")))
    assert echoed["method"] == "DELETE" and echoed["body"] == "gone"
    echoed = _json((yield fetch(server + "/echo", method="POST")))
    assert echoed["method"] == "POST" and echoed["headers"]["Content-Length"] == "0"
    # AsyncHTTPClient.fetch checks as Tornado's does.
    with pytest.raises(ValueError, match="Body must be None"):
        client.fetch(server + "/echo", method="DELETE", body="gone")


@pytest_twisted.inlineCallbacks
def test_the_original_HTTPClient_class(server):
    response = yield httpclient.HTTPClient(server + "/echo", method="PUT", postdata="x=1").fetch()
    assert response.code == 200 and _json(response)["method"] == "PUT" and _json(response)["body"] == "x=1"


def test_the_shared_client_is_one_instance_and_force_instance_is_another():
    assert AsyncHTTPClient() is AsyncHTTPClient()
    other = AsyncHTTPClient(force_instance=True)
    assert other is not AsyncHTTPClient()


@pytest_twisted.inlineCallbacks
def test_configure_sets_the_shared_instance_made_next(server):
    AsyncHTTPClient.configure(None, max_clients=7, defaults={"user_agent": "configured"})
    try:
        if AsyncHTTPClient._shared is not None:
            yield AsyncHTTPClient._shared.close()
        shared = AsyncHTTPClient()
        assert shared.max_clients == 7
        echoed = _json((yield fetch(server + "/echo")))
        assert echoed["headers"]["User-Agent"] == "configured"
        with pytest.raises(ValueError):
            AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")
    finally:
        AsyncHTTPClient.configure(None)
        yield AsyncHTTPClient().close()
    assert AsyncHTTPClient().max_clients == 100


@pytest_twisted.inlineCallbacks
def test_defaults_apply_to_each_request_and_calls_override_them(server):
    client = AsyncHTTPClient(defaults={"user_agent": "default-agent", "headers": {"X-D": "1"}})
    try:
        echoed = _json((yield client.fetch(server + "/echo")))
        assert echoed["headers"]["User-Agent"] == "default-agent" and echoed["headers"]["X-D"] == "1"
        echoed = _json((yield client.fetch(server + "/echo", user_agent="mine")))
        assert echoed["headers"]["User-Agent"] == "mine"
    finally:
        yield client.close()


@pytest_twisted.inlineCallbacks
def test_settings_of_one_call_do_not_leak_into_the_next(server, client):
    yield client.fetch(server + "/echo", headers={"X-Once": "1"}, user_agent="once")
    echoed = _json((yield client.fetch(server + "/echo")))
    assert "X-Once" not in echoed["headers"] and "User-Agent" not in echoed["headers"]


# -- a scripted server -----------------------------------------------------------------


class _ScriptedConnection(protocol.Protocol):
    def connectionMade(self) -> None:
        self.buffer = b""
        self.factory.connections.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self.factory.requests.append(head)
            if not self.factory.answers:
                return
            self.transport.write(self.factory.answers[(len(self.factory.requests) - 1) % len(self.factory.answers)])
            if self.factory.close:
                self.transport.loseConnection()


class Scripted(protocol.Factory):
    """Answers each request head with the next of ``answers`` (cycling),
    closing after each when ``close``; never answers when ``answers`` is empty."""

    protocol = _ScriptedConnection

    def __init__(self, answers: list[bytes], close: bool = False) -> None:
        self.answers = answers
        self.close = close
        self.requests: list[bytes] = []
        self.connections: list[_ScriptedConnection] = []


@pytest_twisted.inlineCallbacks
def test_a_gzip_bomb_is_stopped_without_inflating_it_in_memory(listen, client):
    import tracemalloc

    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=9)  # about 200 KB on the wire
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(bomb), bomb)
    port = listen(Scripted([answer]))
    tracemalloc.start()
    try:
        with pytest.raises(HTTPBodyTooLargeError):
            yield client.fetch(f"http://127.0.0.1:{port}/", max_body_size=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak


# -- streamed request bodies, 100-continue, the queue ---------------------------------


@pytest_twisted.inlineCallbacks
def test_a_body_producer_is_sent_chunked_and_the_connection_kept(server, client):
    async def produce(write):
        for piece in (b"one ", "two ", b"three"):
            await write(piece)

    first = yield client.fetch(server + "/echo", method="POST", body_producer=produce)
    echoed = _json(first)
    assert echoed["body"] == "one two three"
    assert echoed["headers"]["Transfer-Encoding"] == "chunked" and "Content-Length" not in echoed["headers"]
    second = yield client.fetch(server + "/echo")
    assert _json(second)["port"] == echoed["port"]


@pytest_twisted.inlineCallbacks
def test_expect_100_continue_holds_the_body_until_the_server_says_so(listen, client):
    class Continue(protocol.Protocol):
        def connectionMade(self) -> None:
            self.data = b""

        def dataReceived(self, data: bytes) -> None:
            self.data += data
            head, sep, rest = self.data.partition(b"\r\n\r\n")
            if sep and not rest and b"HTTP/1.1 100" not in getattr(self, "sent", b""):
                assert b"Expect: 100-continue" in head
                self.sent = b"HTTP/1.1 100 Continue\r\n\r\n"
                self.transport.write(self.sent)
            elif sep and rest == b"body":
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ngot body")

    factory = protocol.Factory.forProtocol(Continue)
    port = listen(factory)
    response = yield client.fetch(f"http://127.0.0.1:{port}/", method="PUT", body=b"body",
                                  expect_100_continue=True)
    assert response.body == b"got body"


@pytest_twisted.inlineCallbacks
def test_requests_beyond_max_clients_wait_in_line_within_their_timeout(listen):
    held = Scripted([])  # takes requests, never answers
    port = listen(held)
    client = AsyncHTTPClient(max_clients=1)
    try:
        first = client.fetch(f"http://127.0.0.1:{port}/first", request_timeout=30)
        first.addErrback(lambda f: None)
        with pytest.raises(HTTPTimeoutError):
            yield client.fetch(f"http://127.0.0.1:{port}/second", request_timeout=0.3)
        # The second request never left the queue: the server saw only the first.
        assert [r.split(b" ")[1] for r in held.requests] == [b"/first"]
        first.cancel()
        # Its slot is free again.
        held.answers.append(b"HTTP/1.1 204 No Content\r\n\r\n")
        response = yield client.fetch(f"http://127.0.0.1:{port}/third", request_timeout=5)
        assert response.code == 204
    finally:
        yield client.close()


# -- inside a cyclone.testing test case -------------------------------------------------

class _Relay(cyclone.web.RequestHandler):
    """Fetches /echo of its own server through the shared client and relays it."""

    async def get(self) -> None:
        base = f"{self.request.protocol}://{self.request.host}"
        response = await fetch(base + "/echo?via=relay", headers={"X-Relayed": "1"})
        self.write({"upstream": _json(response)})


class HandlerFetchingInATestCase(AsyncHTTPTestCase):
    """A handler that keeps a connection alive through cyclone.httpclient's
    shared client: the test case closes it, so trial finds the reactor clean."""

    def get_app(self):
        return cyclone.web.Application([(r"/relay", _Relay), (r"/echo.*", Echo)])

    def test_relay_blocking_fetch(self):
        response = self.fetch("/relay")
        upstream = json.loads(response.body)["upstream"]
        assert upstream["uri"] == "/echo?via=relay" and upstream["headers"]["X-Relayed"] == "1"
        assert AsyncHTTPClient._shared is not None and AsyncHTTPClient._shared._pool.open

    @gen_test
    async def test_relay_coroutine(self):
        response = await self.http_client.fetch(self.get_url("/relay"))
        assert json.loads(response.body)["upstream"]["method"] == "GET"


class _OneAnswerPerConnection(protocol.Protocol):
    """Answers the first request of a connection; closes on the second without answering
    (as a server whose keep-alive timeout struck just as the request came)."""

    def connectionMade(self) -> None:
        self.count = 0
        self.factory.connections += 1

    def dataReceived(self, data: bytes) -> None:
        self.count += data.count(b"\r\n\r\n")
        self.factory.requests.append(data.split(b" ", 1)[0])
        if self.count == 1:
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        else:
            self.transport.loseConnection()


@pytest_twisted.inlineCallbacks
def test_a_kept_connection_closed_on_the_next_request_is_retried_only_when_idempotent(listen, client):
    factory = protocol.Factory.forProtocol(_OneAnswerPerConnection)
    factory.connections, factory.requests = 0, []
    url = f"http://127.0.0.1:{listen(factory)}/"
    assert (yield client.fetch(url)).body == b"ok"
    # The GET goes out on the kept connection, which closes: sent again on a new one.
    assert (yield client.fetch(url)).body == b"ok"
    assert factory.connections == 2 and factory.requests == [b"GET", b"GET", b"GET"]
    # A POST is not sent twice: the server may have acted on it.
    with pytest.raises(HTTPStreamClosedError):
        yield client.fetch(url, method="POST", body=b"once")
    assert factory.requests[-1] == b"POST" and factory.requests.count(b"POST") == 1


@pytest_twisted.inlineCallbacks
def test_callbacks_see_only_the_final_response_of_a_redirect(server, client):
    lines, pieces = [], []
    response = yield client.fetch(_redirect(server, 302, "/big?size=10"), header_callback=lines.append,
                                  streaming_callback=pieces.append)
    assert lines[0].startswith("HTTP/1.1 200") and not any(line.startswith("Location") for line in lines)
    assert b"".join(pieces) == b"b" * 10 and response.body == b""
