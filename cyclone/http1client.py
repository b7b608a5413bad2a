"""A sans-IO HTTP/1.1 client core: request heads out, response events in.

Nothing here does I/O or imports Twisted; ``cyclone.httpclient`` drives it
from a Twisted protocol. It is the client-side twin of ``cyclone.http1``
(which parses requests); the two share no parsing code because a client
reads the other message type and must be lenient where a server is strict
(obs-fold, a bare LF, leading empty lines: RFC 9112 sections 2.2 and 5.2).

Writing: ``request_head(method, target, version, headers)`` returns the
request line and header block, refusing a method that is not a token, a
target with whitespace or control characters, and a header name or value
that would split the head (CR, LF, NUL), before anything is sent.

Reading::

    parser = ResponseParser("GET", max_head_size=65536)
    for event in parser.feed(data):   # ResponseHead, Data, EndOfMessage
        ...
    parser.feed_eof()                  # the connection closed

Header fields are kept exactly as received (``Content-Length``,
``Connection``, ``Transfer-Encoding`` included), in order, and
``ResponseHead.lines`` has the head's lines for a ``header_callback``.
Body framing follows RFC 9112 section 6.3: no body after HEAD or for 1xx,
204 and 304; chunked when ``Transfer-Encoding`` ends in chunked;
``Content-Length`` otherwise; else until the server closes. Interim 1xx
responses (but 101) come out as ``ResponseHead`` events with
``interim=True`` and are followed by the next head.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "DEFAULT_MAX_HEAD_SIZE",
    "LAST_CHUNK",
    "Data",
    "EndOfMessage",
    "ProtocolError",
    "ResponseHead",
    "ResponseParser",
    "encode_chunk",
    "request_head",
]

#: The default limit on a response head (status line and headers), in bytes.
DEFAULT_MAX_HEAD_SIZE = 65536

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_STATUS_LINE = re.compile(r"HTTP/(\d)\.(\d) (\d{3})(?:[ \t](.*))?\Z")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}\Z")
_BAD_VALUE = re.compile(r"[\r\n\0]")
# A request target: visible ASCII only (no space, no control, no DEL).
_TARGET = re.compile(r"[\x21-\x7e]+\Z")

LAST_CHUNK = b"0\r\n\r\n"


class ProtocolError(Exception):
    """The server's response is not HTTP/1.x as this client reads it."""


class ResponseHead:
    """A status line and its header fields, as received."""

    __slots__ = ("code", "headers", "interim", "lines", "reason", "version")

    def __init__(
        self, version: str, code: int, reason: str, headers: list[tuple[str, str]], lines: list[str]
    ) -> None:
        self.version = version
        self.code = code
        self.reason = reason
        #: ``(name, value)`` pairs in the order received, names as spelled
        self.headers = headers
        #: the head as received, one str per line with its CRLF, then "\r\n"
        self.lines = lines
        self.interim = 100 <= code < 200 and code != 101

    def get_list(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def __repr__(self) -> str:
        return f"ResponseHead({self.version} {self.code} {self.reason!r}, {len(self.headers)} headers)"


class Data:
    """A piece of the response body (chunked coding already removed)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Data({len(self.data)} bytes)"


class EndOfMessage:
    """The response is complete; ``keep_alive`` says whether the connection
    may carry another request."""

    __slots__ = ("keep_alive",)

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive

    def __repr__(self) -> str:
        return f"EndOfMessage(keep_alive={self.keep_alive})"


def _encode_value(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def request_head(method: str, target: str, version: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The request line and header fields, ending with the blank line.

    Raises ValueError for a method that is not a token, a target with
    whitespace or control characters, a header name that is not a token or a
    value with CR, LF or NUL: nothing that could split the request.
    """
    if not _TOKEN.match(method):
        raise ValueError(f"invalid HTTP method {method!r}")
    if not _TARGET.match(target):
        raise ValueError(f"invalid request target {target!r}")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise ValueError(f"invalid HTTP version {version!r}")
    parts = [f"{method} {target} {version}\r\n".encode("ascii")]
    for name, value in headers:
        if not _TOKEN.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if _BAD_VALUE.search(value):
            raise ValueError(f"invalid character (CR, LF or NUL) in the value of header {name!r}")
        parts.append(name.encode("ascii") + b": " + _encode_value(value) + b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def encode_chunk(data: bytes) -> bytes:
    """``data`` as one chunk of the chunked transfer coding (empty stays empty)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _parse_head(block: bytes) -> ResponseHead:
    text = block.decode("latin-1")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    match = _STATUS_LINE.match(lines[0])
    if match is None:
        raise ProtocolError(f"malformed status line {lines[0][:100]!r}")
    major, minor, code, reason = match.groups()
    pairs: list[list[str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # obsolete line folding: continues the previous value
            if not pairs:
                raise ProtocolError("header continuation without a header")
            pairs[-1][1] += " " + line.strip(" \t")
            continue
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise ProtocolError(f"malformed header line {line[:100]!r}")
        pairs.append([name, value.strip(" \t")])
    return ResponseHead(
        f"HTTP/{major}.{minor}",
        int(code),
        reason or "",
        [(name, value) for name, value in pairs],
        [line + "\r\n" for line in lines] + ["\r\n"],
    )


def _tokens(values: list[str]) -> list[str]:
    return [t.strip().lower() for value in values for t in value.split(",") if t.strip()]


class ResponseParser:
    """Reads one response to a request made with ``method``.

    ``feed(data)`` returns the events the bytes complete and raises
    ``ProtocolError`` for a malformed response or a head over
    ``max_head_size``. After ``EndOfMessage``, bytes that followed are kept
    in ``trailing`` (a well-behaved server sends none). ``request_close``
    says the request asked for ``Connection: close``, so the connection is
    not kept whatever the response says.
    """

    def __init__(self, method: str, max_head_size: int = DEFAULT_MAX_HEAD_SIZE, request_close: bool = False) -> None:
        self.method = method
        self.max_head_size = max_head_size
        self.request_close = request_close
        self.head: ResponseHead | None = None
        self.trailing = b""
        #: True once any byte of a response arrived (a reused connection that
        #: closes before that may be retried)
        self.started = False
        self._buffer = bytearray()
        self._state = "head"  # head, length, chunk-size, chunk-data, chunk-end, trailers, close, done
        self._remaining = 0
        self._keep_alive = False

    @property
    def complete(self) -> bool:
        return self._state == "done"

    @property
    def close_delimited(self) -> bool:
        """The body runs until the connection closes."""
        return self._state == "close"

    def feed(self, data: bytes) -> list[object]:
        if data:
            self.started = True
        if self._state == "done":
            self.trailing += data
            return []
        if self._state == "close":  # the fast path of close-delimited bodies
            return [Data(data)] if data else []
        if self._state == "length" and not self._buffer:  # the fast path of sized bodies
            if len(data) <= self._remaining:
                self._remaining -= len(data)
                events: list[object] = [Data(data)]
                if self._remaining == 0:
                    events.append(self._end())
                return events
        self._buffer += data
        events = []
        self._parse(events)
        return events

    def feed_eof(self) -> list[object]:
        """The connection closed: ends a close-delimited body, else raises
        ``ProtocolError`` if the response is incomplete."""
        if self._state == "close":
            self._state = "done"
            return [EndOfMessage(False)]
        if self._state == "done":
            return []
        if self._state == "head" and not self._buffer.strip():
            raise ProtocolError("connection closed before a response")
        raise ProtocolError("connection closed in the middle of the response")

    def _parse(self, events: list[object]) -> None:
        buf = self._buffer
        while self._state != "done":
            state = self._state
            if state == "head":
                if not self._read_head(events):
                    return
            elif state in ("length", "chunk-data"):
                if not buf:
                    return
                piece = bytes(buf[: self._remaining])
                del buf[: len(piece)]
                self._remaining -= len(piece)
                events.append(Data(piece))
                if self._remaining == 0:
                    if state == "length":
                        events.append(self._end())
                    else:
                        self._state = "chunk-end"
            elif state == "close":
                if buf:
                    events.append(Data(bytes(buf)))
                    buf.clear()
                return
            elif state == "chunk-size":
                line = self._line(256, "chunk size line")
                if line is None:
                    return
                size = line.split(b";", 1)[0].strip(b" \t")
                if not _CHUNK_SIZE.match(size):
                    raise ProtocolError(f"malformed chunk size line {line[:40]!r}")
                self._remaining = int(size, 16)
                self._state = "chunk-data" if self._remaining else "trailers"
            elif state == "chunk-end":
                line = self._line(2, "chunk end")
                if line is None:
                    return
                if line:
                    raise ProtocolError("chunk data longer than its size")
                self._state = "chunk-size"
            elif state == "trailers":
                line = self._line(self.max_head_size, "trailer")
                if line is None:
                    return
                if not line:  # trailers are read and dropped
                    events.append(self._end())
        if buf:
            self.trailing += bytes(buf)
            buf.clear()

    def _line(self, limit: int, what: str) -> bytes | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) > limit + 2:
                raise ProtocolError(f"{what} too long")
            return None
        line = bytes(self._buffer[:end]).rstrip(b"\r")
        del self._buffer[: end + 1]
        return line

    def _read_head(self, events: list[object]) -> bool:
        # Leading empty lines before a status line are tolerated (RFC 9112 2.2).
        while self._buffer[:1] in (b"\r", b"\n") and self._buffer:
            if self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            elif self._buffer[:1] == b"\n":
                del self._buffer[:1]
            elif len(self._buffer) < 2:
                return False
            else:
                break
        match = _HEAD_END.search(self._buffer)
        if match is None:
            if len(self._buffer) > self.max_head_size:
                raise ProtocolError(f"response head longer than {self.max_head_size} bytes")
            return False
        if match.start() > self.max_head_size:
            raise ProtocolError(f"response head longer than {self.max_head_size} bytes")
        head = _parse_head(bytes(self._buffer[: match.start()]))
        del self._buffer[: match.end()]
        events.append(head)
        if head.interim:
            return True
        self.head = head
        self._frame(head, events)
        return True

    def _frame(self, head: ResponseHead, events: list[object]) -> None:
        connection = _tokens(head.get_list("Connection"))
        if head.version == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = head.version == "HTTP/1.0" and "keep-alive" in connection and "close" not in connection
        self._keep_alive = keep_alive and not self.request_close and head.code != 101
        if self.method == "CONNECT" and 200 <= head.code < 300:
            # RFC 9110 9.3.6: the tunnel starts right after the head.
            self._keep_alive = False
            events.append(self._end())
            return
        if self.method == "HEAD" or head.code in (101, 204, 304):
            events.append(self._end())
            return
        codings = _tokens(head.get_list("Transfer-Encoding"))
        if codings:
            if head.get_list("Content-Length"):
                # RFC 9112 6.3: Transfer-Encoding wins, and the connection is not reused.
                self._keep_alive = False
            if codings[-1] != "chunked":
                self._state = "close"
                self._keep_alive = False
                return
            self._state = "chunk-size"
            return
        lengths = head.get_list("Content-Length")
        if lengths:
            values = {v.strip() for value in lengths for v in value.split(",")}
            value = values.pop() if len(values) == 1 else ""
            if not value.isdigit() or not value.isascii() or len(value) > 18:
                raise ProtocolError(f"invalid Content-Length {lengths!r}")
            self._remaining = int(value)
            self._state = "length"
            if self._remaining == 0:
                events.append(self._end())
            return
        self._state = "close"
        self._keep_alive = False

    def _end(self) -> EndOfMessage:
        self._state = "done"
        return EndOfMessage(self._keep_alive)
