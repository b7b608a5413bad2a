"""RESP2, the Redis protocol, sans-IO: commands encoded to bytes, replies parsed
from bytes. No Twisted, no sockets: ``cyclone.redis`` feeds it what a
connection reads.

``encode_command(*args)`` gives the bytes of one command (an array of bulk
strings). ``ReplyParser.feed(data)`` takes whatever arrived and returns the
replies now complete, in order; a reply cut across reads waits in the parser:

=================  ==============================================
``+OK``            ``str`` (``"OK"``)
``-ERR message``   an instance of ``error_class`` (``ReplyError``),
                   returned, not raised: it answers one command
``:42``            ``int``
``$5 hello``       ``bytes``
``$-1``, ``*-1``   ``None``
``*2 ...``         ``list`` (nested arrays are lists in lists)
=================  ==============================================

Limits (keyword arguments of ``ReplyParser``; a reply beyond them raises
``ProtocolError`` and the parser refuses to go on, as the connection is then
out of step): ``max_line`` (65536 bytes: a status, error, integer or length
line without its end), ``max_bulk`` (512 MiB, Redis's own largest string),
``max_depth`` (64 nested arrays).
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["encode_command", "ReplyParser", "ReplyError", "ProtocolError"]


class ReplyError(Exception):
    """An error reply (``-ERR ...``); its message is the line after ``-``."""


class ProtocolError(Exception):
    """The bytes received are not RESP2: the connection cannot be trusted any more."""


def _arg_bytes(arg: Any) -> bytes:
    kind = type(arg)
    if kind is bytes:
        return arg
    if kind is str:
        return arg.encode()
    if kind is int:
        return b"%d" % arg
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg)
    raise TypeError(f"a Redis command argument must be bytes, str or int, not {kind.__name__}")


def encode_command(*args: Any) -> bytes:
    """The RESP bytes of the command ``args`` (bytes as they are, str as UTF-8,
    int in decimal)."""
    if not args:
        raise ValueError("a Redis command needs at least its name")
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _arg_bytes(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Incomplete(Exception):
    """Raised inside the parser: the buffer ends before the reply does.
    ``args[0]``: the buffer length at which parsing is worth trying again."""


class ReplyParser:
    """Bytes in, replies out (see the module's docstring). One per connection."""

    __slots__ = ("_chunks", "_size", "_need", "_error_class", "_broken",
                 "max_line", "max_bulk", "max_depth")

    def __init__(self, *, error_class: Callable[[str], Any] = ReplyError,
                 max_line: int = 65536, max_bulk: int = 512 * 1024 * 1024,
                 max_depth: int = 64) -> None:
        self._chunks: list[bytes] = []
        self._size = 0  # bytes held in _chunks
        self._need = 1  # _size at which a reply may be complete
        self._error_class = error_class
        self._broken: ProtocolError | None = None
        self.max_line = max_line
        self.max_bulk = max_bulk
        self.max_depth = max_depth

    @property
    def pending(self) -> int:
        """Bytes received that are not yet part of a complete reply."""
        return self._size

    def feed(self, data: bytes) -> list[Any]:
        """Take ``data``; return the replies it completed (maybe none)."""
        if self._broken is not None:
            raise self._broken
        if data:
            self._chunks.append(bytes(data))
            self._size += len(data)
        if self._size < self._need:
            return []
        chunks = self._chunks
        buffer = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        replies: list[Any] = []
        parse = self._parse
        end = len(buffer)
        pos = 0
        try:
            while pos < end:
                value, pos = parse(buffer, pos, 0)
                replies.append(value)
            self._need = 1
        except _Incomplete as incomplete:
            self._need = incomplete.args[0] - pos
        except ProtocolError as error:
            self._broken = error
            self._chunks = []
            self._size = 0
            raise
        rest = end - pos
        if rest:
            self._chunks = [buffer[pos:] if pos else buffer]
        else:
            self._chunks = []
        self._size = rest
        return replies

    def _parse(self, buffer: bytes, pos: int, depth: int) -> tuple[Any, int]:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            if len(buffer) - pos > self.max_line:
                raise ProtocolError(f"a reply line longer than {self.max_line} bytes")
            raise _Incomplete(len(buffer) + 1)
        if line_end - pos > self.max_line:
            raise ProtocolError(f"a reply line longer than {self.max_line} bytes")
        kind = buffer[pos]
        if kind == 36:  # $: bulk string
            length = self._length(buffer, pos, line_end)
            if length < 0:
                return None, line_end + 2
            if length > self.max_bulk:
                raise ProtocolError(f"a bulk reply of {length} bytes (max_bulk {self.max_bulk})")
            start = line_end + 2
            stop = start + length
            if len(buffer) < stop + 2:
                raise _Incomplete(stop + 2)
            if buffer[stop:stop + 2] != b"\r\n":
                raise ProtocolError("a bulk reply longer than its announced length")
            return buffer[start:stop], stop + 2
        if kind == 43:  # +: status
            return buffer[pos + 1:line_end].decode("utf-8", "replace"), line_end + 2
        if kind == 58:  # :: integer
            return self._length(buffer, pos, line_end, integer=True), line_end + 2
        if kind == 45:  # -: error
            return self._error_class(buffer[pos + 1:line_end].decode("utf-8", "replace")), line_end + 2
        if kind == 42:  # *: array
            count = self._length(buffer, pos, line_end)
            pos = line_end + 2
            if count < 0:
                return None, pos
            if depth >= self.max_depth:
                raise ProtocolError(f"arrays nested deeper than {self.max_depth}")
            items = []
            append = items.append
            parse = self._parse
            for _ in range(count):
                if pos >= len(buffer):
                    raise _Incomplete(pos + 1)
                item, pos = parse(buffer, pos, depth + 1)
                append(item)
            return items, pos
        raise ProtocolError(f"unknown reply type {bytes([kind])!r}")

    @staticmethod
    def _length(buffer: bytes, pos: int, line_end: int, integer: bool = False) -> int:
        digits = buffer[pos + 1:line_end]
        # int() alone would also take b" 1", b"1_0" or b"+1": RESP has none of them
        body = digits[1:] if digits[:1] == b"-" else digits
        if not body.isdigit() or len(body) > 19:
            what = "an integer" if integer else "a length"
            raise ProtocolError(f"{what} that is not a 64-bit decimal number: {digits[:40]!r}")
        value = int(digits)
        if not integer and value < -1:
            raise ProtocolError(f"a negative length: {value}")
        return value
