"""cyclone.cookies: ``Set-Cookie`` headers as Tornado 6.6 writes them.

The expected header strings below were taken by running Tornado 6.6 (on
Python 3.11) with the same ``set_cookie`` calls and reading its responses
with ``http.client``; the tests ask cyclone for the same calls over a real
socket and compare the raw ``Set-Cookie`` values byte for byte.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import http.cookies
import json
import time
import urllib.parse
import warnings

import pytest
import pytest_twisted
from hypothesis import given, settings, strategies as st
from twisted.internet import threads

import cyclone.web as web
from cyclone.cookies import CookieError, check_cookie_name, format_set_cookie, quote_cookie_value

inline = pytest_twisted.inlineCallbacks

Y2030 = 1893456000  # Tue, 01 Jan 2030 00:00:00 GMT


def _fetch(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, response.msg.get_all("Set-Cookie"), body
    finally:
        conn.close()


def fetch(port, path, headers=None):
    """A Deferred firing with ``(status, [Set-Cookie values] or None, body)``."""
    return threads.deferToThread(_fetch, port, path, headers)


# (set_cookie calls, the Set-Cookie values Tornado 6.6 sent for them)
MATRIX = {
    "plain": (lambda h: h.set_cookie("c", "v"), ["c=v; Path=/"]),
    "bytes": (lambda h: h.set_cookie(b"c", b"bytes"), ["c=bytes; Path=/"]),
    "empty": (lambda h: h.set_cookie("c", ""), ['c=""; Path=/']),
    # value quoting: token characters bare, anything else quoted
    "equals": (lambda h: h.set_cookie("c", "a=b"), ['c="a=b"; Path=/']),
    "semicolon": (lambda h: h.set_cookie("c", "a;b"), ['c="a\\073b"; Path=/']),
    "comma": (lambda h: h.set_cookie("c", "a,b"), ['c="a\\054b"; Path=/']),
    "dquote": (lambda h: h.set_cookie("c", 'a"b'), ['c="a\\"b"; Path=/']),
    "backslash": (lambda h: h.set_cookie("c", "a\\b"), ['c="a\\\\b"; Path=/']),
    "colon": (lambda h: h.set_cookie("c", "a:b"), ["c=a:b; Path=/"]),
    "slash": (lambda h: h.set_cookie("c", "a/b"), ['c="a/b"; Path=/']),
    "question": (lambda h: h.set_cookie("c", "a?b"), ['c="a?b"; Path=/']),
    "brackets": (lambda h: h.set_cookie("c", "a(b)[c]{d}<e>@f"), ['c="a(b)[c]{d}<e>@f"; Path=/']),
    "token-chars": (lambda h: h.set_cookie("c", "!#$%&'*+-.^_`|~"), ["c=!#$%&'*+-.^_`|~; Path=/"]),
    "percent": (lambda h: h.set_cookie("c", "a%20b"), ["c=a%20b; Path=/"]),
    "latin1": (lambda h: h.set_cookie("c", "caf\u00e9"), ['c="caf\\351"; Path=/']),
    "high-latin1": (lambda h: h.set_cookie("c", "\x80\xff"), ['c="\\200\\377"; Path=/']),
    "del": (lambda h: h.set_cookie("c", "a\x7fb"), ['c="a\\177b"; Path=/']),
    "signed-shape": (
        lambda h: h.set_cookie("c", "2|1:0|10:1234|1:s|4:dg==|abc"),
        ['c="2|1:0|10:1234|1:s|4:dg==|abc"; Path=/'],
    ),
    # names
    "name-colon": (lambda h: h.set_cookie("a:b", "v"), ["a:b=v; Path=/"]),
    "name-host-prefix": (lambda h: h.set_cookie("__Host-x", "v", secure=True), ["__Host-x=v; Path=/; Secure"]),
    "names-differ-in-case": (
        lambda h: (h.set_cookie("C", "v"), h.set_cookie("c", "w")),
        ["C=v; Path=/", "c=w; Path=/"],
    ),
    # attributes and their order
    "domain": (lambda h: h.set_cookie("c", "v", domain="example.com"), ["c=v; Domain=example.com; Path=/"]),
    "domain-dot": (lambda h: h.set_cookie("c", "v", domain=".example.com"), ["c=v; Domain=.example.com; Path=/"]),
    "domain-comma": (lambda h: h.set_cookie("c", "v", domain="a,b"), ["c=v; Domain=a,b; Path=/"]),
    "path": (lambda h: h.set_cookie("c", "v", path="/sub"), ["c=v; Path=/sub"]),
    "path-none": (lambda h: h.set_cookie("c", "v", path=None), ["c=v"]),
    "path-empty": (lambda h: h.set_cookie("c", "v", path=""), ["c=v"]),
    "path-punctuation": (lambda h: h.set_cookie("c", "v", path="/a,b=c"), ["c=v; Path=/a,b=c"]),
    "path-dquote": (lambda h: h.set_cookie("c", "v", path='/a"b'), ['c=v; Path=/a"b']),
    "path-latin1": (lambda h: h.set_cookie("c", "v", path="/caf\u00e9"), ["c=v; Path=/caf\u00e9"]),
    "expires-int": (
        lambda h: h.set_cookie("c", "v", expires=Y2030),
        ["c=v; expires=Tue, 01 Jan 2030 00:00:00 GMT; Path=/"],
    ),
    "expires-float": (
        lambda h: h.set_cookie("c", "v", expires=Y2030 + 0.7),
        ["c=v; expires=Tue, 01 Jan 2030 00:00:00 GMT; Path=/"],
    ),
    "expires-naive": (
        lambda h: h.set_cookie("c", "v", expires=datetime.datetime(2030, 1, 2, 3, 4, 5)),
        ["c=v; expires=Wed, 02 Jan 2030 03:04:05 GMT; Path=/"],
    ),
    "expires-aware": (
        lambda h: h.set_cookie(
            "c", "v", expires=datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        ),
        ["c=v; expires=Wed, 02 Jan 2030 03:04:05 GMT; Path=/"],
    ),
    "expires-tuple": (
        lambda h: h.set_cookie("c", "v", expires=(2030, 1, 2, 3, 4, 5, 0, 0, 0)),
        ["c=v; expires=Wed, 02 Jan 2030 03:04:05 GMT; Path=/"],
    ),
    "expires-struct-time": (
        lambda h: h.set_cookie("c", "v", expires=time.gmtime(Y2030)),
        ["c=v; expires=Tue, 01 Jan 2030 00:00:00 GMT; Path=/"],
    ),
    "expires-zero": (lambda h: h.set_cookie("c", "v", expires=0), ["c=v; Path=/"]),
    "expires-wins-over-days": (
        lambda h: h.set_cookie("c", "v", expires_days=1, expires=Y2030),
        ["c=v; expires=Tue, 01 Jan 2030 00:00:00 GMT; Path=/"],
    ),
    "expires-days-none": (lambda h: h.set_cookie("c", "v", expires_days=None), ["c=v; Path=/"]),
    "max-age": (lambda h: h.set_cookie("c", "v", max_age=10), ["c=v; Max-Age=10; Path=/"]),
    "max-age-negative": (lambda h: h.set_cookie("c", "v", max_age=-5), ["c=v; Max-Age=-5; Path=/"]),
    "max-age-float": (lambda h: h.set_cookie("c", "v", max_age=10.9), ["c=v; Max-Age=10; Path=/"]),
    "max-age-str": (lambda h: h.set_cookie("c", "v", max_age="12"), ["c=v; Max-Age=12; Path=/"]),
    "httponly": (lambda h: h.set_cookie("c", "v", httponly=True), ["c=v; HttpOnly; Path=/"]),
    "secure": (lambda h: h.set_cookie("c", "v", secure=True), ["c=v; Path=/; Secure"]),
    "truthy-flags": (
        lambda h: h.set_cookie("c", "v", httponly=1, secure="yes"),
        ["c=v; HttpOnly; Path=/; Secure"],
    ),
    "samesite-strict": (lambda h: h.set_cookie("c", "v", samesite="Strict"), ["c=v; Path=/; SameSite=Strict"]),
    "samesite-as-given": (lambda h: h.set_cookie("c", "v", samesite="lax"), ["c=v; Path=/; SameSite=lax"]),
    "samesite-upper": (lambda h: h.set_cookie("c", "v", samesite="NONE"), ["c=v; Path=/; SameSite=NONE"]),
    "samesite-empty": (lambda h: h.set_cookie("c", "v", samesite=""), ["c=v; Path=/"]),
    "everything": (
        lambda h: h.set_cookie(
            "c", "v", domain="d.example", expires=Y2030, path="/p", max_age=60,
            httponly=True, secure=True, samesite="Lax",
        ),
        [
            "c=v; Domain=d.example; expires=Tue, 01 Jan 2030 00:00:00 GMT; HttpOnly;"
            " Max-Age=60; Path=/p; SameSite=Lax; Secure"
        ],
    ),
    "positional": (
        lambda h: h.set_cookie("c", "v", "d.example", Y2030, "/p"),
        ["c=v; Domain=d.example; expires=Tue, 01 Jan 2030 00:00:00 GMT; Path=/p"],
    ),
    # Tornado's deprecated attribute keywords (case-insensitive)
    "kw-max-age": (lambda h: h.set_cookie("c", "v", **{"max-age": 5}), ["c=v; Max-Age=5; Path=/"]),
    "kw-Max-Age": (lambda h: h.set_cookie("c", "v", **{"Max-Age": 5}), ["c=v; Max-Age=5; Path=/"]),
    "kw-HttpOnly": (lambda h: h.set_cookie("c", "v", HttpOnly=True), ["c=v; HttpOnly; Path=/"]),
    "kw-Secure-false": (lambda h: h.set_cookie("c", "v", Secure=False), ["c=v; Path=/"]),
    "kw-version": (lambda h: h.set_cookie("c", "v", version=1), ["c=v; Path=/; Version=1"]),
    "kw-Path": (lambda h: h.set_cookie("c", "v", Path="/kw"), ["c=v; Path=/kw"]),
    "kw-mixed-case": (lambda h: h.set_cookie("a", "b", HttpOnly=True, pATH="/foo"), ["a=b; HttpOnly; Path=/foo"]),
    "kw-SameSite": (lambda h: h.set_cookie("c", "v", SameSite="Strict"), ["c=v; Path=/; SameSite=Strict"]),
    "kw-overrides-named": (
        lambda h: h.set_cookie("c", "v", Domain="kw.example", domain="arg.example"),
        ["c=v; Domain=kw.example; Path=/"],
    ),
    "kw-comment": (lambda h: h.set_cookie("c", "v", comment="hi"), ["c=v; Comment=hi; Path=/"]),
    "kw-comment-quoted": (lambda h: h.set_cookie("c", "v", comment="a=b"), ['c=v; Comment="a=b"; Path=/']),
    "kw-all": (
        lambda h: h.set_cookie(
            "c", "v", Comment="x", Version="1", samesite="Lax", secure=True, httponly=True,
            domain="D.example", max_age=1, expires=Y2030, path="/z",
        ),
        [
            "c=v; Comment=x; Domain=D.example; expires=Tue, 01 Jan 2030 00:00:00 GMT; HttpOnly;"
            " Max-Age=1; Path=/z; SameSite=Lax; Secure; Version=1"
        ],
    ),
    # one Set-Cookie per name: the last set_cookie wins, whatever its path or domain
    "replaced": (lambda h: (h.set_cookie("c", "1"), h.set_cookie("c", "2")), ["c=2; Path=/"]),
    "replaced-other-path": (
        lambda h: (h.set_cookie("c", "1", path="/a"), h.set_cookie("c", "2", path="/b")),
        ["c=2; Path=/b"],
    ),
    "replaced-other-domain": (
        lambda h: (h.set_cookie("c", "1", domain="a.example"), h.set_cookie("c", "2", domain="b.example")),
        ["c=2; Domain=b.example; Path=/"],
    ),
    "replaced-attributes-dropped": (
        lambda h: (h.set_cookie("c", "1", httponly=True), h.set_cookie("c", "2")),
        ["c=2; Path=/"],
    ),
    "replaced-moves-last": (
        lambda h: (h.set_cookie("c", "1"), h.set_cookie("d", "2"), h.set_cookie("c", "3")),
        ["d=2; Path=/", "c=3; Path=/"],
    ),
    # set_cookie's headers come after those added directly, and outlive
    # clear_header("Set-Cookie") and clear()
    "after-add-header": (
        lambda h: (h.set_cookie("c", "1"), h.add_header("Set-Cookie", "raw=1"), h.set_header("X-After", "1")),
        ["raw=1", "c=1; Path=/"],
    ),
    "clear-header": (lambda h: (h.set_cookie("c", "1"), h.clear_header("Set-Cookie")), ["c=1; Path=/"]),
    "clear": (lambda h: (h.set_cookie("c", "1"), h.clear()), ["c=1; Path=/"]),
}


class MatrixHandler(web.RequestHandler):
    def get(self, case):
        with warnings.catch_warnings():
            # the deprecated attribute keywords warn; not under test here
            warnings.simplefilter("ignore", DeprecationWarning)
            MATRIX[case][0](self)
        self.write("ok")


@pytest.fixture
def matrix_port(listen):
    return listen(web.Application([(r"/matrix/(.+)", MatrixHandler)]))


@pytest.mark.parametrize("case", sorted(MATRIX))
@inline
def test_set_cookie_header_is_tornados(matrix_port, case):
    status, set_cookies, body = yield fetch(matrix_port, f"/matrix/{case}")
    assert (status, body) == (200, b"ok")
    assert set_cookies == MATRIX[case][1]


class _Recorder:
    """Stands in for a handler: records set_cookie's arguments, ignores the rest."""

    def __init__(self):
        self.calls = []

    def set_cookie(self, *args, **kwargs):
        self.calls.append((args, kwargs))

    def _ignored(self, *args):
        pass

    add_header = set_header = clear_header = clear = _ignored


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_format_set_cookie_alone(case):
    # format_set_cookie takes set_cookie's arguments and gives the same header
    recorder = _Recorder()
    MATRIX[case][0](recorder)
    last = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for args, kwargs in recorder.calls:
            last[args[0]] = format_set_cookie(*args, **kwargs)
    expected = [v for v in MATRIX[case][1] if not v.startswith("raw=")]
    assert sorted(last.values()) == sorted(expected)


# ---------------------------------------------------------------------------
# What cannot be sent: CookieError (also a ValueError), before anything is stored
# ---------------------------------------------------------------------------

INVALID = {
    # names: not a token, empty, or an attribute's name
    "name-space": lambda h: h.set_cookie("a b", "v"),
    "name-semicolon": lambda h: h.set_cookie("a;b", "v"),
    "name-equals": lambda h: h.set_cookie("a=b", "v"),
    "name-empty": lambda h: h.set_cookie("", "v"),
    "name-comma": lambda h: h.set_cookie("a,b", "v"),
    "name-slash": lambda h: h.set_cookie("a/b", "v"),
    "name-dquote": lambda h: h.set_cookie('a"b', "v"),
    "name-paren": lambda h: h.set_cookie("a(b", "v"),
    "name-at": lambda h: h.set_cookie("a@b", "v"),
    "name-latin1": lambda h: h.set_cookie("caf\u00e9", "v"),
    "name-crlf": lambda h: h.set_cookie("c\r\nX-Injected: 1", "v"),
    "name-expires": lambda h: h.set_cookie("expires", "v"),
    "name-Path": lambda h: h.set_cookie("Path", "v"),
    "name-HttpOnly": lambda h: h.set_cookie("HttpOnly", "v"),
    # values: controls and space cannot be sent even quoted
    "value-space": lambda h: h.set_cookie("c", "a b"),
    "value-tab": lambda h: h.set_cookie("c", "a\tb"),
    "value-crlf": lambda h: h.set_cookie("c", "v\r\nX-Injected: 1"),
    "value-nul": lambda h: h.set_cookie("c", "v\x00w"),
    # Tornado lets this through and fails when the head is written
    "value-beyond-latin1": lambda h: h.set_cookie("c", "\u20ac"),
    # attributes: nothing that ends or splits the attribute
    "domain-semicolon": lambda h: h.set_cookie("c", "v", domain="a; b"),
    "domain-space": lambda h: h.set_cookie("c", "v", domain="a b"),
    "domain-crlf": lambda h: h.set_cookie("c", "v", domain="example.com\r\nX-Injected: 1"),
    "path-space": lambda h: h.set_cookie("c", "v", path="/a b"),
    "path-semicolon": lambda h: h.set_cookie("c", "v", path="/; Domain=evil.example"),
    "path-beyond-latin1": lambda h: h.set_cookie("c", "v", path="/\u20ac"),
    "samesite-semicolon": lambda h: h.set_cookie("c", "v", samesite="Strict; Secure"),
    "comment-space": lambda h: h.set_cookie("c", "v", comment="hello world"),
    "comment-semicolon": lambda h: h.set_cookie("c", "v", comment="a;b"),
    "expires-str-semicolon": lambda h: h.set_cookie("c", "v", expires="Tue; Secure"),
    # only the attributes http.cookies knows
    "kw-unknown": lambda h: h.set_cookie("c", "v", priority="High"),
    "kw-underscore": lambda h: h.set_cookie("c", "v", Max_Age=5),
    "kw-crlf": lambda h: h.set_cookie("c", "v", priority="High\r\nX-Injected: 1"),
    # cyclone refuses what no browser knows (Tornado writes it)
    "samesite-bogus": lambda h: h.set_cookie("c", "v", samesite="Bogus"),
}


class InvalidHandler(web.RequestHandler):
    def get(self, case):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                INVALID[case](self)
            except http.cookies.CookieError as error:
                assert isinstance(error, ValueError)
                self.write(f"CookieError: {error}")
            else:
                self.write("accepted")


@pytest.mark.parametrize("case", sorted(INVALID))
@inline
def test_set_cookie_refuses_what_cannot_be_sent(listen, case):
    port = listen(web.Application([(r"/invalid/(.+)", InvalidHandler)]))
    status, set_cookies, body = yield fetch(port, f"/invalid/{case}")
    assert status == 200
    assert body.startswith(b"CookieError: "), body
    # refused before it was stored: no half-made cookie goes out
    assert set_cookies is None


FORBIDDEN = [chr(c) for c in range(0x21)] + ["\x7f", ";"]


@pytest.mark.parametrize("char", FORBIDDEN, ids=[f"{ord(c):#04x}" for c in FORBIDDEN])
def test_forbidden_character_names_the_attribute(char):
    # a control character, space, DEL or ";" in a name or attribute: CookieError
    # whose message names the attribute as Tornado's does (its tests match it)
    calls = {
        "name": lambda: format_set_cookie("foo" + char, "bar"),
        "domain": lambda: format_set_cookie("foo", "bar", domain="example" + char + ".com"),
        "DoMaIn": lambda: format_set_cookie("foo", "bar", DoMaIn="example" + char + ".com"),
        "path": lambda: format_set_cookie("foo", "bar", path="/" + char),
        "samesite": lambda: format_set_cookie("foo", "bar", samesite="a" + char),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for attribute, call in calls.items():
            with pytest.raises(http.cookies.CookieError, match=f"^Invalid cookie attribute {attribute}="):
                call()


@pytest.mark.parametrize(
    "value, bad",
    [("12; Domain=x", ValueError), ("soon", ValueError), (None, None), (object(), TypeError)],
)
def test_max_age_is_an_integer(value, bad):
    if bad is None:
        assert format_set_cookie("c", "v", max_age=value) == "c=v; Path=/"
    else:
        with pytest.raises(bad):
            format_set_cookie("c", "v", max_age=value)


@pytest.mark.parametrize("name, value", [(5, "v"), ("c", 5), ("c", None)])
def test_name_and_value_must_be_text(name, value):
    with pytest.raises(TypeError):
        format_set_cookie(name, value)


def test_check_cookie_name():
    for good in ("c", "__Host-x", "__Secure-id", "a:b", "Expiry", "x" * 200):
        check_cookie_name(good)
    for bad in ("", "a b", "SameSite", "max-age", "partitioned", "a\x00"):
        with pytest.raises(CookieError):
            check_cookie_name(bad)


# ---------------------------------------------------------------------------
# Extensions and deliberate differences
# ---------------------------------------------------------------------------


def test_max_age_zero_is_written():
    # Tornado drops max_age=0 (a false value); cyclone writes what was asked
    assert format_set_cookie("c", "v", max_age=0) == "c=v; Max-Age=0; Path=/"


def test_partitioned_attribute():
    # Python 3.14's http.cookies knows Partitioned; cyclone writes it in that
    # place on every Python
    header = format_set_cookie("c", "v", secure=True, partitioned=True, samesite="None", max_age=5)
    assert header == "c=v; Max-Age=5; Partitioned; Path=/; SameSite=None; Secure"
    assert format_set_cookie("c", "v", partitioned=False) == "c=v; Path=/"


def test_mixed_case_attribute_keywords_are_deprecated():
    with pytest.warns(DeprecationWarning, match="Max-Age"):
        format_set_cookie("c", "v", **{"Max-Age": 5})
    with pytest.warns(DeprecationWarning, match="HttpOnly"):
        format_set_cookie("c", "v", HttpOnly=True)
    with warnings.catch_warnings():
        # lower-case names are the form Tornado keeps
        warnings.simplefilter("error")
        format_set_cookie("c", "v", max_age=5, httponly=True, secure=True, samesite="Lax")
        format_set_cookie("c", "v", partitioned=True, comment="x", version="1", **{"max-age": 5})


def test_cookie_error_is_both_kinds():
    with pytest.raises(http.cookies.CookieError):
        format_set_cookie("a b", "v")
    with pytest.raises(ValueError):
        format_set_cookie("c", "a b")


# ---------------------------------------------------------------------------
# Quoting reads back: through the standard library and through cyclone
# ---------------------------------------------------------------------------

# what a cookie value may hold: Latin-1 without controls and space
_SENDABLE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_SENDABLE)
def test_quoted_value_reads_back_with_http_cookies(value):
    quoted = quote_cookie_value(value)
    # a browser splits the Cookie header on ";" and ","... none are left bare
    assert ";" not in quoted and "," not in quoted
    jar = http.cookies.SimpleCookie()
    jar.load(f"c={quoted}")
    assert jar["c"].value == value
    # and it is what Tornado's http.cookies-based header would carry
    morsel = http.cookies.Morsel()
    morsel.set("c", value, http.cookies.SimpleCookie().value_encode(value)[1])
    assert morsel.OutputString() == f"c={quoted}"


class EchoCookie(web.RequestHandler):
    def get(self):
        if self.get_argument("set", None) is not None:
            self.set_cookie("c", self.get_argument("set"))
        else:
            self.write({"c": self.get_cookie("c")})


@inline
def test_quoted_value_round_trips_through_cyclone(listen):
    port = listen(web.Application([(r"/echo", EchoCookie)]))
    for value in ['a"b;c,d\\e', "caf\u00e9=\x7f", "", "plain", "2|1:0|4:dg==|x/y+z"]:
        query = urllib.parse.urlencode({"set": value})
        _, [header], _ = yield fetch(port, f"/echo?{query}")
        pair = header.split("; Path=/")[0]
        # sent back as a browser does: the pair as received, Latin-1 on the wire
        _, _, body = yield fetch(port, "/echo", headers={"Cookie": pair})
        assert json.loads(body) == {"c": value}


# ---------------------------------------------------------------------------
# When the cookies are written
# ---------------------------------------------------------------------------


class ErrorAfterCookie(web.RequestHandler):
    def get(self, how):
        self.set_cookie("c", "1")
        if how == "http-error":
            raise web.HTTPError(403)
        if how == "exception":
            raise ZeroDivisionError("boom")
        if how == "redirect":
            self.redirect("/elsewhere")
            return
        self.write("same body")


class LateCookie(web.RequestHandler):
    async def get(self):
        self.set_cookie("early", "1")
        self.write("x")
        await self.flush()
        # as in Tornado, a cookie set after the head was sent goes nowhere
        self.set_cookie("late", "1")
        self.write("y")


@pytest.fixture
def timing_port(listen):
    return listen(web.Application([(r"/after/(\w[\w-]*)", ErrorAfterCookie), (r"/late", LateCookie)]))


@pytest.mark.parametrize(
    "how, status", [("http-error", 403), ("exception", 500), ("redirect", 302), ("ok", 200)]
)
@inline
def test_cookie_set_before_an_error_or_redirect_is_sent(timing_port, how, status):
    # Tornado keeps set_cookie's cookies outside the headers that clear() resets
    got, set_cookies, _ = yield fetch(timing_port, f"/after/{how}")
    assert got == status
    assert set_cookies == ["c=1; Path=/"]


@inline
def test_cookie_goes_with_a_304(timing_port):
    conn_result = yield threads.deferToThread(_etag_of, timing_port)
    etag = conn_result
    status, set_cookies, body = yield fetch(timing_port, "/after/ok", headers={"If-None-Match": etag})
    assert status == 304 and body == b""
    assert set_cookies == ["c=1; Path=/"]


def _etag_of(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/after/ok")
        response = conn.getresponse()
        response.read()
        return response.getheader("Etag")
    finally:
        conn.close()


@inline
def test_cookie_set_after_the_head_is_dropped(timing_port):
    status, set_cookies, body = yield fetch(timing_port, "/late")
    assert status == 200 and body == b"xy"
    assert set_cookies == ["early=1; Path=/"]


# ---------------------------------------------------------------------------
# clear_cookie / clear_all_cookies
# ---------------------------------------------------------------------------


class Clearing(web.RequestHandler):
    def get(self, case):
        try:
            CLEARING[case](self)
        except TypeError as error:
            self.write(f"TypeError: {error}")


CLEARING = {
    "one": lambda h: h.clear_cookie("c"),
    "path-domain": lambda h: h.clear_cookie("c", path="/p", domain="example.com"),
    "samesite-none": lambda h: h.clear_cookie("c", samesite="None", secure=True),
    "expires-days-ignored": lambda h: h.clear_cookie("c", expires_days=3),
    "after-set": lambda h: (h.set_cookie("c", "1"), h.clear_cookie("c")),
    "all": lambda h: h.clear_all_cookies(),
    "all-path-domain": lambda h: h.clear_all_cookies(path="/p", domain="x.example"),
    "max-age-refused": lambda h: h.clear_cookie("c", max_age=3),
    "expires-refused": lambda h: h.clear_cookie("c", expires=3),
}

# Tornado's headers with the date cut out (it is now minus 365 days)
CLEARED = {
    "one": ['c=""; expires=*; Path=/'],
    "path-domain": ['c=""; Domain=example.com; expires=*; Path=/p'],
    "samesite-none": ['c=""; expires=*; Path=/; SameSite=None; Secure'],
    "expires-days-ignored": ['c=""; expires=*; Path=/'],
    "after-set": ['c=""; expires=*; Path=/'],
    "all": ['a=""; expires=*; Path=/', 'b=""; expires=*; Path=/'],
    "all-path-domain": [
        'a=""; Domain=x.example; expires=*; Path=/p',
        'b=""; Domain=x.example; expires=*; Path=/p',
    ],
}


@pytest.mark.parametrize("case", sorted(CLEARING))
@inline
def test_clear_cookie_as_tornado(listen, case):
    port = listen(web.Application([(r"/clear/(.+)", Clearing)]))
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    status, set_cookies, body = yield fetch(port, f"/clear/{case}", headers={"Cookie": "a=1; b=2"})
    after = datetime.datetime.now(datetime.timezone.utc)
    assert status == 200
    if case not in CLEARED:
        assert body.startswith(b"TypeError: "), body
        assert set_cookies is None
        return
    masked = []
    for header in set_cookies:
        head, _, rest = header.partition("expires=")
        date, _, tail = rest.partition(";")
        when = email.utils.parsedate_to_datetime(date)
        assert before - datetime.timedelta(days=365) <= when <= after - datetime.timedelta(days=365)
        masked.append(f"{head}expires=*;{tail}")
    assert masked == CLEARED[case]


def test_docstring_examples():
    import doctest

    import cyclone.cookies

    result = doctest.testmod(cyclone.cookies)
    assert result.attempted >= 2 and result.failed == 0
