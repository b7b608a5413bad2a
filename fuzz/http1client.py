"""Fuzz target: the sans-IO HTTP/1.1 response parser (``cyclone.http1client``).

Input layout: byte 0 picks the request method and the head limit, byte 1
seeds where the stream is cut into pieces, the rest is what the server sends.

The documented answer to any input is a sequence of events --
``ResponseHead`` (interim ones first), ``Data``, at most one
``EndOfMessage`` -- or ``ProtocolError``, from ``feed`` or ``feed_eof``. A
crash is anything else:

* any other exception;
* events that depend on how the stream was cut: fed whole, byte by byte and
  in random pieces, the heads, the body and the end must be the same, and an
  error in one feeding an error in the others;
* an empty ``Data`` event, a body after HEAD or for 1xx/204/304, a body
  longer than a Content-Length that framed it, a head over the limit
  accepted, a connection kept alive after a close-delimited body.
"""

from __future__ import annotations

import random

from cyclone.http1client import (
    Data,
    EndOfMessage,
    ProtocolError,
    ResponseHead,
    ResponseParser,
)

METHODS = ["GET", "HEAD", "POST", "CONNECT"]
HEAD_LIMITS = [65536, 64, 24]


class Crash(AssertionError):
    """The parser broke its contract (see the module docstring)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise Crash(message)


def _run(method: str, limit: int, pieces: list[bytes]):
    """(heads, body, end keep_alive or None, error or None) for the stream in ``pieces``."""
    parser = ResponseParser(method, max_head_size=limit)
    events: list[object] = []
    try:
        for piece in pieces:
            events += parser.feed(piece)
        events += parser.feed_eof()
    except ProtocolError:
        return None
    heads = [(e.code, e.reason, tuple(e.headers)) for e in events if isinstance(e, ResponseHead)]
    _check(all(e.data for e in events if isinstance(e, Data)), "an empty Data event")
    body = b"".join(e.data for e in events if isinstance(e, Data))
    ends = [e.keep_alive for e in events if isinstance(e, EndOfMessage)]
    _check(len(ends) <= 1, f"{len(ends)} ends of one response")
    final = parser.head
    if final is not None:
        if method == "HEAD" or final.code in (204, 304) or (method == "CONNECT" and 200 <= final.code < 300):
            _check(body == b"", f"a body for {method} {final.code}")
        lengths = final.get_list("Content-Length")
        if lengths and not final.get_list("Transfer-Encoding") and body:
            _check(len(body) == int(lengths[0].split(",")[0]), "body length differs from Content-Length")
        head_size = sum(len(line) for line in final.lines) - 2
        _check(head_size <= limit + 4 * len(final.lines), f"a head of {head_size} bytes over {limit}")
        if ends and ends[0] and not lengths and final.code not in (204, 304) and method != "HEAD":
            _check(bool(final.get_list("Transfer-Encoding")), "kept alive after a close-delimited body")
    return heads, body, (ends[0] if ends else None)


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    options, cut_seed, stream = data[0], data[1], data[2:]
    method = METHODS[options % len(METHODS)]
    limit = HEAD_LIMITS[(options // len(METHODS)) % len(HEAD_LIMITS)]
    whole = _run(method, limit, [stream])
    by_byte = _run(method, limit, [stream[i:i + 1] for i in range(len(stream))])
    rng = random.Random(cut_seed)
    points = sorted(rng.sample(range(len(stream) + 1), min(len(stream) + 1, rng.randint(0, 8))))
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]
    in_pieces = _run(method, limit, pieces)
    _check(whole == by_byte == in_pieces, f"the cut changes the result: {whole!r} / {by_byte!r} / {in_pieces!r}")


OPTION_BYTES = 2


def parse(payload: bytes) -> None:
    """Only the parsing of ``payload`` (for fuzz/scaling.py)."""
    parser = ResponseParser("GET")
    try:
        parser.feed(payload)
        parser.feed_eof()
    except ProtocolError:
        pass


SEEDS = [
    b"\x00\x00HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"\x00\x07HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: x\r\n\r\n",
    b"\x01\x03HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
    b"\x00\x01HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"\x00\x02HTTP/1.0 200 OK\r\nX: a\r\n  folded\r\n\r\nclose delimited",
    b"\x03\x05HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01",
    b"\x04\x09\r\nHTTP/1.1 304 Not Modified\nETag: x\n\n",
]

TOKENS = [b"\r\n", b"\r\n\r\n", b"\n", b"\r", b":", b": ", b" ", b"\t", b"\x00", b"HTTP/1.1 ", b"HTTP/1.0 ",
          b"200 OK", b"100 Continue", b"Content-Length: ", b"Transfer-Encoding: chunked", b"Connection: close",
          b"0\r\n\r\n", b";ext", b"ffffffffffffffff", b"-1", b"1, 2"]

if __name__ == "__main__":
    from fuzz import _driver

    _driver.main(one_input, SEEDS, TOKENS)
