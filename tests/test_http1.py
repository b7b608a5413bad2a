"""Tests for the sans-IO HTTP/1.1 core, ``cyclone.http1``.

The expectations come from the API contract (notes/http1-api.md) and the parsing
policy (shared/spec/http1-policy.md), not from the implementation.

Every request vector goes through ``parse_all``, which feeds the bytes to fresh
parsers in many different splits (whole, line by line, byte by byte, seeded
random splits, every two-piece split) both through ``next_event()`` and
``events()``, and asserts they all give the same normalised event list.
"""

from __future__ import annotations

import dataclasses
import email.utils
import http
import http.client
import io
import random
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cyclone.http1 import (
    CONTINUE_RESPONSE,
    DEFAULT_LIMITS,
    NEED_DATA,
    PAUSED,
    Data,
    DateCache,
    EndOfMessage,
    HTTPOutputError,
    Limits,
    ProtocolError,
    RequestHead,
    RequestParser,
    ResponseWriter,
    encode_chunk,
    error_response,
    format_date,
    last_chunk,
    status_line,
)

ALLOWED_ERROR_STATUSES = {400, 413, 414, 417, 431, 501, 505}

# ---------------------------------------------------------------------------
# Normalisation and the split-invariance driver
# ---------------------------------------------------------------------------

P = "PAUSED"
ND = "NEED_DATA"


def norm(ev):
    """One event as a plain comparable value."""
    if ev is NEED_DATA:
        return ND
    if ev is PAUSED:
        return P
    if isinstance(ev, RequestHead):
        return (
            "head",
            {
                "method": ev.method,
                "target": ev.target,
                "version": ev.version,
                "headers": [tuple(h) for h in ev.headers],
                "content_length": ev.content_length,
                "chunked": ev.chunked,
                "keep_alive": ev.keep_alive,
                "expect_continue": ev.expect_continue,
                "host": ev.host,
            },
        )
    if isinstance(ev, Data):
        assert isinstance(ev.data, bytes), f"Data.data must be bytes: {ev.data!r}"
        assert ev.data, "Data events are never empty"
        return ("data", ev.data)
    if isinstance(ev, EndOfMessage):
        return ("end", [tuple(t) for t in ev.trailers])
    if isinstance(ev, ProtocolError):
        assert isinstance(ev.reason, str) and ev.reason, "ProtocolError needs a reason"
        return ("error", ev.status)
    raise AssertionError(f"unexpected event {ev!r}")


def is_kind(e, kind):
    return isinstance(e, tuple) and e[0] == kind


class Drive:
    """Feeds pieces to one parser and records normalised events."""

    def __init__(self, limits=None, auto_next=False, use_events=False):
        self.p = RequestParser() if limits is None else RequestParser(limits)
        self.auto_next = auto_next
        self.use_events = use_events
        self.out = []
        self.error = None  # (status, reason) once the parser is dead

    def _add(self, ev):
        n = norm(ev)
        if is_kind(n, "data") and self.out and is_kind(self.out[-1], "data"):
            self.out[-1] = ("data", self.out[-1][1] + n[1])
        else:
            self.out.append(n)
        if isinstance(ev, ProtocolError):
            self.error = (ev.status, ev.reason)

    def _check_dead(self):
        status, reason = self.error
        for _ in range(3):
            ev = self.p.next_event()
            assert isinstance(ev, ProtocolError), f"dead parser returned {ev!r}"
            assert (ev.status, ev.reason) == (status, reason)
        evs = self.p.events()
        assert len(evs) == 1 and isinstance(evs[0], ProtocolError)
        assert (evs[0].status, evs[0].reason) == (status, reason)

    def _pause(self):
        self.out.append(P)
        # PAUSED is sticky until start_next_request()
        assert self.p.next_event() is PAUSED
        assert self.p.events() == []
        self.p.start_next_request()

    def drain(self):
        p = self.p
        if self.error is not None:
            self._check_dead()
            return
        while True:
            if self.use_events:
                evs = p.events()
                assert isinstance(evs, list)
                for i, ev in enumerate(evs):
                    assert ev is not NEED_DATA and ev is not PAUSED, "events() leaked a sentinel"
                    self._add(ev)
                    if isinstance(ev, ProtocolError):
                        assert i == len(evs) - 1, "ProtocolError must be the last of events()"
                        self._check_dead()
                        return
                nxt = p.next_event()
                assert nxt is NEED_DATA or nxt is PAUSED, f"events() stopped before {nxt!r}"
            else:
                nxt = p.next_event()
                if nxt is not NEED_DATA and nxt is not PAUSED:
                    self._add(nxt)
                    if isinstance(nxt, ProtocolError):
                        self._check_dead()
                        return
                    continue
            if nxt is PAUSED and self.auto_next:
                self._pause()
                continue
            return

    def feed(self, piece):
        self.p.feed(piece)
        self.drain()

    def finish(self):
        if self.error is not None:
            self._check_dead()
            return self.out
        ev = self.p.next_event()
        assert ev is NEED_DATA or ev is PAUSED, f"undrained event {ev!r}"
        if ev is PAUSED:
            assert self.p.next_event() is PAUSED
        self.out.append(norm(ev))
        return self.out


def drive(pieces, limits=None, auto_next=False, use_events=False):
    d = Drive(limits, auto_next, use_events)
    for piece in pieces:
        d.feed(piece)
    return d.finish()


def split_lines(raw):
    """Split after every b"\\n"."""
    parts, start = [], 0
    for i, b in enumerate(raw):
        if b == 0x0A:
            parts.append(raw[start : i + 1])
            start = i + 1
    if start < len(raw):
        parts.append(raw[start:])
    return parts


def cut(raw, cuts):
    cuts = sorted(cuts)
    pieces, prev = [], 0
    for c in cuts:
        pieces.append(raw[prev:c])
        prev = c
    pieces.append(raw[prev:])
    return pieces


SEEDS = (0, 1, 2, 3, 7, 42)


def split_variants(raw, exhaustive=True):
    yield "whole", [raw]
    yield "lines", split_lines(raw)
    yield "bytes", [raw[i : i + 1] for i in range(len(raw))]
    interleaved = [b""]
    for piece in split_lines(raw):
        interleaved += [piece, b""]
    yield "lines-with-empty-feeds", interleaved
    for seed in SEEDS:
        rng = random.Random(seed)
        n = rng.randint(1, max(1, len(raw) // 3))
        yield f"random-seed-{seed}", cut(raw, [rng.randint(0, len(raw)) for _ in range(n)])
    if exhaustive:
        for i in range(1, len(raw)):
            yield f"cut-at-{i}", [raw[:i], raw[i:]]


def parse_all(raw, limits=None, auto_next=False, exhaustive=True):
    """Normalised events of ``raw``; asserts every split agrees."""
    reference = None
    for name, pieces in split_variants(raw, exhaustive):
        assert b"".join(pieces) == raw
        modes = (False, True) if name in ("whole", "lines", "bytes") else (False,)
        for use_events in modes:
            got = drive(pieces, limits, auto_next, use_events)
            if reference is None:
                reference = got
            else:
                assert got == reference, (
                    f"split {name!r} (events()={use_events}) disagrees with whole feed:\n"
                    f"  got:   {got!r}\n  whole: {reference!r}"
                )
    return reference


# ---------------------------------------------------------------------------
# Builders for requests and expected events
# ---------------------------------------------------------------------------

HOST = ("Host", "example.com")
_UNSET = object()


def H(
    method="GET",
    target="/",
    version="HTTP/1.1",
    headers=(HOST,),
    content_length=None,
    chunked=False,
    keep_alive=None,
    expect_continue=False,
    host=_UNSET,
):
    headers = [tuple(h) for h in headers]
    if host is _UNSET:
        hosts = [v for n, v in headers if n.lower() == "host"]
        host = hosts[0] if hosts else None
    if keep_alive is None:
        keep_alive = version == "HTTP/1.1"
    return (
        "head",
        {
            "method": method,
            "target": target,
            "version": version,
            "headers": headers,
            "content_length": content_length,
            "chunked": chunked,
            "keep_alive": keep_alive,
            "expect_continue": expect_continue,
            "host": host,
        },
    )


def D(data):
    return ("data", data)


def END(*trailers):
    return ("end", list(trailers))


def ERR(status):
    return ("error", status)


def req(*headers, line=b"GET / HTTP/1.1", body=b"", host=True):
    hs = ([b"Host: example.com"] if host else []) + list(headers)
    return line + b"\r\n" + b"".join(h + b"\r\n" for h in hs) + b"\r\n" + body


def post(*headers, body=b"", host=True):
    return req(*headers, line=b"POST / HTTP/1.1", body=body, host=host)


def chunked(body):
    return post(b"Transfer-Encoding: chunked", body=body)


TE_HEAD = H("POST", headers=[HOST, ("Transfer-Encoding", "chunked")], chunked=True)


def cl_head(n, value=None, method="POST", target="/"):
    return H(
        method,
        target,
        headers=[HOST, ("Content-Length", str(n) if value is None else value)],
        content_length=n,
    )


# ---------------------------------------------------------------------------
# Valid requests
# ---------------------------------------------------------------------------

VALID = [
    pytest.param(req(), [H(), END(), P], id="simple-get"),
    pytest.param(
        req(line=b"GET /search?q=a+b&x=%20y&z=/?:@ HTTP/1.1"),
        [H(target="/search?q=a+b&x=%20y&z=/?:@"), END(), P],
        id="get-with-query",
    ),
    pytest.param(
        req(b"Content-Type: text/plain", b"Content-Length: 11", line=b"POST /form HTTP/1.1", body=b"hello world"),
        [
            H("POST", "/form", headers=[HOST, ("Content-Type", "text/plain"), ("Content-Length", "11")], content_length=11),
            D(b"hello world"),
            END(),
            P,
        ],
        id="post-content-length",
    ),
    pytest.param(post(b"Content-Length: 0"), [cl_head(0), END(), P], id="post-content-length-zero"),
    pytest.param(
        post(b"Content-Length: \t 5 \t", body=b"hello"),
        [cl_head(5, "5"), D(b"hello"), END(), P],
        id="content-length-padded-with-sp-htab",
    ),
    pytest.param(
        post(b"Content-Length: 0005", body=b"hello"),
        [cl_head(5, "0005"), D(b"hello"), END(), P],
        id="content-length-leading-zeros",
    ),
    pytest.param(
        post(b"Content-Length: 9", body=b"\r\n\r\nGET\x00\xff"),
        [cl_head(9), D(b"\r\n\r\nGET\x00\xff"), END(), P],
        id="content-length-binary-body-with-crlfcrlf",
    ),
    pytest.param(
        chunked(
            b"5;name=value\r\nhello\r\n"
            b'6;a;b="quoted; value"\r\n world\r\n'
            b"0;last\r\n"
            b"X-Checksum: abc\r\nX-Other: \t two  words \t\r\n\r\n"
        ),
        [TE_HEAD, D(b"hello world"), END(("X-Checksum", "abc"), ("X-Other", "two  words")), P],
        id="chunked-extensions-and-trailers",
    ),
    pytest.param(
        chunked(b"5 ; name = value\r\nhello\r\n0 ; end = x\r\n\r\n"),
        [TE_HEAD, D(b"hello"), END(), P],
        id="chunked-extension-with-bws",
    ),
    pytest.param(
        chunked(b'3;q="a\\"b\xff c"\r\nabc\r\n3;t=tok!#$\r\ndef\r\n0\r\n\r\n'),
        [TE_HEAD, D(b"abcdef"), END(), P],
        id="chunked-extension-quoted-pair-obs-text",
    ),
    pytest.param(
        chunked(b"00A\r\n0123456789\r\na\r\nabcdefghij\r\n000\r\n\r\n"),
        [TE_HEAD, D(b"0123456789abcdefghij"), END(), P],
        id="chunked-hex-case-and-leading-zeros",
    ),
    pytest.param(
        chunked(b"1\r\na\r\n1\r\nb\r\n2\r\n\r\n\r\n0\r\n\r\n"),
        [TE_HEAD, D(b"ab\r\n"), END(), P],
        id="chunked-tiny-chunks-crlf-in-data",
    ),
    pytest.param(chunked(b"0\r\n\r\n"), [TE_HEAD, END(), P], id="chunked-empty-body"),
    pytest.param(
        post(b"Transfer-Encoding:  Chunked  ", body=b"2\r\nhi\r\n0\r\n\r\n"),
        [H("POST", headers=[HOST, ("Transfer-Encoding", "Chunked")], chunked=True), D(b"hi"), END(), P],
        id="transfer-encoding-case-insensitive-and-sp-padded",
    ),
    pytest.param(
        b"GET /old HTTP/1.0\r\n\r\n",
        [H(target="/old", version="HTTP/1.0", headers=[]), END(), P],
        id="http10-without-host",
    ),
    pytest.param(
        b"POST /old HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
        [H("POST", "/old", "HTTP/1.0", headers=[("Content-Length", "2")], content_length=2), D(b"hi"), END(), P],
        id="http10-content-length-body",
    ),
    pytest.param(
        req(line=b"GET http://example.com/p?q=1 HTTP/1.1"),
        [H(target="http://example.com/p?q=1"), END(), P],
        id="absolute-form-target",
    ),
    pytest.param(
        req(line=b"GET https://example.com:8443/a/b HTTP/1.1"),
        [H(target="https://example.com:8443/a/b"), END(), P],
        id="absolute-form-target-https-port",
    ),
    pytest.param(req(line=b"OPTIONS * HTTP/1.1"), [H("OPTIONS", "*"), END(), P], id="options-asterisk"),
    pytest.param(req(line=b"OPTIONS /x HTTP/1.1"), [H("OPTIONS", "/x"), END(), P], id="options-origin-form"),
    pytest.param(
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        [H("CONNECT", "example.com:443", headers=[("Host", "example.com:443")]), END(), P],
        id="connect-authority-form",
    ),
    pytest.param(b"\r\n" + req(), [H(), END(), P], id="one-leading-empty-line"),
    pytest.param(b"\r\n" * 8 + req(), [H(), END(), P], id="eight-leading-empty-lines"),
    pytest.param(
        req(b"X-Name: caf\xe9 \x80\xff"),
        [H(headers=[HOST, ("X-Name", "caf\xe9 \x80\xff")]), END(), P],
        id="obs-text-value-latin1",
    ),
    pytest.param(
        req(b"X-Nbsp: \xa0v\x85", b"X-Nel:\x85"),
        [H(headers=[HOST, ("X-Nbsp", "\xa0v\x85"), ("X-Nel", "\x85")]), END(), P],
        id="obs-text-whitespace-lookalikes-not-stripped",
    ),
    pytest.param(
        req(b"X-Pad: \t  a \t b \t "),
        [H(headers=[HOST, ("X-Pad", "a \t b")]), END(), P],
        id="value-sp-htab-padding-stripped",
    ),
    pytest.param(
        req(b"X-Empty:", b"X-Blank: \t ", b"X-Tight:v"),
        [H(headers=[HOST, ("X-Empty", ""), ("X-Blank", ""), ("X-Tight", "v")]), END(), P],
        id="empty-and-tight-values",
    ),
    pytest.param(
        req(b"x-lower: 1", b"X-Dup: a", b"x-dup: b", b"X-Dup: c"),
        [H(headers=[HOST, ("x-lower", "1"), ("X-Dup", "a"), ("x-dup", "b"), ("X-Dup", "c")]), END(), P],
        id="name-case-and-duplicates-preserved",
    ),
    pytest.param(
        req(b"X-Token: !#$%&'*+-.^_`|~09azAZ", b"X-Vis: a\"b(c)d,e/f:g;h<i=j>k?l@m[n\\o]p{q}r"),
        [
            H(headers=[HOST, ("X-Token", "!#$%&'*+-.^_`|~09azAZ"), ("X-Vis", 'a"b(c)d,e/f:g;h<i=j>k?l@m[n\\o]p{q}r')]),
            END(),
            P,
        ],
        id="all-visible-ascii-in-values",
    ),
    pytest.param(
        req(b"!#$%&'*+-.^_`|~09azAZ: tchars"),
        [H(headers=[HOST, ("!#$%&'*+-.^_`|~09azAZ", "tchars")]), END(), P],
        id="header-name-every-tchar-class",
    ),
    pytest.param(req(line=b"PURGE /x HTTP/1.1"), [H("PURGE", "/x"), END(), P], id="method-custom-token"),
    pytest.param(req(line=b"M-SEARCH /x HTTP/1.1"), [H("M-SEARCH", "/x"), END(), P], id="method-with-dash"),
    pytest.param(req(line=b"get / HTTP/1.1"), [H("get"), END(), P], id="method-case-preserved"),
    # Connection / keep-alive
    pytest.param(req(), [H(keep_alive=True), END(), P], id="keepalive-http11-default"),
    pytest.param(
        req(b"Connection: close"),
        [H(headers=[HOST, ("Connection", "close")], keep_alive=False), END(), P],
        id="keepalive-http11-connection-close",
    ),
    pytest.param(
        req(b"Connection: Close"),
        [H(headers=[HOST, ("Connection", "Close")], keep_alive=False), END(), P],
        id="keepalive-http11-connection-Close-capital",
    ),
    pytest.param(
        req(b"Connection: keep-alive, Upgrade", b"Upgrade: websocket"),
        [H(headers=[HOST, ("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket")], keep_alive=True), END(), P],
        id="keepalive-http11-keep-alive-upgrade-list",
    ),
    pytest.param(
        req(b"Connection: Upgrade, close"),
        [H(headers=[HOST, ("Connection", "Upgrade, close")], keep_alive=False), END(), P],
        id="keepalive-http11-close-in-list",
    ),
    pytest.param(
        b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n",
        [H(version="HTTP/1.0", keep_alive=False), END(), P],
        id="keepalive-http10-default-close",
    ),
    pytest.param(
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        [H(version="HTTP/1.0", headers=[("Connection", "Keep-Alive")], keep_alive=True), END(), P],
        id="keepalive-http10-Keep-Alive",
    ),
    pytest.param(
        b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n",
        [H(version="HTTP/1.0", headers=[("Connection", "close")], keep_alive=False), END(), P],
        id="keepalive-http10-close",
    ),
    # Expect
    pytest.param(
        req(b"Expect: 100-continue"),
        [H(headers=[HOST, ("Expect", "100-continue")], expect_continue=True), END(), P],
        id="expect-100-continue-http11",
    ),
    pytest.param(
        req(b"Expect: 100-Continue"),
        [H(headers=[HOST, ("Expect", "100-Continue")], expect_continue=True), END(), P],
        id="expect-100-continue-case-insensitive",
    ),
    pytest.param(
        post(b"Expect: 100-continue", b"Content-Length: 5", body=b"hello"),
        [
            H("POST", headers=[HOST, ("Expect", "100-continue"), ("Content-Length", "5")], content_length=5, expect_continue=True),
            D(b"hello"),
            END(),
            P,
        ],
        id="expect-100-continue-with-body",
    ),
    pytest.param(
        b"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
        [H(version="HTTP/1.0", headers=[("Expect", "100-continue")], expect_continue=False), END(), P],
        id="expect-100-continue-ignored-on-http10",
    ),
    # Host
    pytest.param(req(host=False).replace(b"\r\n\r\n", b"\r\nHost:\r\n\r\n"), [H(headers=[("Host", "")]), END(), P], id="host-empty-allowed"),
    pytest.param(
        req(host=False).replace(b"\r\n\r\n", b"\r\nHost: example.com:8080\r\n\r\n"),
        [H(headers=[("Host", "example.com:8080")]), END(), P],
        id="host-with-port",
    ),
    pytest.param(
        req(host=False).replace(b"\r\n\r\n", b"\r\nHost: [::1]:8080\r\n\r\n"),
        [H(headers=[("Host", "[::1]:8080")]), END(), P],
        id="host-ipv6-literal",
    ),
    pytest.param(
        req(host=False).replace(b"\r\n\r\n", b"\r\nHost: 127.0.0.1\r\n\r\n"),
        [H(headers=[("Host", "127.0.0.1")]), END(), P],
        id="host-ipv4",
    ),
    pytest.param(
        req(host=False).replace(b"\r\n\r\n", b"\r\nHost: Sub-1.EXAMPLE.com\r\n\r\n"),
        [H(headers=[("Host", "Sub-1.EXAMPLE.com")]), END(), P],
        id="host-case-preserved",
    ),
]


@pytest.mark.parametrize("raw, expected", VALID)
def test_valid_request(raw, expected):
    assert parse_all(raw) == expected


@pytest.mark.parametrize("raw, expected", VALID)
def test_valid_request_incomplete_is_need_data(raw, expected):
    """Every proper prefix of a valid request only needs more data."""
    got = drive([raw[i : i + 1] for i in range(len(raw) - 1)])
    assert got[-1] == ND
    assert not any(is_kind(e, "error") or is_kind(e, "end") for e in got), got
    # whatever was emitted so far is the beginning of the expected events
    emitted = [e for e in got[:-1] if not is_kind(e, "data")]
    assert emitted == [e for e in expected if is_kind(e, "head")][: len(emitted)], got


def test_incomplete_last_chunk_trailer_is_need_data():
    # b"0\r\nX" may still become a trailer field "X...: ..." -> not an error yet
    assert parse_all(chunked(b"5\r\nhello\r\n0\r\nX")) == [TE_HEAD, D(b"hello"), ND]


# ---------------------------------------------------------------------------
# Rejections
# ---------------------------------------------------------------------------

HEAD_PHASE = "head"  # exactly [ProtocolError]: nothing reaches the application
AFTER_HEAD = "after-head"  # exactly [RequestHead, ProtocolError]
BODY = "body"  # RequestHead first, ProtocolError last, no EndOfMessage
ANY = "any"  # only the final status is specified by the contract


def R(raw, status, phase, id):
    return pytest.param(raw, status, phase, id=id)


def cl(value, body=b"hello"):
    return post(b"Content-Length: " + value, body=body)


def te(value, body=b"0\r\n\r\n"):
    return post(b"Transfer-Encoding: " + value, body=body)


def chunk_line(size_line):
    return chunked(size_line + b"\r\nhello\r\n0\r\n\r\n")


def with_host(value):
    return req(host=False).replace(b"\r\n\r\n", b"\r\nHost: " + value + b"\r\n\r\n")


def line(request_line):
    return req(line=request_line)


REJECT = [
    # Content-Length / Transfer-Encoding framing
    R(post(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400, HEAD_PHASE, "cl-then-te"),
    R(post(b"Transfer-Encoding: chunked", b"Content-Length: 5", body=b"0\r\n\r\n"), 400, HEAD_PHASE, "te-then-cl"),
    R(post(b"Content-Length: 5", b"Content-Length: 5", body=b"hello"), 400, HEAD_PHASE, "cl-duplicate-equal"),
    R(post(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"), 400, HEAD_PHASE, "cl-duplicate-different"),
    R(post(b"Content-Length: 5", b"content-length: 5", body=b"hello"), 400, HEAD_PHASE, "cl-duplicate-other-case"),
    R(cl(b"5, 5"), 400, HEAD_PHASE, "cl-list-equal"),
    R(cl(b"5,6"), 400, HEAD_PHASE, "cl-list-different"),
    R(cl(b"+1"), 400, HEAD_PHASE, "cl-plus"),
    R(cl(b"-1"), 400, HEAD_PHASE, "cl-minus"),
    R(cl(b"-0"), 400, HEAD_PHASE, "cl-minus-zero"),
    R(cl(b"0x5"), 400, HEAD_PHASE, "cl-hex-prefix"),
    R(cl(b"1_0"), 400, HEAD_PHASE, "cl-underscore"),
    R(cl(b"1 0"), 400, HEAD_PHASE, "cl-inner-space"),
    R(cl(b"1\t0"), 400, HEAD_PHASE, "cl-inner-tab"),
    R(cl(b""), 400, HEAD_PHASE, "cl-empty"),
    R(cl(b"5.0"), 400, HEAD_PHASE, "cl-decimal-point"),
    R(cl(b"5a"), 400, HEAD_PHASE, "cl-trailing-letter"),
    R(cl(b"\xb2"), 400, HEAD_PHASE, "cl-latin1-superscript-two"),
    R(cl(b"\x0b5"), 400, HEAD_PHASE, "cl-vertical-tab-not-stripped"),
    R(cl(b"99999999999999999999999999999", body=b""), 413, AFTER_HEAD, "cl-huge"),
    R(te(b"identity"), 501, HEAD_PHASE, "te-identity"),
    R(te(b"gzip"), 501, HEAD_PHASE, "te-gzip"),
    R(te(b"deflate"), 501, HEAD_PHASE, "te-deflate"),
    R(te(b"gzip, chunked"), 501, HEAD_PHASE, "te-gzip-chunked"),
    R(te(b"chunked, gzip"), 501, HEAD_PHASE, "te-chunked-gzip"),
    R(te(b"chunked;"), 400, HEAD_PHASE, "te-chunked-semicolon"),
    R(te(b'"chunked"'), 400, HEAD_PHASE, "te-quoted-chunked"),
    R(te(b"chunked,"), 400, HEAD_PHASE, "te-chunked-trailing-comma"),
    R(te(b",chunked"), 400, HEAD_PHASE, "te-leading-comma"),
    R(te(b""), 400, HEAD_PHASE, "te-empty"),
    R(te(b"\tchunked"), 400, HEAD_PHASE, "te-leading-htab"),
    R(te(b"chunked\t"), 400, HEAD_PHASE, "te-trailing-htab"),
    R(te(b"chun ked"), 400, HEAD_PHASE, "te-inner-space"),
    R(post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400, HEAD_PHASE, "te-repeated-field"),
    R(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        HEAD_PHASE,
        "te-on-http10",
    ),
    # chunk-size line
    R(chunk_line(b"0x5"), 400, BODY, "chunk-size-hex-prefix"),
    R(chunk_line(b"+5"), 400, BODY, "chunk-size-plus"),
    R(chunk_line(b"-5"), 400, BODY, "chunk-size-minus"),
    R(chunk_line(b"5_0"), 400, BODY, "chunk-size-underscore"),
    R(chunk_line(b" 5"), 400, BODY, "chunk-size-leading-space"),
    R(chunk_line(b"5 "), 400, BODY, "chunk-size-trailing-space"),
    R(chunk_line(b"\t5"), 400, BODY, "chunk-size-leading-tab"),
    R(chunk_line(b""), 400, BODY, "chunk-size-empty"),
    R(chunk_line(b"g"), 400, BODY, "chunk-size-not-hex"),
    R(chunk_line(b"00000000000000005"), 400, BODY, "chunk-size-17-hex-digits-small"),
    R(chunk_line(b"fffffffffffffffff"), 400, BODY, "chunk-size-17-hex-digits-large"),
    R(chunk_line(b"5;" + b"a" * 300), 400, BODY, "chunk-size-line-over-default-limit"),
    R(chunked(b"5\nhello\r\n0\r\n\r\n"), 400, BODY, "chunk-size-bare-lf"),
    R(chunked(b"5\rhello\r\n0\r\n\r\n"), 400, BODY, "chunk-size-bare-cr"),
    # chunk extensions with illegal bytes
    R(chunk_line(b"5;name=\x01"), 400, BODY, "chunk-ext-ctl-in-value"),
    R(chunk_line(b"5;na\x7fme"), 400, BODY, "chunk-ext-del-in-name"),
    R(chunk_line(b"5;\x00"), 400, BODY, "chunk-ext-nul"),
    R(chunk_line(b'5;name="unterminated'), 400, BODY, "chunk-ext-unterminated-quote"),
    R(chunk_line(b"5;=value"), 400, BODY, "chunk-ext-empty-name"),
    R(chunk_line(b"5;"), 400, BODY, "chunk-ext-nothing-after-semicolon"),
    R(chunk_line(b"5;name="), 400, BODY, "chunk-ext-empty-value"),
    R(chunk_line(b"5;name=a@b"), 400, BODY, "chunk-ext-non-token-value"),
    R(chunk_line(b"5;name=\xff"), 400, BODY, "chunk-ext-obs-text-unquoted"),
    R(chunk_line(b"5;na me=v"), 400, BODY, "chunk-ext-space-inside-name"),
    R(chunked(b'5;name="a\rb"\r\nhello\r\n0\r\n\r\n'), 400, BODY, "chunk-ext-cr-in-quoted"),
    R(chunked(b'5;name="a\nb"\r\nhello\r\n0\r\n\r\n'), 400, BODY, "chunk-ext-lf-in-quoted"),
    # chunk data / last chunk termination
    R(chunked(b"5\r\nhelloXX0\r\n\r\n"), 400, BODY, "chunk-data-not-followed-by-crlf"),
    R(chunked(b"5\r\nhello!\r\n0\r\n\r\n"), 400, BODY, "chunk-data-longer-than-size"),
    R(chunked(b"5\r\nhello\n0\r\n\r\n"), 400, BODY, "chunk-data-followed-by-bare-lf"),
    R(chunked(b"5\r\nhello\r0\r\n\r\n"), 400, BODY, "chunk-data-followed-by-bare-cr"),
    # wrong bytes in place of the final CRLF (a later CRLFCRLF completes the section)
    R(chunked(b"5\r\nhello\r\n0\r\n\rX\r\n\r\n"), 400, BODY, "last-chunk-missing-final-crlf"),
    R(chunked(b"5\r\nhello\r\n0\r\n\nX"), 400, BODY, "last-chunk-final-bare-lf"),
    R(chunked(b"0\r\nX-T: v\r\n\rX\r\n\r\n"), 400, BODY, "trailers-missing-final-crlf"),
    R(
        chunked(b"5\r\nhello\r\n0\r\nGET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n"),
        400,
        BODY,
        "last-chunk-missing-final-crlf-next-request-follows",
    ),
    R(chunked(b"0\r\nX-T: v\nX-U: w\r\n\r\n"), 400, BODY, "trailer-bare-lf"),
    R(chunked(b"0\r\nX-NoColon\r\n\r\n"), 400, BODY, "trailer-without-colon"),
    R(chunked(b"0\r\nX-T: a\r\n b\r\n\r\n"), 400, BODY, "trailer-obs-fold"),
    R(chunked(b"0\r\nX-T : a\r\n\r\n"), 400, BODY, "trailer-space-before-colon"),
    R(chunked(b"0\r\nX-T: a\x00b\r\n\r\n"), 400, BODY, "trailer-nul-in-value"),
    R(chunked(b"0\r\nContent-Length: 5\r\n\r\n"), 400, BODY, "trailer-content-length"),
    R(chunked(b"0\r\ncontent-length: 5\r\n\r\n"), 400, BODY, "trailer-content-length-lowercase"),
    R(chunked(b"0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400, BODY, "trailer-transfer-encoding"),
    R(chunked(b"0\r\nHost: evil.example\r\n\r\n"), 400, BODY, "trailer-host"),
    # header syntax
    R(req(b"X-A: a", b" b"), 400, HEAD_PHASE, "obs-fold-space"),
    R(req(b"X-A: a", b"\tb"), 400, HEAD_PHASE, "obs-fold-tab"),
    R(b"GET / HTTP/1.1\r\n X: y\r\nHost: example.com\r\n\r\n", 400, HEAD_PHASE, "obs-fold-first-header-line"),
    R(req(b"Host : example.com", host=False), 400, HEAD_PHASE, "space-before-colon"),
    R(req(b"X-A\t: v"), 400, HEAD_PHASE, "tab-before-colon"),
    R(req(b"X-NoColon"), 400, HEAD_PHASE, "header-without-colon"),
    R(b"GET / HTTP/1.1\nHost: example.com\r\n\r\n", 400, HEAD_PHASE, "bare-lf-after-request-line"),
    R(b"GET / HTTP/1.1\r\nHost: example.com\nX: y\r\n\r\n", 400, HEAD_PHASE, "bare-lf-after-header-line"),
    R(b"GET / HTTP/1.1\r\nHost: example.com\r\n\n", 400, HEAD_PHASE, "bare-lf-end-of-head"),
    R(b"GET / HTTP/1.1\nHost: example.com\n\n", 400, HEAD_PHASE, "bare-lf-everywhere"),
    R(
        b"GET / HTTP/1.1\r\nHost: example.com\r\nFoo: x\nContent-Length: 44\r\n\r\n",
        400,
        HEAD_PHASE,
        "bare-lf-inside-value-smuggles-cl",
    ),
    R(b"\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, HEAD_PHASE, "bare-lf-leading-empty-line"),
    R(b"GET / HTTP/1.1\rHost: example.com\r\n\r\n", 400, HEAD_PHASE, "bare-cr-after-request-line"),
    R(req(b"X-A: a\rb"), 400, HEAD_PHASE, "bare-cr-inside-value"),
    R(b"GET / HTTP/1.1\r\nHost: example.com\r\r\n\r\n", 400, HEAD_PHASE, "bare-cr-before-crlf"),
    R(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\r\n\r\n", 400, HEAD_PHASE, "bare-cr-in-empty-line"),
    R(b"\rGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, HEAD_PHASE, "bare-cr-leading"),
    R(req(b"X-A: a\x00b"), 400, HEAD_PHASE, "nul-in-value"),
    R(req(b"X-A: a\x01b"), 400, HEAD_PHASE, "soh-in-value"),
    R(req(b"X-A: a\x07b"), 400, HEAD_PHASE, "bel-in-value"),
    R(req(b"X-A: a\x7fb"), 400, HEAD_PHASE, "del-in-value"),
    R(req(b"X-A: a\x1bb"), 400, HEAD_PHASE, "esc-in-value"),
    R(req(b"X-A: \x0bv"), 400, HEAD_PHASE, "vt-at-value-edge-not-stripped"),
    R(req(b"X-A: v\x0c"), 400, HEAD_PHASE, "ff-at-value-edge-not-stripped"),
    R(req(b"X@Y: v"), 400, HEAD_PHASE, "name-with-at"),
    R(req(b"X Y: v"), 400, HEAD_PHASE, "name-with-space"),
    R(req(b"X\xe9: v"), 400, HEAD_PHASE, "name-non-ascii"),
    R(req(b"(X): v"), 400, HEAD_PHASE, "name-with-parens"),
    R(req(b'X"Y: v'), 400, HEAD_PHASE, "name-with-quote"),
    R(req(b"X/Y: v"), 400, HEAD_PHASE, "name-with-slash"),
    R(req(b"X[Y]: v"), 400, HEAD_PHASE, "name-with-brackets"),
    R(req(b"\x01X: v"), 400, HEAD_PHASE, "name-with-ctl"),
    R(req(b": v"), 400, HEAD_PHASE, "name-empty"),
    R(post(b"Content_Length: 5", body=b"hello"), 400, HEAD_PHASE, "name-Content_Length"),
    R(post(b"content_length: 5", body=b"hello"), 400, HEAD_PHASE, "name-content_length-lowercase"),
    R(post(b"Transfer_Encoding: chunked", body=b"0\r\n\r\n"), 400, HEAD_PHASE, "name-Transfer_Encoding"),
    R(post(b"TRANSFER_ENCODING: chunked", body=b"0\r\n\r\n"), 400, HEAD_PHASE, "name-TRANSFER_ENCODING-uppercase"),
    # method
    R(line(b"G@T / HTTP/1.1"), 400, HEAD_PHASE, "method-with-at"),
    R(line(b"G\xc9T / HTTP/1.1"), 400, HEAD_PHASE, "method-non-ascii"),
    R(line(b"GE(T / HTTP/1.1"), 400, HEAD_PHASE, "method-with-paren"),
    R(line(b"GE\x01T / HTTP/1.1"), 400, HEAD_PHASE, "method-with-ctl"),
    R(line(b"GE/T / HTTP/1.1"), 400, HEAD_PHASE, "method-with-slash"),
    # Host
    R(req(host=False), 400, HEAD_PHASE, "http11-without-host"),
    R(req(b"Host: example.com"), 400, HEAD_PHASE, "two-host-equal"),
    R(req(b"Host: other.example"), 400, HEAD_PHASE, "two-host-different"),
    R(req(b"host: example.com"), 400, HEAD_PHASE, "two-host-other-case"),
    R(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, HEAD_PHASE, "two-host-http10"),
    R(with_host(b"a b"), 400, HEAD_PHASE, "host-with-space"),
    R(with_host(b"h:p0rt"), 400, HEAD_PHASE, "host-bad-port"),
    R(with_host(b"@"), 400, HEAD_PHASE, "host-at-sign"),
    R(with_host(b"/"), 400, HEAD_PHASE, "host-slash"),
    R(with_host(b"h/p"), 400, HEAD_PHASE, "host-with-path"),
    R(with_host(b"user@h"), 400, HEAD_PHASE, "host-with-userinfo"),
    R(with_host(b"h:80:80"), 400, HEAD_PHASE, "host-two-ports"),
    R(with_host(b"[::1"), 400, HEAD_PHASE, "host-unterminated-ipv6"),
    R(with_host(b"h?x"), 400, HEAD_PHASE, "host-with-query"),
    # versions
    R(line(b"GET / HTTP/2.0"), 505, HEAD_PHASE, "version-2.0"),
    R(line(b"GET / HTTP/1.2"), 505, HEAD_PHASE, "version-1.2"),
    R(line(b"GET / HTTP/0.9"), 505, HEAD_PHASE, "version-0.9"),
    R(line(b"GET / HTTP/3.0"), 505, HEAD_PHASE, "version-3.0"),
    R(line(b"GET / HTTP/1"), 400, HEAD_PHASE, "version-HTTP/1"),
    R(line(b"GET / HTTP/1.1.1"), 400, HEAD_PHASE, "version-1.1.1"),
    R(line(b"GET / http/1.1"), 400, HEAD_PHASE, "version-lowercase"),
    R(line(b"GET / HTTP/a.b"), 400, HEAD_PHASE, "version-letters"),
    R(line(b"GET / HTTP/1."), 400, HEAD_PHASE, "version-missing-minor"),
    R(line(b"GET / HTTP/10.1"), 400, HEAD_PHASE, "version-two-digit-major"),
    R(line(b"GET / HTTP/1.10"), 400, HEAD_PHASE, "version-two-digit-minor"),
    R(line(b"GET / HTTP1.1"), 400, HEAD_PHASE, "version-missing-slash"),
    # request-line shape
    R(line(b"GET  / HTTP/1.1"), 400, HEAD_PHASE, "request-line-double-space-after-method"),
    R(line(b"GET /  HTTP/1.1"), 400, HEAD_PHASE, "request-line-double-space-after-target"),
    R(line(b"GET\t/ HTTP/1.1"), 400, HEAD_PHASE, "request-line-tab-separator"),
    R(line(b"GET /\tHTTP/1.1"), 400, HEAD_PHASE, "request-line-tab-before-version"),
    R(line(b"GET / HTTP/1.1 "), 400, HEAD_PHASE, "request-line-trailing-space"),
    R(line(b" GET / HTTP/1.1"), 400, HEAD_PHASE, "request-line-leading-space"),
    R(line(b"GET HTTP/1.1"), 400, HEAD_PHASE, "request-line-missing-target"),
    R(line(b"GET /"), 400, HEAD_PHASE, "request-line-missing-version"),
    R(line(b"GET"), 400, HEAD_PHASE, "request-line-method-only"),
    # target
    R(line(b"GET /a b HTTP/1.1"), 400, HEAD_PHASE, "target-with-space"),
    R(line(b"GET /a\x01b HTTP/1.1"), 400, HEAD_PHASE, "target-with-ctl"),
    R(line(b"GET /a\x00b HTTP/1.1"), 400, HEAD_PHASE, "target-with-nul"),
    R(line(b"GET /a\x7fb HTTP/1.1"), 400, HEAD_PHASE, "target-with-del"),
    R(line(b"GET /caf\xe9 HTTP/1.1"), 400, HEAD_PHASE, "target-non-ascii"),
    R(line(b"GET * HTTP/1.1"), 400, HEAD_PHASE, "asterisk-target-with-get"),
    R(line(b"POST * HTTP/1.1"), 400, HEAD_PHASE, "asterisk-target-with-post"),
    R(line(b"GET example.com:80 HTTP/1.1"), 400, HEAD_PHASE, "authority-form-with-get"),
    R(line(b"GET foo HTTP/1.1"), 400, HEAD_PHASE, "target-relative"),
    R(line(b"GET ?q=1 HTTP/1.1"), 400, HEAD_PHASE, "target-query-only"),
    # Expect
    R(req(b"Expect: something-else"), 417, ANY, "expect-unknown"),
    R(req(b"Expect: 200-ok"), 417, ANY, "expect-200-ok"),
    # leading empty lines
    R(b"\r\n" * 9 + req(), 400, HEAD_PHASE, "nine-leading-empty-lines"),
]


def check_rejection(evs, status, phase):
    assert evs[-1] == ERR(status), evs
    assert sum(is_kind(e, "error") for e in evs) == 1
    assert not any(is_kind(e, "end") for e in evs), evs
    if phase == HEAD_PHASE:
        assert evs == [ERR(status)]
    elif phase == AFTER_HEAD:
        assert len(evs) == 2 and is_kind(evs[0], "head"), evs
    elif phase == BODY:
        assert is_kind(evs[0], "head"), evs
        assert all(is_kind(e, "data") for e in evs[1:-1]), evs
    else:
        assert not any(is_kind(e, "data") for e in evs), evs


@pytest.mark.parametrize("raw, status, phase", REJECT)
def test_rejected_request(raw, status, phase):
    check_rejection(parse_all(raw), status, phase)


def test_rejection_ids_are_unique():
    ids = [p.id for p in REJECT] + [p.id for p in VALID]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------


def test_default_limits_match_the_contract():
    assert DEFAULT_LIMITS == Limits()
    assert dataclasses.asdict(Limits()) == {
        "max_request_line": 8192,
        "max_header_size": 65536,
        "max_header_count": 100,
        "max_header_field_size": 8192,
        "max_body_size": 100 * 1024 * 1024,
        "max_chunk_size_line": 256,
        "max_empty_lines": 8,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        Limits().max_body_size = 1  # type: ignore[misc]


def request_line_of(n):
    fixed = len(b"GET / HTTP/1.1")
    return b"GET /" + b"a" * (n - fixed) + b" HTTP/1.1"


def test_request_line_at_limit_is_accepted():
    lim = Limits(max_request_line=32)
    line32 = request_line_of(32)
    assert len(line32) == 32
    assert parse_all(req(line=line32), lim) == [H(target="/" + "a" * 18), END(), P]


def test_request_line_over_limit_is_414():
    lim = Limits(max_request_line=32)
    assert parse_all(req(line=request_line_of(33)), lim) == [ERR(414)]


def test_request_line_over_limit_detected_before_crlf():
    lim = Limits(max_request_line=32)
    assert parse_all(b"GET /" + b"a" * 200, lim) == [ERR(414)]
    assert drive([b"GET /" + b"a" * 200]) == [ND]  # default limit: just waiting


def test_request_line_default_limit():
    assert drive([req(line=request_line_of(8192))])[-2:] == [END(), P]
    assert drive([req(line=request_line_of(8193))]) == [ERR(414)]
    assert drive([b"GET /" + b"a" * 9000]) == [ERR(414)]


def test_request_line_does_not_count_toward_header_size():
    lim = Limits(max_header_size=64)
    evs = parse_all(req(line=request_line_of(200)), lim, exhaustive=False)
    assert evs[-2:] == [END(), P]


def test_header_block_under_limit_is_accepted():
    lim = Limits(max_header_size=64)
    assert parse_all(req(b"X-A: 1"), lim) == [H(headers=[HOST, ("X-A", "1")]), END(), P]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(req(b"X-Big: " + b"a" * 100), id="one-long-field"),
        pytest.param(req(*[b"X-%d: v" % i for i in range(20)]), id="many-short-fields"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: " + b"a" * 200, id="unterminated-long-field"),
        pytest.param(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 30, id="unterminated-many-fields"),
    ],
)
def test_header_block_over_limit_is_431(raw):
    assert parse_all(raw, Limits(max_header_size=64)) == [ERR(431)]


def test_header_count_at_limit_is_accepted():
    lim = Limits(max_header_count=3)
    assert parse_all(req(b"A: 1", b"B: 2"), lim) == [H(headers=[HOST, ("A", "1"), ("B", "2")]), END(), P]


def test_header_count_over_limit_is_431():
    lim = Limits(max_header_count=3)
    assert parse_all(req(b"A: 1", b"B: 2", b"C: 3"), lim) == [ERR(431)]


def _field_of(size):
    return b"X-Big: " + b"v" * (size - len(b"X-Big: "))


@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, Limits(max_header_field_size=40)], ids=["default", "small"])
def test_header_field_at_limit_is_accepted(limits):
    size = limits.max_header_field_size
    field = _field_of(size)
    events = parse_all(req(b"A: 1", field), limits)
    assert events == [H(headers=[HOST, ("A", "1"), ("X-Big", field[7:].decode())]), END(), P]


@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, Limits(max_header_field_size=40)], ids=["default", "small"])
@pytest.mark.parametrize("where", ["first", "last"])
def test_header_field_over_limit_is_431(limits, where):
    # one field one byte too long, in a block well within the block limit
    field = _field_of(limits.max_header_field_size + 1)
    fields = (field, b"A: 1") if where == "first" else (b"A: 1", field)
    assert parse_all(req(*fields), limits) == [ERR(431)]


def test_trailer_field_over_limit_is_431():
    lim = Limits(max_header_field_size=40)
    head = b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
    ok = parse_all(head + _field_of(40) + b"\r\n\r\n", lim)
    assert ok[-2:] == [END(("X-Big", "v" * 33)), P]
    assert parse_all(head + _field_of(41) + b"\r\n\r\n", lim)[-1] == ERR(431)


def test_header_count_default_limit():
    ok = req(*[b"X-%d: v" % i for i in range(99)])
    assert drive([ok])[-2:] == [END(), P]
    assert drive([req(*[b"X-%d: v" % i for i in range(100)])]) == [ERR(431)]


SMALL_BODY = Limits(max_body_size=10)


def test_content_length_at_body_limit_is_accepted():
    assert parse_all(post(b"Content-Length: 10", body=b"0123456789"), SMALL_BODY) == [
        cl_head(10),
        D(b"0123456789"),
        END(),
        P,
    ]


def test_content_length_over_body_limit_is_413_right_after_head():
    head_only = post(b"Content-Length: 11")
    assert parse_all(head_only, SMALL_BODY) == [cl_head(11), ERR(413)]
    # with the body present the answer is the same: no Data before the 413
    assert parse_all(head_only + b"x" * 11, SMALL_BODY) == [cl_head(11), ERR(413)]


def test_chunked_at_body_limit_is_accepted():
    raw = chunked(b"6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n")
    assert parse_all(raw, SMALL_BODY) == [TE_HEAD, D(b"abcdefghij"), END(), P]


def test_chunked_crossing_body_limit_is_413_when_size_announced():
    full = chunked(b"6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n")
    assert parse_all(full, SMALL_BODY) == [TE_HEAD, D(b"abcdef"), ERR(413)]
    # the announcing size line alone is enough
    announced = chunked(b"6\r\nabcdef\r\n5\r\n")
    assert parse_all(announced, SMALL_BODY) == [TE_HEAD, D(b"abcdef"), ERR(413)]


def test_chunked_single_chunk_over_body_limit_is_413():
    assert parse_all(chunked(b"b\r\n"), SMALL_BODY) == [TE_HEAD, ERR(413)]


def test_chunk_16_hex_digits_over_default_body_limit_is_413():
    assert parse_all(chunked(b"ffffffffffffffff\r\n")) == [TE_HEAD, ERR(413)]


def collect(p):
    out = []
    for ev in p.events():
        n = norm(ev)
        if is_kind(n, "data") and out and is_kind(out[-1], "data"):
            out[-1] = D(out[-1][1] + n[1])
        else:
            out.append(n)
    return out


def test_set_max_body_size_raises_limit_for_one_request_content_length():
    big = post(b"Content-Length: 20", body=b"x" * 20)
    p = RequestParser(SMALL_BODY)
    p.feed(big + big)
    assert norm(p.next_event()) == cl_head(20)
    p.set_max_body_size(100)
    assert collect(p) == [D(b"x" * 20), END()]
    assert p.next_event() is PAUSED
    p.start_next_request()
    assert collect(p) == [cl_head(20), ERR(413)]


def test_set_max_body_size_raises_limit_for_one_request_chunked():
    body = b"a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"
    p = RequestParser(SMALL_BODY)
    p.feed(chunked(body) + chunked(body))
    assert norm(p.next_event()) == TE_HEAD
    p.set_max_body_size(20)
    assert collect(p) == [D(b"0123456789" * 2), END()]
    assert p.next_event() is PAUSED
    p.start_next_request()
    assert collect(p) == [TE_HEAD, D(b"0123456789"), ERR(413)]


def test_set_max_body_size_lowers_limit_content_length():
    p = RequestParser()
    p.feed(post(b"Content-Length: 20", body=b"x" * 20))
    assert norm(p.next_event()) == cl_head(20)
    p.set_max_body_size(10)
    assert collect(p) == [ERR(413)]


def test_set_max_body_size_lowers_limit_chunked():
    p = RequestParser()
    p.feed(chunked(b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n"))
    assert norm(p.next_event()) == TE_HEAD
    p.set_max_body_size(10)
    assert collect(p) == [D(b"abcdef"), ERR(413)]


def test_set_max_body_size_lowered_applies_to_one_request_only():
    p = RequestParser()
    p.feed(post(b"Content-Length: 5", body=b"hello") + post(b"Content-Length: 20", body=b"y" * 20))
    assert norm(p.next_event()) == cl_head(5)
    p.set_max_body_size(5)
    assert collect(p) == [D(b"hello"), END()]
    assert p.next_event() is PAUSED
    p.start_next_request()
    assert collect(p) == [cl_head(20), D(b"y" * 20), END()]


def test_chunk_size_line_at_limit_is_accepted():
    lim = Limits(max_chunk_size_line=16)
    size_line = b"5;" + b"a" * 14
    assert len(size_line) == 16
    assert parse_all(chunk_line(size_line), lim) == [TE_HEAD, D(b"hello"), END(), P]


def test_chunk_size_line_over_limit_is_400():
    lim = Limits(max_chunk_size_line=16)
    assert parse_all(chunk_line(b"5;" + b"a" * 15), lim) == [TE_HEAD, ERR(400)]


def test_chunk_size_line_over_limit_detected_before_crlf():
    lim = Limits(max_chunk_size_line=16)
    assert parse_all(chunked(b"5;" + b"a" * 100), lim) == [TE_HEAD, ERR(400)]


def test_max_empty_lines_setting():
    lim = Limits(max_empty_lines=2)
    assert parse_all(b"\r\n" * 2 + req(), lim) == [H(), END(), P]
    assert parse_all(b"\r\n" * 3 + req(), lim) == [ERR(400)]


# ---------------------------------------------------------------------------
# Pipelining, pausing, protocol switch, dead parser
# ---------------------------------------------------------------------------

R1 = req(line=b"GET /one HTTP/1.1")
R2 = post(b"Content-Length: 5", body=b"hello")
R3 = chunked(b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")
E1 = [H(target="/one"), END()]
E2 = [cl_head(5), D(b"hello"), END()]
E3 = [TE_HEAD, D(b"abc"), END(("X-T", "1"))]


def test_fresh_parser_needs_data():
    p = RequestParser()
    assert p.next_event() is NEED_DATA
    assert p.events() == []
    p.feed(b"")
    assert p.next_event() is NEED_DATA
    assert p.buffered == 0


def test_buffered_counts_unconsumed_bytes():
    p = RequestParser()
    p.feed(R1[:8])
    assert p.next_event() is NEED_DATA
    assert p.buffered == 8
    p.feed(R1[8:])
    assert collect(p) == E1
    assert p.next_event() is PAUSED
    assert p.buffered == 0


def test_two_pipelined_requests_in_one_feed():
    p = RequestParser()
    p.feed(R1 + R2)
    assert collect(p) == E1
    for _ in range(5):
        assert p.next_event() is PAUSED
    assert p.events() == []
    assert p.buffered == len(R2)
    p.start_next_request()
    assert collect(p) == E2
    assert p.next_event() is PAUSED
    p.start_next_request()
    assert p.next_event() is NEED_DATA


def test_three_pipelined_requests_any_split():
    evs = parse_all(R1 + R2 + R3, auto_next=True)
    assert evs == E1 + [P] + E2 + [P] + E3 + [P, ND]


def test_pipelined_requests_never_emitted_while_paused():
    evs = parse_all(R1 + R2 + R3)
    assert evs == E1 + [P]


def test_bytes_fed_while_paused_are_kept():
    p = RequestParser()
    p.feed(R1 + R2[:10])
    assert collect(p) == E1
    assert p.next_event() is PAUSED
    p.feed(R2[10:20])
    assert p.next_event() is PAUSED
    p.feed(R2[20:])
    assert p.next_event() is PAUSED
    assert p.events() == []
    assert p.buffered == len(R2)
    p.start_next_request()
    assert collect(p) == E2


def test_error_in_second_pipelined_request_only_after_start_next():
    bad = req(host=False)
    evs = parse_all(R1 + bad, auto_next=True)
    assert evs == E1 + [P, ERR(400)]
    p = RequestParser()
    p.feed(R1 + bad)
    assert collect(p) == E1
    assert p.next_event() is PAUSED
    p.start_next_request()
    assert norm(p.next_event()) == ERR(400)


UPGRADE = req(b"Connection: Upgrade", b"Upgrade: websocket")
FRAME = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58GET / HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize("pieces", [
    pytest.param([UPGRADE + FRAME], id="one-feed"),
    pytest.param([UPGRADE, FRAME], id="frame-fed-after"),
    pytest.param([UPGRADE[:-1], UPGRADE[-1:] + FRAME[:3], FRAME[3:]], id="straddling"),
])
def test_switch_protocol_returns_bytes_after_message(pieces):
    p = RequestParser()
    got = []
    for piece in pieces:
        p.feed(piece)
        got += collect(p)
    assert got == [H(headers=[HOST, ("Connection", "Upgrade"), ("Upgrade", "websocket")]), END()]
    assert p.next_event() is PAUSED
    assert p.switch_protocol() == FRAME
    with pytest.raises(RuntimeError):
        p.feed(b"more")
    with pytest.raises(RuntimeError):
        p.next_event()


def test_switch_protocol_with_nothing_buffered():
    p = RequestParser()
    p.feed(UPGRADE)
    assert len(collect(p)) == 2
    assert p.next_event() is PAUSED
    assert p.switch_protocol() == b""
    with pytest.raises(RuntimeError):
        p.feed(b"")


def test_switch_protocol_after_body():
    p = RequestParser()
    p.feed(R2 + b"tunnel bytes")
    assert collect(p) == E2
    assert p.switch_protocol() == b"tunnel bytes"


def test_protocol_error_is_sticky():
    p = RequestParser()
    p.feed(b"GET / HTTP/1.1\r\nHost: example.com\r\nX: a\x00b\r\n\r\n")
    first = p.next_event()
    assert isinstance(first, ProtocolError) and first.status == 400
    for _ in range(5):
        again = p.next_event()
        assert isinstance(again, ProtocolError)
        assert (again.status, again.reason) == (first.status, first.reason)
    p.feed(R1)  # a valid request afterwards changes nothing
    for _ in range(3):
        again = p.next_event()
        assert isinstance(again, ProtocolError) and again.status == 400
    evs = p.events()
    assert len(evs) == 1 and isinstance(evs[0], ProtocolError) and evs[0].status == 400


@pytest.mark.parametrize("raw, status", [
    pytest.param(chunked(b"5\r\nhelloXX"), 400, id="body-error"),
    pytest.param(b"GET / HTTP/9.9\r\nHost: h\r\n\r\n", 505, id="version-505"),
    pytest.param(post(b"Content-Length: 999"), 413, id="cl-413"),
])
def test_protocol_error_is_sticky_for_other_statuses(raw, status):
    p = RequestParser(SMALL_BODY)
    p.feed(raw)
    errs = [e for e in p.events() if isinstance(e, ProtocolError)]
    assert [e.status for e in errs] == [status]
    for _ in range(3):
        again = p.next_event()
        assert isinstance(again, ProtocolError) and again.status == status


# ---------------------------------------------------------------------------
# Property tests (hypothesis)
# ---------------------------------------------------------------------------

FUZZ_ATOMS = [
    b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b";", b"=", b'"', b",", b"\x00", b"\x7f", b"\xff",
    b"0", b"5", b"a", b"ff", b"fffffffffffffffff", b"0x", b"-", b"+", b"/", b"*", b"?",
    b"GET", b"POST", b"OPTIONS", b"CONNECT", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0",
    b"GET / HTTP/1.1\r\n", b"POST / HTTP/1.1\r\n", b"Host: h\r\n", b"Host:", b"Content-Length: ",
    b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: ",
    b"Expect: 100-continue\r\n", b"Expect: ", b"Connection: close\r\n", b"chunked", b"\r\n\r\n",
    b"5\r\nhello\r\n", b"0\r\n\r\n", b"X-A: v\r\n",
]
fuzz_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(FUZZ_ATOMS), max_size=60).map(b"".join),
)
FUZZ_LIMITS = [
    DEFAULT_LIMITS,
    Limits(
        max_request_line=40,
        max_header_size=80,
        max_header_count=4,
        max_body_size=20,
        max_chunk_size_line=12,
        max_empty_lines=2,
    ),
]
VALID_PAIRS = [(p.values[0], p.values[1]) for p in VALID]


def fuzz_run(raw, cuts, limits, use_events):
    """Feed in pieces; never raise; return normalised events with PAUSED markers."""
    p = RequestParser(limits)
    out = []
    dead = None
    budget = 4 * len(raw) + 50
    for piece in cut(raw, cuts):
        p.feed(piece)
        assert isinstance(p.buffered, int) and p.buffered >= 0
        while True:
            budget -= 1
            assert budget > 0, "parser produced events without consuming input"
            if use_events and dead is None:
                for ev in p.events():
                    out.append(norm(ev))
                    if isinstance(ev, ProtocolError):
                        dead = ev
            ev = p.next_event()
            if dead is not None:
                assert isinstance(ev, ProtocolError) and ev.status == dead.status
                break
            if ev is NEED_DATA:
                break
            if ev is PAUSED:
                out.append(P)
                p.start_next_request()
                continue
            out.append(norm(ev))
            if isinstance(ev, ProtocolError):
                assert ev.status in ALLOWED_ERROR_STATUSES, ev
                dead = ev
                break
    for e in out:
        if is_kind(e, "error"):
            assert e[1] in ALLOWED_ERROR_STATUSES, e
    return out


def merge_data(evs):
    out = []
    for e in evs:
        if is_kind(e, "data") and out and is_kind(out[-1], "data"):
            out[-1] = D(out[-1][1] + e[1])
        else:
            out.append(e)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=fuzz_bytes,
    cuts=st.lists(st.integers(0, 400), max_size=12),
    limits=st.sampled_from(FUZZ_LIMITS),
    use_events=st.booleans(),
)
def test_fuzz_arbitrary_bytes_never_raise(raw, cuts, limits, use_events):
    fuzz_run(raw, [min(c, len(raw)) for c in cuts], limits, use_events)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pair=st.sampled_from(VALID_PAIRS),
    tail=fuzz_bytes,
    data=st.data(),
    use_events=st.booleans(),
)
def test_fuzz_valid_request_then_garbage(pair, tail, data, use_events):
    prefix, expected = pair
    raw = prefix + tail
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    evs = fuzz_run(raw, cuts, DEFAULT_LIMITS, use_events)
    # the first request is unaffected by whatever follows it
    first = merge_data(evs[: evs.index(P) + 1]) if P in evs else merge_data(evs)
    assert first == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=st.sampled_from(VALID_PAIRS), data=st.data())
def test_fuzz_truncated_valid_request_is_need_data(pair, data):
    raw, _ = pair
    n = data.draw(st.integers(0, len(raw) - 1))
    cuts = data.draw(st.lists(st.integers(0, n), max_size=8))
    evs = fuzz_run(raw[:n], cuts, DEFAULT_LIMITS, False)
    assert not any(is_kind(e, "error") or is_kind(e, "end") for e in evs)


TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
FORBIDDEN_NAMES = {"host", "content-length", "transfer-encoding", "expect", "connection"}
PCHAR = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@%"
VALUE_CHARS = "".join(chr(c) for c in range(0x21, 0x7F)) + "".join(chr(c) for c in range(0x80, 0x100))

tokens = st.text(alphabet=TCHAR, min_size=1, max_size=12)
field_names = tokens.filter(lambda n: n.lower().replace("_", "-") not in FORBIDDEN_NAMES)
field_values = st.text(alphabet=VALUE_CHARS + " \t", max_size=20).map(lambda v: v.strip(" \t"))
padding = st.text(alphabet=" \t", max_size=3)
sp_padding = st.text(alphabet=" ", max_size=3)
methods = tokens.filter(lambda m: m.upper() != "CONNECT")
paths = st.lists(st.text(alphabet=PCHAR, max_size=8), max_size=4).map(lambda s: "/" + "/".join(s))
queries = st.none() | st.text(alphabet=PCHAR + "/?", max_size=12)
hosts = st.sampled_from(["example.com", "example.com:8080", "127.0.0.1", "[::1]:80", "a-b.c_d~e", "x"])
extensions = st.sampled_from(["", ";a", ";a=b", ';a="x y"', " ; a = b", ";a;b=c"])


@st.composite
def valid_requests(draw):
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
    method = draw(methods)
    target = draw(paths)
    q = draw(queries)
    if q is not None:
        target += "?" + q
    headers = draw(st.lists(st.tuples(field_names, field_values), max_size=15))
    host = draw(hosts)
    headers.insert(draw(st.integers(0, len(headers))), ("Host", host))
    kinds = ["none", "cl"] + (["chunked"] if version == "HTTP/1.1" else [])
    kind = draw(st.sampled_from(kinds))
    body = b"" if kind == "none" else draw(st.binary(max_size=200))
    trailers = []
    wire_body = b""
    content_length = None
    if kind == "cl":
        content_length = len(body)
        headers.append(("Content-Length", str(len(body))))
        wire_body = body
    elif kind == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        pos = 0
        while pos < len(body):
            size = draw(st.integers(1, len(body) - pos))
            ext = draw(extensions)
            wire_body += b"%x%s\r\n%s\r\n" % (size, ext.encode(), body[pos : pos + size])
            pos += size
        trailers = draw(st.lists(st.tuples(field_names, field_values), max_size=4))
        wire_body += b"0" + draw(extensions).encode() + b"\r\n"
        for n, v in trailers:
            wire_body += f"{n}:{draw(padding)}{v}{draw(padding)}\r\n".encode("latin-1")
        wire_body += b"\r\n"
    head = f"{method} {target} {version}\r\n"
    for n, v in headers:
        # Transfer-Encoding: only SP is stripped, a HTAB is a 400 (contract)
        pad = sp_padding if n == "Transfer-Encoding" else padding
        head += f"{n}:{draw(pad)}{v}{draw(pad)}\r\n"
    raw = head.encode("latin-1") + b"\r\n" + wire_body
    expected = [
        H(
            method,
            target,
            version,
            headers=headers,
            content_length=content_length,
            chunked=kind == "chunked",
            keep_alive=version == "HTTP/1.1",
            host=host,
        )
    ]
    if body:
        expected.append(D(body))
    expected += [END(*trailers), P]
    return raw, expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=valid_requests(), data=st.data())
def test_property_valid_requests_parse_exactly(request, data):
    raw, expected = request
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=10))
    assert merge_data(drive([raw])) == expected
    assert merge_data(drive(cut(raw, cuts))) == expected
    assert merge_data(drive(cut(raw, cuts), use_events=True)) == expected


# ---------------------------------------------------------------------------
# Bytes out
# ---------------------------------------------------------------------------


class KeptOpenBytesIO(io.BytesIO):
    """HTTPResponse closes its file when the body is done; keep it readable."""

    def close(self):
        pass


class FakeSocket:
    """Just enough socket for http.client.HTTPResponse."""

    def __init__(self, data):
        self.file = KeptOpenBytesIO(data)

    def makefile(self, mode, *args, **kwargs):
        return self.file


def parse_response(data, method="GET"):
    sock = FakeSocket(data)
    resp = http.client.HTTPResponse(sock, method=method)
    resp.begin()
    body = resp.read()
    leftover = sock.file.read()
    return resp, body, leftover


@pytest.mark.parametrize(
    "code, expected",
    [
        (200, b"HTTP/1.1 200 OK\r\n"),
        (101, b"HTTP/1.1 101 Switching Protocols\r\n"),
        (201, b"HTTP/1.1 201 Created\r\n"),
        (204, b"HTTP/1.1 204 No Content\r\n"),
        (301, b"HTTP/1.1 301 Moved Permanently\r\n"),
        (304, b"HTTP/1.1 304 Not Modified\r\n"),
        (400, b"HTTP/1.1 400 Bad Request\r\n"),
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (500, b"HTTP/1.1 500 Internal Server Error\r\n"),
        (505, b"HTTP/1.1 505 HTTP Version Not Supported\r\n"),
    ],
)
def test_status_line_known_codes(code, expected):
    assert status_line(code) == expected


@pytest.mark.parametrize("code", [s.value for s in http.HTTPStatus if s.value >= 200])
def test_status_line_every_standard_code_is_well_formed(code):
    line = status_line(code)
    m = re.fullmatch(rb"HTTP/1\.1 (\d{3}) ([\x20-\x7e]+)\r\n", line)
    assert m and int(m.group(1)) == code, line
    resp, body, _ = parse_response(line + b"Content-Length: 0\r\n\r\n")
    assert resp.status == code and body == b""


def test_status_line_reason_and_version():
    assert status_line(599) == b"HTTP/1.1 599 Unknown\r\n"
    assert status_line(299) == b"HTTP/1.1 299 Unknown\r\n"
    assert status_line(200, "Fine") == b"HTTP/1.1 200 Fine\r\n"
    assert status_line(599, "Custom Thing") == b"HTTP/1.1 599 Custom Thing\r\n"
    assert status_line(200, version="HTTP/1.0") == b"HTTP/1.0 200 OK\r\n"
    assert status_line(404, "Nope", "HTTP/1.0") == b"HTTP/1.0 404 Nope\r\n"


@pytest.mark.parametrize("reason", ["OK\r\nX: y", "a\rb", "a\nb", "a\x00b", "a\x01b", "a\x7fb", "\r\n"])
def test_status_line_reason_with_ctl_raises(reason):
    with pytest.raises(ValueError):
        status_line(200, reason)


def test_continue_response():
    assert CONTINUE_RESPONSE == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_encode_chunk():
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert encode_chunk(b"x" * 10) == b"a\r\n" + b"x" * 10 + b"\r\n"
    assert encode_chunk(b"x" * 255) == b"ff\r\n" + b"x" * 255 + b"\r\n"
    assert encode_chunk(b"x" * 4096) == b"1000\r\n" + b"x" * 4096 + b"\r\n"
    assert encode_chunk(b"") == b""


def test_last_chunk():
    assert last_chunk() == b"0\r\n\r\n"
    assert last_chunk(None) == b"0\r\n\r\n"
    assert last_chunk([]) == b"0\r\n\r\n"
    assert last_chunk([("X-A", "1"), ("X-B", "two words")]) == b"0\r\nX-A: 1\r\nX-B: two words\r\n\r\n"


@settings(max_examples=100, deadline=None)
@given(pieces=st.lists(st.binary(max_size=300), max_size=8))
def test_chunk_encoding_round_trips_through_http_client_and_our_parser(pieces):
    encoded = b"".join(encode_chunk(x) for x in pieces) + last_chunk([("X-T", "v")])
    resp, body, leftover = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded)
    assert body == b"".join(pieces) and leftover == b""
    evs = merge_data(drive([chunked(encoded)]))
    assert evs == [TE_HEAD] + ([D(body)] if body else []) + [END(("X-T", "v")), P]


@pytest.mark.parametrize("code", [400, 404, 408, 413, 414, 417, 431, 500, 501, 505])
def test_error_response(code):
    raw = error_response(code)
    assert raw.startswith(status_line(code))
    resp, body, leftover = parse_response(raw)
    assert leftover == b""
    assert resp.status == code
    assert body == f"{code} {resp.reason}\n".encode()
    assert resp.getheader("Content-Length") == str(len(body))
    assert resp.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert resp.headers.get_all("Connection") == ["close"]
    assert resp.getheader("Date") is None


def test_error_response_with_date():
    date = b"Sun, 06 Nov 1994 08:49:37 GMT"
    resp, body, leftover = parse_response(error_response(400, date))
    assert resp.status == 400 and leftover == b""
    assert resp.getheader("Date") == date.decode()
    assert body == b"400 Bad Request\n"


def test_format_date_known_value():
    assert format_date(784111777) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_date(784111777.75) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_date(0) == b"Thu, 01 Jan 1970 00:00:00 GMT"


@settings(max_examples=300, deadline=None)
@given(seconds=st.integers(0, 4102444800), frac=st.floats(0, 0.99))
def test_format_date_matches_email_utils(seconds, frac):
    t = seconds + frac
    assert format_date(t) == email.utils.formatdate(t, usegmt=True).encode()
    assert format_date(seconds) == email.utils.formatdate(seconds, usegmt=True).encode()


def test_date_cache():
    cache = DateCache()
    a = cache(1000.0)
    assert a == format_date(1000)
    assert cache(1000.5) == a
    assert cache(1000.999) == a
    b = cache(1001.0)
    assert b == format_date(1001) and b != a
    assert cache(1001.7) == b
    assert cache(5000.5) == format_date(5000)
    assert cache(1000.5) == format_date(1000)


def parse_head(raw):
    p = RequestParser()
    p.feed(raw)
    ev = p.next_event()
    assert isinstance(ev, RequestHead), ev
    return ev


GET11 = req()
HEAD11 = req(line=b"HEAD / HTTP/1.1")
GET11_CLOSE = req(b"Connection: close")
GET10 = b"GET / HTTP/1.0\r\n\r\n"
GET10_KA = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"


def write(writer, status, headers, chunks, trailers=None, reason=None):
    out = writer.head(status, headers, reason)
    assert out.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in out[:-4], out
    for c in chunks:
        out += writer.body(c)
    out += writer.end(trailers) if trailers is not None else writer.end()
    return out


def connection_tokens(resp):
    values = resp.headers.get_all("Connection") or []
    return [t.strip().lower() for v in values for t in v.split(",")]


def test_writer_http11_without_length_is_chunked():
    w = ResponseWriter(parse_head(GET11))
    head = w.head(200, [("Content-Type", "text/plain"), ("X-A", "1")])
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert w.chunked
    assert w.body(b"hello") == encode_chunk(b"hello")
    assert w.body(b"") == b""
    assert w.body(b" world") == encode_chunk(b" world")
    assert w.end() == last_chunk()
    assert w.keep_alive
    raw = head + encode_chunk(b"hello") + encode_chunk(b" world") + last_chunk()
    resp, body, leftover = parse_response(raw)
    assert body == b"hello world" and leftover == b""
    assert resp.getheader("Transfer-Encoding").lower() == "chunked"
    assert resp.getheader("Content-Length") is None
    assert "close" not in connection_tokens(resp)
    assert not resp.will_close
    assert [h for h in resp.getheaders() if h[0] in ("Content-Type", "X-A")] == [("Content-Type", "text/plain"), ("X-A", "1")]


def test_writer_chunked_with_trailers():
    w = ResponseWriter(parse_head(GET11))
    raw = write(w, 200, [], [b"abc"], trailers=[("X-Checksum", "1")])
    assert raw.endswith(last_chunk([("X-Checksum", "1")]))
    resp, body, leftover = parse_response(raw)
    assert body == b"abc" and leftover == b""


@pytest.mark.parametrize("name", ["Content-Length", "content-length"])
def test_writer_identity_with_content_length(name):
    w = ResponseWriter(parse_head(GET11))
    head = w.head(200, [(name, "11")])
    assert not w.chunked
    assert w.body(b"hello ") == b"hello "
    assert w.body(b"world") == b"world"
    assert w.end() == b""
    assert w.keep_alive
    resp, body, leftover = parse_response(head + b"hello world")
    assert body == b"hello world" and leftover == b""
    assert resp.getheader("Transfer-Encoding") is None
    assert not resp.will_close


@pytest.mark.parametrize("headers", [[("Content-Length", "11")], []], ids=["with-cl", "without-cl"])
def test_writer_head_request_has_no_body(headers):
    w = ResponseWriter(parse_head(HEAD11))
    head = w.head(200, headers)
    assert w.body(b"hello world") == b""
    assert w.end() == b""
    assert w.keep_alive
    resp, body, leftover = parse_response(head, method="HEAD")
    assert resp.status == 200 and body == b"" and leftover == b""
    assert resp.getheader("Transfer-Encoding") is None


@pytest.mark.parametrize("status", [204, 304])
def test_writer_no_body_statuses(status):
    w = ResponseWriter(parse_head(GET11))
    headers = [("ETag", '"x"')] if status == 304 else []
    head = w.head(status, headers)
    assert not w.chunked
    assert w.body(b"ignored") == b""
    assert w.end() == b""
    assert w.keep_alive
    resp, body, leftover = parse_response(head)
    assert resp.status == status and body == b"" and leftover == b""
    assert resp.getheader("Transfer-Encoding") is None


def test_writer_304_with_content_length_is_not_short():
    w = ResponseWriter(parse_head(GET11))
    w.head(304, [("Content-Length", "100")])
    assert w.body(b"") == b""
    assert w.end() == b""
    assert w.keep_alive


def test_writer_http10_without_length_closes():
    w = ResponseWriter(parse_head(GET10))
    head = w.head(200, [("Content-Type", "text/plain")])
    assert not w.chunked
    assert not w.keep_alive
    assert w.body(b"abc") == b"abc"
    assert w.end() == b""
    resp, body, leftover = parse_response(head + b"abc")
    assert body == b"abc"
    assert resp.getheader("Transfer-Encoding") is None
    assert connection_tokens(resp) == []  # closing is HTTP/1.0's default: not said


def test_writer_http10_keep_alive_request_without_length_closes():
    w = ResponseWriter(parse_head(GET10_KA))
    head = w.head(200, [])
    assert not w.keep_alive and not w.chunked
    resp, _, _ = parse_response(head)
    assert connection_tokens(resp) == []  # closing is HTTP/1.0's default: not said


def test_writer_http10_keep_alive_request_with_length_keeps_alive():
    w = ResponseWriter(parse_head(GET10_KA))
    raw = write(w, 200, [("Content-Length", "3")], [b"abc"])
    assert w.keep_alive
    resp, body, leftover = parse_response(raw)
    assert body == b"abc" and leftover == b""
    assert connection_tokens(resp) == ["keep-alive"]
    assert b"\r\nConnection: Keep-Alive\r\n" in raw  # Tornado's casing


def test_writer_http10_plain_request_with_length_closes():
    w = ResponseWriter(parse_head(GET10))
    raw = write(w, 200, [("Content-Length", "3")], [b"abc"])
    assert not w.keep_alive
    resp, body, _ = parse_response(raw)
    assert body == b"abc"
    assert connection_tokens(resp) == []  # closing is HTTP/1.0's default: not said


def test_writer_request_connection_close():
    w = ResponseWriter(parse_head(GET11_CLOSE))
    raw = write(w, 200, [("Content-Length", "2")], [b"hi"])
    assert not w.keep_alive
    resp, body, leftover = parse_response(raw)
    assert body == b"hi" and leftover == b""
    assert connection_tokens(resp) == ["close"]
    assert resp.will_close


def test_writer_keep_alive_false_argument():
    w = ResponseWriter(parse_head(GET11), keep_alive=False)
    raw = write(w, 200, [("Content-Length", "2")], [b"hi"])
    assert not w.keep_alive
    resp, _, _ = parse_response(raw)
    assert connection_tokens(resp) == ["close"]


def test_writer_without_request():
    w = ResponseWriter(None)
    body = b"400 Bad Request\n"
    raw = write(w, 400, [("Content-Length", str(len(body)))], [body])
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert not w.keep_alive
    resp, got, leftover = parse_response(raw)
    assert got == body and leftover == b""
    assert connection_tokens(resp) == ["close"]


def test_writer_custom_reason():
    w = ResponseWriter(parse_head(GET11))
    head = w.head(200, [("Content-Length", "0")], reason="Fine")
    resp, _, _ = parse_response(head)
    assert resp.reason == "Fine"


@pytest.mark.parametrize(
    "header",
    [
        ("X-A", "a\r\nX-Injected: 1"),
        ("X-A", "a\rb"),
        ("X-A", "a\nb"),
        ("X-A", "a\x00b"),
        ("X-A\r\nX-Injected", "1"),
        ("X-A\n", "1"),
        ("X\x00A", "1"),
    ],
    ids=["value-crlf", "value-cr", "value-lf", "value-nul", "name-crlf", "name-lf", "name-nul"],
)
def test_writer_header_injection_raises(header):
    w = ResponseWriter(parse_head(GET11))
    with pytest.raises(ValueError):
        w.head(200, [header])


def test_writer_body_past_content_length_raises():
    w = ResponseWriter(parse_head(GET11))
    w.head(200, [("Content-Length", "5")])
    assert w.body(b"hel") == b"hel"
    with pytest.raises(ValueError):
        w.body(b"lo!")
    w2 = ResponseWriter(parse_head(GET11))
    w2.head(200, [("Content-Length", "5")])
    with pytest.raises(ValueError):
        w2.body(b"toolong")


def test_writer_short_body_raises_and_disables_keep_alive():
    w = ResponseWriter(parse_head(GET11))
    w.head(200, [("Content-Length", "5")])
    w.body(b"hel")
    with pytest.raises(HTTPOutputError, match="2 bytes less than Content-Length"):
        w.end()
    assert not w.keep_alive
    with pytest.raises(RuntimeError):  # it is over all the same
        w.end()


def test_writer_long_body_raises_and_disables_keep_alive():
    w = ResponseWriter(parse_head(GET11))
    w.head(200, [("Content-Length", "5")])
    assert w.keep_alive
    with pytest.raises(HTTPOutputError, match="more than Content-Length"):
        w.body(b"toolong")
    assert not w.keep_alive


@pytest.mark.parametrize("head", ["GET10", "GET10_KA", "GET11"])
def test_writer_status_line_is_http11_for_every_request_version(head):
    """RFC 9110 §2.5: the response names the version the server conforms to;
    framing still follows the request's version."""
    w = ResponseWriter(parse_head(globals()[head]))
    assert w.head(200, [("Content-Length", "0")]).startswith(b"HTTP/1.1 200 OK\r\n")
    w = ResponseWriter(parse_head(globals()[head]))
    assert w.head(404, [], reason="Nope").startswith(b"HTTP/1.1 404 Nope\r\n")
    assert w.chunked == (head == "GET11")


def test_writer_exact_body_keeps_alive():
    w = ResponseWriter(parse_head(GET11))
    w.head(200, [("Content-Length", "5")])
    w.body(b"hel")
    w.body(b"lo")
    w.end()
    assert w.keep_alive


def test_writer_two_responses_on_one_stream_split_cleanly():
    """http.client reads two kept-alive chunked responses back to back."""
    stream = b""
    for _ in range(2):
        w = ResponseWriter(parse_head(GET11))
        stream += write(w, 200, [], [b"abc", b"de"])
        assert w.keep_alive
    sock = FakeSocket(stream)
    for _ in range(2):
        resp = http.client.HTTPResponse(sock, method="GET")
        resp.begin()
        assert resp.read() == b"abcde"
    assert sock.file.read() == b""


# ---------------------------------------------------------------------------
# The fast head path (RequestParser._read_head) and the general one
# (_read_head_general) must agree on every input: the fast path only takes
# the common shapes and hands everything else, errors included, to the
# general path. Random heads, near-valid and broken, are fed to a parser and
# to one that always takes the general path; every event and every state
# read must be the same.
# ---------------------------------------------------------------------------


class _GeneralPathParser(RequestParser):
    __slots__ = ()
    _read_head = RequestParser._read_head_general


_DIFF_NAMES = ["Host", "host", "HOST", "Content-Length", "content-length", "Content_Length",
               "Transfer-Encoding", "transfer_encoding", "Connection", "connection", "Expect",
               "User-Agent", "Accept", "X-A", "Content-Type", "Cookie"]
_DIFF_VALUES = ["127.0.0.1:8888", "", " ", "a b", "x\t", "\ty", "close", "Keep-Alive", "keep-alive, close",
                "close ", "5", "0", "05", "+5", "chunked", "100-continue", "\x80\xff", "a:b", "[::1]:80",
                "bad host", "a\x01b", "gzip", "a  ", "  a"]
_DIFF_SEPARATORS = [": ", ": ", ": ", ":", ":  ", ": \t", " : ", ":\t"]
_DIFF_INSERTS = ["\r\n", "\n", "\r", " ", "\t", ":", ": ", "\x00", "\x7f", "\x85", "é"]
_DIFF_LIMITS = [DEFAULT_LIMITS, DEFAULT_LIMITS, Limits(max_header_count=2), Limits(max_request_line=10, max_header_size=30),
                Limits(max_body_size=3)]


def _random_head(rnd: random.Random) -> bytes:
    if rnd.random() < 0.6:  # mostly valid: the fast path's ground
        line = " ".join((rnd.choice(["GET", "POST", "OPTIONS"]), rnd.choice(["/", "/a?b", "/", "*", "http://h/"]),
                         rnd.choice(["HTTP/1.1", "HTTP/1.0"])))
        fields = []
        if rnd.random() < 0.9:
            fields.append("Host: " + rnd.choice(["a", "127.0.0.1:8888", "[::1]", "", "b c", "x:y:z"]))
        clean = rnd.random() < 0.5  # ordinary fields only
        for _ in range(rnd.randrange(5)):
            if clean:
                field = rnd.choice(["User-Agent: wrk", "Accept: */*", "X-A: b c", "Cookie: a=1; b=2"])
            else:
                field = rnd.choice(_DIFF_NAMES) + rnd.choice(_DIFF_SEPARATORS[:6]) + rnd.choice(_DIFF_VALUES[:12])
            fields.insert(rnd.randrange(len(fields) + 1), field)
    else:
        line = " ".join((rnd.choice(["GET", "POST", "CONNECT", "G@T", "get", ""]),
                         rnd.choice(["/", "/a?b=c", "*", "http://x/y", "x:80", "/\x80", "", "/a b"]),
                         rnd.choice(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1"])))
        fields = [rnd.choice(_DIFF_NAMES) + rnd.choice(_DIFF_SEPARATORS) + rnd.choice(_DIFF_VALUES)
                  for _ in range(rnd.randrange(6))]
    text = ("\r\n" if rnd.random() < 0.05 else "") + line + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n"
    if rnd.random() < 0.3:
        i = rnd.randrange(len(text))
        text = text[:i] + rnd.choice(_DIFF_INSERTS) + text[i:]
    if rnd.random() < 0.1:
        i = rnd.randrange(len(text))
        text = text[:i] + text[i + 1:]
    text += "x" * rnd.randrange(8) + (text if rnd.random() < 0.3 else "")  # a body, a pipelined repeat
    return text.encode("latin-1", "replace")


def _trace(parser_class: type, data: bytes, limits: Limits) -> list:
    parser = parser_class(limits)
    parser.feed(data)
    trace = []
    for _ in range(12):
        event = parser.next_event()
        trace.append((repr(event), parser.state, parser.buffered, parser.in_body, parser.body_started))
        if event is PAUSED:
            parser.start_next_request()
        if event is NEED_DATA or type(event) is ProtocolError:
            break
    return trace


class _CountingParser(RequestParser):
    """Counts the heads the fast path hands to the general one."""

    general_calls = 0

    def _read_head_general(self):
        _CountingParser.general_calls += 1
        return super()._read_head_general()


def test_fast_head_path_agrees_with_the_general_path():
    rnd = random.Random(6455)
    fast_heads = 0
    for _ in range(4000):
        data = _random_head(rnd)
        limits = rnd.choice(_DIFF_LIMITS)
        assert _trace(RequestParser, data, limits) == _trace(_GeneralPathParser, data, limits), data
        _CountingParser.general_calls = 0
        parser = _CountingParser(limits)
        parser.feed(data)
        if type(parser.next_event()) is RequestHead and not _CountingParser.general_calls:
            fast_heads += 1
    assert fast_heads > 150  # the inputs do reach the fast path (205 with this seed)


# -- found by fuzz/http1.py -----------------------------------------------------


def test_http1_header_block_near_the_limit_does_not_depend_on_the_cut():
    from cyclone.http1 import Limits, ProtocolError, RequestHead, RequestParser

    limits = Limits(max_header_size=30)
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"1" * 17 + b"\r\n\r\n"  # a block of 29 bytes
    whole = RequestParser(limits)
    whole.feed(raw)
    assert isinstance(whole.next_event(), RequestHead)
    for cut in (len(raw) - 3, len(raw) - 2, len(raw) - 1):
        parser = RequestParser(limits)
        parser.feed(raw[:cut])
        first = parser.events()
        parser.feed(raw[cut:])
        events = first + parser.events()
        assert not any(isinstance(e, ProtocolError) for e in events), (cut, events)
        assert isinstance(events[0], RequestHead)


@pytest.mark.parametrize("stream, count", [
    pytest.param(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1_800, id="pipelined-requests"),
    pytest.param(b"1\r\na\r\n", 2_000, id="one-byte-chunks"),
])
def test_http1_what_is_fed_at_once_parses_in_linear_time(stream, count):
    import time

    from cyclone.http1 import NEED_DATA, PAUSED, ProtocolError, RequestParser

    head = b"" if stream.startswith(b"GET") else (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    tail = b"" if not head else b"0\r\n\r\n"

    def parse_all(data):
        parser = RequestParser()
        parser.feed(data)
        while True:
            event = parser.next_event()
            assert not isinstance(event, ProtocolError), event
            if event is NEED_DATA:
                return
            if event is PAUSED:
                parser.start_next_request()

    def cpu(n):
        data = head + stream * n + tail
        best = float("inf")
        for _ in range(2):
            start = time.process_time()
            parse_all(data)
            best = min(best, time.process_time() - start)
        return best

    small = cpu(count)
    large = cpu(16 * count)  # 16 times as much: about 16 times the time if linear
    assert large <= 40 * small + 0.01, large / max(small, 1e-9)
