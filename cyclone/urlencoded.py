"""Percent-decoding and ``application/x-www-form-urlencoded`` parsing, sans-IO.

Bytes in, ``{name: [value, ...]}`` out; no Twisted.  Everything here is
linear in time, and the memory it needs beyond its result is bounded by a
constant, on any input: the standard library's decoders make an object (and,
for a bad escape, an exception) per ``%``, so a 30 MB body of ``%%%%...``
cost seconds of CPU and gigabytes.

- :func:`unquote_bytes` decodes ``%XX`` escapes with C-level operations only
  (``re.split``, ``binascii.unhexlify``, ``bytes.join``), a slice of at most
  ``_SLICE`` bytes at a time.
- :class:`UrlencodedParser` takes a form body in pieces as they arrive
  (``feed``), so a large body is decoded a network read at a time instead of
  in one long step at its end, and refuses more than ``max_fields`` fields
  as soon as the separators are seen.

>>> parser = UrlencodedParser(max_fields=10)
>>> parser.feed(b"a=1&b=%4")
>>> parser.feed(b"1+2&a=")
>>> parser.close()
{'a': [b'1', b''], 'b': [b'A 2']}
"""

from __future__ import annotations

import binascii
import re

__all__ = ["UrlencodedError", "UrlencodedParser", "unquote_bytes", "parse_urlencoded"]

_ESCAPE_RE = re.compile(rb"%([0-9A-Fa-f]{2})")
_EVERY_BYTE_RE = re.compile(rb".", re.DOTALL)
_SLICE = 1 << 15


class UrlencodedError(ValueError):
    """A form body or query string breaks a limit or (strict parsing) the syntax."""


def _unquote_slice(data: bytes) -> bytes:
    pieces = _ESCAPE_RE.split(data)  # [text, hex, text, hex, ..., text]
    if len(pieces) == 1:
        return data
    decoded = binascii.unhexlify(b"".join(pieces[1::2]))
    # findall gives one 1-byte bytes per decoded byte; CPython keeps those
    # as shared singletons, so this allocates nothing per escape.
    pieces[1::2] = _EVERY_BYTE_RE.findall(decoded)
    return b"".join(pieces)


def unquote_bytes(data: bytes) -> bytes:
    """Decode the ``%XX`` escapes of ``data``; anything else (a ``%`` not
    followed by two hex digits included) is kept as it is.

    Equal to :func:`urllib.parse.unquote_to_bytes`, in linear time and with
    no object per escape.

    >>> unquote_bytes(b"%41%%4g%42")
    b'A%%4gB'
    """
    if b"%" not in data:
        return data
    size = len(data)
    if size <= _SLICE:
        return _unquote_slice(data)
    out: list[bytes] = []
    start = 0
    while start < size:
        end = start + _SLICE
        if end < size:
            end -= _escape_tail(data, end)
        out.append(_unquote_slice(data[start:end]))
        start = end
    return b"".join(out)


def _escape_tail(data: bytes, end: int) -> int:
    """How many bytes before ``end`` may begin an escape that ``end`` cuts:
    1 for ``...%``, 2 for ``...%X`` (``%%`` begins none), else 0."""
    if end >= 1 and data[end - 1] == 0x25:
        return 1
    if end >= 2 and data[end - 2] == 0x25:
        return 2
    return 0


class UrlencodedParser:
    """Parse ``application/x-www-form-urlencoded`` data fed in pieces.

    Fields are separated by ``&``; a field is ``name=value`` or just
    ``name``; ``+`` is a space; names are decoded as latin-1 and values are
    kept as bytes (the caller decodes them), as Tornado's ``parse_qs_bytes``.
    Empty fields are skipped; so are fields with an empty value (or no
    ``=``) unless ``keep_blank_values``.  With ``strict_parsing`` an empty
    field or one without ``=`` is an error.

    More than ``max_fields`` fields (counting every ``&``-separated field, the
    empty ones too) raise :class:`UrlencodedError` from the ``feed`` that
    passes the limit; nothing more is stored after that.
    """

    __slots__ = (
        "arguments", "max_fields", "keep_blank_values", "strict_parsing",
        "_separators", "_pieces", "_name", "_carry", "_field_started", "_failed", "_empty",
    )

    def __init__(
        self,
        *,
        max_fields: int | None = None,
        keep_blank_values: bool = True,
        strict_parsing: bool = False,
    ) -> None:
        self.arguments: dict[str, list[bytes]] = {}
        self.max_fields = max_fields
        self.keep_blank_values = keep_blank_values
        self.strict_parsing = strict_parsing
        self._separators = 0
        self._pieces: list[bytes] = []  # decoded pieces of the current name or value
        self._name: str | None = None  # the current field's name, once its "=" is seen
        self._carry = b""  # an escape cut by the end of the last piece fed
        self._field_started = False
        self._failed: UrlencodedError | None = None
        self._empty = True  # nothing fed yet: no field at all, not one empty field

    def feed(self, data: bytes) -> None:
        """Parse the next piece of the data."""
        if self._failed is not None:
            raise self._failed
        if self.max_fields is not None and data:  # no data is no field
            self._separators += data.count(b"&")
            if self._separators + 1 > self.max_fields:
                self._fail(f"more than {self.max_fields} fields")
        if not data:
            return
        self._empty = False
        if self._carry:
            data = self._carry + data  # the carry never holds a "&" or "="
            self._carry = b""
        # A window of about _SLICE bytes at a time, cut after a "&", so that
        # "&&&&..." never becomes one list with an item per byte.
        size = len(data)
        start = 0
        while True:
            end = data.find(b"&", start + _SLICE) if size - start > _SLICE else -1
            fields = (data[start:] if end < 0 else data[start:end]).split(b"&")
            last = fields.pop()
            for field in fields:
                if field or self._field_started:
                    self._take(field, 0, len(field), complete=True)
                self._end_field()
            if end < 0:
                self._take(last, 0, len(last), complete=False)
                return
            self._take(last, 0, len(last), complete=True)
            self._end_field()
            start = end + 1

    def close(self) -> dict[str, list[bytes]]:
        """End the data; return the arguments."""
        if self._failed is not None:
            raise self._failed
        if self._carry:  # a cut-off escape at the very end is text
            carry, self._carry = self._carry, b""
            self._add(carry, complete=True)
        if not self._empty:
            self._end_field()
        return self.arguments

    def _fail(self, message: str) -> None:
        self._failed = UrlencodedError(message)
        self._pieces = []
        raise self._failed

    def _take(self, data: bytes, start: int, end: int, complete: bool) -> None:
        if start == end:
            return
        self._field_started = True
        if self._name is None:
            eq = data.find(b"=", start, end)
            if eq >= 0:
                self._add(data[start:eq], complete=True)
                self._name = b"".join(self._pieces).decode("latin1")
                self._pieces = []
                start = eq + 1
        self._add(data[start:end], complete)

    def _add(self, raw: bytes, complete: bool) -> None:
        if not complete:
            cut = _escape_tail(raw, len(raw))
            if cut:
                self._carry = raw[-cut:]
                raw = raw[:-cut]
        if raw:
            if b"+" in raw:
                raw = raw.replace(b"+", b" ")
            self._pieces.append(unquote_bytes(raw))

    def _end_field(self) -> None:
        pieces = self._pieces
        name = self._name
        started = self._field_started
        self._pieces = []
        self._name = None
        self._field_started = False
        if not started:
            if self.strict_parsing:
                self._fail("empty field")
            return
        value = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if name is None:  # no "=": the whole field is the name
            if self.strict_parsing:
                self._fail(f"a field without '=' ({len(value)} bytes)")
            if not self.keep_blank_values:
                return
            name, value = value.decode("latin1"), b""
        elif not value and not self.keep_blank_values:
            return
        values = self.arguments.get(name)
        if values is None:
            self.arguments[name] = [value]
        else:
            values.append(value)


def parse_urlencoded(
    data: bytes,
    *,
    max_fields: int | None = None,
    keep_blank_values: bool = True,
    strict_parsing: bool = False,
) -> dict[str, list[bytes]]:
    """Parse all of ``data`` at once (see :class:`UrlencodedParser`)."""
    if max_fields is not None and data and data.count(b"&") + 1 > max_fields:
        # refused before anything is decoded
        raise UrlencodedError(f"more than {max_fields} fields")
    parser = UrlencodedParser(keep_blank_values=keep_blank_values, strict_parsing=strict_parsing)
    parser.feed(data)
    return parser.close()
