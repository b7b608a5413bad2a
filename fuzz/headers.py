"""Fuzz target: header blocks and header values (``cyclone.httputil``:
``HTTPHeaders.parse``, ``parse_request_start_line``,
``parse_response_start_line`` and the parameter parser behind Content-Type
and Content-Disposition).

Input layout: byte 0 picks whether the block is given as bytes or as text
(latin-1 or UTF-8 with replacement); the rest is the block.

The documented answers: headers, or :class:`~cyclone.httputil.HTTPInputError`
for a line that is not ``token ":" OWS value OWS`` with no control
character but HTAB (bare CR or LF, obs-fold, no colon, whitespace before
it, ...); the start-line parsers likewise; the parameter parser never
raises.  A crash is anything else:

* any other exception;
* a block accepted against the RFC 9110 field-line grammar, or refused
  although every line matches it;
* parsed headers whose values keep padding or hold control characters,
  whose names are not tokens, or that parse differently once written back
  (``str(headers)``) or given as bytes instead of latin-1 text.
"""

from __future__ import annotations

import re

from cyclone.httputil import (
    HTTPHeaders,
    HTTPInputError,
    _parse_header,
    parse_request_start_line,
    parse_response_start_line,
)

# Known bug, reported (tests/test_httputil.py,
# test_rfc8187_charset_name_codecs_cannot_look_up): an RFC 8187 charset name
# holding a NUL makes codecs.lookup() raise ValueError out of
# _decode_ext_value.  A client cannot send one (the HTTP parser and part
# headers refuse NUL); tolerated here so that a long run looks for other
# bugs; set to False once it is fixed.
TOLERATE_KNOWN_NUL_CHARSET_BUG = False  # fixed


def _known_nul_charset_bug(exc: Exception, text) -> bool:
    nul = b"\x00" if isinstance(text, bytes) else "\x00"
    return TOLERATE_KNOWN_NUL_CHARSET_BUG and type(exc) is ValueError and nul in text


# RFC 9110 §5.1, §5.5: field-name ":" OWS field-value OWS; a field value has
# no control character but HTAB (obs-text, and any other character of the
# text, passes)
FIELD_LINE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\U0010ffff]*")
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FORBIDDEN_IN_VALUES = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class Crash(AssertionError):
    """The parser broke its contract (see the module docstring)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise Crash(message)


def _parse(block):
    try:
        return HTTPHeaders.parse(block)
    except HTTPInputError:
        return None


def one_input(data: bytes) -> None:
    if not data:
        return
    options, raw = data[0], data[1:]
    text = raw.decode("latin-1") if options & 1 else raw.decode("utf-8", "replace")
    block = raw if options & 2 and options & 1 else text

    lines = [line for line in text.split("\r\n") if line]
    valid = all(FIELD_LINE.fullmatch(line) for line in lines)
    headers = _parse(block)
    _check((headers is not None) == valid,
           f"{'accepted' if headers is not None else 'refused'} against the grammar: {text!r}")
    if headers is not None:
        pairs = list(headers.get_all())
        _check(len(pairs) == len(lines), "lost or added a field")
        for name, value in pairs:
            _check(TOKEN.fullmatch(name) is not None, f"name {name!r}")
            _check(value == value.strip(" \t"), f"padding kept in {value!r}")
            _check(FORBIDDEN_IN_VALUES.search(value) is None, f"control character in {value!r}")
        again = _parse(str(headers).replace("\n", "\r\n"))
        _check(again is not None and list(again.get_all()) == pairs, "written back, the headers differ")
        if isinstance(block, str) and options & 1:
            as_bytes = _parse(raw)
            _check(as_bytes is not None and list(as_bytes.get_all()) == pairs, "bytes and latin-1 text differ")
        for name, value in pairs:
            _check(headers.get(name.upper()) == ",".join(v for n, v in pairs if n == name), "lookup")

    first_line = text.split("\r\n", 1)[0]
    for parse in (parse_request_start_line, parse_response_start_line):
        try:
            parse(first_line)
        except HTTPInputError:
            pass
    for value in (first_line, text):
        try:
            key, params = _parse_header(value)
        except ValueError as exc:
            if _known_nul_charset_bug(exc, value):
                continue
            raise
        _check(type(key) is str and all(type(k) is str and type(v) is str for k, v in params.items()),
               f"_parse_header({value!r}) = {(key, params)!r}")


OPTION_BYTES = 1


def parse(payload: bytes) -> None:
    """Only the parsing of ``payload`` (for fuzz/scaling.py)."""
    text = payload.decode("latin-1")
    try:
        HTTPHeaders.parse(text)
    except HTTPInputError:
        pass
    try:
        _parse_header(text)
    except ValueError as exc:
        if not _known_nul_charset_bug(exc, text):
            raise


SEEDS = [
    b"\x01Content-Type: text/html\r\nContent-Length: 42\r\n",
    b"\x03A: 1\r\nB: 2\r\nA: 3\r\n\r\n",
    b"\x01X:  padded \t\r\nX:\tv\t\r\nX:\r\n",
    b"\x00X: caf\xc3\xa9\r\n!#$%&'*+-.^_`|~09azAZ: token\r\n",
    b"\x01X : space\r\n folded\r\nno colon\r\nX: a\x00b\r\n",
    b"\x01GET /foo HTTP/1.1",
    b"\x01HTTP/1.1 200 OK",
    b"\x00form-data; name=\"a;b\"; filename=\"C:\\x\\y.txt\"; filename*=UTF-8''%e2%82%ac%20rates",
    b"\x01text/html; charset=\"utf-8\"; q=\"\\\"\\\\\"; x",
]

TOKENS = [b"\r\n", b"\r", b"\n", b":", b": ", b" ", b"\t", b"\x00", b"\x7f", b"\x85", b"\xa0", b"\xff",
          b"Content-Type", b"Set-Cookie", b";", b"=", b'"', b"\\", b"*=", b"UTF-8''", b"HTTP/1.1", b"GET "]

if __name__ == "__main__":
    from fuzz import _driver

    _driver.main(one_input, SEEDS, TOKENS)
