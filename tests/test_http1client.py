"""cyclone.http1client, the sans-IO client core: request heads refused
before sending, and the response parser's framing (RFC 9112 section 6.3),
keep-alive decisions, limits, and independence from how bytes are cut."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyclone.http1client import (
    Data,
    EndOfMessage,
    ProtocolError,
    ResponseHead,
    ResponseParser,
    encode_chunk,
    request_head,
)


def parse(data: bytes, method: str = "GET", eof: bool = False, **kwargs):
    """(heads, body, EndOfMessage or None, parser) for ``data`` fed at once."""
    parser = ResponseParser(method, **kwargs)
    events = parser.feed(data)
    if eof:
        events += parser.feed_eof()
    heads = [e for e in events if isinstance(e, ResponseHead)]
    body = b"".join(e.data for e in events if isinstance(e, Data))
    ends = [e for e in events if isinstance(e, EndOfMessage)]
    assert len(ends) <= 1
    return heads, body, (ends[0] if ends else None), parser


# -- request heads --------------------------------------------------------------------


def test_request_head_is_the_request_line_and_headers():
    head = request_head("GET", "/a?b=1", "HTTP/1.1", [("Host", "h"), ("X-Caf", "caf\u00e9"), ("X-U", "\u20ac")])
    assert head == b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX-Caf: caf\xe9\r\nX-U: \xe2\x82\xac\r\n\r\n"


@pytest.mark.parametrize("method, target, headers", [
    ("GET\r\nX", "/", []),
    ("GET /", "/", []),
    ("", "/", []),
    ("GET", "/a b", []),
    ("GET", "/a\r\nHost: evil", []),
    ("GET", "/\x00", []),
    ("GET", "", []),
    ("GET", "/", [("X", "a\r\nInjected: 1")]),
    ("GET", "/", [("X", "a\nb")]),
    ("GET", "/", [("X", "a\rb")]),
    ("GET", "/", [("X", "a\x00b")]),
    ("GET", "/", [("Bad Name", "v")]),
    ("GET", "/", [("Name:", "v")]),
    ("GET", "/", [("", "v")]),
])
def test_request_head_refuses_what_would_split_the_request(method, target, headers):
    with pytest.raises(ValueError):
        request_head(method, target, "HTTP/1.1", headers)


def test_encode_chunk():
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert encode_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert encode_chunk(b"") == b""


# -- framing --------------------------------------------------------------------------


def test_content_length_body_and_headers_as_received():
    heads, body, end, parser = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-type: text/plain\r\nX-Two: a\r\nX-Two: b\r\n\r\nhello")
    (head,) = heads
    assert (head.version, head.code, head.reason) == ("HTTP/1.1", 200, "OK")
    assert head.headers == [("Content-Length", "5"), ("content-type", "text/plain"), ("X-Two", "a"), ("X-Two", "b")]
    assert head.get_list("x-two") == ["a", "b"] and head.get("CONTENT-TYPE") == "text/plain"
    assert head.lines == ["HTTP/1.1 200 OK\r\n", "Content-Length: 5\r\n", "content-type: text/plain\r\n",
                          "X-Two: a\r\n", "X-Two: b\r\n", "\r\n"]
    assert body == b"hello" and end.keep_alive and parser.complete


def test_bytes_after_the_body_are_kept_as_trailing():
    _, body, end, parser = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
    assert body == b"ok" and end is not None and parser.trailing == b"EXTRA"


def test_chunked_with_extensions_and_trailers():
    _, body, end, parser = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert body == b"hello world" and end.keep_alive and parser.trailing == b""


@pytest.mark.parametrize("bad", [b"zz\r\n", b"-1\r\n", b"5\r\nhelloXX\r\n", b"1" * 20 + b"\r\n"])
def test_malformed_chunks_are_protocol_errors(bad):
    with pytest.raises(ProtocolError):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + bad + b"0\r\n\r\n")


def test_close_delimited_body_ends_at_eof_and_is_not_kept():
    heads, body, end, parser = parse(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", eof=True)
    assert body == b"until the end" and end.keep_alive is False


def test_a_coding_other_than_chunked_last_is_close_delimited():
    _, body, end, _ = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw", eof=True)
    assert body == b"raw" and end.keep_alive is False


def test_transfer_encoding_wins_over_content_length_and_the_connection_is_not_kept():
    _, body, end, _ = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"2\r\nok\r\n0\r\n\r\n")
    assert body == b"ok" and end.keep_alive is False


@pytest.mark.parametrize("value", [b"1, 2", b"abc", b"-1", b"+5", b"1" * 30, b"\xd9\xa3"])
def test_invalid_content_length_is_a_protocol_error(value):
    with pytest.raises(ProtocolError, match="Content-Length"):
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\n")


def test_repeated_equal_content_lengths_are_one():
    _, body, _, _ = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok")
    assert body == b"ok"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_for_204_and_304(status):
    _, body, end, parser = parse(b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status)
    assert body == b"" and end.keep_alive and parser.complete


def test_no_body_after_head():
    _, body, end, _ = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method="HEAD")
    assert body == b"" and end.keep_alive


def test_interim_responses_come_before_the_final_head():
    heads, body, end, _ = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
                                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    assert [(h.code, h.interim) for h in heads] == [(100, True), (103, True), (200, False)]
    assert body == b"x" and end is not None


def test_a_2xx_answer_to_connect_ends_at_its_head():
    _, body, end, parser = parse(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03tls", method="CONNECT")
    assert body == b"" and end.keep_alive is False and parser.trailing == b"\x16\x03tls"


@pytest.mark.parametrize("head, keep", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", False),
])
def test_keep_alive_decision(head, keep):
    _, _, end, _ = parse(head)
    assert end.keep_alive is keep


def test_a_request_that_asked_to_close_is_never_kept():
    _, _, end, _ = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", request_close=True)
    assert end.keep_alive is False


def test_lenient_where_a_client_may_be():
    # obs-fold, bare LF line ends, leading empty lines, a status line without reason
    heads, body, _, _ = parse(b"\r\n\nHTTP/1.1 200\nX-Folded: a\n  b\nContent-Length: 1\n\nx")
    assert heads[0].reason == "" and heads[0].get("X-Folded") == "a b" and body == b"x"


@pytest.mark.parametrize("data", [
    b"HTTP/2 200 OK\r\n\r\n", b"ICY 200 OK\r\n\r\n", b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", b"HTTP/1.1 200 OK\r\n folded first\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
])
def test_malformed_heads_are_protocol_errors(data):
    with pytest.raises(ProtocolError):
        parse(data)


def test_the_head_limit():
    filler = b"X-Filler: " + b"f" * 3000 + b"\r\n"
    parse(b"HTTP/1.1 200 OK\r\n" + filler + b"Content-Length: 0\r\n\r\n", max_head_size=4096)
    with pytest.raises(ProtocolError, match="longer than 4096"):
        parse(b"HTTP/1.1 200 OK\r\n" + filler * 2 + b"\r\n", max_head_size=4096)
    parser = ResponseParser("GET", max_head_size=4096)
    with pytest.raises(ProtocolError):  # found before the head's end arrives
        for _ in range(10):
            parser.feed(filler)


def test_eof_before_or_inside_a_response():
    parser = ResponseParser("GET")
    with pytest.raises(ProtocolError, match="before a response"):
        parser.feed_eof()
    parser = ResponseParser("GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert parser.started
    with pytest.raises(ProtocolError, match="middle"):
        parser.feed_eof()


# -- the cut does not matter ----------------------------------------------------------

RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nX: 1\r\n\r\nclose-delimited body",
    b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
]


def _events(parser: ResponseParser, pieces) -> list:
    out = []
    for piece in pieces:
        out += parser.feed(piece)
    out += parser.feed_eof()
    assert all(e.data for e in out if isinstance(e, Data)), "an empty Data event"
    # How many Data events depends on the cut; what they hold does not.
    heads_and_ends = [(type(e).__name__, e.code if isinstance(e, ResponseHead) else e.keep_alive)
                      for e in out if not isinstance(e, Data)]
    return heads_and_ends, b"".join(e.data for e in out if isinstance(e, Data))


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, len(RESPONSES) - 1), cuts=st.lists(st.integers(0, 200), max_size=12))
def test_events_do_not_depend_on_how_the_bytes_are_cut(index, cuts):
    data = RESPONSES[index]
    whole = _events(ResponseParser("GET"), [data])
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    assert _events(ResponseParser("GET"), pieces) == whole
    assert _events(ResponseParser("GET"), [bytes([b]) for b in data]) == whole


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"])
def test_a_head_of_exactly_the_limit_passes_however_it_is_cut(line_end):
    # Found by fuzz/http1client.py: fed byte by byte, the blank line's first
    # bytes counted against the limit and the head was refused.
    head = b"HTTP/1.1 204 No Content"  # 23 bytes
    data = head + line_end + line_end
    for pieces in ([data], [data[i:i + 1] for i in range(len(data))]):
        parser = ResponseParser("GET", max_head_size=len(head))
        events = [e for piece in pieces for e in parser.feed(piece)]
        assert isinstance(events[-1], EndOfMessage)
        parser = ResponseParser("GET", max_head_size=len(head) - 1)
        with pytest.raises(ProtocolError, match="longer than"):
            for piece in pieces:
                parser.feed(piece)
