"""Fuzz target: percent-decoding and query strings / urlencoded forms
(``cyclone.urlencoded``, ``cyclone.escape.parse_qs_bytes`` and
``url_unescape``).

Input layout: byte 0 picks the options (``keep_blank_values``,
``strict_parsing``, a field limit of 0..15 or none), byte 1 seeds where the
data is cut into pieces for the streaming parser, the rest is the data.

The documented answers: a dict of ``{str: [bytes, ...]}``, or
``UrlencodedError`` (a ``ValueError``) past ``max_fields`` or, with
``strict_parsing``, on an empty field or one without ``=``.  A crash is
anything else:

* any other exception (a ``UnicodeError``, ``binascii.Error``, ...);
* a result other than what ``urllib.parse`` gives for the same input read
  byte for byte (latin-1), or an error where it gives none, or none where
  it raises;
* a streamed parse (``UrlencodedParser.feed`` piece by piece) that differs
  from the one-shot parse, or that refuses the limit at another piece than
  the one that passes it;
* ``unquote_bytes`` / ``url_unescape`` differing from
  ``urllib.parse.unquote_to_bytes`` / ``unquote`` / ``unquote_plus``.
"""

from __future__ import annotations

import itertools
import random
import urllib.parse

from cyclone.escape import parse_qs_bytes, url_unescape
from cyclone.urlencoded import (
    UrlencodedError,
    UrlencodedParser,
    parse_urlencoded,
    unquote_bytes,
)


class Crash(AssertionError):
    """A decoder broke its contract (see the module docstring)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise Crash(message)


def _stdlib(data: bytes, keep_blank_values: bool, strict_parsing: bool, max_fields):
    try:
        parsed = urllib.parse.parse_qs(
            data.decode("latin1"), keep_blank_values, strict_parsing, encoding="latin1",
            max_num_fields=max_fields,
        )
    except ValueError:
        return ValueError
    return {name: [v.encode("latin1") for v in values] for name, values in parsed.items()}


def _ours(function, *args, **kwargs):
    try:
        result = function(*args, **kwargs)
    except UrlencodedError:
        return ValueError
    _check(isinstance(result, dict), f"result {result!r}")
    for name, values in result.items():
        _check(type(name) is str and all(type(v) is bytes for v in values), f"types in {result!r}")
    return result


def _pieces(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    positions = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(0, 1 + len(data) // 3)))
    bounds = [0, *positions, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _streamed(pieces, keep_blank_values, strict_parsing, max_fields):
    parser = UrlencodedParser(
        max_fields=max_fields, keep_blank_values=keep_blank_values, strict_parsing=strict_parsing
    )
    separators = 0
    fed = False
    for piece in pieces:
        separators += piece.count(b"&")
        fed = fed or bool(piece)
        fields = separators + 1 if fed else 0  # as urllib.parse: no data is no field
        try:
            parser.feed(piece)
        except UrlencodedError:
            if max_fields is not None and fields > max_fields:
                return ValueError
            if strict_parsing:
                return ValueError
            raise Crash(f"feed({piece!r}) refused a field under the limit")
        _check(max_fields is None or fields <= max_fields,
               f"feed({piece!r}) passed the limit of {max_fields} fields without an error")
    return _ours(parser.close)


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    options, seed, body = data[0], data[1], data[2:]
    keep_blank_values = bool(options & 1)
    strict_parsing = bool(options & 2)
    max_fields = None if options & 4 else options >> 4  # 0..15 fields, or no limit

    # percent-decoding
    _check(unquote_bytes(body) == urllib.parse.unquote_to_bytes(body), "unquote_bytes differs from urllib")
    _check(url_unescape(body, encoding=None, plus=False) == urllib.parse.unquote_to_bytes(body),
           "url_unescape(bytes, None, plus=False)")
    text = body.decode("utf-8", "replace")
    _check(url_unescape(text) == urllib.parse.unquote_plus(text), "url_unescape(text)")
    _check(url_unescape(text, plus=False) == urllib.parse.unquote(text), "url_unescape(text, plus=False)")
    _check(url_unescape(text, encoding="latin1") == urllib.parse.unquote_plus(text, encoding="latin1"),
           "url_unescape(text, latin1)")

    # forms and query strings, against urllib
    expected = _stdlib(body, keep_blank_values, strict_parsing, max_fields)
    kwargs = {"keep_blank_values": keep_blank_values, "strict_parsing": strict_parsing}
    whole = _ours(parse_urlencoded, body, max_fields=max_fields, **kwargs)
    _check(whole == expected, f"parse_urlencoded: {whole!r}, urllib: {expected!r}")
    qs = _ours(parse_qs_bytes, body, max_num_fields=max_fields, **kwargs)
    _check(qs == expected, f"parse_qs_bytes: {qs!r}, urllib: {expected!r}")
    qs_text = _ours(parse_qs_bytes, body.decode("latin1"), max_num_fields=max_fields, **kwargs)
    _check(qs_text == expected, f"parse_qs_bytes(str): {qs_text!r}, urllib: {expected!r}")
    streamed = _streamed(_pieces(body, seed), keep_blank_values, strict_parsing, max_fields)
    _check(streamed == expected, f"streamed: {streamed!r}, urllib: {expected!r}")


OPTION_BYTES = 2


def parse(payload: bytes) -> None:
    """Only the parsing of ``payload`` (for fuzz/scaling.py)."""
    unquote_bytes(payload)
    url_unescape(payload.decode("latin-1"))
    parse_qs_bytes(payload, True)
    parser = UrlencodedParser(max_fields=1000)
    try:
        for i in range(0, len(payload), 65536):
            parser.feed(payload[i : i + 65536])
        parser.close()
    except UrlencodedError:
        pass


SEEDS = [
    b"\x01\x00a=1&b=2&a=3",
    b"\x00\x05a&b=&=c&&=",
    b"\x11\x03a+b=c+d&%41=%42",
    b"\x21\x09%%=%4&x=%4g%",
    b"\x02\x01&&&a=1&&",
    b"\x31\x00a==b&c=d=e;f=g",
    b"\x01\x07name=%e2%82%ac&n\xff=v\xfe&%C3%A9=%zz",
    b"\x00\x00" + b"%41" * 40 + b"&" * 10 + b"+" * 5,
]

TOKENS = [b"%", b"%4", b"%41", b"%e2%82%ac", b"%zz", b"%%", b"%25", b"+", b"&", b"&&", b"=", b";",
          b"\xff", b"\xc3\xa9", b"%C3%A9", b"%00"]

if __name__ == "__main__":
    from fuzz import _driver

    _driver.main(one_input, SEEDS, TOKENS)
