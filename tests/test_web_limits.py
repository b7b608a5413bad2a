"""Request parsing limits over real sockets: hostile bodies, query strings
and cookies get a precise 400 (or are parsed within budget), the server
keeps serving other connections meanwhile, and every limit is a setting.
"""

from __future__ import annotations

import http.client
import socket
import tracemalloc

import pytest
import pytest_twisted
from twisted.internet import defer, threads

import cyclone.web as web
from cyclone import httputil

inline = pytest_twisted.inlineCallbacks
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class EchoArguments(web.RequestHandler):
    def get(self):
        self.write({name: len(self.get_arguments(name)) for name in self.request.arguments})

    def post(self):
        self.write(
            {
                "arguments": {name: [len(v) for v in values] for name, values in self.request.body_arguments.items()},
                "files": sorted(self.request.files),
                "sizes": {name: len(b"".join(v)) for name, v in self.request.body_arguments.items()},
            }
        )


class ReadCookies(web.RequestHandler):
    def get(self):
        self.write({"count": len(self.request.cookies)})


class BrowserLocale(web.RequestHandler):
    def get(self):
        self.write(self.get_browser_locale().code)


def make_app(**settings):
    return web.Application(
        [("/args", EchoArguments), ("/cookies", ReadCookies), ("/locale", BrowserLocale)], **settings
    )


def _request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.reason, response.read()
    finally:
        conn.close()


def request(port, method, path, body=None, headers=None):
    return threads.deferToThread(_request, port, method, path, body, headers)


def multipart(parts: list[tuple[str, bytes]], boundary: str = "XyZ") -> tuple[bytes, dict]:
    out = []
    for name, value in parts:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# -- urlencoded bodies ------------------------------------------------------------


@pytest.mark.parametrize("unit, decoded", [(b"%", b"%"), (b"%41", b"A"), (b"%4", b"%4"), (b"+", b" ")])
@inline
def test_hostile_percent_bodies_are_parsed_within_budget(listen, unit, decoded):
    port = listen(make_app())
    count = 3_000_000 // len(unit)
    body = b"a=" + unit * count
    tracemalloc.start()
    try:
        status, _, answer = yield request(port, "POST", "/args", body, FORM)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 200, answer
    assert b'"sizes": {"a": %d}' % (len(decoded) * count) in answer
    # the server's whole work for the request (reading, joining, parsing,
    # answering), and the client thread's: within 12 times the body
    assert peak <= 12 * len(body), peak / len(body)


@inline
def test_too_many_body_arguments_is_a_400_that_says_so(listen):
    port = listen(make_app())
    status, _, _ = yield request(port, "POST", "/args", b"&".join([b"a=1"] * 1000), FORM)
    assert status == 200
    status, reason, body = yield request(port, "POST", "/args", b"&".join([b"a=1"] * 1001), FORM)
    assert status == 400
    assert "more than 1000 fields" in reason
    assert b"more than 1000 fields" in body


@inline
def test_a_body_of_separators_is_refused_cheaply(listen):
    port = listen(make_app())
    body = b"&" * 3_000_000
    tracemalloc.start()
    try:
        status, reason, _ = yield request(port, "POST", "/args", body, FORM)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 400 and "fields" in reason
    assert peak <= 12 * len(body)


@inline
def test_body_argument_limit_settings(listen):
    port = listen(make_app(max_body_arguments=3))
    status, _, _ = yield request(port, "POST", "/args", b"a=1&b=2&c=3", FORM)
    assert status == 200
    status, reason, _ = yield request(port, "POST", "/args", b"a=1&b=2&c=3&d=4", FORM)
    assert status == 400 and "more than 3 fields" in reason
    config = httputil.ParseBodyConfig(urlencoded=httputil.ParseUrlEncodedConfig(max_arguments=2))
    port = listen(make_app(parse_body_config=config))
    status, reason, _ = yield request(port, "POST", "/args", b"a=1&b=2&c=3", FORM)
    assert status == 400 and "more than 2 fields" in reason


@inline
def test_global_parse_body_config(listen):
    port = listen(make_app())
    httputil.set_parse_body_config(
        httputil.ParseBodyConfig(
            urlencoded=httputil.ParseUrlEncodedConfig(max_arguments=2),
            multipart=httputil.ParseMultipartConfig(enabled=False),
        )
    )
    try:
        status, reason, _ = yield request(port, "POST", "/args", b"a=1&b=2&c=3", FORM)
        assert status == 400 and "more than 2 fields" in reason
        body, headers = multipart([("a", b"1")])
        status, reason, _ = yield request(port, "POST", "/args", body, headers)
        assert status == 400 and "disabled" in reason
    finally:
        httputil.set_parse_body_config(httputil.ParseBodyConfig())
    status, _, _ = yield request(port, "POST", "/args", b"a=1&b=2&c=3", FORM)
    assert status == 200
    with pytest.raises(TypeError):
        httputil.set_parse_body_config({"max_arguments": 3})


# -- query strings ----------------------------------------------------------------


@inline
def test_query_argument_limit(listen):
    port = listen(make_app())
    query = "&".join(["a=1"] * 1000)
    status, _, body = yield request(port, "GET", "/args?" + query)
    assert status == 200 and body == b'{"a": 1000}'
    status, reason, _ = yield request(port, "GET", "/args?" + query + "&b=2")
    assert status == 400
    assert reason == "Invalid query string: more than 1000 fields"
    port = listen(make_app(max_query_arguments=2))
    status, _, _ = yield request(port, "GET", "/args?a=1&b=2")
    assert status == 200
    status, reason, _ = yield request(port, "GET", "/args?a=1&b=2&c=3")
    assert status == 400 and "more than 2 fields" in reason


# -- multipart --------------------------------------------------------------------


@inline
def test_multipart_limits_and_settings(listen):
    port = listen(make_app())
    body, headers = multipart([("a", b"1")] * 100)
    status, _, answer = yield request(port, "POST", "/args", body, headers)
    assert status == 200 and b'"a": [1' in answer
    body, headers = multipart([("a", b"1")] * 101)
    status, reason, _ = yield request(port, "POST", "/args", body, headers)
    assert status == 400 and "more than 100 parts" in reason

    port = listen(make_app(max_multipart_parts=2, max_multipart_part_header_size=100))
    body, headers = multipart([("a", b"1")] * 3)
    status, reason, _ = yield request(port, "POST", "/args", body, headers)
    assert status == 400 and "more than 2 parts" in reason
    body, headers = multipart([("a" * 100, b"1")])
    status, reason, _ = yield request(port, "POST", "/args", body, headers)
    assert status == 400 and "headers too large" in reason

    port = listen(make_app(multipart_enabled=False))
    body, headers = multipart([("a", b"1")])
    status, reason, _ = yield request(port, "POST", "/args", body, headers)
    assert status == 400 and "disabled" in reason


@inline
def test_hostile_multipart_bodies_are_cheap(listen):
    port = listen(make_app())
    cases = [
        # many tiny parts: refused at part 101
        multipart([("a", b"")] * 200_000),
        # one part whose header block never ends
        (b"--XyZ\r\nX-Pad: " + b"a" * 3_000_000 + b"\r\n\r\nv\r\n--XyZ--\r\n",
         {"Content-Type": "multipart/form-data; boundary=XyZ"}),
        # a body full of near-boundaries (no quadratic search)
        (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n" + b"\r\n--XyZx" * 250_000
         + b"\r\n--XyZ--\r\n", {"Content-Type": "multipart/form-data; boundary=XyZ"}),
    ]
    for body, headers in cases:
        tracemalloc.start()
        try:
            status, reason, _ = yield request(port, "POST", "/args", body, headers)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert status in (200, 400), reason
        assert peak <= 12 * len(body), (reason, peak / len(body))


# -- cookies ----------------------------------------------------------------------


@inline
def test_cookie_limit(listen):
    port = listen(make_app(max_header_size=200_000, max_header_field_size=200_000))
    header = "; ".join(f"c{i}=v" for i in range(3000))
    status, _, body = yield request(port, "GET", "/cookies", headers={"Cookie": header})
    assert status == 200 and body == b'{"count": 3000}'
    header = "; ".join(f"c{i}=v" for i in range(10_000))
    tracemalloc.start()
    try:
        status, reason, _ = yield request(port, "GET", "/cookies", headers={"Cookie": header})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 400 and reason == "more than 3000 cookies"
    assert peak <= 12 * len(header), peak / len(header)
    port = listen(make_app(max_cookies=2))
    status, reason, _ = yield request(port, "GET", "/cookies", headers={"Cookie": "a=1; b=2; c=3"})
    assert status == 400 and reason == "more than 2 cookies"
    status, _, _ = yield request(port, "GET", "/cookies", headers={"Cookie": "a=1; b=2; ;;;"})
    assert status == 200


# -- Accept-Language ------------------------------------------------------------------


@pytest.fixture
def french(tmp_path):
    """fr_FR is a supported locale for the test (restored after)."""
    import cyclone.locale

    names = ["_translations", "_supported_locales", "_use_gettext", "_default_locale"]
    saved = {name: getattr(cyclone.locale, name) for name in names}
    (tmp_path / "fr_FR.csv").write_text('"Hello","Bonjour"\n', encoding="utf-8")
    cyclone.locale.load_translations(str(tmp_path))
    cyclone.locale.Locale._cache.clear()
    yield
    for name, value in saved.items():
        setattr(cyclone.locale, name, value)
    cyclone.locale.Locale._cache.clear()


@inline
def test_a_huge_accept_language_costs_little(listen, french):
    port = listen(make_app(max_header_size=200_000, max_header_field_size=200_000))
    header = ",".join(["xx"] * 99 + ["fr-FR"])
    status, _, body = yield request(port, "GET", "/locale", headers={"Accept-Language": header})
    assert (status, body) == (200, b"fr_FR")
    # ranges after the 100th are not read: they cost nothing
    header = ",".join(["xx"] * 100 + ["fr-FR"] + ["a;q=0.5"] * 20_000)
    tracemalloc.start()
    try:
        status, _, body = yield request(port, "GET", "/locale", headers={"Accept-Language": header})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (status, body) == (200, b"en_US")
    assert peak <= 12 * len(header), peak / len(header)


# -- the reactor keeps serving ------------------------------------------------------


def _upload_in_pieces(port: int, head: bytes, body: bytes, between) -> bytes:
    """Send ``head`` and ``body`` in pieces; after half the body, call
    ``between()`` (which talks to the server on another connection); then
    send the rest and return the response."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        half = len(body) // 2
        for i in range(0, half, 65536):
            sock.sendall(body[i : min(i + 65536, half)])
        between()
        sock.sendall(body[half:])
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@inline
def test_other_connections_are_served_while_a_hostile_body_is_parsed(listen):
    port = listen(make_app())
    body = b"a=" + b"%41" * 1_000_000
    head = (
        f"POST /args HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    seen = []

    def between():
        # half of the hostile body is in, and parsed as it came: another
        # client is answered now, not after the body
        seen.append(_request(port, "GET", "/args?x=1"))

    data = yield threads.deferToThread(_upload_in_pieces, port, head, body, between)
    assert seen == [(200, "OK", b'{"x": 1}')]
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b'"sizes": {"a": 1000000}' in data
