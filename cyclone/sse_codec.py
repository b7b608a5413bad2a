"""Server-Sent Events framing (the WHATWG HTML standard, "Server-sent events"):
events in, bytes out. Sans-IO: no Twisted, no sockets; ``cyclone.sse`` sends
what it makes.

An event is a block of ``field: value`` lines ended by an empty line::

    event: price
    id: 42
    data: first line
    data: second line

The standard's parser splits lines at CR, LF and CRLF alike, so a message
holding any of them becomes several ``data:`` lines (the browser joins them
again with LF). ``event`` and ``id`` are one line each: a line break in them
would let the value end the field and start another (a field injection), so
they are refused with ``ValueError``, as is a NUL in ``id`` (browsers ignore
such an id) and a ``retry`` that is not a non-negative integer.

>>> encode_event("a\\nb", event="tick", id="7")
b'event: tick\\nid: 7\\ndata: a\\ndata: b\\n\\n'
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["HEARTBEAT", "encode_comment", "encode_event", "event_data"]

#: a comment line and the empty line that ends it: keeps a quiet stream
#: alive through proxies; EventSource ignores it
HEARTBEAT = b":\n\n"

# CRLF first: it is one line break, not two
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def event_data(data: Any) -> str:
    """The text of ``data``: str as is, bytes as UTF-8 (``ValueError`` if it is
    not), dict and list as JSON."""
    if isinstance(data, str):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            # an event stream is always UTF-8 (the standard fixes it)
            raise ValueError(f"event data is not UTF-8: {exc}") from None
    if isinstance(data, (dict, list)):
        # "</" escaped as cyclone.escape.json_encode does: the same JSON may
        # end up inside a <script> of a page
        return json.dumps(data).replace("</", "<\\/")
    raise TypeError(f"event data must be str, bytes, dict or list, not {type(data).__name__}")


def _one_line(name: str, value: Any) -> str:
    if not isinstance(value, str):
        value = str(value)
    if "\r" in value or "\n" in value:
        raise ValueError(f"an event's {name} cannot hold a line break: {value!r}")
    return value


def encode_event(
    data: Any = None,
    event: str | None = None,
    id: str | int | None = None,
    retry: int | None = None,
) -> bytes:
    """The bytes of one event; ``data`` as ``event_data()`` takes it, or None
    for an event of fields only (an ``id`` or ``retry`` without a message:
    the browser records them and dispatches nothing)."""
    lines = []
    if event is not None:
        lines.append(f"event: {_one_line('event', event)}\n")
    if id is not None:
        value = _one_line("id", id)
        if "\0" in value:
            raise ValueError(f"an event's id cannot hold NUL: {value!r}")
        lines.append(f"id: {value}\n")  # an empty id resets the browser's last id
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ValueError(f"retry must be a non-negative integer of milliseconds: {retry!r}")
        lines.append(f"retry: {retry}\n")
    if data is not None:
        text = event_data(data)
        if "\r" in text or "\n" in text:
            for line in _LINE_BREAK.split(text):
                lines.append(f"data: {line}\n")
        else:
            lines.append(f"data: {text}\n")
    lines.append("\n")
    return "".join(lines).encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """A comment (``: text``), one line per line of ``text``; EventSource
    ignores it. ``encode_comment()`` is ``HEARTBEAT``."""
    if not text:
        return HEARTBEAT
    return "".join(f": {line}\n" for line in _LINE_BREAK.split(text)).encode("utf-8") + b"\n"
