"""HTTP utilities shared by the server, the client and the web framework.

The API follows Tornado 6's ``tornado.httputil``.  Everything that parses
client input (header blocks, start lines, cookies, form bodies, multipart
bodies) runs in linear time and raises :class:`HTTPInputError` -- and nothing
else -- on malformed input, so the server can turn it into a 400 response.

Deliberate differences from Tornado, all in the direction of RFC 9110/9112:

* :meth:`HTTPHeaders.parse` only accepts CRLF line endings and rejects
  obs-fold continuation lines.
* :func:`parse_request_start_line` accepts any ``HTTP/<digit>.<digit>``
  version, so the server can tell a malformed line (400) from an unsupported
  version (505).
* multipart bodies may have a preamble and transport padding after a boundary
  (RFC 2046), and the Content-Disposition type is case-insensitive.
"""

from __future__ import annotations

import calendar
import codecs
import dataclasses
import datetime
import http.cookies
import re
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from collections.abc import Callable
from typing import Any, NamedTuple

from twisted.internet import defer

from cyclone.escape import _unquote_text, parse_qs_bytes, utf8
from cyclone.urlencoded import UrlencodedError, UrlencodedParser, parse_urlencoded
from cyclone.util import ObjectDict

__all__ = [
    "HTTPServerConnectionDelegate",
    "HTTPMessageDelegate",
    "HTTPServerRequest",
    "HTTPHeaders",
    "HTTPInputError",
    "HTTPOutputError",
    "RequestStartLine",
    "parse_request_start_line",
    "ResponseStartLine",
    "parse_response_start_line",
    "HTTPFile",
    "ParseBodyConfig",
    "ParseMultipartConfig",
    "ParseUrlEncodedConfig",
    "set_parse_body_config",
    "parse_body_arguments",
    "parse_multipart_form_data",
    "parse_cookie",
    "format_timestamp",
    "url_concat",
    "qs_to_qsl",
    "split_host_and_port",
]


class HTTPInputError(Exception):
    """Malformed input from the peer (request line, headers, body, ...)."""


# The application tried to send something that is not valid HTTP (defined in
# the sans-IO http1, which raises it; a ValueError subclass).
from cyclone.http1 import HTTPOutputError  # noqa: E402


# RFC 9110 §5.6.2: token = 1*tchar
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Characters never allowed in a field value (RFC 9110 §5.5): the C0 controls
# except HTAB, and DEL.  CR and LF are in here, which is what stops header
# injection and bare-CR/bare-LF smuggling.
_FORBIDDEN_VALUE_CHAR_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# Header names arrive in arbitrary case; normalising is a split/capitalize/join
# per call, so results are memoised.  The cache is bounded (and simply
# cleared when full) so a client sending many distinct names cannot grow it.
_NORMALIZED_NAMES: dict[str, str] = {}
_NORMALIZED_NAMES_MAX = 1024


def _normalize_header(name: str) -> str:
    """``"content-TYPE"`` -> ``"Content-Type"``."""
    try:
        return _NORMALIZED_NAMES[name]
    except KeyError:
        pass
    normalized = "-".join(word.capitalize() for word in name.split("-"))
    if len(_NORMALIZED_NAMES) >= _NORMALIZED_NAMES_MAX:
        _NORMALIZED_NAMES.clear()
    _NORMALIZED_NAMES[name] = normalized
    return normalized


class HTTPHeaders(MutableMapping[str, str]):
    """Case-insensitive, multi-valued HTTP headers.

    Names are stored in ``Http-Header-Case``.  The mapping view gives one
    string per name, repeated values joined with ``","``; :meth:`add`,
    :meth:`get_list` and :meth:`get_all` see every value.

    >>> h = HTTPHeaders({"content-type": "text/html"})
    >>> h.add("Set-Cookie", "A=B")
    >>> h.add("set-cookie", "C=D")
    >>> h["SET-COOKIE"]
    'A=B,C=D'
    >>> h.get_list("set-cookie")
    ['A=B', 'C=D']
    >>> sorted(h.get_all())
    [('Content-Type', 'text/html'), ('Set-Cookie', 'A=B'), ('Set-Cookie', 'C=D')]

    Construct from a mapping, an iterable of ``(name, value)`` pairs and/or
    keyword arguments (each replaces earlier values of the same name), or from
    another ``HTTPHeaders`` (all values are copied).

    ``__setitem__`` replaces all values and does not validate, like Tornado;
    :meth:`add` and :meth:`parse` validate.
    """

    __slots__ = ("_as_list",)

    def __init__(self, *args: Any, **kwargs: str) -> None:
        # name -> values, in insertion order; the joined view is computed on
        # access so adding the n-th value of a header stays O(1).
        self._as_list: dict[str, list[str]] = {}
        if len(args) == 1 and not kwargs and isinstance(args[0], HTTPHeaders):
            for name, values in args[0]._as_list.items():
                self._as_list[name] = list(values)
        elif args or kwargs:
            self.update(*args, **kwargs)

    @classmethod
    def _from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> "HTTPHeaders":
        """Headers from already-validated ``(name, value)`` pairs (the parser's)."""
        headers = cls.__new__(cls)
        as_list: dict[str, list[str]] = {}
        cache = _NORMALIZED_NAMES
        for name, value in pairs:
            norm = cache.get(name)
            if norm is None:
                norm = _normalize_header(name)
            values = as_list.get(norm)
            if values is None:
                as_list[norm] = [value]
            else:
                values.append(value)
        headers._as_list = as_list
        return headers

    # -- multi-value API --------------------------------------------------

    def add(self, name: str, value: str) -> None:
        """Add a value for ``name``, keeping the existing ones.

        Raises :class:`HTTPInputError` if ``name`` is not an RFC 9110 token
        or ``value`` contains a control character (CR, LF, NUL, ...).
        """
        if not _TOKEN_RE.fullmatch(name):
            raise HTTPInputError(f"Invalid header name {name!r}")
        if _FORBIDDEN_VALUE_CHAR_RE.search(value):
            raise HTTPInputError(f"Invalid header value {value!r}")
        self._add(_normalize_header(name), value)

    def _add(self, norm_name: str, value: str) -> None:
        values = self._as_list.get(norm_name)
        if values is None:
            self._as_list[norm_name] = [value]
        else:
            values.append(value)

    def get_list(self, name: str) -> list[str]:
        """All values of ``name`` (a new list; empty if absent)."""
        return list(self._as_list.get(_normalize_header(name), ()))

    def get_all(self) -> Iterator[tuple[str, str]]:
        """Yield every ``(name, value)`` pair; repeated names yield one pair
        per value."""
        for name, values in self._as_list.items():
            for value in values:
                yield name, value

    def parse_line(self, line: str) -> None:
        """Add one ``Name: value`` header line (without its CRLF).

        Whitespace (SP/HTAB only) around the value is dropped.  Raises
        :class:`HTTPInputError` for a line with no colon, an invalid name
        (including whitespace before the colon), a control character in the
        value, or an obs-fold continuation line (leading SP/HTAB).
        """
        if line[:1] in (" ", "\t"):
            raise HTTPInputError("obs-fold continuation lines are not allowed")
        name, colon, value = line.partition(":")
        if not colon:
            raise HTTPInputError("no colon in header line")
        if not _TOKEN_RE.fullmatch(name):
            raise HTTPInputError(f"Invalid header name {name!r}")
        value = value.strip(" \t")
        if _FORBIDDEN_VALUE_CHAR_RE.search(value):
            raise HTTPInputError(f"Invalid header value {value!r}")
        self._add(_normalize_header(name), value)

    @classmethod
    def parse(cls, headers: str | bytes) -> HTTPHeaders:
        """Parse a header block whose lines end with CRLF.

        Bytes are decoded as latin-1.  Empty lines are skipped, so a block
        ending in CRLFCRLF is fine.

        >>> h = HTTPHeaders.parse("Content-Type: text/html\\r\\nContent-Length: 42\\r\\n")
        >>> sorted(h.items())
        [('Content-Length', '42'), ('Content-Type', 'text/html')]
        """
        if isinstance(headers, bytes):
            headers = headers.decode("latin-1")
        h = cls()
        for line in headers.split("\r\n"):
            if line:
                h.parse_line(line)
        return h

    # -- MutableMapping ---------------------------------------------------

    def __getitem__(self, name: str) -> str:
        values = self._as_list[_normalize_header(name)]
        if len(values) == 1:
            return values[0]
        return ",".join(values)

    def __setitem__(self, name: str, value: str) -> None:
        self._as_list[_normalize_header(name)] = [value]

    def __delitem__(self, name: str) -> None:
        del self._as_list[_normalize_header(name)]

    def get(self, name: str, default: Any = None) -> Any:
        values = self._as_list.get(_normalize_header(name))
        if values is None:
            return default
        return values[0] if len(values) == 1 else ",".join(values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _normalize_header(name) in self._as_list

    def __len__(self) -> int:
        return len(self._as_list)

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_list)

    def clear(self) -> None:
        # MutableMapping.clear pops one item at a time.
        self._as_list.clear()

    def copy(self) -> HTTPHeaders:
        """A copy holding every value (lists are not shared)."""
        return type(self)(self)

    # copy.copy() and copy.deepcopy() would otherwise share the lists.
    __copy__ = copy

    def __deepcopy__(self, memo: dict[int, Any]) -> HTTPHeaders:
        return self.copy()

    def __str__(self) -> str:
        return "".join(f"{name}: {value}\n" for name, value in self.get_all())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.get_all())!r})"


# -- the request ----------------------------------------------------------


class _built_on_first_use:
    """An attribute computed by ``build(instance)`` on first read, then stored
    on the instance (a plain attribute from then on; assignable as usual)."""

    __slots__ = ("build", "name")

    def __init__(self, build: Callable[[Any], Any]) -> None:
        self.build = build
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = self.build(instance)
        instance.__dict__[self.name] = value
        return value


class HTTPServerRequest:
    """One HTTP request, with Tornado's ``HTTPServerRequest`` attributes
    (``cyclone.httpserver.HTTPRequest`` is the same class).

    ``method``, ``uri``, ``version``, ``headers`` (``HTTPHeaders``), ``body``
    (bytes), ``remote_ip``, ``protocol`` ("http" or "https"), ``host``,
    ``host_name``, ``path``, ``query``, ``arguments``, ``query_arguments``,
    ``body_arguments``, ``files``, ``connection``, ``cookies``; and the methods
    ``full_url()``, ``request_time()``, ``supports_http_1_1()``,
    ``notifyFinish()``, ``write()`` and ``finish()``.
    """

    def __init__(
        self,
        method: str | None = None,
        uri: str | None = None,
        version: str = "HTTP/1.0",
        headers: HTTPHeaders | None = None,
        body: bytes | None = None,
        remote_ip: str | None = None,
        protocol: str | None = None,
        host: str | None = None,
        files: dict[str, list] | None = None,
        connection: Any = None,
        start_line: Any = None,
        server_connection: Any = None,
    ) -> None:
        if start_line is not None:
            method, uri, version = start_line
        if connection is not None and (remote_ip is None or not protocol):
            # a request made by a Tornado-style delegate: the connection knows
            # the client and scheme (xheaders and the protocol setting applied)
            context = getattr(connection, "context", None)
            if context is not None:
                if remote_ip is None:
                    remote_ip = getattr(context, "remote_ip", None)
                if not protocol:
                    protocol = getattr(context, "protocol", None)
        self.method = method
        self.uri = uri
        self.version = version
        if headers is None:
            headers = HTTPHeaders()
        self.headers = headers
        if body:
            self.body = body
        if remote_ip is not None:
            self.remote_ip = remote_ip
        if protocol:
            self.protocol = protocol
        self.host = host or headers.get("Host") or "127.0.0.1"
        if files:
            self.files = files
        self.connection = connection
        if server_connection is not None:
            self.server_connection = server_connection
        self._start_time = time.time()
        self.path, _, self.query = (uri or "").partition("?")

    @classmethod
    def _from_head(
        cls, head: Any, headers: HTTPHeaders, connection: Any, remote_ip: str | None, protocol: str
    ) -> HTTPServerRequest:
        """The request of a parsed head (``cyclone.http1.RequestHead``): what
        ``__init__`` does for the connection, without the cost of its keyword
        arguments."""
        request = cls.__new__(cls)
        request.method = head.method
        uri = request.uri = head.target
        request.version = head.version
        request.headers = headers
        if remote_ip is not None:
            request.remote_ip = remote_ip
        if protocol != "http":
            request.protocol = protocol
        request.host = head.host or headers.get("Host") or "127.0.0.1"
        request.connection = connection
        request._start_time = time.time()
        request.path, _, request.query = uri.partition("?")
        return request

    # Defaults read from the class until set on the request: most requests
    # never change them, and each saves a store per request.
    body = b""
    protocol = "http"
    server_connection = None
    _finish_time: float | None = None
    _finish_waiters: list[defer.Deferred] | None = None
    _finished = False

    # The argument dicts are built when first used (a hello-world request
    # never looks at them); after that they are plain attributes.
    #: the parsing limits for this request (``None``: the global default of
    #: :func:`set_parse_body_config`); the web application sets its own
    parse_body_config: ParseBodyConfig | None = None
    #: most query arguments accepted (``None``: the urlencoded ``max_arguments``)
    max_query_arguments: int | None = None
    #: most cookies accepted in the ``Cookie`` headers (as Go's net/http: 3000)
    max_cookies: int = 3000
    _form_parser: UrlencodedParser | None = None

    query_arguments: dict[str, list[bytes]] = _built_on_first_use(
        lambda self: self._parse_query() if self.query else {}
    )
    arguments: dict[str, list[bytes]] = _built_on_first_use(
        lambda self: {name: list(values) for name, values in self.query_arguments.items()}
    )
    body_arguments: dict[str, list[bytes]] = _built_on_first_use(lambda self: {})
    #: the client's address: given, or the connection's (``remote_ip``)
    remote_ip: str | None = _built_on_first_use(
        lambda self: getattr(self.connection, "remote_ip", None)
    )
    files: dict[str, list] = _built_on_first_use(lambda self: {})

    # -- Tornado / cyclone API ---------------------------------------------------

    @property
    def host_name(self) -> str:
        """``host`` lower-cased, without the port (computed when first read)."""
        name = self.__dict__.get("_host_name")
        if name is None:
            name = self._host_name = split_host_and_port(self.host.lower())[0]
        return name

    @host_name.setter
    def host_name(self, value: str) -> None:
        self._host_name = value

    def supports_http_1_1(self) -> bool:
        """True when the request was made with HTTP/1.1."""
        return self.version == "HTTP/1.1"

    def _parse_query(self) -> dict[str, list[bytes]]:
        limit = self.max_query_arguments
        if limit is None:
            limit = (self.parse_body_config or _default_parse_body_config).urlencoded.max_arguments
        try:
            return parse_qs_bytes(self.query, keep_blank_values=True, max_num_fields=limit)
        except UrlencodedError as e:
            raise HTTPInputError(f"Invalid query string: {e}") from e

    @property
    def cookies(self) -> dict[str, http.cookies.Morsel]:
        """The request's cookies as ``{name: Morsel}`` (parsed once).

        Malformed cookies are skipped; more than ``max_cookies`` raise
        :class:`HTTPInputError` (a 400 in a handler)."""
        cookies = self.__dict__.get("_cookies")
        if cookies is None:
            cookies = http.cookies.SimpleCookie()
            parsed: dict[str, str] = {}
            for header in self.headers.get_list("Cookie"):
                # HTTPInputError past max_cookies: checked before any Morsel
                # is made, as one costs ~80 times its bytes
                _parse_cookie_into(header, parsed, self.max_cookies)
            for name, value in parsed.items():
                try:
                    cookies[name] = value
                except http.cookies.CookieError:
                    continue
            self._cookies = cookies
        return cookies

    def full_url(self) -> str:
        """The full URL as the client asked for it: ``http://host/path?query``."""
        return f"{self.protocol}://{self.host}{self.uri}"

    def request_time(self) -> float:
        """Seconds the request took, or has taken so far."""
        end = self._finish_time if self._finish_time is not None else time.time()
        return end - self._start_time

    def notifyFinish(self) -> defer.Deferred:
        """A Deferred fired once: with None when the response is finished, or
        with the error message when the client goes away before that."""
        d: defer.Deferred = defer.Deferred()
        if self._finished:
            d.callback(None)
            return d
        if self._finish_waiters is None:
            self._finish_waiters = []
        self._finish_waiters.append(d)
        return d

    def write(self, chunk: bytes) -> None:
        """Write a piece of the response body (after ``connection.write_head``)."""
        assert isinstance(chunk, bytes), "request.write() takes bytes"
        connection = self.connection
        if connection is not None:
            # _write: the same without the Deferred, which nobody here waits on
            getattr(connection, "_write", connection.write)(chunk)

    def finish(self) -> None:
        """Finish the response."""
        if self.connection is not None:
            self.connection.finish()

    def _body_chunk(self, chunk: bytes) -> None:
        """Take the next piece of the body as it arrives: a urlencoded form is
        parsed piece by piece, so a large one is never decoded in one long
        step; past a limit the parser stops and :meth:`_parse_body` raises."""
        parser = self._form_parser
        if parser is None:
            if "_form_parser" in self.__dict__:
                return  # not a urlencoded form, or it failed already
            parser = self._form_parser = self._urlencoded_parser()
            if parser is None:
                return
        try:
            parser.feed(chunk)
        except UrlencodedError:
            pass  # the parser keeps its error: _parse_body raises it at the end

    def _urlencoded_parser(self) -> UrlencodedParser | None:
        content_type = self.headers.get("Content-Type")
        if not content_type or not _is_urlencoded(content_type):
            return None
        encoding = self.headers.get("Content-Encoding")
        if encoding is not None and encoding.strip().lower() != "identity":
            return None  # parse_body_arguments refuses it at the end
        config = self.parse_body_config or _default_parse_body_config
        return UrlencodedParser(max_fields=config.urlencoded.max_arguments)

    def _set_body(self, chunks: list[bytes]) -> None:
        """Set ``body`` from the received pieces and parse its form arguments
        (``HTTPInputError`` for a malformed form body)."""
        if not chunks:
            return
        self.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._parse_body()

    def _parse_body(self) -> None:
        """Fill ``body_arguments``, ``files`` and ``arguments`` from the body."""
        parser = self._form_parser
        if parser is not None:
            self._form_parser = None
            try:
                parsed = parser.close()
            except UrlencodedError as e:
                raise HTTPInputError(f"Invalid x-www-form-urlencoded body: {e}") from e
            for name, values in parsed.items():
                self.body_arguments.setdefault(name, []).extend(values)
        else:
            content_type = self.headers.get("Content-Type", "")
            if "form" not in content_type.lower():
                return  # only the two form types carry arguments: the rest is ignored
            parse_body_arguments(
                content_type,
                self.body,
                self.body_arguments,
                self.files,
                self.headers,
                config=self.parse_body_config,
            )
        for name, values in self.body_arguments.items():
            self.arguments.setdefault(name, []).extend(values)

    def _notify_finished(self, reason: Any = None) -> None:
        if self._finished:
            return
        self._finished = True
        if self._finish_time is None:
            self._finish_time = time.time()
        waiters = self._finish_waiters
        if waiters:
            self._finish_waiters = None
            for d in waiters:
                d.callback(reason)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(protocol={self.protocol!r}, host={self.host!r}, "
            f"method={self.method!r}, uri={self.uri!r}, version={self.version!r}, "
            f"remote_ip={self.remote_ip!r})"
        )



# -- the lower-level server interface (Tornado's) ---------------------------


class HTTPServerConnectionDelegate:
    """What ``cyclone.httpserver.HTTPServer`` serves when given one: it asks
    ``start_request`` for an ``HTTPMessageDelegate`` for each request."""

    def start_request(self, server_conn: Any, request_conn: Any) -> "HTTPMessageDelegate":
        """The delegate of a new request. Both arguments are the
        ``cyclone.httpserver.HTTPConnection``: answer through
        ``request_conn.write_headers``/``write``/``finish``."""
        raise NotImplementedError()

    def on_close(self, server_conn: Any) -> None:
        """The connection ``server_conn`` closed."""


class HTTPMessageDelegate:
    """Receives one request: each method may return a Deferred or another
    awaitable (reading the body pauses until it is done)."""

    def headers_received(self, start_line: "RequestStartLine", headers: HTTPHeaders) -> Any:
        """The request line and headers arrived."""

    def data_received(self, chunk: bytes) -> Any:
        """A piece of the body arrived (at most the server's ``chunk_size``)."""

    def finish(self) -> None:
        """The whole request has arrived."""

    def on_connection_close(self) -> None:
        """The connection closed before ``finish()``, or before the response ended."""


# -- start lines ----------------------------------------------------------


class RequestStartLine(NamedTuple):
    """The parsed request line: ``method``, ``path`` (request-target),
    ``version``."""

    method: str
    path: str
    version: str


class ResponseStartLine(NamedTuple):
    """The parsed status line: ``version``, ``code``, ``reason``."""

    version: str
    code: int
    reason: str


_HTTP_VERSION_RE = re.compile(r"HTTP/[0-9]\.[0-9]")
# request-target: anything but whitespace and controls; the server and the
# router interpret it.  obs-text (bytes >= 0x80, latin-1 decoded) passes.
_REQUEST_TARGET_RE = re.compile(r"[^\x00-\x20\x7f]+")
# RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
# The final SP is often missing in the wild, so it is optional here.
_STATUS_LINE_RE = re.compile(r"(HTTP/[0-9]\.[0-9]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")


def parse_request_start_line(line: str) -> RequestStartLine:
    """Parse ``"GET /path HTTP/1.1"``.

    The three parts must be separated by single spaces; the method must be a
    token.  Any ``HTTP/<digit>.<digit>`` version is accepted -- the caller
    decides which ones it supports.

    >>> parse_request_start_line("GET /foo HTTP/1.1")
    RequestStartLine(method='GET', path='/foo', version='HTTP/1.1')
    """
    parts = line.split(" ")
    if len(parts) != 3:
        raise HTTPInputError("Malformed HTTP request line")
    method, path, version = parts
    if not _TOKEN_RE.fullmatch(method) or not _REQUEST_TARGET_RE.fullmatch(path):
        raise HTTPInputError("Malformed HTTP request line")
    if not _HTTP_VERSION_RE.fullmatch(version):
        raise HTTPInputError(f"Malformed HTTP version in HTTP Request-Line: {version!r}")
    return RequestStartLine(method, path, version)


def parse_response_start_line(line: str) -> ResponseStartLine:
    """Parse ``"HTTP/1.1 200 OK"``; a missing reason phrase gives ``""``.

    >>> parse_response_start_line("HTTP/1.1 200 OK")
    ResponseStartLine(version='HTTP/1.1', code=200, reason='OK')
    """
    m = _STATUS_LINE_RE.fullmatch(line)
    if m is None:
        raise HTTPInputError("Error parsing response start line")
    return ResponseStartLine(m.group(1), int(m.group(2)), m.group(3) or "")


# -- header parameters (Content-Type, Content-Disposition) ----------------

# One ";"-separated segment of a header value.  A quoted string may contain
# ";" and backslash escapes; an unterminated one runs to the end of the line.
# Outside quotes a backslash is an ordinary character, except that ``\"``
# does not open a quoted string.
# Possessive quantifiers: every character is consumed exactly once, so the
# scan is linear however many quotes and semicolons the value holds.
_PARAM_SEGMENT_RE = re.compile(
    r"""(?:[^;"\\]++|\\"?|"(?:[^"\\]++|\\.)*+(?:"|\\?\Z))*+""",
    re.DOTALL,
)
# "filename*": an RFC 8187 extended parameter.
_EXT_PARAM_NAME_RE = re.compile(r"\w+\*")


def _split_params(line: str) -> list[str]:
    """Split ``line`` on the semicolons that are not inside quotes."""
    segments: list[str] = []
    pos = 0
    end = len(line)
    while True:
        m = _PARAM_SEGMENT_RE.match(line, pos)
        # The pattern can match the empty string, so m is never None.
        assert m is not None
        segments.append(m.group())
        pos = m.end()
        if pos >= end:
            return segments
        pos += 1  # skip the ";"


def _unescape_quoted(text: str) -> str:
    """Undo ``\\\\`` and ``\\"`` in the inside of a quoted string, left to
    right; other backslashes stay (browsers send ``C:\\dir`` unescaped)."""
    if "\\" not in text:
        return text
    # Splitting on the escaped backslashes first gives the left-to-right
    # reading of the escapes, using only linear C-level string operations.
    return "\\".join(piece.replace('\\"', '"') for piece in text.split("\\\\"))


def _decode_ext_value(value: str) -> str:
    """Decode an RFC 8187 ext-value (``UTF-8'en'%e2%82%ac``).

    Without a ``charset'lang'`` prefix, or with a charset other than UTF-8,
    ISO-8859-1 or US-ASCII, the percent-escapes are decoded as US-ASCII;
    undecodable bytes become U+FFFD.
    """
    charset = "us-ascii"
    text = value
    if value.count("'") >= 2:
        named, _lang, text = value.split("'", 2)
        try:
            if codecs.lookup(named).name in _EXT_VALUE_CHARSETS:
                charset = named
        except (LookupError, ValueError):  # unknown, or a NUL or surrogate in the name
            pass
    return _unquote_text(text, charset, "replace")


# RFC 8187 §3.2.1: recipients must support UTF-8 and ISO-8859-1; any other
# codec name (idna, punycode, rot13...) is read as US-ASCII, because Python's
# codecs include some that fail with errors="replace" or take quadratic time
_EXT_VALUE_CHARSETS = frozenset(("utf-8", "iso8859-1", "ascii"))


def _parse_header(line: str) -> tuple[str, dict[str, str]]:
    r"""Split a header value such as Content-Type into its main value and a
    dict of parameters.

    Parameter names are lowercased; quoted values are unquoted (``\"`` and
    ``\\`` unescaped, other backslashes kept, as browsers send Windows
    paths unescaped).  RFC 8187 ``name*=charset'lang'value`` parameters are
    decoded and take precedence over ``name=``.

    >>> _parse_header('text/html; charset="utf-8"')
    ('text/html', {'charset': 'utf-8'})
    >>> _parse_header('form-data; name="a;b"; filename="C:\\x\\y.txt"')
    ('form-data', {'name': 'a;b', 'filename': 'C:\\x\\y.txt'})
    >>> _parse_header("attachment; filename*=UTF-8''%e2%82%ac%20rates")
    ('attachment', {'filename': '€ rates'})
    """
    segments = _split_params(line)
    key = segments[0].strip()
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    for segment in segments[1:]:
        name, eq, value = segment.partition("=")
        if not eq:
            continue
        name = name.strip().lower()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = _unescape_quoted(value[1:-1])
        if name.endswith("*") and _EXT_PARAM_NAME_RE.fullmatch(name):
            extended[name[:-1]] = _decode_ext_value(value)
        else:
            params[name] = value
    params.update(extended)
    return key, params


def _encode_header(key: str, pdict: Mapping[str, Any]) -> str:
    """Inverse of :func:`_parse_header`: ``key; a=1; flag`` (params sorted,
    ``None`` values written as bare names, values not quoted).

    >>> _encode_header('permessage-deflate',
    ...     {'client_max_window_bits': 15, 'client_no_context_takeover': None})
    'permessage-deflate; client_max_window_bits=15; client_no_context_takeover'
    """
    if not pdict:
        return key
    out = [key]
    for k, v in sorted(pdict.items()):
        out.append(k if v is None else f"{k}={v}")
    return "; ".join(out)


# -- request bodies -------------------------------------------------------


class HTTPFile(ObjectDict):
    """An uploaded file: ``filename`` (str), ``body`` (bytes) and
    ``content_type`` (str), readable as keys or attributes."""


@dataclasses.dataclass
class ParseMultipartConfig:
    """Limits for ``multipart/form-data`` bodies (Tornado 6.6's API).

    ``enabled=False`` refuses every multipart body (400); ``max_parts`` is
    the most parts accepted (each form field or file is one);
    ``max_part_header_size`` the most bytes of one part's header block.
    """

    enabled: bool = True
    max_parts: int = 100
    max_part_header_size: int = 10 * 1024


@dataclasses.dataclass
class ParseUrlEncodedConfig:
    """Limits for ``application/x-www-form-urlencoded`` bodies (and, unless
    the ``max_query_arguments`` setting says otherwise, query strings):
    ``max_arguments`` is the most ``&``-separated fields accepted."""

    max_arguments: int = 1000


@dataclasses.dataclass
class ParseBodyConfig:
    """How request bodies are parsed: ``multipart`` and ``urlencoded`` limits.

    The global default is set with :func:`set_parse_body_config`; a
    ``cyclone.web.Application`` takes its own from the ``parse_body_config``
    setting and the flat settings ``max_body_arguments``,
    ``multipart_enabled``, ``max_multipart_parts`` and
    ``max_multipart_part_header_size``.
    """

    multipart: ParseMultipartConfig = dataclasses.field(default_factory=ParseMultipartConfig)
    urlencoded: ParseUrlEncodedConfig = dataclasses.field(default_factory=ParseUrlEncodedConfig)


_default_parse_body_config = ParseBodyConfig()


def set_parse_body_config(config: ParseBodyConfig) -> None:
    """Set the process-wide default :class:`ParseBodyConfig`, used wherever
    no application setting gives one (read each time a body is parsed)."""
    global _default_parse_body_config
    if not isinstance(config, ParseBodyConfig):
        raise TypeError(f"set_parse_body_config takes a ParseBodyConfig, not {type(config)!r}")
    _default_parse_body_config = config


def _is_urlencoded(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == "application/x-www-form-urlencoded"


def parse_body_arguments(
    content_type: str,
    body: bytes,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    headers: HTTPHeaders | None = None,
    *,
    config: ParseBodyConfig | None = None,
    max_parts: int | None = None,
    max_part_header_size: int | None = None,
) -> None:
    """Parse a form body into ``arguments`` and ``files`` (both updated in
    place; values are bytes).

    Handles ``application/x-www-form-urlencoded`` and
    ``multipart/form-data``; other content types are ignored.  A form body
    with a ``Content-Encoding`` other than ``identity`` in ``headers`` is
    refused: nothing here decompresses it.  Raises :class:`HTTPInputError`
    on malformed input or past a limit of ``config`` (default: the global
    one, see :func:`set_parse_body_config`); ``max_parts`` and
    ``max_part_header_size``, when given, override the multipart limits.
    """
    if config is None:
        config = _default_parse_body_config
    media_type, params = _parse_header(content_type)
    media_type = media_type.lower()
    if media_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return
    if headers is not None:
        encoding = headers.get("Content-Encoding")
        if encoding is not None and encoding.strip().lower() != "identity":
            raise HTTPInputError(f"Unsupported Content-Encoding: {encoding}")
    if media_type == "multipart/form-data":
        boundary = params.get("boundary")
        if not boundary:
            raise HTTPInputError("Invalid multipart/form-data: no boundary")
        multipart = config.multipart
        parse_multipart_form_data(
            boundary,
            body,
            arguments,
            files,
            config=multipart,
            max_parts=multipart.max_parts if max_parts is None else max_parts,
            max_part_header_size=(
                multipart.max_part_header_size if max_part_header_size is None else max_part_header_size
            ),
        )
        return
    try:
        parsed = parse_urlencoded(body, max_fields=config.urlencoded.max_arguments)
    except UrlencodedError as e:
        raise HTTPInputError(f"Invalid x-www-form-urlencoded body: {e}") from e
    for name, values in parsed.items():
        arguments.setdefault(name, []).extend(values)


# After "--boundary": "--" ends the body; otherwise optional transport
# padding and CRLF end the delimiter line (RFC 2046 §5.1.1).
_DELIMITER_LINE_END_RE = re.compile(rb"--|[ \t]*\r\n")


def parse_multipart_form_data(
    boundary: bytes | str,
    data: bytes,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    *,
    config: ParseMultipartConfig | None = None,
    max_parts: int | None = None,
    max_part_header_size: int | None = None,
) -> None:
    """Parse a ``multipart/form-data`` body (RFC 7578) into ``arguments`` and
    ``files``.

    The limits come from ``config`` (default: the global one, see
    :func:`set_parse_body_config`); ``max_parts`` and
    ``max_part_header_size``, when given, override it.  A disabled config
    refuses every body.

    ``boundary`` may be quoted.  Each part needs a ``Content-Disposition:
    form-data`` header with a ``name``; a non-empty ``filename`` makes it a
    file (``Content-Type`` defaults to ``application/unknown``).  The
    preamble and the epilogue (after the close delimiter) are ignored.

    Raises :class:`HTTPInputError` at the first problem: no final boundary,
    more than ``max_parts`` parts, a part header block longer than
    ``max_part_header_size`` bytes (not counting the CRLF CRLF that ends
    it), part headers that are not UTF-8 or
    contain a bare CR or LF, a bad Content-Disposition.  Linear in
    ``len(data)``.
    """
    if config is None:
        config = _default_parse_body_config.multipart
    if not config.enabled:
        raise HTTPInputError("multipart/form-data parsing is disabled")
    if max_parts is None:
        max_parts = config.max_parts
    if max_part_header_size is None:
        max_part_header_size = config.max_part_header_size
    boundary = utf8(boundary)
    if len(boundary) >= 2 and boundary[:1] == b'"' and boundary[-1:] == b'"':
        boundary = boundary[1:-1]
    if not boundary:
        raise HTTPInputError("Invalid multipart/form-data: empty boundary")
    if not isinstance(data, bytes):
        data = bytes(data)
    delimiter = b"--" + boundary
    # Every delimiter after the first is preceded by CRLF, which belongs to
    # the delimiter, not to the previous part's body.
    inner_delimiter = b"\r\n" + delimiter
    delimiter_re = re.compile(re.escape(inner_delimiter) + rb"(?=--|[ \t]*\r\n)")
    if data.startswith(delimiter) and _DELIMITER_LINE_END_RE.match(data, len(delimiter)):
        pos = len(delimiter)
    else:
        pos = _find_delimiter(data, delimiter_re, 0)
        if pos < 0:
            raise HTTPInputError("Invalid multipart/form-data: no boundary found")
        pos += len(inner_delimiter)
    parts = 0
    while True:
        line_end = _DELIMITER_LINE_END_RE.match(data, pos)
        assert line_end is not None  # _find_delimiter only returns such places
        if line_end.group() == b"--":
            return  # close delimiter; what follows is the epilogue
        part_start = line_end.end()
        parts += 1
        if parts > max_parts:
            raise HTTPInputError(f"Invalid multipart/form-data: more than {max_parts} parts")
        part_end = _find_delimiter(data, delimiter_re, part_start)
        if part_end < 0:
            raise HTTPInputError("Invalid multipart/form-data: no final boundary found")
        _parse_part(data, part_start, part_end, arguments, files, max_part_header_size)
        pos = part_end + len(inner_delimiter)


def _find_delimiter(data: bytes, delimiter_re: re.Pattern[bytes], start: int) -> int:
    """Index of the next ``CRLF--boundary`` at or after ``start`` that is
    followed by ``--`` or by padding and CRLF, or -1.

    ``delimiter_re`` matches exactly such a delimiter; other occurrences
    (``--boundaryX``) are part of a body and are skipped inside the regex
    engine's search (a literal-prefix scan), not one by one in Python, so a
    body full of near-boundaries costs no more than any other.
    """
    match = delimiter_re.search(data, start)
    return -1 if match is None else match.start()


def _parse_part(
    data: bytes,
    start: int,
    end: int,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    max_header_size: int,
) -> None:
    """Parse the part ``data[start:end]`` (headers, blank line, body)."""
    if data.startswith(b"\r\n", start, end):
        header_end = start  # no header fields at all
    else:
        # The blank line may end at end + 2: a part can be headers with no
        # body, in which case its last CRLF is the delimiter's (RFC 2046
        # body-part := headers [CRLF *OCTET]).  Only look as far as the size
        # limit: that enforces the cap without scanning a big body.
        stop = end + 2
        limit = start + max_header_size + 4
        idx = data.find(b"\r\n\r\n", start, min(stop, limit))
        if idx < 0:
            if limit < stop:
                raise HTTPInputError("multipart/form-data part headers too large")
            raise HTTPInputError("multipart/form-data missing headers")
        header_end = idx + 2  # keep the CRLF ending the last header line
    try:
        header_text = data[start:header_end].decode("utf-8")
    except UnicodeDecodeError as e:
        raise HTTPInputError("multipart/form-data part headers are not UTF-8") from e
    headers = HTTPHeaders.parse(header_text)
    disposition, params = _parse_header(headers.get("Content-Disposition", ""))
    if disposition.lower() != "form-data":
        raise HTTPInputError("Invalid multipart/form-data: bad Content-Disposition")
    name = params.get("name")
    if not name:
        raise HTTPInputError("multipart/form-data part missing name")
    value = data[header_end + 2 : end]  # empty when header_end == end
    filename = params.get("filename")
    if filename:
        content_type = headers.get("Content-Type", "application/unknown")
        files.setdefault(name, []).append(
            HTTPFile(filename=filename, body=value, content_type=content_type)
        )
    else:
        arguments.setdefault(name, []).append(value)


# -- cookies --------------------------------------------------------------

_COOKIE_ESCAPE_RE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")


def _cookie_unescape(m: re.Match[str]) -> str:
    octal = m.group(1)
    return chr(int(octal, 8)) if octal else m.group(2)


def _unquote_cookie(value: str) -> str:
    """Strip the quotes of a quoted cookie value and undo its backslash and
    ``\\ooo`` octal escapes; unquoted values are returned as they are."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    # One regex pass: linear, unlike replacing escapes one by one.
    return _COOKIE_ESCAPE_RE.sub(_cookie_unescape, value[1:-1])


def parse_cookie(cookie: str, max_cookies: int | None = None) -> dict[str, str]:
    """Parse a ``Cookie`` header into ``{name: value}``, leniently, as
    browsers do.

    Pairs are split on ``;``; a chunk without ``=`` is a value with an empty
    name; quoted values are unquoted; a later duplicate name wins.  More
    than ``max_cookies`` names raise :class:`HTTPInputError` as soon as the
    one too many is read.  Linear in time; the memory beyond the result is
    bounded by a constant.

    >>> sorted(parse_cookie('a=1; b="x y"; c').items())
    [('', 'c'), ('a', '1'), ('b', 'x y')]
    """
    cookies: dict[str, str] = {}
    _parse_cookie_into(cookie, cookies, max_cookies)
    return cookies


_COOKIE_WINDOW = 1 << 15


def _parse_cookie_into(cookie: str, cookies: dict[str, str], max_cookies: int | None) -> None:
    size = len(cookie)
    start = 0
    while start < size:
        # a window of about _COOKIE_WINDOW characters cut after a ";", so that
        # splitting never makes a list with an item per byte of the header
        end = cookie.find(";", start + _COOKIE_WINDOW) if size - start > _COOKIE_WINDOW else -1
        if end < 0:
            end = size
        for chunk in cookie[start:end].split(";"):
            if not chunk:
                continue  # ";;": cheap to skip, and a header of them costs nothing
            key, eq, value = chunk.partition("=")
            if not eq:
                # A nameless cookie (https://bugzilla.mozilla.org/169091).
                key, value = "", key
            key = key.strip()
            value = value.strip()
            if key or value:
                cookies[key] = _unquote_cookie(value)
                if max_cookies is not None and len(cookies) > max_cookies:
                    raise HTTPInputError(f"more than {max_cookies} cookies")
        start = end + 1


# -- dates and URLs -------------------------------------------------------

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_timestamp(
    ts: int | float | tuple[int, ...] | time.struct_time | datetime.datetime,
) -> str:
    """Format a time as an HTTP date (RFC 9110 §5.6.7 IMF-fixdate).

    ``ts`` is a POSIX timestamp, a UTC time tuple / ``struct_time``, or a
    ``datetime`` (naive ones are taken as UTC).

    >>> format_timestamp(784111777)
    'Sun, 06 Nov 1994 08:49:37 GMT'
    """
    if isinstance(ts, (int, float)):
        seconds = ts
    elif isinstance(ts, (tuple, time.struct_time)):
        seconds = calendar.timegm(ts)
    elif isinstance(ts, datetime.datetime):
        seconds = calendar.timegm(ts.utctimetuple())
    else:
        raise TypeError(f"unknown timestamp type: {ts!r}")
    t = time.gmtime(seconds)
    return (
        f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def url_concat(
    url: str,
    args: Mapping[str, Any] | list[tuple[str, Any]] | tuple[tuple[str, Any], ...] | None,
) -> str:
    """Append query arguments to ``url``, keeping the ones already there.

    ``args`` is a dict, a list/tuple of pairs (for repeated names) or None.

    >>> url_concat("http://example.com/foo", dict(c="d"))
    'http://example.com/foo?c=d'
    >>> url_concat("http://example.com/foo?a=b", dict(c="d"))
    'http://example.com/foo?a=b&c=d'
    >>> url_concat("http://example.com/foo?a=b", [("c", "d"), ("c", "d2")])
    'http://example.com/foo?a=b&c=d&c=d2'
    """
    if args is None:
        return url
    if isinstance(args, Mapping):
        new_args: Iterable[tuple[str, Any]] = args.items()
    elif isinstance(args, (list, tuple)):
        new_args = args
    else:
        raise TypeError(f"'args' parameter should be dict, list or tuple. Not {type(args)}")
    parsed = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    query.extend(new_args)
    return urllib.parse.urlunparse(parsed._replace(query=urllib.parse.urlencode(query)))


def qs_to_qsl(qs: Mapping[str, Iterable[Any]]) -> Iterator[tuple[str, Any]]:
    """Flatten ``{name: [v1, v2]}`` (as from ``parse_qs``) into
    ``(name, v1), (name, v2)`` pairs."""
    for name, values in qs.items():
        for value in values:
            yield name, value


def split_host_and_port(netloc: str) -> tuple[str, int | None]:
    """Split ``"host:port"`` into ``(host, port)``; port is None if absent.

    >>> split_host_and_port("example.com:8080")
    ('example.com', 8080)
    >>> split_host_and_port("[::1]")
    ('[::1]', None)
    """
    host, colon, port = netloc.rpartition(":")
    # Only ASCII digits: int() would also accept "٣" or " 80".
    if colon and host and port and port.isascii() and port.isdigit():
        return host, int(port)
    return netloc, None


def doctests() -> Any:
    """The doctests of this module as a ``unittest`` suite (original
    cyclone API)."""
    import doctest

    return doctest.DocTestSuite()
