"""cyclone.httputil: headers, start lines, form bodies, multipart, cookies,
dates and URLs.  Expected values are what Tornado 6 returns for the same
input, except where the module docstring documents a stricter RFC reading."""

import copy
import datetime
import os
import pickle
import re
import time
import unittest
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cyclone import httputil
from cyclone.httputil import (
    HTTPFile,
    HTTPHeaders,
    HTTPInputError,
    HTTPOutputError,
    RequestStartLine,
    ResponseStartLine,
    _encode_header,
    _parse_header,
    format_timestamp,
    parse_body_arguments,
    parse_cookie,
    parse_multipart_form_data,
    parse_request_start_line,
    parse_response_start_line,
    qs_to_qsl,
    split_host_and_port,
    url_concat,
)

# -- HTTPHeaders ----------------------------------------------------------


@pytest.mark.parametrize(
    "name, normalized",
    [
        ("content-type", "Content-Type"),
        ("CONTENT-TYPE", "Content-Type"),
        ("Content-Type", "Content-Type"),
        ("x-xss-protection", "X-Xss-Protection"),
        ("WWW-Authenticate", "Www-Authenticate"),
        ("etag", "Etag"),
        ("a", "A"),
        ("x--y", "X--Y"),
        ("-x-", "-X-"),
        ("x_y", "X_y"),
    ],
)
def test_header_name_normalization(name, normalized):
    h = HTTPHeaders()
    h[name] = "v"
    assert list(h) == [normalized]
    assert h[name.swapcase()] == "v"
    assert name.upper() in h


def test_header_name_cache_is_bounded():
    h = HTTPHeaders()
    for i in range(5000):
        h.add(f"x-unique-{i}", "v")
    assert len(h) == 5000
    assert len(httputil._NORMALIZED_NAMES) <= httputil._NORMALIZED_NAMES_MAX
    assert h["X-UNIQUE-1"] == "v"


def test_headers_multiple_values():
    h = HTTPHeaders()
    h.add("Set-Cookie", "a=1")
    h.add("set-cookie", "b=2")
    h.add("Content-Type", "text/html")
    assert h["SET-COOKIE"] == "a=1,b=2"
    assert h.get_list("set-cookie") == ["a=1", "b=2"]
    assert h.get_list("missing") == []
    assert list(h.get_all()) == [
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Type", "text/html"),
    ]
    assert dict(h) == {"Set-Cookie": "a=1,b=2", "Content-Type": "text/html"}
    assert len(h) == 2
    assert str(h) == "Set-Cookie: a=1\nSet-Cookie: b=2\nContent-Type: text/html\n"
    # get_list returns a copy: changing it does not change the headers.
    h.get_list("Set-Cookie").append("c=3")
    assert h.get_list("Set-Cookie") == ["a=1", "b=2"]


def test_headers_setitem_replaces_all_values():
    h = HTTPHeaders()
    h.add("X", "1")
    h.add("X", "2")
    h["x"] = "3"
    assert h.get_list("X") == ["3"]


@pytest.mark.parametrize(
    "args, kwargs, expected",
    [
        (({"content-type": "text/html", "X": "1"},), {}, [("Content-Type", "text/html"), ("X", "1")]),
        (([("a", "1"), ("b", "2"), ("a", "3")],), {}, [("A", "3"), ("B", "2")]),
        ((), {"content_length": "5"}, [("Content_length", "5")]),
        (({"a": "1"},), {"b": "2"}, [("A", "1"), ("B", "2")]),
        ((), {}, []),
    ],
)
def test_headers_constructor(args, kwargs, expected):
    assert list(HTTPHeaders(*args, **kwargs).get_all()) == expected


def test_headers_copy_keeps_every_value_and_is_independent():
    h = HTTPHeaders()
    h.add("A", "1")
    h.add("A", "2")
    for other in (HTTPHeaders(h), h.copy(), copy.copy(h), copy.deepcopy(h),
                  pickle.loads(pickle.dumps(h))):
        assert type(other) is HTTPHeaders
        assert other.get_list("a") == ["1", "2"]
        other.add("A", "3")
        other["B"] = "x"
        assert h.get_list("a") == ["1", "2"] and "B" not in h


def test_headers_mapping_methods():
    h = HTTPHeaders({"A": "1", "B": "2"})
    assert h.get("a") == "1" and h.get("c") is None and h.get("c", "d") == "d"
    assert "a" in h and "c" not in h and 1 not in h
    assert h.pop("A") == "1" and "A" not in h
    with pytest.raises(KeyError):
        h["A"]
    with pytest.raises(KeyError):
        del h["A"]
    h.update({"c": "3"}, d="4")
    assert sorted(h.items()) == [("B", "2"), ("C", "3"), ("D", "4")]
    assert h.setdefault("b", "x") == "2"
    assert h == {"B": "2", "C": "3", "D": "4"}
    h.clear()
    assert len(h) == 0 and list(h.get_all()) == []


def test_headers_repr_shows_all_values():
    h = HTTPHeaders()
    h.add("A", "1")
    h.add("A", "2")
    assert repr(h) == "HTTPHeaders([('A', '1'), ('A', '2')])"


@pytest.mark.parametrize(
    "block, expected",
    [
        ("Content-Type: text/html\r\nContent-Length: 42\r\n",
         [("Content-Type", "text/html"), ("Content-Length", "42")]),
        ("A: 1\r\nB: 2\r\nA: 3\r\n\r\n", [("A", "1"), ("A", "3"), ("B", "2")]),
        ("X:  padded \t\r\n", [("X", "padded")]),
        ("X:\tv\t", [("X", "v")]),
        ("X:\r\n", [("X", "")]),
        ("X: a b,  c\r\n", [("X", "a b,  c")]),
        ("X: a\xa0\r\n", [("X", "a\xa0")]),  # only SP/HTAB are stripped
        ("X: caf\xc3\xa9\r\n", [("X", "caf\xc3\xa9")]),  # obs-text passes
        ("X: a:b:c\r\n", [("X", "a:b:c")]),
        ("\r\nX: 1\r\n", [("X", "1")]),
        ("", []),
        ("!#$%&'*+-.^_`|~09azAZ: token\r\n", [("!#$%&'*+-.^_`|~09azaz", "token")]),
    ],
)
def test_headers_parse(block, expected):
    assert sorted(HTTPHeaders.parse(block).get_all()) == sorted(expected)


def test_headers_parse_bytes_is_latin1():
    h = HTTPHeaders.parse(b"X: \xe9\xff\r\n")
    assert h["X"] == "\xe9\xff"


@pytest.mark.parametrize(
    "block",
    [
        "no colon here\r\n",
        "X : space before colon\r\n",
        " X: leading space\r\n",
        "X: 1\r\n folded\r\n",  # obs-fold
        "X: 1\r\n\tfolded\r\n",
        "X: 1\nY: 2\r\n",  # bare LF
        "X: 1\rY: 2\r\n",  # bare CR
        "X: a\x00b\r\n",
        "X: a\x7fb\r\n",
        "X: a\x1bb\r\n",
        ": empty name\r\n",
        "X@Y: bad name\r\n",
        "X(Y): bad name\r\n",
        "Caf\xe9: non-ascii name\r\n",
        "X\x00: nul in name\r\n",
    ],
)
def test_headers_parse_rejects_malformed(block):
    with pytest.raises(HTTPInputError):
        HTTPHeaders.parse(block)


def test_headers_parse_line():
    h = HTTPHeaders()
    h.parse_line("Content-Type: text/html")
    h.parse_line("content-type:  text/plain ")
    assert h.get_list("Content-Type") == ["text/html", "text/plain"]
    with pytest.raises(HTTPInputError, match="obs-fold"):
        h.parse_line(" continuation: with a colon")


@pytest.mark.parametrize(
    "name, value",
    [("X Y", "v"), ("", "v"), ("X:", "v"), ("X", "a\r\nInjected: 1"), ("X", "a\nb"), ("X", "a\x00")],
)
def test_headers_add_validates(name, value):
    h = HTTPHeaders()
    with pytest.raises(HTTPInputError):
        h.add(name, value)
    assert len(h) == 0


def test_headers_many_repeated_values_stay_cheap():
    # Adding the n-th value must not rebuild the joined value (quadratic).
    h = HTTPHeaders.parse("X: y\r\n" * 100_000)
    assert len(h.get_list("X")) == 100_000
    assert h["X"] == ",".join(["y"] * 100_000)


# -- start lines ------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("GET / HTTP/1.1", ("GET", "/", "HTTP/1.1")),
        ("POST /a?b=c HTTP/1.0", ("POST", "/a?b=c", "HTTP/1.0")),
        ("get /x HTTP/1.1", ("get", "/x", "HTTP/1.1")),
        ("OPTIONS * HTTP/1.1", ("OPTIONS", "*", "HTTP/1.1")),
        ("CONNECT example.com:443 HTTP/1.1", ("CONNECT", "example.com:443", "HTTP/1.1")),
        ("GET http://x/ HTTP/1.1", ("GET", "http://x/", "HTTP/1.1")),
        ("GET /\xe9 HTTP/1.1", ("GET", "/\xe9", "HTTP/1.1")),
        # Well formed but unsupported: the server answers 505 itself.
        ("GET / HTTP/2.0", ("GET", "/", "HTTP/2.0")),
    ],
)
def test_parse_request_start_line(line, expected):
    parsed = parse_request_start_line(line)
    assert parsed == expected
    assert isinstance(parsed, RequestStartLine)
    assert (parsed.method, parsed.path, parsed.version) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "GET /",
        "GET  / HTTP/1.1",
        "GET / HTTP/1.1 ",
        "GET /a b HTTP/1.1",
        "G@T / HTTP/1.1",
        "GET /\x00 HTTP/1.1",
        "GET /a\x7f HTTP/1.1",
        "GET /a\tb HTTP/1.1",
        "GET / http/1.1",
        "GET / HTTP/1.12",
        "GET / HTTP/1",
        "GET / HTTP/1.1\r",
        "GET / HTTP/\u0661.\u0661",
    ],
)
def test_parse_request_start_line_rejects(line):
    with pytest.raises(HTTPInputError):
        parse_request_start_line(line)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("HTTP/1.1 200 OK", ("HTTP/1.1", 200, "OK")),
        ("HTTP/1.0 404 Not Found", ("HTTP/1.0", 404, "Not Found")),
        ("HTTP/1.1 200 ", ("HTTP/1.1", 200, "")),
        ("HTTP/1.1 204", ("HTTP/1.1", 204, "")),
        ("HTTP/1.1 599 x\ty", ("HTTP/1.1", 599, "x\ty")),
    ],
)
def test_parse_response_start_line(line, expected):
    parsed = parse_response_start_line(line)
    assert parsed == expected and isinstance(parsed, ResponseStartLine)
    assert parsed.code == expected[1]


@pytest.mark.parametrize(
    "line",
    ["HTTP/1.1 20 x", "HTTP/1.1 2000 x", "HTTP/2 200 OK", "HTTP/1.0 404 Not Found\r",
     "HTTP/1.1 200 OK\r\n", "ICY 200 OK", "HTTP/1.1  200 OK", ""],
)
def test_parse_response_start_line_rejects(line):
    with pytest.raises(HTTPInputError):
        parse_response_start_line(line)


# -- header parameters ------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ('text/html; charset="utf-8"', ("text/html", {"charset": "utf-8"})),
        ("text/html;charset=UTF-8", ("text/html", {"charset": "UTF-8"})),
        ('form-data; name="a;b"; filename="C:\\x\\y.txt"',
         ("form-data", {"name": "a;b", "filename": "C:\\x\\y.txt"})),
        ('form-data; name="files"; filename="a\\"b.txt"',
         ("form-data", {"name": "files", "filename": 'a"b.txt'})),
        ("attachment; filename*=UTF-8''%e2%82%ac%20rates", ("attachment", {"filename": "€ rates"})),
        ("attachment; filename=\"fallback.txt\"; filename*=UTF-8''%e2%82%ac.txt",
         ("attachment", {"filename": "€.txt"})),
        ("attachment; filename*=UTF-8''%e2%82%ac.txt; filename=\"fallback.txt\"",
         ("attachment", {"filename": "€.txt"})),
        ("attachment; filename*=iso-8859-1'en'%A3%20rates", ("attachment", {"filename": "£ rates"})),
        ("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
         ("multipart/form-data", {"boundary": "----WebKitFormBoundary7MA4YWxkTrZu0gW"})),
        (' Text/HTML ; Charset = "x" ', ("Text/HTML", {"charset": "x"})),
        ("a; flag; k=v", ("a", {"k": "v"})),
        ("", ("", {})),
        ("a;=x", ("a", {"": "x"})),
        ('a; b="unterminated', ("a", {"b": '"unterminated'})),
        ('a; B="\\\\"', ("a", {"b": "\\"})),
    ],
)
def test_parse_header(line, expected):
    assert _parse_header(line) == expected


def test_parse_header_is_linear():
    # Quote/semicolon soup: the old quote-counting splitter was quadratic.
    n = 200_000
    value, params = _parse_header("a" + ';"' * n)
    assert value == "a"
    value, params = _parse_header('a; b="' + '\\"' * n + '"')
    assert params == {"b": '"' * n}
    value, params = _parse_header("a" + "; x=y" * n)
    assert params == {"x": "y"}


@pytest.mark.parametrize(
    "key, pdict, expected",
    [
        ("permessage-deflate", {"client_max_window_bits": 15, "client_no_context_takeover": None},
         "permessage-deflate; client_max_window_bits=15; client_no_context_takeover"),
        ("a", {}, "a"),
        ("a", {"z": "1", "b": None, "c": "x y"}, "a; b; c=x y; z=1"),
    ],
)
def test_encode_header(key, pdict, expected):
    assert _encode_header(key, pdict) == expected


def test_encode_parse_round_trip():
    encoded = _encode_header("form-data", {"name": "files", "filename": "ab.txt"})
    assert _parse_header(encoded) == ("form-data", {"name": "files", "filename": "ab.txt"})


# -- urlencoded and multipart bodies ------------------------------------


def _body_args(content_type, body, headers=None, **kwargs):
    arguments, files = {}, {}
    parse_body_arguments(content_type, body, arguments, files, headers, **kwargs)
    return arguments, files


@pytest.mark.parametrize(
    "content_type, body, expected",
    [
        ("application/x-www-form-urlencoded", b"a=1&b=&c=%ff&a=2&d",
         {"a": [b"1", b"2"], "b": [b""], "c": [b"\xff"], "d": [b""]}),
        ("application/x-www-form-urlencoded; charset=utf-8", b"a=%C3%A9+x", {"a": ["é x".encode()]}),
        ("Application/X-WWW-Form-Urlencoded", b"a=1", {"a": [b"1"]}),
        ("application/x-www-form-urlencoded", b"a=1&a=%", {"a": [b"1", b"%"]}),
        ("application/x-www-form-urlencoded", b"\xff=\xfe", {"\xff": [b"\xfe"]}),
        ("application/x-www-form-urlencoded", b"=1&&;x=2", {"": [b"1"], ";x": [b"2"]}),
        ("application/x-www-form-urlencoded", b"", {}),
        ("text/plain", b"a=1", {}),
        ("application/json", b'{"a": 1}', {}),
        ("", b"a=1", {}),
    ],
)
def test_parse_body_arguments_urlencoded(content_type, body, expected):
    assert _body_args(content_type, body) == (expected, {})


def test_parse_body_arguments_extends_existing_arguments():
    arguments = {"a": [b"0"]}
    parse_body_arguments("application/x-www-form-urlencoded", b"a=1", arguments, {})
    assert arguments == {"a": [b"0", b"1"]}


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "gzip, identity"])
@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=B"]
)
def test_parse_body_arguments_refuses_content_encoding(content_type, encoding):
    with pytest.raises(HTTPInputError, match="Content-Encoding"):
        _body_args(content_type, b"a=1", HTTPHeaders({"Content-Encoding": encoding}))


def test_parse_body_arguments_identity_encoding_and_other_types_are_fine():
    assert _body_args("application/x-www-form-urlencoded", b"a=1",
                      HTTPHeaders({"Content-Encoding": "Identity"})) == ({"a": [b"1"]}, {})
    # Bodies it does not parse are not its business.
    assert _body_args("application/octet-stream", b"\x1f\x8b",
                      HTTPHeaders({"Content-Encoding": "gzip"})) == ({}, {})


MULTIPART = (
    b"--1234\r\n"
    b'Content-Disposition: form-data; name="files"; filename="ab.txt"\r\n'
    b"\r\n"
    b"Foo\r\n"
    b"--1234--"
)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=1234",
        'multipart/form-data; boundary="1234"',
        "multipart/form-data; charset=utf-8; boundary=1234",
        "Multipart/Form-Data;boundary=1234",
    ],
)
def test_parse_body_arguments_multipart(content_type):
    arguments, files = _body_args(content_type, MULTIPART)
    assert arguments == {}
    assert files == {"files": [{"filename": "ab.txt", "body": b"Foo",
                                "content_type": "application/unknown"}]}


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", 'multipart/form-data; boundary=""']
)
def test_parse_body_arguments_multipart_without_boundary(content_type):
    with pytest.raises(HTTPInputError):
        _body_args(content_type, MULTIPART)


def test_parse_body_arguments_passes_multipart_limits():
    body = b"".join(_part(b"a", b"1") for _ in range(3)) + b"--B--"
    assert _body_args("multipart/form-data; boundary=B", body, max_parts=3)[0] == {"a": [b"1"] * 3}
    with pytest.raises(HTTPInputError):
        _body_args("multipart/form-data; boundary=B", body, max_parts=2)
    with pytest.raises(HTTPInputError):
        _body_args("multipart/form-data; boundary=B", body, max_part_header_size=20)


def _part(name, body, filename=None, content_type=None, boundary=b"B", extra=b""):
    disposition = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    headers = disposition + b"\r\n"
    if content_type is not None:
        headers += b"Content-Type: " + content_type + b"\r\n"
    return b"--" + boundary + b"\r\n" + headers + extra + b"\r\n" + body + b"\r\n"


def _multipart(data, boundary=b"B", **kwargs):
    arguments, files = {}, {}
    parse_multipart_form_data(boundary, data, arguments, files, **kwargs)
    return arguments, {k: [dict(f) for f in v] for k, v in files.items()}


def _file(filename, body, content_type="application/unknown"):
    return {"filename": filename, "body": body, "content_type": content_type}


@pytest.mark.parametrize(
    "data, boundary, expected_args, expected_files",
    [
        (MULTIPART, b"1234", {}, {"files": [_file("ab.txt", b"Foo")]}),
        (MULTIPART, b'"1234"', {}, {"files": [_file("ab.txt", b"Foo")]}),
        (MULTIPART, "1234", {}, {"files": [_file("ab.txt", b"Foo")]}),
        (MULTIPART + b"\r\nepilogue\r\n--1234\r\nignored", b"1234", {},
         {"files": [_file("ab.txt", b"Foo")]}),
        (b"This is the preamble.\r\n" + MULTIPART, b"1234", {},
         {"files": [_file("ab.txt", b"Foo")]}),
        (MULTIPART.replace(b"--1234\r\n", b"--1234 \t \r\n"), b"1234", {},
         {"files": [_file("ab.txt", b"Foo")]}),
        (_part(b"a", b"1") + _part(b"a", b"2") + _part(b"b", b"") + b"--B--\r\n", b"B",
         {"a": [b"1", b"2"], "b": [b""]}, {}),
        (_part(b"f", b"data", filename=b"", content_type=b"text/plain") + b"--B--", b"B",
         {"f": [b"data"]}, {}),
        (_part(b"f", b"<p>", filename=b"x.html", content_type=b"text/html") + b"--B--", b"B",
         {}, {"f": [_file("x.html", b"<p>", "text/html")]}),
        (_part(b"f", b"x", filename="é €.txt".encode()) + b"--B--", b"B",
         {}, {"f": [_file("é €.txt", b"x")]}),
        (_part(b"f", b"x", filename=b'a\\"b.txt') + b"--B--", b"B",
         {}, {"f": [_file('a"b.txt', b"x")]}),
        (_part(b"f", b"x", filename=b"C:\\dir\\f.txt") + b"--B--", b"B",
         {}, {"f": [_file("C:\\dir\\f.txt", b"x")]}),
        (_part("名前".encode(), b"v") + b"--B--", b"B", {"名前": [b"v"]}, {}),
        # Binary body with CR, LF, NUL and boundary look-alikes in it.
        (_part(b"bin", b"\r\n\x00--B\r--Bx\r\n--Bx\r\n\r\n--") + b"--B--", b"B",
         {"bin": [b"\r\n\x00--B\r--Bx\r\n--Bx\r\n\r\n--"]}, {}),
        # A part with headers and no body at all (RFC 2046 body-part grammar).
        (b'--B\r\nContent-Disposition: form-data; name="e"\r\n\r\n--B--', b"B", {"e": [b""]}, {}),
        # Lowercase header names and extra headers are fine.
        (b'--B\r\ncontent-disposition: FORM-DATA; NAME="a"\r\nX-Extra: 1\r\n\r\nv\r\n--B--', b"B",
         {"a": [b"v"]}, {}),
        # The first close delimiter ends the body.
        (_part(b"a", b"1") + b"--B--\r\n" + _part(b"b", b"2") + b"--B--", b"B", {"a": [b"1"]}, {}),
        (b"--B--", b"B", {}, {}),
        (b"--B--\r\n", b"B", {}, {}),
        # "--B" not followed by CRLF is no delimiter: all of this is preamble.
        (b'--B\rContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--B--', b"B", {}, {}),
    ],
)
def test_parse_multipart_form_data(data, boundary, expected_args, expected_files):
    assert _multipart(data, boundary) == (expected_args, expected_files)


def test_multipart_http_file_has_attributes():
    files = {}
    parse_multipart_form_data(b"1234", MULTIPART, {}, files)
    f = files["files"][0]
    assert isinstance(f, HTTPFile)
    assert (f.filename, f.body, f.content_type) == ("ab.txt", b"Foo", "application/unknown")


@pytest.mark.parametrize(
    "data, boundary",
    [
        (b"", b"B"),
        (b"no boundary anywhere", b"B"),
        (MULTIPART, b""),
        (MULTIPART, b'""'),
        (MULTIPART.replace(b"--1234--", b""), b"1234"),  # no final boundary
        (MULTIPART.replace(b"--1234--", b"--1234"), b"1234"),
        (MULTIPART.replace(b"Foo\r\n", b"Foo"), b"1234"),
        (b"--B\r\n\r\nno headers\r\n--B--", b"B"),
        # No header fields at all; the body merely looks like headers.
        (b'--B\r\n\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--B--', b"B"),
        (b"--B\r\n--B--", b"B"),
        (b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\nvalue-without-blank-line\r\n--B--", b"B"),
        (_part(b"a", b"v").replace(b"form-data", b"attachment") + b"--B--", b"B"),
        (_part(b"a", b"v").replace(b"Content-Disposition", b"Content-Type") + b"--B--", b"B"),
        (_part(b"", b"v") + b"--B--", b"B"),
        (b'--B\r\nContent-Disposition: form-data; filename="x"\r\n\r\nv\r\n--B--', b"B"),
        (_part(b"a", b"v", filename=b"\xff\xfe") + b"--B--", b"B"),  # headers not UTF-8
        (_part(b"a", b"v", extra=b"X: a\rb\r\n") + b"--B--", b"B"),  # bare CR
        (_part(b"a", b"v", extra=b"X: a\nb\r\n") + b"--B--", b"B"),  # bare LF
        (_part(b"a", b"v", extra=b"X: a\r\n folded\r\n") + b"--B--", b"B"),  # obs-fold
        (_part(b"a", b"v", extra=b"no colon\r\n") + b"--B--", b"B"),
        (_part(b"a", b"v", extra=b"X: \x00\r\n") + b"--B--", b"B"),
    ],
)
def test_parse_multipart_form_data_rejects(data, boundary):
    with pytest.raises(HTTPInputError):
        _multipart(data, boundary)


def test_multipart_part_limit():
    body = b"".join(_part(b"a", b"1") for _ in range(100)) + b"--B--"
    assert len(_multipart(body)[0]["a"]) == 100
    with pytest.raises(HTTPInputError, match="100 parts"):
        _multipart(_part(b"a", b"1") + body)
    assert len(_multipart(body, max_parts=1000)[0]["a"]) == 100
    with pytest.raises(HTTPInputError, match="5 parts"):
        _multipart(body, max_parts=5)


@pytest.mark.parametrize("body", [b"v", b""])
def test_multipart_part_header_size_limit(body):
    base = b'Content-Disposition: form-data; name="a"\r\nX-Pad: '
    # A header block (up to the CRLF CRLF that ends it) of exactly the limit.
    exact = b"--B\r\n" + base + b"p" * (10240 - len(base)) + b"\r\n\r\n" + body + b"\r\n--B--"
    assert _multipart(exact) == ({"a": [body]}, {})
    one_more = exact.replace(b"X-Pad: ", b"X-Pad: p")
    with pytest.raises(HTTPInputError, match="too large"):
        _multipart(one_more)
    assert _multipart(one_more, max_part_header_size=10241) == ({"a": [body]}, {})
    with pytest.raises(HTTPInputError, match="too large"):
        _multipart(_part(b"a", b"v") + b"--B--", max_part_header_size=10)


def test_multipart_large_body_round_trips():
    blob = os.urandom(1 << 20).replace(b"\r\n--B", b"")
    data = _part(b"f", blob, filename=b"blob.bin", content_type=b"application/octet-stream") + b"--B--"
    arguments, files = _multipart(data)
    assert files["f"][0]["body"] == blob


@pytest.mark.parametrize(
    "data",
    [
        # 1 MB of delimiter look-alikes inside one part.
        _part(b"a", b"\r\n--Bx" * 170_000) + b"--B--",
        # 1 MB of CRLFs, no headers.
        b"--B\r\n" + b"\r\n" * 500_000 + b"--B--",
        # Huge header-less part, no blank line.
        b"--B\r\n" + b"a" * 1_000_000 + b"\r\n--B--",
        # 1 MB of transport padding that never ends in CRLF.
        b"--B" + b" " * 1_000_000 + b"x",
        (b"\r\n--B" + b" " * 10) * 60_000,
        # Many parts over the limit: stopped at the limit, not parsed to the end.
        _part(b"a", b"1") * 100_000 + b"--B--",
    ],
)
def test_multipart_adversarial_input_finishes(data):
    # Linear-time parsing: these return (or raise HTTPInputError) at once; a
    # quadratic parser would not finish.
    try:
        _multipart(data)
    except HTTPInputError:
        pass


def test_multipart_many_parts_within_a_raised_limit():
    n = 20_000
    data = b"".join(_part(b"k%d" % (i % 7), b"%d" % i) for i in range(n)) + b"--B--"
    arguments, _ = _multipart(data, max_parts=n)
    assert sum(len(v) for v in arguments.values()) == n
    assert arguments["k0"][:2] == [b"0", b"7"]


_MULTIPART_PIECES = [b"\r\n", b"\r", b"\n", b"--", b"B", b"-", b'"', b";", b"=", b":", b" ",
                     b"\x00", b"\xff", b"\xc3\xa9", b"Content-Disposition: form-data",
                     b'; name="a"', b'; filename="f"', b"Content-Type: x/y", b"--B\r\n",
                     b"\r\n--B--", b"\r\n\r\n", b"name*=UTF-8''%e2%82%ac"]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_MULTIPART_PIECES), max_size=40).map(b"".join),
       st.sampled_from([b"B", b'"B"', b"--", "B"]))
def test_multipart_raises_only_http_input_error(data, boundary):
    arguments, files = {}, {}
    try:
        parse_multipart_form_data(boundary, data, arguments, files)
    except HTTPInputError:
        return
    for values in arguments.values():
        assert all(isinstance(v, bytes) for v in values)
    for values in files.values():
        assert all(isinstance(f.body, bytes) and isinstance(f.filename, str) for f in values)


@given(st.binary(max_size=300), st.binary(min_size=1, max_size=5))
def test_multipart_raises_only_http_input_error_on_random_bytes(data, boundary):
    try:
        parse_multipart_form_data(boundary, data, {}, {})
    except HTTPInputError:
        pass


@given(st.text(max_size=80), st.binary(max_size=200))
def test_parse_body_arguments_raises_only_http_input_error(content_type, body):
    for ct in (content_type, "multipart/form-data; " + content_type,
               "application/x-www-form-urlencoded; " + content_type):
        try:
            parse_body_arguments(ct, body, {}, {})
        except HTTPInputError:
            pass


@given(st.text(max_size=200))
def test_header_parsers_raise_only_http_input_error(text):
    _parse_header(text)
    for func in (HTTPHeaders.parse, parse_request_start_line, parse_response_start_line):
        try:
            func(text)
        except HTTPInputError:
            pass


# -- cookies ----------------------------------------------------------------


@pytest.mark.parametrize(
    "header, expected",
    [
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ('a="quoted"; b="with \\"escape\\""', {"a": "quoted", "b": 'with "escape"'}),
        ('a="\\012\\101\\400"', {"a": "\nA400"}),
        ("a=1;;b=2; ; c", {"a": "1", "b": "2", "": "c"}),
        ("nameless", {"": "nameless"}),
        ("=value", {"": "value"}),
        ("a=b=c", {"a": "b=c"}),
        (" a = 1 ", {"a": "1"}),
        ("a=1; a=2", {"a": "2"}),
        ('a="unterminated', {"a": '"unterminated'}),
        ('a=""', {"a": ""}),
        ('a="', {"a": '"'}),
        ('\x00;=;;"', {"": '"'}),
        ('keebler="E=mc2; L=\\"Loves\\"; fudge=\\012;"',
         {"keebler": '"E=mc2', "L": '\\"Loves\\"', "fudge": "\\012", "": '"'}),
        ("a=é", {"a": "é"}),
        ("a=1,b=2", {"a": "1,b=2"}),
        ('a="x\\"', {"a": "x\\"}),
        ("", {}),
        (";;;", {}),
        ('a="\\\\"', {"a": "\\"}),
        ("a b=c d", {"a b": "c d"}),
        ('a="x"y"', {"a": 'x"y'}),
        ('\\"=1', {'\\"': "1"}),
    ],
)
def test_parse_cookie(header, expected):
    assert parse_cookie(header) == expected


def test_parse_cookie_100k_pairs():
    n = 100_000
    header = "; ".join(f'k{i}="v\\{i % 8}{i % 8}{i % 8}{i}"' for i in range(n))
    cookies = parse_cookie(header)
    assert len(cookies) == n
    assert cookies["k9"] == "vI9"  # \111 is octal for "I"
    assert cookies["k99999"] == "v77799999"  # \777 is not an octal escape: "\7" is "7"


@pytest.mark.parametrize(
    "header",
    [
        '"' + "\\" * 1_000_000 + '"',
        "a=" + '"' + "\\012" * 300_000 + '"',
        ";" * 1_000_000,
        "=" * 1_000_000,
        '"' * 1_000_000,
    ],
)
def test_parse_cookie_pathological_input_finishes(header):
    assert isinstance(parse_cookie(header), dict)


@given(st.text(max_size=300))
def test_parse_cookie_never_raises(header):
    cookies = parse_cookie(header)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in cookies.items())


@given(st.lists(st.sampled_from(['a', '=', ';', '"', '\\', '0', '7', ' ', '\t', '\x00', 'é']),
                max_size=60).map("".join))
def test_parse_cookie_never_raises_on_cookie_syntax_soup(header):
    assert isinstance(parse_cookie(header), dict)


# -- dates, URLs --------------------------------------------------------


@pytest.mark.parametrize(
    "ts, expected",
    [
        (784111777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (784111777.999, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (datetime.datetime(1994, 11, 6, 8, 49, 37), "Sun, 06 Nov 1994 08:49:37 GMT"),
        (datetime.datetime(1994, 11, 6, 10, 49, 37,
                           tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
         "Sun, 06 Nov 1994 08:49:37 GMT"),
        (time.gmtime(784111777), "Sun, 06 Nov 1994 08:49:37 GMT"),
        ((1994, 11, 6, 8, 49, 37, 0, 0, 0), "Sun, 06 Nov 1994 08:49:37 GMT"),
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
        (951782400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"),
    ],
)
def test_format_timestamp(ts, expected):
    assert format_timestamp(ts) == expected


@pytest.mark.parametrize("ts", ["784111777", None, [1994, 11, 6], datetime.date(1994, 11, 6)])
def test_format_timestamp_rejects(ts):
    with pytest.raises(TypeError, match="unknown timestamp type"):
        format_timestamp(ts)


@pytest.mark.parametrize(
    "url, args, expected",
    [
        ("http://example.com/foo", {"c": "d"}, "http://example.com/foo?c=d"),
        ("http://example.com/foo?a=b", {"c": "d"}, "http://example.com/foo?a=b&c=d"),
        ("http://example.com/foo?a=b", [("c", "d"), ("c", "d2")],
         "http://example.com/foo?a=b&c=d&c=d2"),
        ("http://x/p?a=1&b=", {"c": "d e", "a": "2"}, "http://x/p?a=1&b=&c=d+e&a=2"),
        ("http://x/p#f", [("a", "1"), ("a", "2")], "http://x/p?a=1&a=2#f"),
        ("/p?x", None, "/p?x"),
        ("/p?q=a b", (), "/p?q=a+b"),
        ("/p", (("x", "/&="),), "/p?x=%2F%26%3D"),
        ("/p", {"é": "ü"}, "/p?%C3%A9=%C3%BC"),
        ("", {"a": 1}, "?a=1"),
    ],
)
def test_url_concat(url, args, expected):
    assert url_concat(url, args) == expected


@pytest.mark.parametrize("args", ["a=b", 5, {"a"}])
def test_url_concat_rejects_other_arg_types(args):
    with pytest.raises(TypeError):
        url_concat("/p", args)


def test_qs_to_qsl():
    assert list(qs_to_qsl({"a": [b"1", b"2"], "b": [], "c": ["x"]})) == [
        ("a", b"1"), ("a", b"2"), ("c", "x")]


@pytest.mark.parametrize(
    "netloc, expected",
    [
        ("a:80", ("a", 80)),
        ("a", ("a", None)),
        ("example.com:8080", ("example.com", 8080)),
        ("[::1]:8", ("[::1]", 8)),
        ("[::1]", ("[::1]", None)),
        ("a:", ("a:", None)),
        ("a:b", ("a:b", None)),
        (":80", (":80", None)),
        ("a:080", ("a", 80)),
        ("a:\u0663", ("a:\u0663", None)),  # only ASCII digits make a port
        ("a: 80", ("a: 80", None)),
        ("", ("", None)),
    ],
)
def test_split_host_and_port(netloc, expected):
    assert split_host_and_port(netloc) == expected


# -- misc -----------------------------------------------------------------


def test_exceptions():
    assert issubclass(HTTPInputError, Exception)
    assert issubclass(HTTPOutputError, Exception)
    assert not issubclass(HTTPInputError, HTTPOutputError)


def test_doctests_suite_runs_and_passes():
    suite = httputil.doctests()
    assert suite.countTestCases() > 5
    with open(os.devnull, "w") as devnull:
        result = unittest.TextTestRunner(stream=devnull).run(suite)
    assert result.wasSuccessful()


# -- budgets on hostile input (issue 11): tracemalloc peak within 12 times the
# input, CPU time within a multiple of a plain input of the same size


def _peak(function, *args, **kwargs):
    import tracemalloc

    tracemalloc.start()
    try:
        try:
            function(*args, **kwargs)
        except HTTPInputError:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _cpu(function, *args, **kwargs):
    import time

    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        try:
            function(*args, **kwargs)
        except HTTPInputError:
            pass
        best = min(best, time.process_time() - start)
    return best


def _multipart_worst_cases(size):
    part = b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n\r\n'
    return {
        "many tiny parts": part * (size // len(part)) + b"--B--\r\n",
        "huge part header": b"--B\r\nX: " + b"a" * size + b"\r\n\r\nv\r\n--B--\r\n",
        "near boundaries": b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n'
        + b"\r\n--Bx" * (size // 5) + b"\r\n--B--\r\n",
        "dashes": b"--B\r\n" + b"-" * size,
        "CRLFs": b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n' + b"\r\n" * (size // 2),
    }


def _plain_multipart(size):
    """A form of 100 fields (the default most) of text, ``size`` bytes in all."""
    part = b'--B\r\nContent-Disposition: form-data; name="f"\r\n\r\n' + b"some text. " * (size // 1100)
    return b"\r\n".join([part] * 100) + b"\r\n--B--\r\n"


@pytest.mark.parametrize("size", [300_000, 3_000_000])
def test_multipart_within_memory_and_time_budget(size):
    plain = _cpu(parse_multipart_form_data, b"B", _plain_multipart(size), {}, {})
    for name, data in _multipart_worst_cases(size).items():
        peak = _peak(parse_multipart_form_data, b"B", data, {}, {})
        assert peak <= 12 * len(data), (name, peak / len(data))
        assert _cpu(parse_multipart_form_data, b"B", data, {}, {}) <= 10 * plain + 0.01, name


@pytest.mark.parametrize("size", [300_000, 3_000_000])
def test_cookies_within_memory_and_time_budget(size):
    # plain: ordinary cookies of about 40 bytes (no limit, to parse them all)
    plain = "; ".join(f"session_{i}=0123456789abcdef0123456789" for i in range(size // 40))
    t_plain = _cpu(parse_cookie, plain)
    cases = {
        "many cookies": "; ".join(f"c{i}=v" for i in range(size // 8)),
        "separators": ";" * size,
        "equals": "=" * size,
        "escapes": 'q="' + "\\101" * (size // 4) + '"',
        "backslashes": 'q="' + "\\" * size + '"',
    }
    for name, header in cases.items():
        peak = _peak(parse_cookie, header, max_cookies=3000)
        assert peak <= 12 * len(header), (name, peak / len(header))
        # an escape costs a regex callback: up to ~10 times an ordinary byte
        assert _cpu(parse_cookie, header, max_cookies=3000) <= 25 * t_plain + 0.02, name


def test_parse_cookie_max_cookies():
    assert parse_cookie("a=1; b=2", max_cookies=2) == {"a": "1", "b": "2"}
    assert parse_cookie("a=1; a=2; ;;", max_cookies=1) == {"a": "2"}
    with pytest.raises(HTTPInputError, match="more than 2 cookies"):
        parse_cookie("a=1; b=2; c=3", max_cookies=2)


def test_parse_cookie_window_cuts_change_nothing(monkeypatch):
    import cyclone.httputil as httputil_module

    header = 'a=1; b="x;y"; c; =d; e=2;; f = 3 '
    expected = parse_cookie(header)
    monkeypatch.setattr(httputil_module, "_COOKIE_WINDOW", 1)
    assert parse_cookie(header) == expected


# -- property tests: multipart, cookies, header blocks (hypothesis) ----------
# Bounded runs for the normal suite; fuzz/multipart.py, fuzz/cookies.py and
# fuzz/headers.py run the same oracles without a bound (see fuzz/README.rst).

PROPERTY = settings(max_examples=200, deadline=None)

# RFC 2046 bchars (no space: a boundary cannot end in one, and is simpler without)
_BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
boundaries = st.text(alphabet=_BCHARS, min_size=1, max_size=12)
# a part's name or filename: any text a header can carry (no control
# characters but HTAB, no surrogates), quoted with \\ and \" escapes
_PARAM_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="".join(
        map(chr, [*range(0x09), *range(0x0A, 0x20), 0x7F]))),
    max_size=12,
)
_CONTENT_TYPES = [None, "text/plain", "application/octet-stream", "image/png; x=1"]


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _body_atoms(boundary):
    b = boundary.encode()
    return [b"\r\n", b"\r", b"\n", b"--", b"-", b"--" + b, b"\r\n--" + b, b"\r\n--" + b + b"x",
            b"\r\n--" + b[:-1], b"\r\n\r\n", b" ", b"\t", b"\x00", b"\xff", b"x", b"Content-Disposition: "]


def _defuse(content, delimiter, delimiter_re):
    """``content`` with a "!" (not a bchar) put after the boundary of each
    delimiter in it, as framed in a part: between the CRLF that ends the
    part's headers and the CRLF that begins the next delimiter.  What is
    left are look-alikes (``--B!``), which the parser must keep."""
    tail = b"\r\n" + delimiter + b"--"
    framed = b"\r\n" + content + tail
    while True:
        match = delimiter_re.search(framed)
        if match.start() == len(framed) - len(tail):
            return framed[2 : -len(tail)]
        framed = framed[: match.end()] + b"!" + framed[match.end() :]


@st.composite
def multipart_forms(draw):
    """(boundary, body, parts); each part is (name, filename, content_type,
    content, header block size); the contents hold CRLFs and boundary
    look-alikes but never a real delimiter."""
    boundary = draw(boundaries)
    atoms = st.sampled_from(_body_atoms(boundary))
    contents = st.one_of(st.binary(max_size=40), st.lists(atoms, max_size=12).map(b"".join))
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(_PARAM_TEXT.filter(bool))
        filename = draw(st.none() | _PARAM_TEXT)
        content_type = draw(st.sampled_from(_CONTENT_TYPES)) if filename else None
        parts.append((name, filename, content_type, draw(contents)))
    delimiter = b"--" + boundary.encode()
    delimiter_re = re.compile(re.escape(b"\r\n" + delimiter) + rb"(?=--|[ \t]*\r\n)")
    preamble = draw(st.just(b"") | contents)
    out = [preamble + b"\r\n" if preamble else b""]
    built = []
    for name, filename, content_type, content in parts:
        content = _defuse(content, delimiter, delimiter_re)
        disposition = "form-data; name=" + _quote(name)
        if filename is not None:
            disposition += "; filename=" + _quote(filename)
        header = "Content-Disposition: " + disposition
        if content_type is not None:
            header += "\r\nContent-Type: " + content_type
        header = header.encode("utf-8")
        padding = draw(st.sampled_from([b"", b" ", b"\t \t"]))
        out.append(delimiter + padding + b"\r\n" + header + b"\r\n\r\n" + content + b"\r\n")
        built.append((name, filename, content_type, content, len(header)))
    out.append(delimiter + b"--" + draw(st.sampled_from([b"", b"\r\n", b"\r\nepilogue --" + boundary.encode()])))
    body = b"".join(out)
    if preamble:
        # the preamble may not hold the first delimiter either
        first = delimiter_re.search(body)
        assume(first is not None and first.start() == len(preamble))
        assume(not (body.startswith(delimiter) and re.match(rb"--|[ \t]*\r\n", body[len(delimiter):])))
    return boundary, body, built


def _expected_form(parts):
    arguments, files = {}, {}
    for name, filename, content_type, content, _ in parts:
        if filename:
            files.setdefault(name, []).append(_file(filename, content, content_type or "application/unknown"))
        else:
            arguments.setdefault(name, []).append(content)
    return arguments, files


@PROPERTY
@given(multipart_forms(), st.booleans())
def test_property_multipart_round_trips(form, quoted):
    boundary, body, parts = form
    given_boundary = f'"{boundary}"' if quoted else boundary.encode()
    assert _multipart(body, given_boundary, max_parts=10) == _expected_form(parts)
    # the same body through parse_body_arguments, boundary in the Content-Type
    content_type = "multipart/form-data; boundary=" + (f'"{boundary}"' if quoted else boundary)
    arguments, files = _body_args(content_type, body, max_parts=10)
    assert (arguments, {k: [dict(f) for f in v] for k, v in files.items()}) == _expected_form(parts)


@PROPERTY
@given(multipart_forms(), st.integers(0, 6), st.integers(0, 120))
def test_property_multipart_limits_refuse_exactly_past_them(form, max_parts, max_header):
    boundary, body, parts = form
    # the parser stops at the first problem, part by part
    expected = None
    for index, part in enumerate(parts):
        if index + 1 > max_parts:
            expected = f"more than {max_parts} parts"
            break
        if part[4] > max_header:
            expected = "part headers too large"
            break
    limits = {"max_parts": max_parts, "max_part_header_size": max_header}
    if expected is None:
        assert _multipart(body, boundary, **limits) == _expected_form(parts)
    else:
        with pytest.raises(HTTPInputError, match=expected):
            _multipart(body, boundary, **limits)


@PROPERTY
@given(st.one_of(st.binary(max_size=300),
                 st.lists(st.sampled_from(_MULTIPART_PIECES), max_size=40).map(b"".join)),
       st.integers(0, 3), st.integers(0, 80))
def test_property_multipart_within_limits_or_http_input_error(data, max_parts, max_header):
    arguments, files = {}, {}
    try:
        parse_multipart_form_data(b"B", data, arguments, files, max_parts=max_parts,
                                  max_part_header_size=max_header)
    except HTTPInputError:
        return
    # a body that parses holds no more parts than allowed
    assert sum(map(len, arguments.values())) + sum(map(len, files.values())) <= max_parts


_COOKIE_TEXT = st.one_of(
    st.text(max_size=120),
    st.lists(st.sampled_from(["a", "b", "=", ";", "; ", '"', "\\", "\\101", "0", " ", "\t", "é"]),
             max_size=60).map("".join),
)


@PROPERTY
@given(_COOKIE_TEXT, st.integers(0, 6), st.integers(1, 6))
def test_property_parse_cookie_bounded_by_max_cookies(header, max_cookies, window):
    unlimited = parse_cookie(header)
    if len(unlimited) > max_cookies:
        with pytest.raises(HTTPInputError, match=f"more than {max_cookies} cookies"):
            parse_cookie(header, max_cookies=max_cookies)
    else:
        assert parse_cookie(header, max_cookies=max_cookies) == unlimited
    # cut into windows of any size, the header parses the same
    with mock.patch.object(httputil, "_COOKIE_WINDOW", window):
        assert parse_cookie(header) == unlimited


# RFC 6265 cookie-octet: no CTLs, whitespace, DQUOTE, comma, semicolon, backslash
_COOKIE_OCTETS = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in '",;\\')
_TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@PROPERTY
@given(st.lists(st.tuples(st.text(_TCHARS, min_size=1, max_size=8),
                          st.text(_COOKIE_OCTETS, max_size=10), st.booleans()), max_size=8),
       st.sampled_from(["; ", ";", " ; "]))
def test_property_parse_cookie_reads_what_a_browser_sends(pairs, separator):
    header = separator.join(f'{n}="{v}"' if quoted else f"{n}={v}" for n, v, quoted in pairs)
    assert parse_cookie(header) == {n: v for n, v, _ in pairs}  # a later duplicate wins


_FIELD_VALUE_CHARS = "".join(map(chr, [0x09, *range(0x20, 0x7F), *range(0x80, 0x100)]))
_FIELD_LINE_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\U0010ffff]*")


@PROPERTY
@given(st.lists(st.tuples(st.text(_TCHARS, min_size=1, max_size=10),
                          st.text(_FIELD_VALUE_CHARS, max_size=16).map(lambda v: v.strip(" \t")),
                          st.sampled_from(["", " ", "\t", "  \t"]), st.sampled_from(["", " ", "\t "])),
                max_size=10),
       st.booleans())
def test_property_headers_parse_round_trips(fields, as_bytes):
    block = "".join(f"{n}:{pad}{v}{tail}\r\n" for n, v, pad, tail in fields)
    h = HTTPHeaders.parse(block.encode("latin-1") if as_bytes else block)
    expected = {}
    for n, v, _, _ in fields:
        expected.setdefault(n.lower(), []).append(v)
    assert {n.lower(): h.get_list(n) for n in h} == expected
    assert len(list(h.get_all())) == len(fields)
    # what str() writes parses back to the same headers
    again = HTTPHeaders.parse(str(h).replace("\n", "\r\n"))
    assert list(again.get_all()) == list(h.get_all())


_HEADER_ATOMS = ["\r\n", "\r", "\n", ":", ": ", " ", "\t", "X", "x-y", "v", "\x00", "\x7f", "é", "(", "@",
                 "\r\n ", "\r\n\t", "X: v", "Content-Type: text/html\r\n"]


# one line: a field line, valid or broken in one of the ways a smuggler tries
_HEADER_LINES = st.builds(
    "{}{}{}{}{}".format,
    st.sampled_from(["", "", " ", "\t"]),  # obs-fold
    st.sampled_from(["X", "x-y", "Host", "", "X Y", "X@", "é"]),
    st.sampled_from([":", ":", ": ", " :", "\t:", ""]),
    st.sampled_from(["v", "", " a b ", "\ta\t", "\xa0", "a\rb", "a\nb", "\x00", "\x7f", "a\x1fb"]),
    st.sampled_from(["", "", " ", "\t"]),
)


@PROPERTY
@given(st.one_of(st.text(max_size=120), st.lists(st.sampled_from(_HEADER_ATOMS), max_size=30).map("".join),
                 st.lists(_HEADER_LINES, max_size=6).map("\r\n".join)))
def test_property_headers_parse_accepts_exactly_the_field_line_grammar(block):
    # RFC 9110 §5: field-name ":" OWS field-value OWS, CRLF-terminated lines;
    # no controls but HTAB; empty lines are skipped
    valid = all(_FIELD_LINE_RE.fullmatch(line) for line in block.split("\r\n") if line)
    try:
        h = HTTPHeaders.parse(block)
    except HTTPInputError:
        assert not valid, block
        return
    assert valid, block
    assert len(list(h.get_all())) == sum(1 for line in block.split("\r\n") if line)


@PROPERTY
@given(st.binary(max_size=200))
def test_property_headers_parse_bytes_is_latin1_text(data):
    try:
        expected = HTTPHeaders.parse(data.decode("latin-1"))
    except HTTPInputError:
        with pytest.raises(HTTPInputError):
            HTTPHeaders.parse(data)
        return
    assert list(HTTPHeaders.parse(data).get_all()) == list(expected.get_all())


# -- found by fuzzing (fuzz/headers.py, fuzz/multipart.py) --------------------


@pytest.mark.parametrize("charset, value", [("idna", "%61"), ("undefined", "%61"), ("punycode", "%ff")])
def test_rfc8187_charset_that_cannot_decode_raises_only_http_input_error(charset, value):
    # these Python codecs raise UnicodeError with errors="replace" (a 500
    # where the client's input deserves a 400 or a plain reading)
    part = f"--B\r\nContent-Disposition: form-data; name*={charset}''{value}\r\n\r\n1\r\n--B--\r\n"
    try:
        parse_multipart_form_data(b"B", part.encode(), {}, {})
    except HTTPInputError:
        pass  # refusing the part is fine; so is decoding it some other way
    try:
        _body_args(f"multipart/form-data; boundary*={charset}''{value}", b"--x--")
    except HTTPInputError:
        pass


@pytest.mark.parametrize("charset", ["a\x00b", "utf-8\x00"])
def test_rfc8187_charset_name_codecs_cannot_look_up(charset):
    assert _parse_header(f"form-data; name*={charset}''%61")[1] == {"name": "a"}
    try:
        _body_args(f"multipart/form-data; boundary*={charset}''%42", b"--B--")
    except HTTPInputError:
        pass
