"""cyclone.web security over real sockets: cookies, signed cookies, XSRF,
users and ``@authenticated``, header injection, reflected input, error pages,
``HTTPAuthenticationRequired`` and argument decoding errors.

Every test serves an ``Application`` on 127.0.0.1 and talks to it with
``http.client`` (in a thread) or raw bytes (``raw_exchange``).
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import re
import time
import urllib.parse
from typing import NamedTuple

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

import cyclone.web as web
from cyclone import escape, signing

from .conftest import parse_responses, raw_exchange

inline = pytest_twisted.inlineCallbacks
SECRET = "a-secret-for-the-tests"
DAY = 86400


# ----------------------------------------------------------------------------
# Client helpers
# ----------------------------------------------------------------------------


class Response(NamedTuple):
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes


def _fetch(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Response(response.status, response.reason, response.msg, response.read())
    finally:
        conn.close()


def fetch(port, method, path, body=None, headers=None):
    """A Deferred firing with the ``Response`` of one request."""
    return threads.deferToThread(_fetch, port, method, path, body, headers)


def raw(port, data: bytes):
    """A Deferred firing with the raw bytes the server sent back."""
    return threads.deferToThread(raw_exchange, port, data)


def raw_get(port, target: str, extra: str = "") -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
    ).encode("latin-1")


def head_lines(data: bytes) -> list[bytes]:
    """The status line and header lines of the first response in ``data``."""
    head, sep, _ = data.partition(b"\r\n\r\n")
    assert sep, f"no complete response head in {data[:300]!r}"
    return head.split(b"\r\n")


def assert_not_injected(data: bytes, marker: bytes = b"x-injected") -> None:
    """The response head has no header line made of injected text, and the
    bytes parse as exactly one response."""
    lines = head_lines(data)
    for line in lines[1:]:
        assert not line.lower().startswith(marker), f"injected header line {line!r}"
        assert b"\r" not in line and b"\n" not in line
    assert len(parse_responses(data)) == 1


def set_cookie_headers(headers: http.client.HTTPMessage) -> list[str]:
    return headers.get_all("Set-Cookie") or []


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, object]]:
    """``(name, raw value, {lower attribute: value or True})``; a quoted value
    is returned with its quotes, and may contain ``;``."""
    name, eq, rest = header.partition("=")
    assert eq, header
    if rest.startswith('"'):
        match = re.match(r'"(?:[^"\\]|\\.)*"', rest)
        assert match, f"unterminated quoted cookie value in {header!r}"
        value = match.group()
        rest = rest[match.end():]
    else:
        value, _, rest = rest.partition(";")
        rest = ";" + rest if rest else ""
    attrs: dict[str, object] = {}
    for part in rest.split(";"):
        part = part.strip()
        if not part:
            continue
        key, eq, attr_value = part.partition("=")
        attrs[key.strip().lower()] = attr_value.strip() if eq else True
    return name.strip(), value.strip(), attrs


def cookie_named(headers: http.client.HTTPMessage, name: str) -> tuple[str, dict[str, object]]:
    found = [parse_set_cookie(h) for h in set_cookie_headers(headers)]
    matching = [(v, a) for n, v, a in found if n == name]
    assert len(matching) == 1, f"expected one Set-Cookie for {name!r}, got {found!r}"
    return matching[0]


# ----------------------------------------------------------------------------
# Cookies
# ----------------------------------------------------------------------------

QUOTED_VALUE = 'a"b;c,d\\e'

COOKIE_CASES = {
    "domain": lambda h: h.set_cookie("c", "v", domain="example.com"),
    "path": lambda h: h.set_cookie("c", "v", path="/sub"),
    "expires-datetime": lambda h: h.set_cookie(
        "c", "v", expires=datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    ),
    "expires-timestamp": lambda h: h.set_cookie("c", "v", expires=1893456000),
    "expires-days": lambda h: h.set_cookie("c", "v", expires_days=2),
    "max-age": lambda h: h.set_cookie("c", "v", max_age=10),
    "httponly": lambda h: h.set_cookie("c", "v", httponly=True),
    "secure": lambda h: h.set_cookie("c", "v", secure=True),
    "flags-off": lambda h: h.set_cookie("c", "v", httponly=False, secure=False),
    "samesite-strict": lambda h: h.set_cookie("c", "v", samesite="Strict"),
    "samesite-lax": lambda h: h.set_cookie("c", "v", samesite="lax"),
    "samesite-none": lambda h: h.set_cookie("c", "v", samesite="None", secure=True),
    "quoted": lambda h: h.set_cookie("c", QUOTED_VALUE),
    "bytes": lambda h: h.set_cookie(b"c", b"bytes-value"),
    "two": lambda h: (h.set_cookie("c", "1"), h.set_cookie("d", "2")),
    "clear": lambda h: h.clear_cookie("c", path="/p", domain="example.com"),
    "clear-all": lambda h: h.clear_all_cookies(),
}

INVALID_COOKIE_CASES = {
    "samesite-bogus": lambda h: h.set_cookie("c", "v", samesite="Bogus"),
    "samesite-inject": lambda h: h.set_cookie("c", "v", samesite="Strict; Domain=evil.example"),
    "name-space": lambda h: h.set_cookie("a b", "v"),
    "name-semicolon": lambda h: h.set_cookie("a;b", "v"),
    "name-equals": lambda h: h.set_cookie("a=b", "v"),
    "name-empty": lambda h: h.set_cookie("", "v"),
    "name-crlf": lambda h: h.set_cookie("c\r\nX-Injected: 1", "v"),
    "value-crlf": lambda h: h.set_cookie("c", "v\r\nX-Injected: 1"),
    "value-lf": lambda h: h.set_cookie("c", "v\nX-Injected: 1"),
    "value-nul": lambda h: h.set_cookie("c", "v\x00w"),
    "domain-crlf": lambda h: h.set_cookie("c", "v", domain="example.com\r\nX-Injected: 1"),
    "domain-semicolon": lambda h: h.set_cookie("c", "v", domain="example.com; HttpOnly"),
    "path-crlf": lambda h: h.set_cookie("c", "v", path="/\r\nX-Injected: 1"),
    "path-semicolon": lambda h: h.set_cookie("c", "v", path="/; Domain=evil.example"),
    "extra-attr-crlf": lambda h: h.set_cookie("c", "v", priority="High\r\nX-Injected: 1"),
}


class CookieSetter(web.RequestHandler):
    def get(self, case):
        cases = INVALID_COOKIE_CASES if self.get_argument("invalid", None) else COOKIE_CASES
        cases[case](self)
        self.write("cookie set")


class CookieReader(web.RequestHandler):
    def get(self):
        self.write({
            "values": {name: self.get_cookie(name) for name in self.get_arguments("n")},
            "default": self.get_cookie("absent-cookie", "the-default"),
            "missing": self.get_cookie("absent-cookie"),
            "count": len(self.cookies),
        })


def cookie_app(**settings):
    return web.Application(
        [(r"/set/([\w-]+)", CookieSetter), (r"/read", CookieReader)],
        **settings,
    )


@inline
def test_set_cookie_domain_and_default_path(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/set/domain")
    assert response.status == 200
    value, attrs = cookie_named(response.headers, "c")
    assert value == "v"
    assert attrs["domain"] == "example.com"
    assert attrs["path"] == "/"
    for absent in ("httponly", "secure", "samesite", "expires", "max-age"):
        assert absent not in attrs


@inline
def test_set_cookie_path(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/set/path")
    _, attrs = cookie_named(response.headers, "c")
    assert attrs["path"] == "/sub"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("expires-datetime", "Wed, 02 Jan 2030 03:04:05 GMT"),
        ("expires-timestamp", "Tue, 01 Jan 2030 00:00:00 GMT"),
    ],
)
@inline
def test_set_cookie_expires(listen, case, expected):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", f"/set/{case}")
    _, attrs = cookie_named(response.headers, "c")
    assert attrs["expires"] == expected


@inline
def test_set_cookie_expires_days(listen):
    port = listen(cookie_app())
    before = datetime.datetime.now(datetime.timezone.utc)
    response = yield fetch(port, "GET", "/set/expires-days")
    after = datetime.datetime.now(datetime.timezone.utc)
    _, attrs = cookie_named(response.headers, "c")
    expires = email.utils.parsedate_to_datetime(attrs["expires"])
    # whole seconds on the wire: allow the truncation
    assert before + datetime.timedelta(days=2, seconds=-1) <= expires
    assert expires <= after + datetime.timedelta(days=2, seconds=1)


@inline
def test_set_cookie_max_age(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/set/max-age")
    _, attrs = cookie_named(response.headers, "c")
    assert attrs["max-age"] == "10"


@pytest.mark.parametrize(
    "case, attr, expected",
    [
        ("httponly", "httponly", True),
        ("secure", "secure", True),
        ("samesite-strict", "samesite", "Strict"),
        # written as given, as Tornado does (browsers compare without case)
        ("samesite-lax", "samesite", "lax"),
        ("samesite-none", "samesite", "None"),
    ],
)
@inline
def test_set_cookie_flags(listen, case, attr, expected):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", f"/set/{case}")
    assert response.status == 200
    _, attrs = cookie_named(response.headers, "c")
    assert attrs[attr] == expected
    if case == "samesite-none":
        assert attrs["secure"] is True


@inline
def test_set_cookie_false_flags_are_left_out(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/set/flags-off")
    _, attrs = cookie_named(response.headers, "c")
    assert "httponly" not in attrs and "secure" not in attrs


@inline
def test_set_cookie_bytes_name_and_value(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/set/bytes")
    value, _ = cookie_named(response.headers, "c")
    assert value == "bytes-value"


@inline
def test_set_cookie_several(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/set/two")
    names = sorted(parse_set_cookie(h)[0] for h in set_cookie_headers(response.headers))
    assert names == ["c", "d"]


@inline
def test_set_cookie_value_needing_quotes_round_trips(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/set/quoted")
    assert response.status == 200
    value, attrs = cookie_named(response.headers, "c")
    assert value.startswith('"') and value.endswith('"')
    # RFC 6265 cookie-octets exclude ';' ',' '"' and '\\' even inside quotes:
    # browsers split the Cookie header on ';' whatever the quotes say
    assert ";" not in value and "," not in value
    # the attributes after the quoted value are intact
    assert attrs == {"path": "/"}
    response = yield fetch(port, "GET", "/read?n=c", headers={"Cookie": f"c={value}"})
    assert json.loads(response.body)["values"] == {"c": QUOTED_VALUE}


@pytest.mark.parametrize("case", sorted(INVALID_COOKIE_CASES))
@inline
def test_set_cookie_invalid_is_500_without_injection(listen, case):
    port = listen(cookie_app())
    data = yield raw(port, raw_get(port, f"/set/{case}?invalid=1"))
    assert_not_injected(data)
    [(status, headers, body)] = parse_responses(data)
    assert status == 500
    # refused before it is stored: the error page has no cookie, let alone a broken one
    assert headers.get_all("Set-Cookie") is None
    assert b"cookie set" not in body


@inline
def test_invalid_samesite_raises_value_error(listen):
    errors = []

    class Checker(web.RequestHandler):
        def get(self):
            for value in ("Bogus", "Strict; Secure", ""):
                try:
                    self.set_cookie("c", "v", samesite=value)
                except ValueError:
                    errors.append(value)
            self.write("done")

    port = listen(web.Application([(r"/", Checker)]))
    response = yield fetch(port, "GET", "/")
    assert response.status == 200
    # "" means "no SameSite attribute", the others are refused
    assert errors == ["Bogus", "Strict; Secure"]


@inline
def test_get_cookie_and_default(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/read?n=a&n=b&n=zz", headers={"Cookie": 'a=1; b="two"'})
    assert response.status == 200
    result = json.loads(response.body)
    assert result["values"] == {"a": "1", "b": "two", "zz": None}
    assert result["default"] == "the-default"
    assert result["missing"] is None
    assert result["count"] == 2


@inline
def test_get_cookie_last_duplicate_wins(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/read?n=a", headers={"Cookie": "a=1; a=2"})
    assert json.loads(response.body)["values"] == {"a": "2"}


@inline
def test_clear_cookie(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/set/clear")
    value, attrs = cookie_named(response.headers, "c")
    assert value == '""'
    assert attrs["path"] == "/p"
    assert attrs["domain"] == "example.com"
    # as Tornado: expired a year ago, no Max-Age
    expires = email.utils.parsedate_to_datetime(attrs["expires"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now - datetime.timedelta(days=366) < expires < now - datetime.timedelta(days=364)
    assert "max-age" not in attrs


@inline
def test_clear_all_cookies(listen):
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/set/clear-all", headers={"Cookie": "a=1; b=2; c=3"})
    cleared = {}
    for header in set_cookie_headers(response.headers):
        name, value, attrs = parse_set_cookie(header)
        expires = email.utils.parsedate_to_datetime(attrs["expires"])
        cleared[name] = (value, expires < datetime.datetime.now(datetime.timezone.utc))
    assert list(cleared) == ["a", "b", "c"]
    assert set(cleared.values()) == {('""', True)}


@inline
def test_oversized_cookie_header_is_served_when_allowed(listen):
    # over the 8 KiB field default (431, as nginx), within a raised limit
    big = "x" * 10240
    headers = {"Cookie": f"big={big}; after=1"}
    port = listen(cookie_app())
    response = yield fetch(port, "GET", "/read?n=big&n=after", headers=headers)
    assert response.status == 431
    port = listen(cookie_app(max_header_field_size=16384))
    response = yield fetch(port, "GET", "/read?n=big&n=after", headers=headers)
    assert response.status == 200
    assert json.loads(response.body)["values"] == {"big": big, "after": "1"}


@inline
def test_many_cookie_pairs_are_served(listen):
    port = listen(cookie_app(max_header_field_size=65536))
    header = "; ".join(f"k{i}=v{i}" for i in range(2000))
    response = yield fetch(port, "GET", "/read?n=k0&n=k1999", headers={"Cookie": header})
    assert response.status == 200
    result = json.loads(response.body)
    assert result["count"] == 2000
    assert result["values"] == {"k0": "v0", "k1999": "v1999"}


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        ";;;;",
        "=;=;=",
        "===",
        'a="unbalanced; ok=yes',
        'ok=yes; b="unbalanced',
        '"; ok=yes',
        'a\\"b=1; ok=yes',
        "a b=1; ok=yes",
        "a:b=1;ok=yes",
        "$Version=1; ok=yes; $Path=/",
        "ok=yes; " + "x" * 5000,
        "ok=yes; " + ";" * 5000,
        "ok=yes; " + "=" * 5000,
        'ok=yes; q="' + "\\" * 5001 + '"',
        'ok=yes; q="\\' + "\\1" * 2000 + '"',
    ],
)
@inline
def test_malformed_cookie_header_never_crashes(listen, header):
    port = listen(cookie_app())
    data = yield raw(port, raw_get(port, "/read?n=ok", f"Cookie: {header}\r\n"))
    [(status, _, body)] = parse_responses(data)
    assert status == 200
    values = json.loads(body)["values"]
    if "ok=yes" in header:
        assert values == {"ok": "yes"}


@inline
def test_cookie_header_with_non_ascii_bytes_never_crashes(listen):
    port = listen(cookie_app())
    request = raw_get(port, "/read?n=ok", "Cookie: ok=yes; c=\xe9\xff\r\n")
    data = yield raw(port, request)
    [(status, _, _)] = parse_responses(data)
    # obs-text in a field value may be accepted or refused, never a crash
    assert status in (200, 400)


@inline
def test_several_cookie_headers_are_merged(listen):
    port = listen(cookie_app())
    data = yield raw(port, raw_get(port, "/read?n=a&n=b", "Cookie: a=1\r\nCookie: b=2\r\n"))
    [(status, _, body)] = parse_responses(data)
    assert status == 200
    assert json.loads(body)["values"] == {"a": "1", "b": "2"}


# ----------------------------------------------------------------------------
# Signed cookies
# ----------------------------------------------------------------------------


class Signed(web.RequestHandler):
    def get(self, action):
        if action == "set":
            version = self.get_argument("version", None)
            self.set_signed_cookie(
                "s", self.get_argument("v"), version=int(version) if version else None
            )
            self.write("set")
        elif action == "set-secure":
            self.set_secure_cookie("s", self.get_argument("v"))
            self.write("set")
        elif action in ("get", "get-secure"):
            kwargs = {}
            if self.get_argument("max_age_days", None):
                kwargs["max_age_days"] = float(self.get_argument("max_age_days"))
            if self.get_argument("min_version", None):
                kwargs["min_version"] = int(self.get_argument("min_version"))
            getter = self.get_signed_cookie if action == "get" else self.get_secure_cookie
            value = getter("s", **kwargs)
            self.write({
                "type": type(value).__name__,
                "value": value.decode("utf-8") if isinstance(value, bytes) else value,
                "key_version": self.get_signed_cookie_key_version("s"),
            })
        elif action == "explicit":
            # the value argument of get_signed_cookie, instead of the request's cookie
            value = self.get_signed_cookie("s", value=self.get_argument("signed"))
            self.write({"value": value.decode() if value is not None else None})
        elif action == "create":
            self.write(self.create_signed_value("s", self.get_argument("v")))


def signed_app(**settings):
    settings.setdefault("cookie_secret", SECRET)
    return web.Application([(r"/signed/([\w-]+)", Signed)], **settings)


def _get_signed(port, cookie_value, query=""):
    return fetch(port, "GET", f"/signed/get{query}", headers={"Cookie": f"s={cookie_value}"})


@inline
def test_signed_cookie_round_trip_v2(listen):
    port = listen(signed_app())
    text = "héllo wörld | ; , \" \\"
    response = yield fetch(port, "GET", "/signed/set?" + urllib.parse.urlencode({"v": text}))
    assert response.status == 200
    value, attrs = cookie_named(response.headers, "s")
    # "=" (base64 padding) is not a cookie token character: quoted, as Tornado does
    assert value.startswith('"2|1:0|') and value.endswith('"')
    # set_signed_cookie defaults to expires_days=30
    expires = email.utils.parsedate_to_datetime(attrs["expires"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now + datetime.timedelta(days=29) < expires < now + datetime.timedelta(days=31)
    assert signing.decode_signed_value(SECRET, "s", value[1:-1]) == text.encode("utf-8")
    # sent back with its quotes, as a browser does
    response = yield _get_signed(port, value)
    result = json.loads(response.body)
    assert result == {"type": "bytes", "value": text, "key_version": 0}


@inline
def test_signed_cookie_set_version_1(listen):
    port = listen(signed_app())
    response = yield fetch(port, "GET", "/signed/set?v=old-style&version=1")
    value, _ = cookie_named(response.headers, "s")
    assert not value.startswith("2|")
    assert len(value.split("|")) == 3
    response = yield _get_signed(port, value)
    assert json.loads(response.body)["value"] == "old-style"


@inline
def test_signed_cookie_v1_value_is_read(listen):
    port = listen(signed_app())
    v1 = signing.create_signed_value(SECRET, "s", "legacy", version=1).decode()
    response = yield _get_signed(port, v1)
    result = json.loads(response.body)
    assert result["value"] == "legacy"
    assert result["key_version"] is None


@inline
def test_signed_cookie_min_version_2_refuses_v1(listen):
    port = listen(signed_app())
    v1 = signing.create_signed_value(SECRET, "s", "legacy", version=1).decode()
    response = yield _get_signed(port, v1, "?min_version=2")
    assert json.loads(response.body)["value"] is None
    v2 = signing.create_signed_value(SECRET, "s", "modern").decode()
    response = yield _get_signed(port, v2, "?min_version=2")
    assert json.loads(response.body)["value"] == "modern"


def _tampered_values():
    good = signing.create_signed_value(SECRET, "s", "value").decode()
    sig = good.rsplit("|", 1)[1]
    flipped = good[:-1] + ("0" if good[-1] != "0" else "1")
    other_value = good.replace("8:dmFsdWU=", "8:dmFsdWY=")
    assert other_value != good
    v1 = signing.create_signed_value(SECRET, "s", "value", version=1).decode()
    return {
        "signature-flipped": flipped,
        "value-changed": other_value,
        "signature-truncated": good[: -len(sig) // 2],
        "signature-missing": good[: -len(sig)],
        "other-secret": signing.create_signed_value("another secret", "s", "value").decode(),
        "v1-other-secret": signing.create_signed_value("another secret", "s", "value", version=1).decode(),
        "v1-flipped": v1[:-1] + ("0" if v1[-1] != "0" else "1"),
        "garbage": "not-a-signed-value",
        "pipes": "2|||||",
        "huge-length": "2|1:0|99999999999999999999:1|1:s|1:x|abc",
        "empty-quoted": '""',
    }


@pytest.mark.parametrize("case", sorted(_tampered_values()))
@inline
def test_signed_cookie_tampered_is_none(listen, case):
    port = listen(signed_app())
    response = yield _get_signed(port, _tampered_values()[case])
    assert response.status == 200
    assert json.loads(response.body)["value"] is None


@inline
def test_signed_cookie_wrong_name_is_none(listen):
    port = listen(signed_app())
    for version in (1, 2):
        other = signing.create_signed_value(SECRET, "other", "value", version=version).decode()
        response = yield _get_signed(port, other)
        assert json.loads(response.body)["value"] is None


@inline
def test_signed_cookie_expired(listen):
    port = listen(signed_app())
    forty_days_ago = time.time() - 40 * DAY
    old = signing.create_signed_value(SECRET, "s", "stale", clock=lambda: forty_days_ago).decode()
    response = yield _get_signed(port, old)
    assert json.loads(response.body)["value"] is None
    response = yield _get_signed(port, old, "?max_age_days=50")
    assert json.loads(response.body)["value"] == "stale"
    fresh = signing.create_signed_value(SECRET, "s", "fresh", clock=lambda: time.time() - 2 * DAY).decode()
    response = yield _get_signed(port, fresh, "?max_age_days=1")
    assert json.loads(response.body)["value"] is None
    response = yield _get_signed(port, fresh)
    assert json.loads(response.body)["value"] == "fresh"


@inline
def test_signed_cookie_far_future_timestamp_is_none(listen):
    port = listen(signed_app())
    future = time.time() + 60 * DAY
    value = signing.create_signed_value(SECRET, "s", "future", clock=lambda: future).decode()
    response = yield _get_signed(port, value, "?max_age_days=1000")
    assert json.loads(response.body)["value"] is None


@inline
def test_signed_cookie_key_rotation(listen):
    secrets = {0: "key-zero", 1: "key-one"}
    port = listen(signed_app(cookie_secret=secrets, key_version=1))
    response = yield fetch(port, "GET", "/signed/set?v=rotated")
    value, _ = cookie_named(response.headers, "s")
    assert value.startswith('"2|1:1|')
    response = yield _get_signed(port, value)
    assert json.loads(response.body) == {"type": "bytes", "value": "rotated", "key_version": 1}
    # a value made before the rotation, with key 0, still decodes
    old = web.create_signed_value(secrets, "s", "before", key_version=0).decode()
    response = yield _get_signed(port, old)
    assert json.loads(response.body) == {"type": "bytes", "value": "before", "key_version": 0}
    # an unknown key version does not
    unknown = web.create_signed_value({7: "key-seven"}, "s", "x", key_version=7).decode()
    response = yield _get_signed(port, unknown)
    assert json.loads(response.body) == {"type": "NoneType", "value": None, "key_version": 7}
    # key 0's secret does not validate a value claiming key 1
    forged = web.create_signed_value({1: "key-zero"}, "s", "forged", key_version=1).decode()
    response = yield _get_signed(port, forged)
    assert json.loads(response.body)["value"] is None


@inline
def test_signed_cookie_secret_dict_without_key_version_is_500(listen):
    port = listen(signed_app(cookie_secret={0: "k"}))
    response = yield fetch(port, "GET", "/signed/set?v=x")
    assert response.status == 500
    assert response.headers.get_all("Set-Cookie") is None


@inline
def test_secure_cookie_names(listen):
    port = listen(signed_app())
    response = yield fetch(port, "GET", "/signed/set-secure?v=compat")
    value, _ = cookie_named(response.headers, "s")
    assert value.startswith("2|")
    response = yield fetch(port, "GET", "/signed/get-secure", headers={"Cookie": f"s={value}"})
    assert json.loads(response.body) == {"type": "bytes", "value": "compat", "key_version": 0}
    response = yield fetch(port, "GET", "/signed/get-secure")
    assert json.loads(response.body)["value"] is None


@inline
def test_get_signed_cookie_explicit_value(listen):
    port = listen(signed_app())
    signed = web.create_signed_value(SECRET, "s", "explicit").decode()
    response = yield fetch(port, "GET", "/signed/explicit?" + urllib.parse.urlencode({"signed": signed}))
    assert json.loads(response.body) == {"value": "explicit"}


@inline
def test_handler_create_signed_value_matches_module_function(listen):
    port = listen(signed_app())
    response = yield fetch(port, "GET", "/signed/create?v=abc")
    assert response.status == 200
    assert response.body.startswith(b"2|1:0|")
    assert web.decode_signed_value(SECRET, "s", response.body) == b"abc"


def test_module_signed_value_functions():
    clock = lambda: 1300000000  # noqa: E731
    value = web.create_signed_value("It's a secret to everybody", "key", "value", clock=clock)
    assert value == (
        b"2|1:0|10:1300000000|3:key|8:dmFsdWU=|"
        b"3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152"
    )
    assert web.decode_signed_value("It's a secret to everybody", "key", value, clock=clock) == b"value"
    assert web.decode_signed_value("It's a secret to everybody", "other", value, clock=clock) is None
    assert web.decode_signed_value("It's a secret to everybody", "key", value) is None  # 2011: expired
    v1 = web.create_signed_value(SECRET, "n", b"\x00\xff", version=1)
    assert web.decode_signed_value(SECRET, "n", v1) == b"\x00\xff"
    assert web.decode_signed_value(SECRET, "n", v1, min_version=2) is None
    assert web.get_signature_key_version(web.create_signed_value({3: "k"}, "n", "v", key_version=3)) == 3
    assert web.decode_signed_value(SECRET, "n", None) is None


@pytest.mark.parametrize("path", ["/signed/set?v=x", "/signed/get", "/signed/get-secure", "/signed/create?v=x"])
@inline
def test_missing_cookie_secret_is_500(listen, path):
    app = web.Application([(r"/signed/([\w-]+)", Signed)], serve_traceback=True)
    port = listen(app)
    response = yield fetch(port, "GET", path, headers={"Cookie": "s=whatever"})
    assert response.status == 500
    assert b"cookie_secret" in response.body
    assert response.headers.get_all("Set-Cookie") is None


# ----------------------------------------------------------------------------
# XSRF
# ----------------------------------------------------------------------------


class XsrfHandler(web.RequestHandler):
    def get(self):
        self.write(self.xsrf_token)

    def post(self):
        self.write("posted")

    def put(self):
        self.write("put")

    def delete(self):
        self.write("deleted")

    def patch(self):
        self.write("patched")

    def options(self):
        # OPTIONS is answered only by a handler that defines it (405 otherwise)
        self.set_status(204)


class XsrfUser(XsrfHandler):
    def get_current_user(self):
        return self.get_cookie("user")


class XsrfFormHtml(web.RequestHandler):
    def get(self):
        self.write(self.xsrf_form_html())


class NoXsrf(web.RequestHandler):
    no_xsrf = True

    def post(self):
        self.write("no check")


def xsrf_app(**settings):
    return web.Application(
        [(r"/xsrf", XsrfHandler), (r"/xsrf-user", XsrfUser), (r"/form", XsrfFormHtml), (r"/api", NoXsrf)],
        xsrf_cookies=True,
        **settings,
    )


@defer.inlineCallbacks
def new_xsrf_cookie(port):
    """(cookie value, token in the body) from a fresh GET."""
    response = yield fetch(port, "GET", "/xsrf")
    assert response.status == 200
    cookie, _ = cookie_named(response.headers, "_xsrf")
    return cookie, response.body.decode("ascii")


def post(port, cookie=None, body=None, headers=None, method="POST", path="/xsrf"):
    headers = dict(headers or {})
    if cookie is not None:
        headers["Cookie"] = f"_xsrf={cookie}"
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif method in ("POST", "PUT", "PATCH"):
        body = b""
    return fetch(port, method, path, body=body, headers=headers)


@inline
def test_xsrf_get_sets_v2_cookie(listen):
    port = listen(xsrf_app())
    cookie, token = yield new_xsrf_cookie(port)
    version, raw_token, timestamp = signing.decode_xsrf_token(cookie)
    assert version == 2 and len(raw_token) == 16
    assert abs(timestamp - time.time()) < DAY
    assert re.fullmatch(r"2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d+", token)
    assert signing.decode_xsrf_token(token)[1] == raw_token


@inline
def test_xsrf_cookie_not_reset_when_present(listen):
    port = listen(xsrf_app())
    cookie, _ = yield new_xsrf_cookie(port)
    response = yield fetch(port, "GET", "/xsrf", headers={"Cookie": f"_xsrf={cookie}"})
    assert response.headers.get_all("Set-Cookie") is None


@inline
def test_xsrf_post_without_token_is_403(listen):
    port = listen(xsrf_app())
    cookie, _ = yield new_xsrf_cookie(port)
    response = yield post(port, cookie)
    assert response.status == 403
    assert b"posted" not in response.body
    response = yield post(port)
    assert response.status == 403
    response = yield post(port, cookie, body=b"_xsrf=")
    assert response.status == 403


@pytest.mark.parametrize("where", ["form", "query", "X-Xsrftoken", "X-Csrftoken"])
@inline
def test_xsrf_post_with_token_is_200(listen, where):
    port = listen(xsrf_app())
    cookie, token = yield new_xsrf_cookie(port)
    quoted = urllib.parse.quote(token, safe="")
    if where == "form":
        response = yield post(port, cookie, body=f"_xsrf={quoted}".encode())
    elif where == "query":
        response = yield post(port, cookie, path=f"/xsrf?_xsrf={quoted}")
    else:
        response = yield post(port, cookie, headers={where: token})
    assert response.status == 200
    assert response.body == b"posted"


@inline
def test_xsrf_cookie_value_itself_is_a_valid_token(listen):
    port = listen(xsrf_app())
    cookie, _ = yield new_xsrf_cookie(port)
    response = yield post(port, cookie, headers={"X-Xsrftoken": cookie})
    assert response.status == 200


@inline
def test_xsrf_v2_tokens_differ_per_request_and_all_validate(listen):
    port = listen(xsrf_app())
    cookie, first = yield new_xsrf_cookie(port)
    tokens = {first}
    for _ in range(4):
        response = yield fetch(port, "GET", "/xsrf", headers={"Cookie": f"_xsrf={cookie}"})
        tokens.add(response.body.decode("ascii"))
    assert len(tokens) == 5
    for token in tokens:
        response = yield post(port, cookie, headers={"X-Xsrftoken": token})
        assert response.status == 200


@inline
def test_xsrf_v1_cookie_and_token_accepted(listen):
    port = listen(xsrf_app())
    hex_token = "0123456789abcdef0123456789abcdef"
    response = yield post(port, hex_token, headers={"X-Xsrftoken": hex_token})
    assert response.status == 200
    # a v2 encoding of the same raw token matches a v1 cookie too
    v2 = signing.encode_xsrf_token(bytes.fromhex(hex_token), time.time()).decode()
    response = yield post(port, hex_token, body=f"_xsrf={urllib.parse.quote(v2)}".encode())
    assert response.status == 200
    # and the page served with a v1 cookie hands out a token for it
    response = yield fetch(port, "GET", "/xsrf", headers={"Cookie": f"_xsrf={hex_token}"})
    assert signing.decode_xsrf_token(response.body)[1] == bytes.fromhex(hex_token)
    other_hex = "f" * 32
    response = yield post(port, hex_token, headers={"X-Xsrftoken": other_hex})
    assert response.status == 403


@inline
def test_xsrf_token_from_another_cookie_is_403(listen):
    port = listen(xsrf_app())
    cookie_a, token_a = yield new_xsrf_cookie(port)
    cookie_b, token_b = yield new_xsrf_cookie(port)
    assert signing.decode_xsrf_token(cookie_a)[1] != signing.decode_xsrf_token(cookie_b)[1]
    response = yield post(port, cookie_a, headers={"X-Xsrftoken": token_b})
    assert response.status == 403
    response = yield post(port, cookie_b, body=f"_xsrf={urllib.parse.quote(token_a)}".encode())
    assert response.status == 403
    # a token without any cookie
    response = yield post(port, None, headers={"X-Xsrftoken": token_a})
    assert response.status == 403


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "2|zzzzzzzz|zz|1",
        "2|00000000||1",
        "2|0000|00000000000000000000000000000000|1",
        "3|00000000|00000000000000000000000000000000|1",
        "2|00000000|00000000000000000000000000000000",
        "||||",
        "|",
    ],
)
@inline
def test_xsrf_garbage_token_is_403(listen, token):
    port = listen(xsrf_app())
    cookie, _ = yield new_xsrf_cookie(port)
    response = yield post(port, cookie, headers={"X-Xsrftoken": token})
    assert response.status == 403


@inline
def test_xsrf_garbage_cookie_is_403(listen):
    port = listen(xsrf_app())
    _, token = yield new_xsrf_cookie(port)
    for cookie in ("2|zz|zz|zz", "||", '"'):
        response = yield post(port, cookie, headers={"X-Xsrftoken": token})
        assert response.status == 403


@inline
def test_no_xsrf_handler_skips_the_check(listen):
    port = listen(xsrf_app())
    response = yield post(port, path="/api")
    assert response.status == 200
    assert response.body == b"no check"


@inline
def test_xsrf_cookie_version_1_emits_hex(listen):
    port = listen(xsrf_app(xsrf_cookie_version=1))
    cookie, token = yield new_xsrf_cookie(port)
    assert re.fullmatch(r"[0-9a-f]{32}", cookie)
    assert token == cookie
    response = yield post(port, cookie, headers={"X-Xsrftoken": token})
    assert response.status == 200


@inline
def test_xsrf_cookie_kwargs(listen):
    port = listen(xsrf_app(xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict", "path": "/x"}))
    response = yield fetch(port, "GET", "/xsrf")
    _, attrs = cookie_named(response.headers, "_xsrf")
    assert attrs["httponly"] is True
    assert attrs["samesite"] == "Strict"
    assert attrs["path"] == "/x"


@pytest.mark.parametrize(
    "cookie_name, kwargs, attributes",
    [
        ("my_xsrf", {}, "Path=/"),
        # a __Host- cookie must be Secure with Path=/ and no Domain
        ("__Host-xsrf", {"secure": True, "httponly": True}, "HttpOnly; Path=/; Secure"),
    ],
)
@inline
def test_xsrf_cookie_name_setting(listen, cookie_name, kwargs, attributes):
    port = listen(xsrf_app(xsrf_cookie_name=cookie_name, xsrf_cookie_kwargs=kwargs))
    response = yield fetch(port, "GET", "/xsrf")
    [header] = set_cookie_headers(response.headers)
    token = response.body.decode("ascii")
    # as Tornado writes it: the token's "|" needs no quotes
    token_re = r"2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d+"
    assert re.fullmatch(f"{re.escape(cookie_name)}={token_re}; {re.escape(attributes)}", header)
    cookie = header.split(";")[0].split("=", 1)[1]
    named = {"Cookie": f"{cookie_name}={cookie}"}
    form = {**named, "Content-Type": "application/x-www-form-urlencoded"}
    response = yield fetch(port, "POST", "/xsrf", body=f"_xsrf={token}", headers=form)
    assert (response.status, response.body) == (200, b"posted")
    response = yield fetch(port, "POST", "/xsrf", body=b"", headers={**named, "X-Xsrftoken": token})
    assert (response.status, response.body) == (200, b"posted")
    # the request's cookie is kept: no new one
    response = yield fetch(port, "GET", "/xsrf", headers=named)
    assert response.status == 200 and set_cookie_headers(response.headers) == []
    # the argument keeps its name; a cookie under the default name is not read
    default_name = {"Cookie": f"_xsrf={cookie}", "X-Xsrftoken": token}
    response = yield fetch(port, "POST", "/xsrf", body=b"", headers=default_name)
    assert response.status == 403
    response = yield fetch(port, "POST", "/xsrf", body=b"", headers={"X-Xsrftoken": token})
    assert response.status == 403


@inline
def test_xsrf_cookie_kwargs_setting_is_not_changed(listen):
    # a logged-in user's cookie lasts 30 days; the shared setting stays as given
    kwargs = {"httponly": True}
    port = listen(xsrf_app(xsrf_cookie_kwargs=kwargs))
    response = yield fetch(port, "GET", "/xsrf-user", headers={"Cookie": "user=carol"})
    _, attrs = cookie_named(response.headers, "_xsrf")
    assert "expires" in attrs and attrs["httponly"] is True
    assert kwargs == {"httponly": True}
    response = yield fetch(port, "GET", "/xsrf-user")
    _, attrs = cookie_named(response.headers, "_xsrf")
    assert "expires" not in attrs


@inline
def test_xsrf_cookie_persistent_only_for_logged_in_users(listen):
    port = listen(xsrf_app())
    response = yield fetch(port, "GET", "/xsrf-user")
    _, attrs = cookie_named(response.headers, "_xsrf")
    assert "expires" not in attrs and "max-age" not in attrs
    response = yield fetch(port, "GET", "/xsrf-user", headers={"Cookie": "user=carol"})
    _, attrs = cookie_named(response.headers, "_xsrf")
    expires = email.utils.parsedate_to_datetime(attrs["expires"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now + datetime.timedelta(days=29) < expires < now + datetime.timedelta(days=31)


@inline
def test_xsrf_form_html(listen):
    port = listen(xsrf_app())
    response = yield fetch(port, "GET", "/form")
    cookie, _ = cookie_named(response.headers, "_xsrf")
    match = re.fullmatch(rb'<input type="hidden" name="_xsrf" value="([^"<>&]*)"/>', response.body)
    assert match, response.body
    token = escape.xhtml_unescape(match.group(1))
    assert escape.xhtml_escape(token).encode() == match.group(1)
    response = yield post(port, cookie, body=f"_xsrf={urllib.parse.quote(token)}".encode())
    assert response.status == 200


@inline
def test_xsrf_form_html_from_hostile_legacy_cookie(listen):
    port = listen(xsrf_app())
    hostile = '"><script>alert(1)</script>'
    data = yield raw(port, raw_get(port, "/form", f"Cookie: _xsrf={hostile}\r\n"))
    [(status, _, body)] = parse_responses(data)
    assert status == 200
    assert b"<script>" not in body
    match = re.fullmatch(rb'<input type="hidden" name="_xsrf" value="([^"<>]*)"/>', body)
    assert match, body
    token = escape.xhtml_unescape(match.group(1))
    response = yield post(
        port, None, headers={"X-Xsrftoken": token, "Cookie": f"_xsrf={hostile}"}
    )
    assert response.status == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
@inline
def test_xsrf_other_unsafe_methods_are_checked(listen, method):
    port = listen(xsrf_app())
    cookie, token = yield new_xsrf_cookie(port)
    response = yield post(port, cookie, method=method)
    assert response.status == 403
    response = yield post(port, cookie, method=method, headers={"X-Xsrftoken": token})
    assert response.status == 200
    assert response.body == {"PUT": b"put", "DELETE": b"deleted", "PATCH": b"patched"}[method]


@pytest.mark.parametrize("method, status", [("GET", 200), ("HEAD", 200), ("OPTIONS", 204)])
@inline
def test_xsrf_safe_methods_are_not_checked(listen, method, status):
    port = listen(xsrf_app())
    response = yield fetch(port, method, "/xsrf")
    assert response.status == status


@inline
def test_xsrf_off_by_default(listen):
    port = listen(web.Application([(r"/xsrf", XsrfHandler)]))
    response = yield post(port)
    assert response.status == 200


@inline
def test_xsrf_error_handler_404_not_403(listen):
    port = listen(xsrf_app())
    response = yield post(port, path="/nowhere")
    assert response.status == 404


# ----------------------------------------------------------------------------
# Users, @authenticated, @addslash, @removeslash
# ----------------------------------------------------------------------------


class UserBase(web.RequestHandler):
    def get_current_user(self):
        self.__dict__.setdefault("lookups", 0)
        self.lookups += 1
        return self.get_cookie("user")


class WhoAmI(UserBase):
    def get(self):
        users = [self.current_user, self.current_user, self.current_user]
        self.write({"user": users[0], "lookups": self.lookups})


class SetUser(UserBase):
    def prepare(self):
        self.current_user = {"name": "from-prepare"}

    def get_current_user(self):
        raise AssertionError("get_current_user must not run when current_user was set")

    def get(self):
        self.write({"user": self.current_user})


class Private(UserBase):
    @web.authenticated
    def get(self):
        self.write("secret for " + self.current_user)

    @web.authenticated
    def post(self):
        self.write("posted by " + self.current_user)


class AddSlash(web.RequestHandler):
    @web.addslash
    def get(self):
        self.write("dir")

    @web.addslash
    def post(self):
        self.write("dir post")


class RemoveSlash(web.RequestHandler):
    @web.removeslash
    def get(self):
        self.write("file")

    @web.removeslash
    def post(self):
        self.write("file post")


def user_app(login_url="/login", **settings):
    return web.Application(
        [
            (r"/whoami", WhoAmI),
            (r"/setuser", SetUser),
            (r"/private", Private),
            (r"/dir/?", AddSlash),
            (r"/file/?", RemoveSlash),
        ],
        login_url=login_url,
        **settings,
    )


@inline
def test_current_user_from_get_current_user(listen):
    port = listen(user_app())
    response = yield fetch(port, "GET", "/whoami", headers={"Cookie": "user=alice"})
    assert json.loads(response.body) == {"user": "alice", "lookups": 1}
    response = yield fetch(port, "GET", "/whoami")
    assert json.loads(response.body) == {"user": None, "lookups": 1}


@inline
def test_current_user_is_settable(listen):
    port = listen(user_app())
    response = yield fetch(port, "GET", "/setuser")
    assert response.status == 200
    assert json.loads(response.body) == {"user": {"name": "from-prepare"}}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@inline
def test_authenticated_redirects_to_login(listen, method):
    port = listen(user_app())
    response = yield fetch(port, method, "/private?q=1")
    assert response.status == 302
    assert response.headers["Location"] == "/login?next=%2Fprivate%3Fq%3D1"
    assert b"secret" not in response.body


@inline
def test_authenticated_absolute_login_url_gets_full_next(listen):
    port = listen(user_app(login_url="https://auth.example.com/login"))
    response = yield fetch(port, "GET", "/private?q=1")
    assert response.status == 302
    location = response.headers["Location"]
    base, _, query = location.partition("?")
    assert base == "https://auth.example.com/login"
    assert urllib.parse.parse_qs(query) == {"next": [f"http://127.0.0.1:{port}/private?q=1"]}
    assert query == "next=" + urllib.parse.quote(f"http://127.0.0.1:{port}/private?q=1", safe="")


@inline
def test_authenticated_login_url_with_query_kept_as_is(listen):
    port = listen(user_app(login_url="/login?from=app"))
    response = yield fetch(port, "GET", "/private?q=1")
    assert response.status == 302
    assert response.headers["Location"] == "/login?from=app"


@inline
def test_authenticated_post_is_403(listen):
    port = listen(user_app())
    response = yield fetch(port, "POST", "/private", body=b"")
    assert response.status == 403
    assert response.headers.get("Location") is None
    assert b"posted" not in response.body


@inline
def test_authenticated_logged_in_is_200(listen):
    port = listen(user_app())
    response = yield fetch(port, "GET", "/private?q=1", headers={"Cookie": "user=bob"})
    assert response.status == 200
    assert response.body == b"secret for bob"
    response = yield fetch(port, "POST", "/private", body=b"", headers={"Cookie": "user=bob"})
    assert response.status == 200
    assert response.body == b"posted by bob"


@inline
def test_authenticated_without_login_url_is_500(listen):
    port = listen(web.Application([(r"/private", Private)]))
    response = yield fetch(port, "GET", "/private")
    assert response.status == 500


@inline
def test_addslash(listen):
    port = listen(user_app())
    response = yield fetch(port, "GET", "/dir?x=1&y=%2F")
    assert response.status == 301
    assert response.headers["Location"] == "/dir/?x=1&y=%2F"
    response = yield fetch(port, "HEAD", "/dir")
    assert response.status == 301
    assert response.headers["Location"] == "/dir/"
    response = yield fetch(port, "GET", "/dir/")
    assert (response.status, response.body) == (200, b"dir")
    response = yield fetch(port, "POST", "/dir", body=b"")
    assert response.status == 404
    response = yield fetch(port, "POST", "/dir/", body=b"")
    assert (response.status, response.body) == (200, b"dir post")


@inline
def test_removeslash(listen):
    port = listen(user_app())
    response = yield fetch(port, "GET", "/file/?x=1")
    assert response.status == 301
    assert response.headers["Location"] == "/file?x=1"
    response = yield fetch(port, "GET", "/file")
    assert (response.status, response.body) == (200, b"file")
    response = yield fetch(port, "POST", "/file/", body=b"")
    assert response.status == 404
    response = yield fetch(port, "POST", "/file", body=b"")
    assert (response.status, response.body) == (200, b"file post")


# ----------------------------------------------------------------------------
# Header injection, reflected input, error pages
# ----------------------------------------------------------------------------


def later(value=None):
    d = defer.Deferred()
    reactor.callLater(0, d.callback, value)
    return d


INJECTIONS = {
    "set-header-crlf": lambda h: h.set_header("X-Test", "a\r\nX-Injected: 1"),
    "set-header-lf": lambda h: h.set_header("X-Test", "a\nX-Injected: 1"),
    "set-header-cr": lambda h: h.set_header("X-Test", "a\rX-Injected: 1"),
    "set-header-nul": lambda h: h.set_header("X-Test", "a\x00X-Injected: 1"),
    "set-header-bytes": lambda h: h.set_header("X-Test", b"a\r\nX-Injected: 1"),
    "set-header-name": lambda h: h.set_header("X-Test\r\nX-Injected", "1"),
    "set-header-name-colon": lambda h: h.set_header("X-Injected: 1\r\nX-Test", "1"),
    "add-header-crlf": lambda h: h.add_header("X-Test", "a\r\nX-Injected: 1"),
    "add-header-lf": lambda h: h.add_header("X-Test", "a\nX-Injected: 1"),
    "add-header-nul": lambda h: h.add_header("X-Test", "a\x00b"),
    "add-header-name": lambda h: h.add_header("X-Test\nX-Injected", "1"),
    "set-status-reason": lambda h: h.set_status(200, "OK\r\nX-Injected: 1"),
    "set-status-reason-lf": lambda h: h.set_status(200, "OK\nX-Injected: 1"),
}

# Not representable on the wire (header fields are latin-1 at most).
UNENCODABLE = {
    "set-header-euro": lambda h: h.set_header("X-Test", "5 \u20ac"),
    "add-header-euro": lambda h: h.add_header("X-Test", "5 \u20ac"),
    "set-cookie-euro": lambda h: h.set_cookie("c", "5\u20ac"),
    "set-status-euro": lambda h: h.set_status(299, "Caf\u20ac"),
}


class Inject(web.RequestHandler):
    def get(self, case):
        {**INJECTIONS, **UNENCODABLE}[case](self)
        self.write("should not be sent")


class InjectAsync(Inject):
    async def get(self, case):
        await later()
        {**INJECTIONS, **UNENCODABLE}[case](self)
        self.write("should not be sent")


class SetHeaderChecker(web.RequestHandler):
    """Checks that the header methods raise ValueError (not some other error)."""

    def get(self):
        refused = []
        for case, action in INJECTIONS.items():
            try:
                action(self)
            except ValueError:
                refused.append(case)
        self.clear()
        self.write({"refused": refused})


class Redirector(web.RequestHandler):
    def get(self, case):
        target = {
            "crlf-cookie": "/a\r\nSet-Cookie: x=y",
            "crlf": "/a\r\nX-Injected: 1",
            "lf": "/a\nX-Injected: 1",
            "absolute-crlf": "http://example.com/\r\nX-Injected: 1",
            "nul": "/a\x00X-Injected: 1",
        }[case]
        self.redirect(target)


class ReasonError(web.RequestHandler):
    def get(self, case):
        if case == "crlf":
            raise web.HTTPError(400, reason="Bad\r\nX-Injected: 1")
        if case == "lf":
            raise web.HTTPError(400, reason="Bad\nX-Injected: 1")
        if case == "html":
            raise web.HTTPError(418, reason="<script>alert(1)</script>")
        if case == "unencodable":
            raise web.HTTPError(400, reason="Caf\u20ac")
        if case == "send-error":
            self.send_error(400, reason="Bad\r\nX-Injected: 1")
            return
        if case == "realm":
            raise web.HTTPAuthenticationRequired(realm="R\r\nX-Injected: 1")
        if case == "auth-type":
            raise web.HTTPAuthenticationRequired(auth_type="Basic\r\nX-Injected: 1")
        raise AssertionError(case)


class ReasonErrorAsync(ReasonError):
    async def get(self, case):
        await later()
        return super().get(case)


class Boom(web.RequestHandler):
    def get(self):
        raise ZeroDivisionError("secret-detail-1234")


class BoomAsync(web.RequestHandler):
    async def get(self):
        await later()
        raise ZeroDivisionError("secret-detail-1234")


class HTMLReason(web.RequestHandler):
    def get(self):
        self.set_status(299, "<b>bold</b> & co")
        self.write("fine")


class Auth(web.RequestHandler):
    def get(self, case):
        if case == "basic":
            raise web.HTTPAuthenticationRequired(auth_type="Basic", realm="R")
        if case == "default":
            raise web.HTTPAuthenticationRequired()
        if case == "quoted":
            raise web.HTTPAuthenticationRequired(realm='say "hi" \\o/')
        if case == "digest":
            raise web.HTTPAuthenticationRequired(auth_type="Digest", realm="R", nonce="n0nce")
        if case == "send-error":
            self.send_error(401, exception=web.HTTPAuthenticationRequired(realm="Z"))
            return
        raise AssertionError(case)


def injection_app(**settings):
    return web.Application(
        [
            (r"/inject/([\w-]+)", Inject),
            (r"/inject-async/([\w-]+)", InjectAsync),
            (r"/check-headers", SetHeaderChecker),
            (r"/redirect/([\w-]+)", Redirector),
            (r"/reason/([\w-]+)", ReasonError),
            (r"/reason-async/([\w-]+)", ReasonErrorAsync),
            (r"/boom", Boom),
            (r"/boom-async", BoomAsync),
            (r"/html-reason", HTMLReason),
            (r"/auth/([\w-]+)", Auth),
        ],
        **settings,
    )


@pytest.mark.parametrize("prefix", ["inject", "inject-async"])
@pytest.mark.parametrize("case", sorted(INJECTIONS))
@inline
def test_header_injection_is_500(listen, prefix, case):
    port = listen(injection_app())
    data = yield raw(port, raw_get(port, f"/{prefix}/{case}"))
    assert_not_injected(data)
    [(status, headers, body)] = parse_responses(data)
    assert status == 500
    assert headers.get("X-Test") is None
    assert b"should not be sent" not in body
    assert b"\x00" not in data


@pytest.mark.parametrize("prefix", ["inject", "inject-async"])
@pytest.mark.parametrize("case", sorted(UNENCODABLE))
@inline
def test_unencodable_header_is_500_not_a_hang(listen, prefix, case):
    port = listen(injection_app())
    data = yield raw(port, raw_get(port, f"/{prefix}/{case}"))
    [(status, headers, body)] = parse_responses(data)
    assert status == 500
    assert headers.get("X-Test") is None
    assert headers.get_all("Set-Cookie") is None
    assert b"should not be sent" not in body


@inline
def test_header_methods_raise_value_error(listen):
    port = listen(injection_app())
    response = yield fetch(port, "GET", "/check-headers")
    assert response.status == 200
    assert json.loads(response.body)["refused"] == list(INJECTIONS)


@pytest.mark.parametrize("case", ["crlf-cookie", "crlf", "lf", "absolute-crlf", "nul"])
@inline
def test_redirect_never_injects(listen, case):
    port = listen(injection_app())
    data = yield raw(port, raw_get(port, f"/redirect/{case}"))
    assert_not_injected(data)
    assert_not_injected(data, b"set-cookie")
    [(status, headers, _)] = parse_responses(data)
    assert headers.get_all("Set-Cookie") is None
    assert b"\x00" not in data
    if status in (301, 302):
        location = headers["Location"]
        assert not re.search(r"[\x00-\x20]", location)


@pytest.mark.parametrize("prefix", ["reason", "reason-async"])
@pytest.mark.parametrize("case", ["crlf", "lf", "send-error", "realm", "auth-type", "unencodable"])
@inline
def test_error_reason_and_challenge_never_inject(listen, prefix, case):
    port = listen(injection_app())
    data = yield raw(port, raw_get(port, f"/{prefix}/{case}"))
    assert_not_injected(data)
    [(status, _, _)] = parse_responses(data)
    assert 400 <= status <= 599


@pytest.mark.parametrize("prefix", ["reason", "reason-async"])
@inline
def test_error_reason_is_escaped_in_error_page(listen, prefix):
    port = listen(injection_app())
    data = yield raw(port, raw_get(port, f"/{prefix}/html"))
    [(status, _, body)] = parse_responses(data)
    assert status == 418
    assert b"<script>" not in body
    assert b"&lt;script&gt;" in body


@pytest.mark.parametrize(
    "target",
    [
        "/nowhere/<script>alert(1)</script>",
        "/nowhere/%3Cscript%3Ealert(1)%3C/script%3E",
        "/nowhere?<script>alert(1)</script>",
        "/nowhere?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    ],
)
@inline
def test_404_does_not_reflect_script(listen, target):
    port = listen(injection_app())
    data = yield raw(port, raw_get(port, target))
    [(status, _, body)] = parse_responses(data)
    assert status in (400, 404)
    assert b"<script" not in body.lower()
    assert b"%3cscript" not in body.lower()


@pytest.mark.parametrize("path", ["/boom", "/boom-async"])
@pytest.mark.parametrize(
    "settings, shown",
    [
        ({}, False),
        ({"serve_traceback": True}, True),
        ({"debug": True}, True),
        ({"debug": True, "serve_traceback": False}, False),
        ({"serve_traceback": False}, False),
    ],
)
@inline
def test_traceback_only_when_enabled(listen, settings, shown, path):
    port = listen(injection_app(**settings))
    response = yield fetch(port, "GET", path)
    assert response.status == 500
    assert (b"Traceback" in response.body) is shown
    assert (b"secret-detail-1234" in response.body) is shown
    if shown:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert b"ZeroDivisionError" in response.body


@inline
def test_default_error_page_is_small_html(listen):
    port = listen(injection_app())
    response = yield fetch(port, "GET", "/boom")
    assert response.status == 500
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"500: Internal Server Error" in response.body


@inline
def test_custom_reason_is_sent_on_status_line(listen):
    port = listen(injection_app())
    data = yield raw(port, raw_get(port, "/html-reason"))
    assert head_lines(data)[0] == b"HTTP/1.1 299 <b>bold</b> & co"


class BodylessError(web.RequestHandler):
    def get(self, status, how):
        self.set_header("Content-Type", "text/html")
        if how == "raise":
            raise web.HTTPError(int(status))
        if how == "send-error":
            self.write("discarded")
            self.send_error(int(status))
            return None
        return self._later(int(status))

    async def _later(self, status):
        raise web.HTTPError(status, "nothing to send", reason="Nothing Here")


@pytest.mark.parametrize("status", ["204", "304"])
@pytest.mark.parametrize("how", ["raise", "send-error", "async"])
@inline
def test_http_error_204_and_304_answer_without_a_body(listen, status, how):
    port = listen(web.Application([(r"/(\d+)/(.+)", BodylessError)]))
    path = f"/{status}/{how}"
    # two requests on one connection: the answer is well framed and the
    # connection stays usable
    request = (
        f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ).encode()
    data = yield raw(port, request)
    responses = parse_responses(data)
    assert [r[0] for r in responses] == [int(status)] * 2
    for _, headers, body in responses:
        assert body == b""
        assert headers.get("Content-Type") is None
        assert headers.get("Content-Length") in (None, "0") if status == "304" else True
    if how == "async":
        assert head_lines(data)[0] == f"HTTP/1.1 {status} Nothing Here".encode()


# ----------------------------------------------------------------------------
# HTTPAuthenticationRequired
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, expected",
    [
        ("basic", 'Basic realm="R"'),
        ("default", 'Basic realm="Restricted Access"'),
        ("quoted", 'Basic realm="say \\"hi\\" \\\\o/"'),
        ("send-error", 'Basic realm="Z"'),
    ],
)
@inline
def test_http_authentication_required(listen, case, expected):
    port = listen(injection_app())
    response = yield fetch(port, "GET", f"/auth/{case}")
    assert response.status == 401
    assert response.headers.get_all("WWW-Authenticate") == [expected]


@inline
def test_http_authentication_required_extra_params(listen):
    port = listen(injection_app())
    response = yield fetch(port, "GET", "/auth/digest")
    assert response.status == 401
    challenge = response.headers["WWW-Authenticate"]
    scheme, _, params = challenge.partition(" ")
    assert scheme == "Digest"
    assert sorted(p.strip() for p in params.split(",")) == ['nonce="n0nce"', 'realm="R"']


def test_http_authentication_required_is_an_http_error():
    exc = web.HTTPAuthenticationRequired(auth_type="Basic", realm="R")
    assert isinstance(exc, web.HTTPError)
    assert exc.status_code == 401
    assert exc.challenge() == 'Basic realm="R"'


# ----------------------------------------------------------------------------
# Argument decoding errors
# ----------------------------------------------------------------------------


class PathArg(web.RequestHandler):
    def get(self, value):
        self.write({"value": value})


class NamedPathArg(web.RequestHandler):
    def get(self, name):
        self.write({"value": name})


class QueryArg(web.RequestHandler):
    def get(self):
        kind = self.get_argument("kind", "argument")
        if kind == "argument":
            self.write({"value": self.get_argument("a")})
        elif kind == "arguments":
            self.write({"value": self.get_arguments("a")})
        elif kind == "query":
            self.write({"value": self.get_query_argument("a")})
        elif kind == "raise":
            raise web.MissingArgumentError("thing")

    def post(self):
        self.write({"value": self.get_body_argument("a")})


def args_app():
    return web.Application(
        [
            (r"/path/([^/]+)", PathArg),
            (r"/named/(?P<name>[^/]+)", NamedPathArg),
            (r"/args", QueryArg),
        ]
    )


@pytest.mark.parametrize("path", ["/path/%FF", "/path/a%C3", "/named/%FF", "/named/%ED%A0%80"])
@inline
def test_undecodable_path_argument_is_400(listen, path):
    port = listen(args_app())
    response = yield fetch(port, "GET", path)
    assert response.status == 400


@inline
def test_decodable_path_arguments(listen):
    port = listen(args_app())
    response = yield fetch(port, "GET", "/path/caf%C3%A9%20x")
    assert response.status == 200
    assert json.loads(response.body) == {"value": "café x"}
    response = yield fetch(port, "GET", "/named/%3Cb%3E")
    assert json.loads(response.body) == {"value": "<b>"}


@pytest.mark.parametrize("kind", ["argument", "arguments", "query"])
@inline
def test_undecodable_query_argument_is_400(listen, kind):
    port = listen(args_app())
    response = yield fetch(port, "GET", f"/args?a=%FF&kind={kind}")
    assert response.status == 400
    response = yield fetch(port, "GET", f"/args?a=caf%C3%A9&kind={kind}")
    assert response.status == 200
    expected = ["café"] if kind == "arguments" else "café"
    assert json.loads(response.body) == {"value": expected}


@inline
def test_undecodable_body_argument_is_400(listen):
    port = listen(args_app())
    response = yield fetch(
        port, "POST", "/args", body=b"a=%FF",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 400


@inline
def test_missing_argument_is_400(listen):
    port = listen(args_app())
    for path in ("/args", "/args?kind=query", "/args?kind=raise"):
        response = yield fetch(port, "GET", path)
        assert response.status == 400, path
    response = yield fetch(
        port, "POST", "/args", body=b"b=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 400


def test_missing_argument_error():
    exc = web.MissingArgumentError("thing")
    assert isinstance(exc, web.HTTPError)
    assert exc.status_code == 400
    assert exc.arg_name == "thing"
    assert "thing" in str(exc)
