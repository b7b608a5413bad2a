"""The test client's HTTP/1.1 (and 1.0) exchange: one request, one response,
on one connection.

``_Exchange`` is a Twisted protocol that writes a request and reads the
response off the wire itself, so the response's headers are exactly the ones
received -- ``Content-Length``, ``Connection`` and ``Transfer-Encoding``
included (Twisted's ``Agent`` consumes those). Its body framing follows
RFC 9112 section 6.3: no body after HEAD or for 1xx, 204 and 304; chunked
when ``Transfer-Encoding`` ends in chunked; ``Content-Length`` otherwise;
else until the server closes. Interim 1xx responses are skipped (a 100
releases a body held back by ``expect_100_continue``). The connection is
closed after the response: the client does not keep connections alive.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, Callable

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from cyclone.httputil import HTTPHeaders

__all__ = ["ResponseHead", "serialize_head"]

#: A response head longer than this is refused (servers we test stay far below).
MAX_HEAD = 256 * 1024
_STATUS_LINE = re.compile(r"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?\Z")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+\Z")


class ProtocolError(Exception):
    """The server's response is not HTTP/1.x as this client reads it."""


class ResponseHead:
    """The status line and headers of the final response."""

    def __init__(self, version: str, code: int, reason: str, headers: HTTPHeaders, lines: list[str]) -> None:
        self.version = version
        self.code = code
        self.reason = reason
        self.headers = headers
        #: the head as received, one str per line with its CRLF (for header_callback)
        self.lines = lines


def _check_header(name: str, value: str) -> None:
    if not _TOKEN.match(name):
        raise ValueError(f"invalid header name {name!r}")
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"invalid character in the value of header {name!r}")


def _encode_value(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def serialize_head(method: str, target: str, version: str, headers: HTTPHeaders) -> bytes:
    """The request line and headers, ending with the blank line.

    Raises ValueError for a method that is not a token, a target with
    whitespace or controls, or a header that would split the head.
    """
    if not _TOKEN.match(method):
        raise ValueError(f"invalid method {method!r}")
    if not target or any(c <= " " or c == "\x7f" for c in target):
        raise ValueError(f"invalid request target {target!r}")
    lines = [f"{method} {target} {version}".encode("ascii")]
    for name, value in headers.get_all():
        _check_header(name, value)
        lines.append(name.encode("ascii") + b": " + _encode_value(value))
    return b"\r\n".join(lines) + b"\r\n\r\n"


def parse_head(block: bytes) -> ResponseHead:
    """A response head (without its blank line) as ``ResponseHead``."""
    text = block.decode("latin-1")
    raw_lines = text.split("\n")
    lines = [line[:-1] if line.endswith("\r") else line for line in raw_lines]
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
    headers = HTTPHeaders()
    for name, value in pairs:
        headers.add(name, value)
    return ResponseHead(
        f"HTTP/{major}.{minor}", int(code), reason or "", headers,
        [line + "\r\n" for line in lines] + ["\r\n"],
    )


@implementer(IPushProducer)
class _Gate:
    """Tells the request body's writer when the socket's buffer is full."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self._waiters: list[defer.Deferred[None]] = []

    def wait(self) -> defer.Deferred[None]:
        if not self.paused:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def stopProducing(self) -> None:
        self.stopped = True
        self.resumeProducing()


class _Body:
    """Collects (or streams) the body, un-gzipping it when asked to."""

    def __init__(self, callback: Callable[[bytes], Any] | None, gunzip: bool) -> None:
        self._callback = callback
        self._chunks: list[bytes] = []
        self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS) if gunzip else None

    def feed(self, data: bytes) -> None:
        if self._decoder is not None:
            data = self._decoder.decompress(data)
        if not data:
            return
        if self._callback is not None:
            self._callback(data)
        else:
            self._chunks.append(data)

    def finish(self) -> bytes:
        if self._decoder is not None:
            rest = self._decoder.flush()
            self._decoder = None
            self.feed(rest)
        return b"".join(self._chunks)


class Exchange(protocol.Protocol):
    """Sends one request and reads its response.

    ``finished`` fires with ``(ResponseHead, body bytes)`` or fails with
    ``ProtocolError``, ``ConnectionDone``/``ConnectionLost`` (closed early)
    or what the body producer or streaming callback raised.

    ``body`` is bytes (sent at once, or after a 100 with ``expect_continue``)
    or a ``body_producer(write)`` function as Tornado's client takes: it
    calls ``write(chunk)``, which returns a Deferred to wait on before the
    next chunk, and returns a Deferred or awaitable that fires at the end.
    ``on_head(head)`` decides, once the final head is in, whether the body
    is gunzipped (it may edit the headers) and may raise to abort.
    """

    def __init__(
        self,
        head: bytes,
        body: bytes | Callable[[Callable[[bytes], Any]], Any] | None,
        chunked: bool,
        method: str,
        expect_continue: bool,
        on_head: Callable[[ResponseHead], bool],
        streaming_callback: Callable[[bytes], Any] | None,
    ) -> None:
        self.finished: defer.Deferred[tuple[ResponseHead, bytes]] = defer.Deferred(self._cancel)
        self._head = head
        self._body_to_send = body
        self._chunked = chunked
        self._method = method
        self._expect_continue = expect_continue and body is not None
        self._on_head = on_head
        self._streaming_callback = streaming_callback
        self._buffer = bytearray()
        self._state = "head"  # head, length, chunk-size, chunk-data, chunk-end, trailers, close, done
        self._remaining = 0
        self._response: ResponseHead | None = None
        self._body: _Body | None = None
        self._gate = _Gate()
        self._body_sent = False

    # -- sending -------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.transport.registerProducer(self._gate, True)
        self.transport.write(self._head)
        if self._body_to_send is not None and not self._expect_continue:
            self._send_body()

    def _send_body(self) -> None:
        if self._body_sent:
            return
        self._body_sent = True
        body = self._body_to_send
        if isinstance(body, bytes):
            self.transport.write(body)
            return
        from cyclone.concurrent import ensure_deferred

        try:
            d = ensure_deferred(body(self._write_chunk))
        except Exception:
            self._fail(Failure())
            return
        d.addCallbacks(self._body_done, self._fail)

    def _write_chunk(self, chunk: bytes | str) -> defer.Deferred[None]:
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        if self._state == "done" or self._gate.stopped:
            return defer.succeed(None)  # the response is in or the socket is gone: drop
        if chunk:
            if self._chunked:
                self.transport.writeSequence([b"%x\r\n" % len(chunk), chunk, b"\r\n"])
            else:
                self.transport.write(chunk)
        return self._gate.wait()

    def _body_done(self, _: Any) -> None:
        if self._chunked and self._state != "done" and not self._gate.stopped:
            self.transport.write(b"0\r\n\r\n")

    # -- receiving -----------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._state == "done":
            return
        self._buffer += data
        try:
            self._parse()
        except Exception:
            self._fail(Failure())

    def _parse(self) -> None:
        while self._buffer and self._state != "done":
            state = self._state
            if state == "head":
                if not self._read_head():
                    return
            elif state == "length":
                piece = bytes(self._buffer[: self._remaining])
                del self._buffer[: len(piece)]
                self._remaining -= len(piece)
                self._body.feed(piece)
                if self._remaining == 0:
                    self._complete()
            elif state == "close":
                piece = bytes(self._buffer)
                self._buffer.clear()
                self._body.feed(piece)
            elif state == "chunk-size":
                line = self._line()
                if line is None:
                    return
                size = line.split(b";", 1)[0].strip(b" \t")
                if not _CHUNK_SIZE.match(size):
                    raise ProtocolError(f"malformed chunk size line {line[:40]!r}")
                self._remaining = int(size, 16)
                self._state = "chunk-data" if self._remaining else "trailers"
            elif state == "chunk-data":
                piece = bytes(self._buffer[: self._remaining])
                del self._buffer[: len(piece)]
                self._remaining -= len(piece)
                self._body.feed(piece)
                if self._remaining == 0:
                    self._state = "chunk-end"
            elif state == "chunk-end":
                line = self._line()
                if line is None:
                    return
                if line:
                    raise ProtocolError("chunk data longer than its size")
                self._state = "chunk-size"
            elif state == "trailers":
                line = self._line()
                if line is None:
                    return
                if not line:  # trailers are read and dropped, as Tornado's client does
                    self._complete()
        if self._state == "head" and len(self._buffer) > MAX_HEAD:
            raise ProtocolError("response head too long")

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ProtocolError("line too long")
            return None
        line = bytes(self._buffer[:end]).rstrip(b"\r")
        del self._buffer[: end + 1]
        return line

    def _read_head(self) -> bool:
        # A head ends at the first empty line (CRLF CRLF; a bare LF is accepted).
        match = re.search(rb"\r?\n\r?\n", self._buffer)
        if match is None:
            if len(self._buffer) > MAX_HEAD:
                raise ProtocolError("response head too long")
            return False
        block = bytes(self._buffer[: match.start()])
        del self._buffer[: match.end()]
        # Leading empty lines before a status line are tolerated (RFC 9112 2.2).
        block = block.lstrip(b"\r\n")
        head = parse_head(block)
        if 100 <= head.code < 200 and head.code != 101:
            if head.code == 100 and self._expect_continue:
                self._send_body()
            return True
        self._response = head
        gunzip = self._on_head(head)
        self._body = _Body(self._streaming_callback, gunzip)
        self._frame(head)
        return True

    def _frame(self, head: ResponseHead) -> None:
        if self._method == "HEAD" or head.code in (101, 204, 304):
            self._complete()
            return
        codings = [c.strip().lower() for c in ",".join(head.headers.get_list("Transfer-Encoding")).split(",") if c.strip()]
        if codings:
            if codings[-1] != "chunked":
                self._state = "close"
                return
            self._state = "chunk-size"
            return
        lengths = head.headers.get_list("Content-Length")
        if lengths:
            values = {v.strip() for value in lengths for v in value.split(",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise ProtocolError(f"invalid Content-Length {lengths!r}")
            self._remaining = int(values.pop())
            self._state = "length"
            if self._remaining == 0:
                self._complete()
            return
        self._state = "close"

    def _complete(self) -> None:
        self._state = "done"
        try:
            body = self._body.finish()
        except Exception:
            self._fail(Failure())
            return
        self.transport.loseConnection()
        if not self.finished.called:
            self.finished.callback((self._response, body))

    def _fail(self, reason: Failure) -> None:
        self._state = "done"
        self.transport.abortConnection()
        if not self.finished.called:
            self.finished.errback(reason)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._gate.stopProducing()
        if self._state == "close":
            self._complete()
            return
        if self._state != "done":
            self._state = "done"
            if not self.finished.called:
                self.finished.errback(reason)

    def _cancel(self, d: defer.Deferred[Any]) -> None:
        self._state = "done"
        if self.transport is not None:
            self.transport.abortConnection()
