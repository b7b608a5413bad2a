"""Fuzz target: the ``Cookie`` header (``cyclone.httputil.parse_cookie`` and
``HTTPServerRequest.cookies``).

Input layout: byte 0 picks how the rest is read as text (latin-1, or UTF-8
with replacement), the ``max_cookies`` limit and the window size; the rest
is the header.

The documented answers: ``parse_cookie`` never raises without
``max_cookies``, and with it raises :class:`~cyclone.httputil.HTTPInputError`
exactly when there are more cookies than that; ``request.cookies`` skips
what ``http.cookies`` refuses and raises only ``HTTPInputError``.  A crash
is anything else:

* any other exception;
* a result that is not ``{str: str}``, or that changes when the header is
  cut into windows of another size;
* the limit refusing a header within it, or letting one past it through.
"""

from __future__ import annotations

import re

from cyclone import httputil
from cyclone.httputil import (
    HTTPHeaders,
    HTTPInputError,
    HTTPServerRequest,
    parse_cookie,
)

FORBIDDEN_IN_HEADERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class Crash(AssertionError):
    """The parser broke its contract (see the module docstring)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise Crash(message)


def _windowed(header: str, window: int) -> dict:
    saved = httputil._COOKIE_WINDOW
    httputil._COOKIE_WINDOW = window
    try:
        return parse_cookie(header)
    finally:
        httputil._COOKIE_WINDOW = saved


def one_input(data: bytes) -> None:
    if not data:
        return
    options, raw = data[0], data[1:]
    header = raw.decode("latin-1") if options & 1 else raw.decode("utf-8", "replace")
    max_cookies = (options >> 1) & 7
    window = 1 + (options >> 4)

    cookies = parse_cookie(header)
    _check(isinstance(cookies, dict), "not a dict")
    for name, value in cookies.items():
        _check(type(name) is str and type(value) is str, f"types in {cookies!r}")
        _check(name == name.strip(), f"name with whitespace around it: {name!r}")
        _check(";" not in name, f"';' in a name: {name!r}")
    _check(_windowed(header, window) == cookies, f"a window of {window} changes the result")

    try:
        limited = parse_cookie(header, max_cookies=max_cookies)
    except HTTPInputError:
        _check(len(cookies) > max_cookies, f"{len(cookies)} cookies refused with max_cookies={max_cookies}")
    else:
        _check(len(cookies) <= max_cookies, f"{len(cookies)} cookies let through with max_cookies={max_cookies}")
        _check(limited == cookies, "the limit changes the result")

    # the request's cookies: what a client can send (no control characters,
    # as the HTTP parser checks), in one or two Cookie headers
    value = FORBIDDEN_IN_HEADERS.sub("", header).strip(" \t")
    headers = HTTPHeaders()
    half = len(value) // 2 if options & 0x80 else len(value)
    for part in (value[:half], value[half:]):
        if part.strip(" \t"):
            headers.add("Cookie", part.strip(" \t"))
    request = HTTPServerRequest(method="GET", uri="/", headers=headers)
    request.max_cookies = max_cookies + 1
    try:
        morsels = request.cookies
    except HTTPInputError:
        return
    for name, morsel in morsels.items():
        _check(type(name) is str and type(morsel.value) is str, f"morsel {name!r}: {morsel!r}")


OPTION_BYTES = 1


def parse(payload: bytes) -> None:
    """Only the parsing of ``payload`` (for fuzz/scaling.py)."""
    parse_cookie(payload.decode("latin-1"))


SEEDS = [
    b"\x01a=1; b=2",
    b'\x01a="quoted"; b="with \\"escape\\""; c="\\012\\101\\400"',
    b"\x00a=1;;b=2; ; c; =d; e=2;; f = 3 ",
    b'\x81keebler="E=mc2; L=\\"Loves\\"; fudge=\\012;"',
    b"\x05" + "é=ü; ☃=1".encode(),
    b"\x31expires=1; path=/; domain=x; Max-Age=3; secure; httponly; samesite=Lax",
    b"\x11" + b"c=v; " * 20,
]

TOKENS = [b";", b"; ", b"=", b'"', b"\\", b"\\0", b"\\012", b"\\400", b" ", b"\t", b"\x00", b"\xff", b"$Version",
          b"expires", b"path", b"domain", b"Max-Age", b"secure", b"httponly", b"samesite", b"comment"]

if __name__ == "__main__":
    from fuzz import _driver

    _driver.main(one_input, SEEDS, TOKENS)
