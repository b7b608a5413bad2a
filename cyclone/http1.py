"""A sans-IO HTTP/1.1 server core: bytes in, events out; bytes out.

Nothing here does I/O or imports Twisted, so it can be tested and fuzzed on
its own. ``cyclone.httpserver`` drives it from a Twisted protocol.

Parsing follows RFC 9110/9112 strictly, with the decisions written down in
the project's ``http1-policy.md``: anything ambiguous enough to be used for
request smuggling (CL+TE, repeated or lenient Content-Length, odd
Transfer-Encoding values, obs-fold, bare CR/LF, whitespace before the colon)
is a protocol error carrying the status to answer with.

Reading side::

    parser = RequestParser(Limits(max_body_size=1 << 20))
    parser.feed(data)
    for event in parser.events():
        ...   # RequestHead, Data, EndOfMessage or ProtocolError

After ``EndOfMessage`` the parser is paused: it yields ``PAUSED`` until
``start_next_request()`` is called, which is how pipelined requests are kept
strictly in order.

Writing side: ``ResponseWriter`` decides the framing of one response
(Content-Length, chunked or close-delimited) and ``status_line``,
``encode_chunk``, ``last_chunk`` and ``error_response`` produce bytes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Iterable

__all__ = [
    "Limits",
    "DEFAULT_LIMITS",
    "RequestHead",
    "Data",
    "EndOfMessage",
    "ProtocolError",
    "NEED_DATA",
    "PAUSED",
    "RequestParser",
    "ResponseWriter",
    "status_line",
    "encode_chunk",
    "last_chunk",
    "error_response",
    "format_date",
    "DateCache",
    "CONTINUE_RESPONSE",
    "REASONS",
    "HTTPOutputError",
]


class HTTPOutputError(ValueError):
    """The application tried to send something that is not valid HTTP: a
    body longer or shorter than the ``Content-Length`` it declared
    (``cyclone.httputil.HTTPOutputError`` is this class)."""


# the most bytes the parser slices at a time (see RequestParser.feed); the
# server reads 64 KiB at a time, so what it feeds never spills
_WINDOW = 65536


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of the request parser; each maps to a status when exceeded."""

    #: bytes of the request line, without CRLF (414)
    max_request_line: int = 8192
    #: bytes of the header block after the request line (431)
    max_header_size: int = 65536
    #: number of header fields (431)
    max_header_count: int = 100
    #: bytes of one header or trailer field line, name and value, without
    #: CRLF (431); 8 KiB as nginx's and Apache's per-line default
    max_header_field_size: int = 8192
    #: bytes of a request body, Content-Length or chunked (413)
    max_body_size: int = 100 * 1024 * 1024
    #: bytes of one chunk-size line including extensions (400)
    max_chunk_size_line: int = 256
    #: empty lines tolerated before a request line (400 past it)
    max_empty_lines: int = 8


DEFAULT_LIMITS = Limits()


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


class _Event:
    __slots__ = ()

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), repr(self._key())))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"


class RequestHead(_Event):
    """The request line and header fields of a request, with its framing decided."""

    __slots__ = (
        "method",
        "target",
        "version",
        "headers",
        "content_length",
        "chunked",
        "keep_alive",
        "expect_continue",
        "host",
    )

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        headers: list[tuple[str, str]],
        content_length: int | None = None,
        chunked: bool = False,
        keep_alive: bool = True,
        expect_continue: bool = False,
        host: str | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.host = host


class Data(_Event):
    """A piece of a request body, already de-chunked; never empty."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class EndOfMessage(_Event):
    """The end of a request body, with the trailer fields of a chunked body."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: list[tuple[str, str]] | None = None) -> None:
        self.trailers = trailers if trailers is not None else []


class ProtocolError(_Event):
    """The request cannot be served: answer ``status`` and close the connection."""

    __slots__ = ("status", "reason")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: more bytes are needed before another event can be produced
NEED_DATA = _Sentinel("NEED_DATA")
#: a request is complete; ``start_next_request()`` resumes parsing
PAUSED = _Sentinel("PAUSED")

# A request without a body needs no fresh EndOfMessage object.
_END_NO_TRAILERS = EndOfMessage([])  # shared: never mutated

# Creates an event without calling its __init__, which costs more than the
# attribute stores; the caller sets every attribute.
_new_event = object.__new__


class _Reject(Exception):
    """Internal: raised by the parsing helpers, turned into a ProtocolError."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


# --------------------------------------------------------------------------
# Grammar (RFC 9110 §5.6, RFC 9112 §3, §5, §7)
# --------------------------------------------------------------------------

_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = rb"[" + _TCHAR + rb"]+"
_TOKEN_RE = re.compile(_TOKEN)
_VCHAR_OBS = rb"\x21-\x7e\x80-\xff"
# field-value: no leading/trailing SP/HTAB once stripped, SP/HTAB only inside.
_FIELD_LINE = (
    _TOKEN
    + rb":[ \t]*(?:["
    + _VCHAR_OBS
    + rb"](?:[ \t"
    + _VCHAR_OBS
    + rb"]*["
    + _VCHAR_OBS
    + rb"])?)?[ \t]*"
)
_FIELD_LINE_RE = re.compile(_FIELD_LINE)
# One line of a header block, on its latin-1 text, anchored at a line start:
# (name, value without its SP/HTAB padding). A block whose every "\n" ends a
# match of this pattern is valid (see _split_fields).
_V = "\x21-\x7e\x80-\xff"
_STRICT_FIELD_RE = re.compile(
    "^([!#$%&'*+\\-.^_`|~0-9A-Za-z]+):[ \t]*((?:[" + _V + "](?:[ \t" + _V + "]*[" + _V + "])?)?)[ \t]*\r\n",
    re.M,
)
# The head of the common request, on its latin-1 text without the final CRLF
# CRLF: an origin-form target, HTTP/1.0 or HTTP/1.1, then field lines written
# "name: value" with one SP and a non-empty value without padding, so that
# partition(": ") splits them. A single match validates the whole head; any
# other head takes the general path, which also gives the errors.
_SIMPLE_HEAD_RE = re.compile(
    "([!#$%&'*+\\-.^_`|~0-9A-Za-z]+) (/[\x21-\x7e]*) HTTP/1\\.([01])"
    "(?:\r\n[!#$%&'*+\\-.^_`|~0-9A-Za-z]+: [" + _V + "][ \t" + _V + "]*(?<=[" + _V + "]))*"
)

_REQUEST_LINE_RE = re.compile(
    rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])"
)
_QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_SIZE_RE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED_STRING
    + rb"))?)*"
)
_HOST_RE = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?"
)
_ABSOLUTE_FORM_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*://[^/?#]*(?:[/?].*)?")
_TE_LIST_RE = re.compile(
    r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?: *, *[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*"
)

# In WSGI/CGI environ these collide with the dashed names (HTTP_CONTENT_LENGTH).
_UNDERSCORE_FRAMING = frozenset(("content_length", "transfer_encoding"))
# Names whose value changes how a message is framed or routed.
_SPECIAL = frozenset(
    ("content-length", "transfer-encoding", "host", "connection", "expect")
) | _UNDERSCORE_FRAMING
# The usual spellings of the special names, so most lookups need no lower().
_SPECIAL_SPELLINGS = {
    spelling: name
    for name in _SPECIAL
    for spelling in (name, name.upper(), name.title(), name.capitalize())
}
_SPECIAL_LENGTHS = frozenset(len(name) for name in _SPECIAL)
_FORBIDDEN_TRAILERS = frozenset(("content-length", "transfer-encoding", "host")) | _UNDERSCORE_FRAMING

# Parser states
_S_HEAD = 0
_S_BODY_CL = 1
_S_CHUNK_SIZE = 2
_S_CHUNK_DATA = 3
_S_CHUNK_CRLF = 4
_S_TRAILERS = 5
_S_END = 6
_S_PAUSED = 7
_S_ERROR = 8
_S_SWITCHED = 9

_STATE_NAMES = {
    _S_HEAD: "HEAD",
    _S_BODY_CL: "BODY",
    _S_CHUNK_SIZE: "CHUNK_SIZE",
    _S_CHUNK_DATA: "CHUNK_DATA",
    _S_CHUNK_CRLF: "CHUNK_CRLF",
    _S_TRAILERS: "TRAILERS",
    _S_END: "END",
    _S_PAUSED: "PAUSED",
    _S_ERROR: "ERROR",
    _S_SWITCHED: "SWITCHED",
}


def _diagnose_field_lines(lines: list[bytes]) -> _Reject:
    """Explain why a header block failed the fast whole-block check."""
    for line in lines:
        if _FIELD_LINE_RE.fullmatch(line):
            continue
        if line[:1] in (b" ", b"\t"):
            return _Reject(400, "obsolete line folding in header")
        if b"\n" in line:
            return _Reject(400, "bare LF in header")
        if b"\r" in line:
            return _Reject(400, "bare CR in header")
        name, colon, _ = line.partition(b":")
        if not colon:
            return _Reject(400, "header line without a colon")
        if name[-1:] in (b" ", b"\t"):
            return _Reject(400, "whitespace between header name and colon")
        if not _TOKEN_RE.fullmatch(name):
            return _Reject(400, "invalid character in header name")
        return _Reject(400, "invalid character in header value")
    return _Reject(400, "malformed header block")  # pragma: no cover - defensive


def _check_line_ends(buf: bytes, start: int, where: str) -> None:
    """Reject a bare LF or bare CR in ``buf[start:]`` (an incomplete block)."""
    pos = start
    while True:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            break
        if nl == 0 or buf[nl - 1] != 13:
            raise _Reject(400, f"bare LF in {where}")
        pos = nl + 1
    pos = start
    last = len(buf) - 1
    while True:
        cr = buf.find(b"\r", pos)
        if cr < 0 or cr == last:  # a CR at the very end may still get its LF
            break
        if buf[cr + 1] != 10:
            raise _Reject(400, f"bare CR in {where}")
        pos = cr + 1


def _check_field_sizes(block: bytes, max_size: int, message: str) -> None:
    """431 if a CRLF-terminated line of ``block`` is longer than ``max_size``."""
    # a block no longer than the limit cannot hold a longer line: the usual
    # case costs one comparison; else one C-level split
    if len(block) - 2 > max_size and max(map(len, block.split(b"\r\n"))) > max_size:
        raise _Reject(431, message)


def _split_fields(block: bytes, count: int) -> tuple[str, list[tuple[str, str]]]:
    """Validate a header block of ``count`` CRLF-terminated lines and split it
    into (name, value) pairs, in one C-level pass.

    Every match of ``_STRICT_FIELD_RE`` starts at a line start and holds
    exactly one LF, its terminator; so ``count`` matches in a block with
    ``count`` LFs means every line matched whole: the block is valid.
    """
    text = block.decode("latin-1")
    pairs = _STRICT_FIELD_RE.findall(text)
    if len(pairs) != count or text.count("\n") != count:
        raise _diagnose_field_lines(block[:-2].split(b"\r\n"))
    return text, pairs


class RequestParser:
    """Parses the requests of one connection; see the module docstring."""

    __slots__ = (
        "_limits",
        "_buf",
        "_state",
        "_error",
        "_body_limit",
        "_remaining",
        "_body_seen",
        "_trailers",
        "_empty_lines",
        "_scanned",
        "_simple_head_max",
        "_check_field_size",
        "_valid_host",
        "_spill",
        "_spill_pos",
        "_spilled",
    )

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buf = b""
        # bytes fed past _WINDOW wait here (chunks, an offset into the
        # first, their total) until the parser needs them: see feed()
        self._spill: list[bytes] = []
        self._spill_pos = 0
        self._spilled = 0
        self._state = _S_HEAD
        self._error: ProtocolError | None = None
        self._body_limit = limits.max_body_size
        self._remaining = 0
        self._body_seen = 0
        self._trailers: list[tuple[str, str]] = []
        self._empty_lines = 0
        self._scanned = 0
        # a complete head no longer than this is within the line and block limits
        self._simple_head_max = min(limits.max_request_line, limits.max_header_size)
        # and within the field limit too, unless that limit is set lower
        self._check_field_size = limits.max_header_field_size < self._simple_head_max
        # the last Host value found valid, so a repeat needs no regex match
        self._valid_host = ""

    # -- public API ---------------------------------------------------------

    @property
    def state(self) -> str:
        return _STATE_NAMES[self._state]

    @property
    def buffered(self) -> int:
        """Bytes held that have not been turned into events yet."""
        return len(self._buf) + self._spilled

    @property
    def in_body(self) -> bool:
        """True while the body of the current request is being read."""
        return _S_BODY_CL <= self._state <= _S_TRAILERS

    @property
    def body_started(self) -> bool:
        """True once any byte of the current request's body was consumed."""
        return self._body_seen > 0 or self._state > _S_CHUNK_SIZE

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._state == _S_SWITCHED:
            raise RuntimeError("the parser stepped aside after switch_protocol()")
        if data:
            if type(data) is not bytes:  # a bytearray or memoryview
                data = bytes(data)
            buf = self._buf
            if self._spilled or len(buf) + len(data) > _WINDOW:
                # Every event slices what follows it off the buffer: a buffer
                # of n bytes would cost O(n) per event, O(n^2) in all. So the
                # buffer takes at most _WINDOW bytes at a time; the rest
                # waits until the parser runs out (_more).
                self._spill.append(data)
                self._spilled += len(data)
                if len(buf) < _WINDOW:
                    self._refill(_WINDOW - len(buf))
            elif buf:
                self._buf = buf + data
            else:
                self._buf = data

    def _refill(self, size: int) -> None:
        """Move up to ``size`` spilled bytes into the buffer."""
        spill = self._spill
        pieces = []
        while size > 0 and spill:
            first = spill[0]
            pos = self._spill_pos
            piece = first[pos : pos + size]
            pieces.append(piece)
            size -= len(piece)
            self._spilled -= len(piece)
            if pos + len(piece) >= len(first):
                del spill[0]
                self._spill_pos = 0
            else:
                self._spill_pos = pos + len(piece)
        self._buf += b"".join(pieces)

    def _more(self):
        """``NEED_DATA``, unless spilled bytes remain: then move a window of
        them into the buffer and go on parsing."""
        if not self._spilled:
            return NEED_DATA
        self._refill(_WINDOW)
        return self.next_event()

    def set_max_body_size(self, size: int) -> None:
        """Change the body size limit for the current request only."""
        self._body_limit = size

    @property
    def max_body_size(self) -> int:
        """The body size limit of the current request."""
        return self._body_limit

    def start_next_request(self) -> None:
        """Resume parsing after the response to the previous request was written."""
        if self._state != _S_PAUSED:
            raise RuntimeError(f"start_next_request() in state {self.state}")
        self._state = _S_HEAD
        self._body_limit = self._limits.max_body_size
        self._body_seen = 0
        self._empty_lines = 0
        self._scanned = 0

    def switch_protocol(self) -> bytes:
        """Step aside for another protocol; return the bytes buffered so far."""
        rest = self._buf
        if self._spilled:
            rest += b"".join(self._spill)[self._spill_pos :]
            self._spill, self._spill_pos, self._spilled = [], 0, 0
        self._buf = b""
        self._state = _S_SWITCHED
        return rest

    def events(self) -> list:
        """All events available now (sentinels excluded; a ProtocolError is last)."""
        out = []
        next_event = self.next_event
        while True:
            event = next_event()
            if event is NEED_DATA or event is PAUSED:
                return out
            out.append(event)
            if type(event) is ProtocolError:
                return out

    def next_event(self):
        """The next event, or ``NEED_DATA`` / ``PAUSED``."""
        state = self._state
        try:
            # the states of every request first, in the order they come
            if state == _S_HEAD:
                return self._read_head()
            if state == _S_END:
                self._state = _S_PAUSED
                trailers = self._trailers
                if trailers:
                    self._trailers = []
                    return EndOfMessage(trailers)
                return _END_NO_TRAILERS
            if state == _S_PAUSED:
                return PAUSED
            if state == _S_BODY_CL:
                return self._read_body_cl()
            if state == _S_ERROR:
                return self._error
            if state == _S_SWITCHED:
                raise RuntimeError("the parser stepped aside after switch_protocol()")
            return self._read_chunked()
        except _Reject as exc:
            self._error = ProtocolError(exc.status, exc.reason)
            self._state = _S_ERROR
            self._buf = b""
            self._spill, self._spill_pos, self._spilled = [], 0, 0
            return self._error

    # -- head -----------------------------------------------------------------

    def _skip_empty_lines(self) -> bool:
        """Drop CRLFs before a request line; False while more bytes are needed."""
        buf = self._buf
        while buf[:1] in (b"\r", b"\n"):
            if buf.startswith(b"\r\n"):
                buf = buf[2:]
                self._empty_lines += 1
                if self._empty_lines > self._limits.max_empty_lines:
                    self._buf = buf
                    raise _Reject(400, "too many empty lines before the request line")
            elif buf == b"\r":
                self._buf = buf
                return False
            elif buf[:1] == b"\n":
                raise _Reject(400, "bare LF before the request line")
            else:
                raise _Reject(400, "bare CR before the request line")
        self._buf = buf
        return True

    def _check_incomplete_head(self) -> None:
        """Reject an incomplete head early: bare LF, or a line already too long."""
        buf = self._buf
        limits = self._limits
        eol = buf.find(b"\r\n")
        if eol >= 0:
            line_len = eol
        else:  # a trailing CR may be the start of the CRLF
            line_len = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
        if line_len > limits.max_request_line:
            raise _Reject(414, "request line too long")
        # the header block as the complete head measures it: without the
        # part of its closing CRLF CRLF that has arrived
        if eol >= 0:
            tail = buf[-3:]
            block_size = len(buf) - eol - 2 - (len(tail) - len(tail.rstrip(b"\r\n")))
            if block_size > limits.max_header_size:
                raise _Reject(431, "header block too large")
        # Scan only the bytes not scanned before, so byte-by-byte feeding stays linear.
        _check_line_ends(buf, self._scanned, "request head")
        self._scanned = max(len(buf) - 1, 0)

    def _read_head(self):
        """The common request, parsed in few steps; anything else (and every
        error) goes to _read_head_general, so both agree on what is valid."""
        buf = self._buf
        if not buf:  # between requests of a keep-alive connection
            return self._more()
        # one call splits off the head (partition needs no argument parsing)
        head_bytes, blank_line, rest = buf.partition(b"\r\n\r\n")
        if not blank_line or len(head_bytes) > self._simple_head_max:
            return self._read_head_general()
        text = head_bytes.decode("latin-1")
        match = _SIMPLE_HEAD_RE.fullmatch(text)
        if match is None:
            return self._read_head_general()
        lines = text.split("\r\n")
        del lines[0]  # the request line
        if len(lines) > self._limits.max_header_count:
            return self._read_head_general()
        if self._check_field_size and max(map(len, lines), default=0) > self._limits.max_header_field_size:
            return self._read_head_general()
        headers = []
        host = content_length = None
        connection_close = connection_keep_alive = False
        spellings = _SPECIAL_SPELLINGS
        for line in lines:
            name, _, value = line.partition(": ")
            headers.append((name, value))
            kind = spellings.get(name)
            if kind is None:
                if len(name) in _SPECIAL_LENGTHS and name.lower() in _SPECIAL:
                    return self._read_head_general()
                continue
            if kind == "host" and host is None:
                host = value
            elif kind == "content-length" and content_length is None:
                content_length = value
            elif kind == "connection":
                token = value.lower()
                if token == "keep-alive":
                    connection_keep_alive = True
                elif token == "close":
                    connection_close = True
                else:
                    return self._read_head_general()
            else:  # Transfer-Encoding, Expect, repeats, underscore variants
                return self._read_head_general()
        method, target, minor = match.groups()
        http11 = minor == "1"
        if host is None:
            if http11:
                return self._read_head_general()
        elif host != self._valid_host:  # a connection's requests repeat their Host
            if _HOST_RE.fullmatch(host) is None:
                return self._read_head_general()
            self._valid_host = host
        if content_length is not None:
            if not (content_length.isdigit() and content_length.isascii()):
                return self._read_head_general()
            content_length = int(content_length)
        self._buf = rest
        # what RequestHead(...) does, without the cost of calling __init__
        head = _new_event(RequestHead)
        head.method = method
        head.target = target
        head.version = "HTTP/1.1" if http11 else "HTTP/1.0"
        head.headers = headers
        head.content_length = content_length
        head.chunked = False
        head.keep_alive = not connection_close and (http11 or connection_keep_alive)
        head.expect_continue = False
        head.host = host
        if content_length:
            self._remaining = content_length
            self._state = _S_BODY_CL
        else:
            self._state = _S_END
        return head

    def _read_head_general(self):
        """Any head: leading empty lines, partial heads, other forms, errors."""
        if self._buf[:1] in (b"\r", b"\n") and not self._skip_empty_lines():
            return self._more()
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if buf:
                self._check_incomplete_head()
            return self._more()
        limits = self._limits
        eol = buf.find(b"\r\n")
        request_line = buf[:eol]
        if eol > limits.max_request_line:
            raise _Reject(414, "request line too long")
        if end > eol:
            block = buf[eol + 2 : end + 2]
            if len(block) - 2 > limits.max_header_size:
                raise _Reject(431, "header block too large")
        else:
            block = b""
        self._buf = buf[end + 4 :]

        match = _REQUEST_LINE_RE.fullmatch(request_line)
        if match is None:
            if b"\n" in request_line or b"\r" in request_line:
                raise _Reject(400, "bare CR or LF in request line")
            raise _Reject(400, "malformed request line")
        method_b, target_b, major, minor = match.groups()
        if major != b"1" or minor not in (b"0", b"1"):
            raise _Reject(505, "HTTP version not supported")
        http11 = minor == b"1"

        count = block.count(b"\r\n")
        if count > limits.max_header_count:
            raise _Reject(431, "too many header fields")
        _check_field_sizes(block, limits.max_header_field_size, "header field too large")

        method = method_b.decode("ascii")
        target = target_b.decode("ascii")
        content_length = None
        chunked = False
        connection_close = connection_keep_alive = False
        expect_continue = False
        host = None
        seen_cl = seen_te = 0
        if count:
            text, headers = _split_fields(block, count)
            # the special names, found on the lower-cased text in one C-level
            # pass; lower() keeps latin-1 text the same length, so the value
            # spans index the original text
            # (kind, value, line index) of the fields that change framing or
            # routing; most names are looked up as spelled, without lower()
            found = []
            spellings = _SPECIAL_SPELLINGS
            for index, (name, value) in enumerate(headers):
                kind = spellings.get(name)
                if kind is None:
                    if len(name) not in _SPECIAL_LENGTHS:
                        continue
                    kind = name.lower()
                    if kind not in _SPECIAL:
                        continue
                found.append((kind, value, index))
            lnames = [kind for kind, _, _ in found]
            specials = set(lnames)
        else:
            headers = []
            specials = None
        if specials:
            if specials & _UNDERSCORE_FRAMING:
                raise _Reject(400, "underscore in a framing header name")
            if "host" in specials:
                if lnames.count("host") > 1:
                    raise _Reject(400, "more than one Host")
                host = found[lnames.index("host")][1]
                if _HOST_RE.fullmatch(host) is None:
                    raise _Reject(400, "invalid Host")
            if "content-length" in specials:
                seen_cl = lnames.count("content-length")
                if seen_cl > 1:
                    raise _Reject(400, "repeated Content-Length")
                value = found[lnames.index("content-length")][1]
                if not (value.isdigit() and value.isascii()):
                    raise _Reject(400, "invalid Content-Length")
                content_length = int(value)
            if "transfer-encoding" in specials:
                seen_te = lnames.count("transfer-encoding")
                if seen_te > 1:
                    raise _Reject(400, "repeated Transfer-Encoding")
                _, value, line = found[lnames.index("transfer-encoding")]
                if "\t" in text.split("\r\n")[line]:
                    # policy: a TAB around "chunked" is a known smuggling probe
                    # (proxies disagree on it), so it is refused, not taken as OWS
                    raise _Reject(400, "HTAB in Transfer-Encoding")
                chunked = self._check_transfer_encoding(value, http11)
            if "connection" in specials:
                for lname, value, _ in found:
                    if lname == "connection":
                        for token in value.lower().split(","):
                            token = token.strip(" \t")
                            if token == "close":
                                connection_close = True
                            elif token == "keep-alive":
                                connection_keep_alive = True
            if "expect" in specials and http11:
                for lname, value, _ in found:
                    if lname == "expect":
                        if value.lower() != "100-continue":
                            raise _Reject(417, "unsupported expectation")
                        expect_continue = True
        # "close" wins over any keep-alive token; HTTP/1.0 must ask to be kept.
        keep_alive = not connection_close and (http11 or connection_keep_alive)
        if seen_te and seen_cl:
            raise _Reject(400, "both Content-Length and Transfer-Encoding")
        if http11 and host is None:
            raise _Reject(400, "missing Host header")
        if target[0] != "/":  # origin-form needs no further check
            self._check_target(method, target)

        head = RequestHead(
            method,
            target,
            "HTTP/1.1" if http11 else "HTTP/1.0",
            headers,
            content_length,
            chunked,
            keep_alive,
            expect_continue,
            host,
        )
        if chunked:
            self._state = _S_CHUNK_SIZE
        elif content_length:
            self._remaining = content_length
            self._state = _S_BODY_CL
        else:
            self._state = _S_END
        return head

    @staticmethod
    def _check_transfer_encoding(value: str, http11: bool) -> bool:
        if not http11:
            raise _Reject(400, "Transfer-Encoding in an HTTP/1.0 request")
        lowered = value.lower()
        if lowered == "chunked":
            return True
        if _TE_LIST_RE.fullmatch(lowered):
            raise _Reject(501, "unsupported transfer coding")
        raise _Reject(400, "malformed Transfer-Encoding")

    @staticmethod
    def _check_target(method: str, target: str) -> None:
        first = target[0]
        if first == "/":
            return
        if target == "*":
            if method == "OPTIONS":
                return
            raise _Reject(400, "asterisk-form target outside OPTIONS")
        if method == "CONNECT":
            if _HOST_RE.fullmatch(target) and ":" in target:
                return
            raise _Reject(400, "invalid authority-form target")
        if _ABSOLUTE_FORM_RE.fullmatch(target):
            return
        raise _Reject(400, "invalid request target")

    # -- bodies -------------------------------------------------------------------

    def _read_body_cl(self):
        if self._body_seen == 0 and self._remaining > self._body_limit:
            raise _Reject(413, "request body too large")
        if not self._buf:
            return self._more()
        chunk = self._take_body_bytes()
        self._body_seen += len(chunk)
        if not self._remaining:
            self._state = _S_END
        data = _new_event(Data)  # Data(chunk), without the cost of __init__
        data.data = chunk
        return data

    def _take_body_bytes(self) -> bytes:
        """Up to ``_remaining`` buffered bytes (the buffer is not empty)."""
        buf = self._buf
        remaining = self._remaining
        if len(buf) <= remaining:
            chunk = buf
            self._buf = b""
        else:
            chunk = buf[:remaining]
            self._buf = buf[remaining:]
        self._remaining = remaining - len(chunk)
        return chunk

    def _read_chunked(self):
        while True:
            state = self._state
            buf = self._buf
            if state == _S_CHUNK_DATA:
                if not buf:
                    return self._more()
                chunk = self._take_body_bytes()
                if not self._remaining:
                    self._state = _S_CHUNK_CRLF
                return Data(chunk)
            if state == _S_CHUNK_CRLF:
                if len(buf) < 2:
                    if buf and buf != b"\r":
                        raise _Reject(400, "chunk data not followed by CRLF")
                    return self._more()
                if buf[:2] != b"\r\n":
                    raise _Reject(400, "chunk data not followed by CRLF")
                self._buf = buf[2:]
                self._state = _S_CHUNK_SIZE
                continue
            if state == _S_CHUNK_SIZE:
                limit = self._limits.max_chunk_size_line
                nl = buf.find(b"\n", 0, limit + 2)
                if nl < 0:
                    if len(buf) > limit + 1:
                        raise _Reject(400, "chunk-size line too long")
                    if b"\r" in buf[:-1]:
                        raise _Reject(400, "bare CR in chunk-size line")
                    return self._more()
                if nl == 0 or buf[nl - 1] != 13:
                    raise _Reject(400, "bare LF in chunk-size line")
                line = buf[: nl - 1]
                match = _CHUNK_SIZE_RE.fullmatch(line)
                if match is None:
                    raise _Reject(400, "invalid chunk-size line")
                size = int(match.group(1), 16)
                self._buf = buf[nl + 1 :]
                self._body_seen += size
                if self._body_seen > self._body_limit:
                    raise _Reject(413, "request body too large")
                if size:
                    self._remaining = size
                    self._state = _S_CHUNK_DATA
                else:
                    self._state = _S_TRAILERS
                    self._scanned = 0
                continue
            # _S_TRAILERS
            return self._read_trailers()

    def _read_trailers(self):
        buf = self._buf
        if buf.startswith(b"\r\n"):
            self._buf = buf[2:]
            self._state = _S_END
            return self.next_event()
        if len(buf) < 2:
            if buf and buf != b"\r":
                if buf == b"\n":
                    raise _Reject(400, "bare LF after last chunk")
            return self._more()
        end = buf.find(b"\r\n\r\n")
        limits = self._limits
        if end < 0:
            if len(buf) > limits.max_header_size:
                raise _Reject(431, "trailer section too large")
            _check_line_ends(buf, self._scanned, "trailer section")
            self._scanned = max(len(buf) - 1, 0)
            return self._more()
        block = buf[: end + 2]
        if len(block) - 2 > limits.max_header_size:
            raise _Reject(431, "trailer section too large")
        count = block.count(b"\r\n")
        if count > limits.max_header_count:
            raise _Reject(431, "too many trailer fields")
        _check_field_sizes(block, limits.max_header_field_size, "trailer field too large")
        _, trailers = _split_fields(block, count)
        for name, _ in trailers:
            if name.lower() in _FORBIDDEN_TRAILERS:
                raise _Reject(400, "framing field in trailer section")
        self._buf = buf[end + 4 :]
        self._trailers = trailers
        self._state = _S_END
        return self.next_event()


# --------------------------------------------------------------------------
# Writing responses
# --------------------------------------------------------------------------

#: reason phrases of the registered status codes
REASONS: dict[int, str] = {s.value: s.phrase for s in HTTPStatus}
REASONS.setdefault(418, "I'm a Teapot")

# version -> status code -> status line
_STATUS_LINES: dict[str, dict[int, bytes]] = {
    version: {code: f"{version} {code} {reason}\r\n".encode("ascii") for code, reason in REASONS.items()}
    for version in ("HTTP/1.1", "HTTP/1.0")
}
_NO_STATUS_LINES: dict[int, bytes] = {}
_STATUS_LINES_11 = _STATUS_LINES["HTTP/1.1"]
# besides 1xx, the statuses whose responses never have a body
_NO_BODY_STATUSES = frozenset((204, 304))
_REASON_BAD_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

#: the interim response to ``Expect: 100-continue``
CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
_LAST_CHUNK = b"0\r\n\r\n"


def status_line(status: int, reason: str | None = None, version: str = "HTTP/1.1") -> bytes:
    """``b"HTTP/1.1 200 OK\\r\\n"``; precomputed for every registered code."""
    if reason is None:
        line = _STATUS_LINES.get(version, _NO_STATUS_LINES).get(status)
        if line is not None:
            return line
        reason = REASONS.get(status, "Unknown")
    elif _REASON_BAD_RE.search(reason):
        raise ValueError(f"invalid reason phrase: {reason!r}")
    if not 100 <= status <= 999:
        raise ValueError(f"invalid status code: {status!r}")
    try:
        return f"{version} {status} {reason}\r\n".encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"reason phrase not encodable as latin-1: {reason!r}") from None


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body; ``b""`` for empty data (which would end the body)."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


# name -> "" for an ordinary valid name, or the lower-cased name of a field
# that changes framing; bounded so hostile handlers cannot grow it forever.
_header_kinds: dict[str, str] = {}
_FRAMING_FIELDS = frozenset(("content-length", "transfer-encoding", "connection"))


def _classify_header_name(name: str) -> str:
    if type(name) is not str or _HEADER_NAME_RE.fullmatch(name) is None:
        raise ValueError(f"invalid header name: {name!r}")
    lname = name.lower()
    kind = lname if lname in _FRAMING_FIELDS else ""
    if len(_header_kinds) < 1024:
        _header_kinds[name] = kind
    return kind


def _encode_field_line(name: str, value: object) -> bytes:
    """One ``name: value\\r\\n`` line of an already validated name.

    Raises ValueError on header injection (CR, LF or NUL in the value) and
    for a value that is not latin-1.
    """
    # Check the text that is sent, not the value: a str subclass can format
    # differently from what it contains.
    text = f"{name}: {value}"
    if "\r" in text or "\n" in text or "\x00" in text:
        raise ValueError(f"Unsafe header value {value!r} (in {text!r})")
    try:
        return (text + "\r\n").encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"header value not encodable as latin-1: {exc}") from None


# Encoded, validated lines of ordinary fields by (name, value).  Most values
# repeat from one response to the next (Server, Content-Type, the Date of the
# current second), so ResponseWriter.head finds their line with one dict
# lookup.  Bounded: only short lines are kept, and a full cache is emptied,
# so values seen once (ETags, cookies) cannot grow memory and only delay
# the repeating ones by a miss each time the cache fills.
_FIELD_LINE_CACHE_SIZE = 512
_FIELD_LINE_CACHE_MAX_LINE = 256
_field_line_cache: dict[tuple[str, str], bytes] = {}
# The same for Content-Length fields, with the parsed length.
_content_length_cache: dict[tuple[str, str], tuple[bytes, int]] = {}


def _content_length_line(name: str, value: str) -> tuple[bytes, int]:
    """The encoded line of a Content-Length field and its length."""
    # ASCII digits only: int() would take "+10", " 10", "1_0" or "١٠"
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"invalid Content-Length: {value!r}")
    length = int(value)
    return _encode_field_line(name, value), length


def _field_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    """``name: value\\r\\n`` lines; raises ValueError on header injection."""
    lines = []
    kinds = _header_kinds
    for name, value in headers:
        if name not in kinds:
            _classify_header_name(name)
        lines.append(_encode_field_line(name, value))
    return b"".join(lines)


def last_chunk(trailers: Iterable[tuple[str, str]] | None = None) -> bytes:
    """The end of a chunked body, optionally with trailer fields."""
    if not trailers:
        return _LAST_CHUNK
    return b"0\r\n" + _field_lines(trailers) + b"\r\n"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(t: float) -> bytes:
    """An IMF-fixdate (RFC 9110 §5.6.7): ``b"Sun, 06 Nov 1994 08:49:37 GMT"``."""
    tm = time.gmtime(t)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[tm.tm_wday].encode(),
        tm.tm_mday,
        _MONTHS[tm.tm_mon - 1].encode(),
        tm.tm_year,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
    )


class DateCache:
    """The ``Date`` header value, formatted at most once per second."""

    __slots__ = ("_second", "_value", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""
        self._text = ""

    def __call__(self, now: float) -> bytes:
        second = int(now)
        if second != self._second:
            self._value = format_date(second)
            self._text = self._value.decode("ascii")
            self._second = second
        return self._value

    def text(self, now: float) -> str:
        """The same value as ``str``."""
        if int(now) != self._second:
            self(now)
        return self._text


def error_response(status: int, date: bytes | None = None) -> bytes:
    """A complete plain-text response for a rejected request, closing the connection."""
    reason = REASONS.get(status, "Unknown")
    body = f"{status} {reason}\n".encode("ascii")
    head = [
        status_line(status),
        b"Content-Type: text/plain; charset=utf-8\r\n",
        b"Content-Length: %d\r\n" % len(body),
        b"Connection: close\r\n",
    ]
    if date is not None:
        head.append(b"Date: " + date + b"\r\n")
    head.append(b"\r\n")
    return b"".join(head) + body


class ResponseWriter:
    """Frames one response to a parsed request: head, body pieces, end.

    The framing follows the headers the caller gives: a ``Content-Length``
    makes an identity body (writing past it, or ending short of it, raises
    ``HTTPOutputError`` and clears ``keep_alive``); without
    one an HTTP/1.1 response is chunked and an HTTP/1.0 response is
    delimited by closing the connection. HEAD, 1xx, 204 and 304 responses
    never carry body bytes.
    """

    __slots__ = (
        "keep_alive",
        "chunked",
        "switching",
        "_version",
        "_no_body",
        "_remaining",
        "_started",
        "_finished",
    )

    def __init__(self, request: RequestHead | None = None, keep_alive: bool = True) -> None:
        if request is None:
            self._version = "HTTP/1.1"
            self.keep_alive = False
            self._no_body = False
        else:
            self._version = request.version
            self.keep_alive = keep_alive and request.keep_alive
            # until head() adds what the status says: a HEAD request
            self._no_body = request.method == "HEAD"
        self.chunked = False
        self.switching = False
        self._remaining: int | None = None
        self._started = False
        self._finished = False

    def head(self, status: int, headers: Iterable[tuple[str, str]], reason: str | None = None) -> bytes:
        """The status line and header block; decides framing and keep-alive."""
        if self._started:
            raise RuntimeError("response head already written")
        self._started = True
        # until now _no_body says whether the request was HEAD
        self._no_body = self._no_body or status < 200 or status in _NO_BODY_STATUSES
        content_length = None
        # (kind, index in lines, name, value) of the Transfer-Encoding and
        # Connection fields given, which are rare
        framing = None
        lines = [b""]  # the status line, once the fields are known to be valid
        line_cache = _field_line_cache
        # One pass: find each line in the caches; only new values and the
        # rare framing fields are validated and encoded here.
        for field in headers:
            try:
                line = line_cache.get(field)
                if line is not None:
                    lines.append(line)
                    continue
                entry = _content_length_cache.get(field)
            except TypeError:  # a pair given as a list
                entry = None
            if entry is not None:
                line, content_length = entry
            else:
                name, value = field
                kind = _header_kinds.get(name)
                if kind is None:
                    kind = _classify_header_name(name)
                if type(value) is str:
                    cacheable = True
                else:
                    value = str(value)
                    cacheable = False  # (name, 1) and (name, True) are equal keys
                if not kind:
                    line = _encode_field_line(name, value)
                    if cacheable and len(line) <= _FIELD_LINE_CACHE_MAX_LINE:
                        if len(line_cache) >= _FIELD_LINE_CACHE_SIZE:
                            line_cache.clear()
                        line_cache[name, value] = line
                elif kind == "content-length":
                    entry = _content_length_line(name, value)
                    if cacheable and len(entry[0]) <= _FIELD_LINE_CACHE_MAX_LINE:
                        if len(_content_length_cache) >= _FIELD_LINE_CACHE_SIZE:
                            _content_length_cache.clear()
                        _content_length_cache[name, value] = entry
                    line, content_length = entry
                else:
                    if kind == "connection":
                        line = b""  # encoded by _frame unless replaced
                    elif value.strip().lower() != "chunked":
                        raise ValueError(f"unsupported Transfer-Encoding: {value!r}")
                    else:
                        line = _encode_field_line(name, value)
                    if framing is None:
                        framing = []
                    framing.append((kind, len(lines), name, value))
            lines.append(line)
        if framing is None and content_length is not None and status != 101:
            # the common case: a Content-Length body, Connection left to us
            self._remaining = content_length
            # HTTP/1.0: closing is the default, keeping alive is said (as
            # Tornado says it); HTTP/1.1: the other way round
            if self._version == "HTTP/1.0":
                if self.keep_alive:
                    lines.append(b"Connection: Keep-Alive\r\n")
            elif not self.keep_alive:
                lines.append(b"Connection: close\r\n")
        else:
            self._frame(status, content_length, framing, lines)
        lines.append(b"\r\n")
        # RFC 9110 §2.5: the status line names the highest version we conform
        # to (HTTP/1.1), whatever the request's; framing and keep-alive above
        # still follow the request's version.
        line = _STATUS_LINES_11.get(status) if reason is None else None
        lines[0] = line if line is not None else status_line(status, reason)
        return b"".join(lines)

    def _frame(
        self,
        status: int,
        content_length: int | None,
        framing: list[tuple[str, int, str, str]] | None,
        lines: list[bytes],
    ) -> None:
        """Framing and keep-alive for the less common heads; completes ``lines``.

        ``framing`` holds (kind, index in lines, name, value) of the
        Transfer-Encoding and Connection fields given.
        """
        user_chunked = False
        connection_close = False
        connection_fields = []
        for kind, index, name, value in framing or ():
            if kind == "transfer-encoding":
                user_chunked = True
            else:  # connection
                connection_fields.append((index, name, value))
                if "close" in [t.strip() for t in value.lower().split(",")]:
                    connection_close = True
        if content_length is not None and user_chunked:
            raise ValueError("both Content-Length and Transfer-Encoding in a response")
        version = self._version
        if status == 101:
            self.switching = True
            self.keep_alive = False
        elif content_length is not None:
            self._remaining = content_length
        elif user_chunked:
            if version != "HTTP/1.1":
                raise ValueError("chunked response to an HTTP/1.0 request")
            self.chunked = not self._no_body
        elif not self._no_body:
            if version == "HTTP/1.1":
                self.chunked = True
                lines.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.keep_alive = False
        if connection_close:
            self.keep_alive = False
        # The caller's Connection fields are sent as given, unless the
        # connection closes and they do not say so: "close" replaces them.
        if self.switching or self.keep_alive or connection_close:
            for index, name, value in connection_fields:
                lines[index] = _encode_field_line(name, value)
        if self.switching:
            return
        if not self.keep_alive:
            if not connection_close and version != "HTTP/1.0":  # HTTP/1.0 closes by default
                lines.append(b"Connection: close\r\n")
        elif version == "HTTP/1.0" and not connection_fields:
            lines.append(b"Connection: Keep-Alive\r\n")

    def body(self, data: bytes) -> bytes:
        """Framed bytes for a piece of the body."""
        if self._finished:
            raise RuntimeError("response already finished")
        if self._no_body or not data:
            return b""
        if self.chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        remaining = self._remaining
        if remaining is not None:
            size = len(data)
            if size > remaining:
                # nothing of ``data`` is sent; the response can no longer be
                # completed, so the connection closes after it
                self.keep_alive = False
                raise HTTPOutputError(
                    f"Tried to write {size - remaining} bytes more than Content-Length ({remaining} left)"
                )
            self._remaining = remaining - size
        return data

    def end(self, trailers: Iterable[tuple[str, str]] | None = None) -> bytes:
        """Bytes that end the body (the last chunk, or nothing)."""
        if self._finished:
            raise RuntimeError("response already finished")
        self._finished = True
        if self.chunked:
            return last_chunk(trailers)
        if self._remaining and not self._no_body:
            # The client would wait for bytes that never come: the connection
            # closes after what was sent (the caller must close it).
            self.keep_alive = False
            raise HTTPOutputError(f"Tried to write {self._remaining} bytes less than Content-Length")
        return b""
