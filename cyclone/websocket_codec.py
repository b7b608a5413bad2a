"""A sans-IO WebSocket codec (RFC 6455) with permessage-deflate (RFC 7692).

Bytes go in, events come out; frames to send come back as bytes. There is no
I/O, no clock and no Twisted here, so the server glue (``cyclone.websocket``)
and a client can share it: ``Codec(client=False)`` expects masked frames and
sends unmasked ones, ``Codec(client=True)`` the other way round.

::

    codec = Codec(client=False, max_message_size=10 * 2**20)
    for event in codec.receive(data):
        if type(event) is Message: ...      # event.data: str (text) or bytes (binary)
        elif type(event) is Ping: ...       # answer with codec.pong(event.data)
        elif type(event) is Pong: ...
        elif type(event) is Close: ...      # event.code (1005: none sent), event.reason
        elif type(event) is Fail: ...       # a protocol error: send codec.close(event.code)
    transport.write(codec.message("hello"))

After a ``Close`` or a ``Fail`` the codec ignores whatever else it is given.

Validation is strict: reserved bits without a negotiated extension, an
unmasked frame from a client (a masked one from a server), unknown opcodes,
control frames over 125 bytes or fragmented, continuation frames out of
place, 64-bit lengths with the top bit set, lengths not written in the
fewest bytes (RFC 6455 §5.2: "the minimal number of bytes MUST be used";
a 16-bit length below 126 or a 64-bit one below 65536), close payloads of one byte and
close codes that may not be sent on the wire are failures with 1002; text
that is not UTF-8 (checked as it arrives, across fragments, so the failure
comes with the first bad byte) and close reasons that are not UTF-8 fail with
1007; a message over ``max_message_size`` fails with 1009, judged from the
frame header before the payload is buffered and, for compressed messages,
while inflating, so that a small "zip bomb" never expands past the limit.

A message is sent as one frame, whatever its size (RFC 6455 lets either
side fragment; nothing requires it, and one frame is the cheapest to make
and to parse): ``write_message`` of 10 MiB is one 10 MiB frame.

Unmasking is done in C by ``cyclone._speedups`` (built by setup.py when a
compiler is at hand); without it, with no per-byte Python loop either: one
big-integer XOR for small payloads, ``bytes.translate`` over the four byte
lanes for larger ones (about 30 times slower for 64 KiB, and the same result).
"""

from __future__ import annotations

import codecs
import os
import struct
import zlib

__all__ = [
    "Codec",
    "Message",
    "Ping",
    "Pong",
    "Close",
    "Fail",
    "PerMessageDeflate",
    "negotiate_deflate",
    "deflate_offer",
    "accept_deflate_response",
    "is_valid_close_code",
    "parse_extensions",
]

# opcodes
CONTINUATION = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA

_DATA_OPCODES = (TEXT, BINARY)
_CONTROL_OPCODES = (CLOSE, PING, PONG)

# close codes
NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS = 1005
ABNORMAL = 1006
INVALID_DATA = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
MANDATORY_EXTENSION = 1010
INTERNAL_ERROR = 1011

_DEFLATE_TAIL = b"\x00\x00\xff\xff"


def is_valid_close_code(code: int) -> bool:
    """May ``code`` be sent in a close frame (RFC 6455 §7.4, IANA registry)?

    1000-1003, 1007-1014 and 3000-4999; 1004-1006 and 1015 are reserved for
    reporting locally, 1016-2999 are reserved, below 1000 is unused.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class Message:
    """A complete data message: ``data`` is str for text, bytes for binary."""

    __slots__ = ("data",)

    def __init__(self, data: str | bytes) -> None:
        self.data = data

    @property
    def binary(self) -> bool:
        return type(self.data) is not str

    def __repr__(self) -> str:
        return f"Message({self.data[:40]!r}{'...' if len(self.data) > 40 else ''})"


class Ping:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Ping({self.data!r})"


class Pong(Ping):
    __slots__ = ()

    def __repr__(self) -> str:
        return f"Pong({self.data!r})"


class Close:
    """The peer's close frame: ``code`` is 1005 when it carried none."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Close({self.code}, {self.reason!r})"


class Fail:
    """The peer broke the protocol: close with ``code`` and drop the connection."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Fail({self.code}, {self.reason!r})"


class _Failure(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# _XOR[k] maps each byte to itself XOR k: bytes.translate() applies it at C speed
_XOR = [bytes(b ^ k for b in range(256)) for k in range(256)]


def _unmask_python(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated, without a per-byte
    Python loop: small payloads as one big-integer XOR, larger ones with
    ``bytes.translate`` on each of the four byte lanes (faster from a few
    hundred bytes on, as the integer conversions are not free)."""
    n = len(data)
    if n < 1024:
        if n == 0:
            return b""
        key = mask * ((n >> 2) + 1)
        if len(key) != n:
            key = key[:n]
        return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")
    out = bytearray(data)
    for lane in range(4):
        out[lane::4] = out[lane::4].translate(_XOR[mask[lane]])
    return bytes(out)


try:
    # the same in C (cyclone/_speedups.c, built by setup.py when it can be):
    # ~2 us instead of ~60 us for 64 KiB
    from cyclone._speedups import xor_mask as _unmask
except ImportError:  # pragma: no cover (no compiler when installed)
    _unmask = _unmask_python


# payloads from this size on are unmasked from a memoryview of what was
# read (a 64 KiB slice is a copy, and a fresh 64 KiB block often costs page
# faults); smaller ones are sliced, which is cheaper than making a view
_VIEW_FROM = 4096

_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_unpack_short = struct.Struct("!H").unpack_from
_unpack_long = struct.Struct("!Q").unpack_from


def _header(first: int, length: int, mask_bit: int) -> bytes:
    if length < 126:
        return bytes((first, length | mask_bit))
    if length < 65536:
        return _pack_short(first, 126 | mask_bit, length)
    return _pack_long(first, 127 | mask_bit, length)


# -- permessage-deflate (RFC 7692) ------------------------------------------------------------


def parse_extensions(values: list[str] | str | None) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """``Sec-WebSocket-Extensions`` values → ``[(name, [(param, value or None)])]``.

    Quoted-string values are unquoted. A malformed element raises ValueError.
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[tuple[str, list[tuple[str, str | None]]]] = []
    for value in values:
        for element in _split_outside_quotes(value, ","):
            element = element.strip()
            if not element:
                continue
            parts = _split_outside_quotes(element, ";")
            name = parts[0].strip().lower()
            if not name or not _is_token(name):
                raise ValueError(f"bad extension name {name!r}")
            params: list[tuple[str, str | None]] = []
            for part in parts[1:]:
                part = part.strip()
                if not part:
                    raise ValueError("empty extension parameter")
                key, eq, val = part.partition("=")
                key = key.strip().lower()
                if not _is_token(key):
                    raise ValueError(f"bad extension parameter {key!r}")
                if not eq:
                    params.append((key, None))
                    continue
                val = val.strip()
                if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                    val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                if not _is_token(val):
                    raise ValueError(f"bad extension parameter value {val!r}")
                params.append((key, val))
            out.append((name, params))
    return out


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(text: str) -> bool:
    return bool(text) and all(c in _TOKEN_CHARS for c in text)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if '"' not in text:
        return text.split(sep)
    parts, current, quoted, escaped = [], [], False, False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(c)
    if quoted:
        raise ValueError("unterminated quoted string")
    parts.append("".join(current))
    return parts


def _window_bits(value: str | None) -> int:
    if value is None or not value.isdigit() or len(value) > 2 or not 8 <= int(value) <= 15:
        raise ValueError(f"bad window bits {value!r}")
    return int(value)


class PerMessageDeflate:
    """The agreed permessage-deflate parameters of one connection, and its
    (de)compressors.

    ``local_*`` concern what this side sends (the server's ``server_*``
    parameters on a server), ``remote_*`` what the peer sends.
    """

    __slots__ = (
        "local_no_context_takeover",
        "remote_no_context_takeover",
        "local_max_window_bits",
        "remote_max_window_bits",
        "compression_level",
        "mem_level",
        "_compressor",
        "_decompressor",
    )

    def __init__(
        self,
        local_no_context_takeover: bool = False,
        remote_no_context_takeover: bool = False,
        local_max_window_bits: int = 15,
        remote_max_window_bits: int = 15,
        compression_level: int = 6,
        mem_level: int = 8,
    ) -> None:
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.remote_max_window_bits = remote_max_window_bits
        self.compression_level = compression_level
        self.mem_level = mem_level
        self._compressor = None
        self._decompressor = None

    def compress(self, data: bytes) -> bytes:
        compressor = self._compressor
        if compressor is None:
            # zlib cannot make a raw deflate stream with a 256-byte window;
            # one made with 512 bytes never reaches back more than 250 bytes
            # (its largest distance is the window less 262), so it fits a
            # peer that asked for 8 bits.
            compressor = zlib.compressobj(
                self.compression_level, zlib.DEFLATED, -max(self.local_max_window_bits, 9), self.mem_level
            )
            if not self.local_no_context_takeover:
                self._compressor = compressor
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if out.endswith(_DEFLATE_TAIL):
            out = out[:-4]
        return out or b"\x00"

    def decompressor(self):
        """The decompressor for the next message."""
        decompressor = self._decompressor
        if decompressor is None or decompressor.eof:
            # 15 bits inflate anything made with a smaller window
            decompressor = zlib.decompressobj(-15)
            if not self.remote_no_context_takeover:
                self._decompressor = decompressor
        return decompressor

    def message_done(self) -> None:
        if self.remote_no_context_takeover:
            self._decompressor = None


def negotiate_deflate(
    header_values: list[str] | str | None,
    options: dict | None = None,
) -> tuple[PerMessageDeflate, str] | None:
    """Server side: pick the first acceptable permessage-deflate offer.

    Returns ``(PerMessageDeflate, response header value)`` or None (no offer,
    or none acceptable: the connection goes on uncompressed). ``options``:
    ``compression_level`` (6), ``mem_level`` (8), and the server's own wishes
    ``server_no_context_takeover``, ``client_no_context_takeover`` (False),
    ``server_max_window_bits``, ``client_max_window_bits`` (15).
    Raises ValueError for a header that cannot be parsed.
    """
    options = options or {}
    want_server_nct = bool(options.get("server_no_context_takeover", False))
    want_client_nct = bool(options.get("client_no_context_takeover", False))
    want_server_bits = int(options.get("server_max_window_bits", 15))
    want_client_bits = int(options.get("client_max_window_bits", 15))
    for name, params in parse_extensions(header_values):
        if name != "permessage-deflate":
            continue
        seen: set[str] = set()
        server_nct = client_nct = False
        server_bits: int | None = None
        client_bits: int | None = None
        client_bits_offered = False
        acceptable = True
        for key, value in params:
            if key in seen:
                acceptable = False
                break
            seen.add(key)
            try:
                if key == "server_no_context_takeover" and value is None:
                    server_nct = True
                elif key == "client_no_context_takeover" and value is None:
                    client_nct = True
                elif key == "server_max_window_bits":
                    server_bits = _window_bits(value)
                elif key == "client_max_window_bits":
                    client_bits_offered = True
                    if value is not None:
                        client_bits = _window_bits(value)
                else:
                    acceptable = False
            except ValueError:
                acceptable = False
            if not acceptable:
                break
        if not acceptable:
            continue
        response = ["permessage-deflate"]
        server_nct = server_nct or want_server_nct
        client_nct = client_nct or want_client_nct
        if server_nct:
            response.append("server_no_context_takeover")
        if client_nct:
            response.append("client_no_context_takeover")
        sbits = min(server_bits or 15, want_server_bits)
        if server_bits is not None or sbits < 15:
            response.append(f"server_max_window_bits={sbits}")
        cbits = min(client_bits or 15, want_client_bits)
        if cbits < 15 or client_bits is not None:
            if not client_bits_offered:
                # the server may limit the client's window only when offered
                cbits = 15
            else:
                response.append(f"client_max_window_bits={cbits}")
        pmd = PerMessageDeflate(
            local_no_context_takeover=server_nct,
            remote_no_context_takeover=client_nct,
            local_max_window_bits=sbits,
            remote_max_window_bits=cbits,
            compression_level=int(options.get("compression_level", 6)),
            mem_level=int(options.get("mem_level", 8)),
        )
        return pmd, "; ".join(response)
    return None


def deflate_offer(options: dict | None = None) -> str:
    """Client side: the ``Sec-WebSocket-Extensions`` offer for ``options``."""
    options = options or {}
    offer = ["permessage-deflate"]
    if options.get("client_no_context_takeover"):
        offer.append("client_no_context_takeover")
    if options.get("server_no_context_takeover"):
        offer.append("server_no_context_takeover")
    if "server_max_window_bits" in options:
        offer.append(f"server_max_window_bits={int(options['server_max_window_bits'])}")
    bits = options.get("client_max_window_bits")
    offer.append("client_max_window_bits" + (f"={int(bits)}" if bits else ""))
    return "; ".join(offer)


def accept_deflate_response(header_values: list[str] | str | None, options: dict | None = None) -> PerMessageDeflate | None:
    """Client side: check the server's response to ``deflate_offer(options)``.

    None when the server did not accept; ValueError when its answer is not
    one the offer allows (the client must then fail the connection).
    """
    options = options or {}
    accepted = None
    for name, params in parse_extensions(header_values):
        if name != "permessage-deflate" or accepted is not None:
            raise ValueError(f"unexpected extension {name!r}")
        seen: set[str] = set()
        kwargs: dict = {}
        for key, value in params:
            if key in seen:
                raise ValueError(f"duplicate parameter {key!r}")
            seen.add(key)
            if key == "server_no_context_takeover" and value is None:
                kwargs["remote_no_context_takeover"] = True
            elif key == "client_no_context_takeover" and value is None:
                kwargs["local_no_context_takeover"] = True
            elif key == "server_max_window_bits":
                bits = _window_bits(value)
                if bits > int(options.get("server_max_window_bits", 15)):
                    raise ValueError("server_max_window_bits above the offer")
                kwargs["remote_max_window_bits"] = bits
            elif key == "client_max_window_bits":
                kwargs["local_max_window_bits"] = _window_bits(value)
                if kwargs["local_max_window_bits"] > int(options.get("client_max_window_bits") or 15):
                    raise ValueError("client_max_window_bits above the offer")
            else:
                raise ValueError(f"unexpected parameter {key!r}")
        if options.get("client_no_context_takeover"):
            kwargs["local_no_context_takeover"] = True
        if options.get("client_max_window_bits"):
            kwargs["local_max_window_bits"] = min(
                kwargs.get("local_max_window_bits", 15), int(options["client_max_window_bits"])
            )
        accepted = PerMessageDeflate(
            compression_level=int(options.get("compression_level", 6)),
            mem_level=int(options.get("mem_level", 8)),
            **kwargs,
        )
    return accepted


# -- the codec ---------------------------------------------------------------------------------

_new_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class Codec:
    """One side of one WebSocket connection: ``receive()`` parses, the other
    methods make frames. See the module's docstring."""

    __slots__ = (
        "client",
        "max_message_size",
        "deflate",
        "_buffer",
        "_done",
        # the frame being read
        "_in_frame",
        "_frame_fin",
        "_frame_remaining",
        "_frame_mask",
        "_frame_offset",
        # the message being read
        "_msg_opcode",
        "_msg_parts",
        "_msg_size",
        "_msg_inflater",
        "_msg_decoder",
        "_expect_mask",
        "_mask_bit",
    )

    def __init__(
        self,
        client: bool = False,
        max_message_size: int | None = 10 * 1024 * 1024,
        deflate: PerMessageDeflate | None = None,
    ) -> None:
        self.client = client
        self.max_message_size = max_message_size if max_message_size else 1 << 62
        self.deflate = deflate
        self._buffer = b""
        self._done = False
        self._in_frame = False
        self._frame_fin = False
        self._frame_remaining = 0
        self._frame_mask: bytes | None = None
        self._frame_offset = 0
        self._msg_opcode = 0
        self._msg_parts: list | None = None  # made when a message comes in pieces
        self._msg_size = 0
        self._msg_inflater = None
        self._msg_decoder = None
        self._expect_mask = 0 if client else 0x80
        self._mask_bit = 0x80 if client else 0

    # -- sending ---------------------------------------------------------------------------

    def message(self, data: str | bytes, binary: bool | None = None) -> bytes:
        """One frame carrying a whole message: str is text, bytes binary
        (unless ``binary`` says otherwise)."""
        if type(data) is str:
            payload = data.encode("utf-8")
            opcode = BINARY if binary else TEXT
        else:
            payload = bytes(data)
            opcode = TEXT if binary is False else BINARY
        first = 0x80 | opcode
        deflate = self.deflate
        if deflate is not None:
            payload = deflate.compress(payload)
            first |= 0x40
        return self._frame(first, payload)

    def ping(self, data: bytes = b"") -> bytes:
        return self._control(PING, data)

    def pong(self, data: bytes = b"") -> bytes:
        return self._control(PONG, data)

    def close(self, code: int | None = NORMAL, reason: str = "") -> bytes:
        """A close frame; ``code`` None (or 1005) sends an empty one."""
        if code is None or code == NO_STATUS:
            payload = b""
        else:
            payload = struct.pack("!H", code) + reason.encode("utf-8")
            if len(payload) > 125:
                payload = payload[:125]
                # do not cut a character in two
                while True:
                    try:
                        payload[2:].decode("utf-8")
                        break
                    except UnicodeDecodeError:
                        payload = payload[:-1]
        return self._control(CLOSE, payload)

    def _control(self, opcode: int, data: bytes | str) -> bytes:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if len(data) > 125:
            raise ValueError("control frame payloads are at most 125 bytes")
        return self._frame(0x80 | opcode, bytes(data))

    def _frame(self, first: int, payload: bytes) -> bytes:
        n = len(payload)
        if self.client:
            mask = os.urandom(4)
            return _header(first, n, 0x80) + mask + _unmask(payload, mask)
        if n < 126:
            return bytes((first, n)) + payload
        return _header(first, n, 0) + payload

    # -- receiving --------------------------------------------------------------------------

    def receive(self, data: bytes) -> list:
        """Parse ``data``; the events it completes, a ``Fail`` last on error."""
        if self._done:
            return []
        events: list = []
        buffer = self._buffer
        if buffer:
            data = buffer + data
        try:
            pos = self._parse(data, events)
        except _Failure as failure:
            self._done = True
            self._buffer = b""
            events.append(Fail(failure.code, failure.reason))
            return events
        self._buffer = data[pos:] if pos < len(data) else b""
        return events

    def _parse(self, data: bytes, events: list) -> int:
        pos = 0
        end = len(data)
        while pos < end:
            if not self._in_frame:
                # -- a frame header -----------------------------------------------------------
                if end - pos < 2:
                    return pos
                b0 = data[pos]
                b1 = data[pos + 1]
                length = b1 & 0x7F
                start = pos + 2
                if length == 126:
                    if end - start < 2:
                        return pos
                    length = _unpack_short(data, start)[0]
                    if length < 126:
                        raise _Failure(PROTOCOL_ERROR, "frame length not in its shortest form")
                    start += 2
                elif length == 127:
                    if end - start < 8:
                        return pos
                    length = _unpack_long(data, start)[0]
                    if length >> 63:
                        raise _Failure(PROTOCOL_ERROR, "frame length has its top bit set")
                    if length < 65536:
                        raise _Failure(PROTOCOL_ERROR, "frame length not in its shortest form")
                    start += 8
                if (b1 & 0x80) != self._expect_mask:
                    raise _Failure(
                        PROTOCOL_ERROR,
                        "unmasked frame from a client" if not self.client else "masked frame from a server",
                    )
                if self._expect_mask:
                    if end - start < 4:
                        return pos
                    mask = data[start : start + 4]
                    start += 4
                else:
                    mask = None
                opcode = b0 & 0x0F
                fin = b0 & 0x80
                rsv = b0 & 0x70
                if opcode >= 8:
                    # -- a control frame: wait for all of it ------------------------------
                    if rsv:
                        raise _Failure(PROTOCOL_ERROR, "reserved bits set on a control frame")
                    if opcode > PONG:
                        raise _Failure(PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
                    if not fin:
                        raise _Failure(PROTOCOL_ERROR, "fragmented control frame")
                    if length > 125:
                        raise _Failure(PROTOCOL_ERROR, "control frame longer than 125 bytes")
                    if end - start < length:
                        return pos
                    payload = data[start : start + length]
                    if mask is not None:
                        payload = _unmask(payload, mask)
                    pos = start + length
                    if opcode == PING:
                        events.append(Ping(payload))
                    elif opcode == PONG:
                        events.append(Pong(payload))
                    else:
                        events.append(self._close_event(payload))
                        self._done = True
                        return end
                    continue
                # -- a data frame ---------------------------------------------------------------
                if opcode == CONTINUATION:
                    if not self._msg_opcode:
                        raise _Failure(PROTOCOL_ERROR, "continuation frame without a message")
                    if rsv:
                        raise _Failure(PROTOCOL_ERROR, "reserved bits set on a continuation frame")
                elif opcode <= BINARY:
                    if self._msg_opcode:
                        raise _Failure(PROTOCOL_ERROR, "new message before the last one ended")
                    if rsv:
                        if rsv != 0x40 or self.deflate is None:
                            raise _Failure(PROTOCOL_ERROR, "reserved bits set without an extension")
                        self._msg_inflater = self.deflate.decompressor()
                    if fin and end - start >= length and not rsv:
                        # -- fast path: a whole unfragmented uncompressed message --------
                        if length > self.max_message_size:
                            raise _Failure(MESSAGE_TOO_BIG, "message too big")
                        pos = start + length
                        if mask is None:
                            payload = data[start:pos]
                        elif length < _VIEW_FROM:
                            payload = _unmask(data[start:pos], mask)
                        else:  # unmask from a view: no copy of the masked bytes
                            payload = _unmask(memoryview(data)[start:pos], mask)
                        if opcode == TEXT:
                            try:
                                payload = payload.decode("utf-8")
                            except UnicodeDecodeError:
                                raise _Failure(INVALID_DATA, "text message is not UTF-8") from None
                        events.append(Message(payload))
                        continue
                    self._msg_opcode = opcode
                    if opcode == TEXT:
                        self._msg_decoder = _new_utf8_decoder()
                else:
                    raise _Failure(PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
                if self._msg_inflater is None and self._msg_size + length > self.max_message_size:
                    raise _Failure(MESSAGE_TOO_BIG, "message too big")
                if self._msg_inflater is not None and length > self.max_message_size:
                    raise _Failure(MESSAGE_TOO_BIG, "compressed frame too big")
                self._in_frame = True
                self._frame_fin = fin
                self._frame_remaining = length
                self._frame_mask = mask
                self._frame_offset = 0
                pos = start
            # -- payload of a data frame (maybe a part of it) ---------------------------------
            remaining = self._frame_remaining
            take = end - pos
            if take > remaining:
                take = remaining
            if take:
                mask = self._frame_mask
                if mask is None:
                    chunk = data[pos : pos + take]
                else:
                    offset = self._frame_offset & 3
                    if offset:
                        mask = mask[offset:] + mask[:offset]
                    if take < _VIEW_FROM:
                        chunk = _unmask(data[pos : pos + take], mask)
                    else:  # unmask from a view: no copy of the masked bytes
                        chunk = _unmask(memoryview(data)[pos : pos + take], mask)
                    self._frame_offset += take
                pos += take
                self._frame_remaining = remaining = remaining - take
                self._feed(chunk)
            if remaining:
                return pos  # the rest of the payload comes later
            self._in_frame = False
            if self._frame_fin:
                events.append(self._end_message())
        return pos

    def _feed(self, chunk: bytes) -> None:
        inflater = self._msg_inflater
        if inflater is not None:
            chunk = self._inflate(inflater, chunk)
        else:
            self._msg_size += len(chunk)
        decoder = self._msg_decoder
        if decoder is not None:
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                raise _Failure(INVALID_DATA, "text message is not UTF-8") from None
            pending = decoder.getstate()[0]
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                # a UTF-16 surrogate: Python's decoder waits for its third byte
                raise _Failure(INVALID_DATA, "text message is not UTF-8")
            if text:
                self._add_part(text)
        elif chunk:
            self._add_part(chunk)

    def _inflate(self, inflater, chunk: bytes) -> bytes:
        room = self.max_message_size - self._msg_size
        # at most room + 1 bytes come out: one more than allowed is a failure,
        # and fewer means all of the input was taken
        out = inflater.decompress(chunk, room + 1)
        if len(out) > room:
            raise _Failure(MESSAGE_TOO_BIG, "message too big after decompression")
        self._msg_size += len(out)
        return out

    def _end_message(self) -> Message:
        inflater = self._msg_inflater
        if inflater is not None:
            tail = self._inflate(inflater, _DEFLATE_TAIL)
            self._msg_inflater = None
            self.deflate.message_done()
            if tail:
                self._feed_plain(tail)
        parts = self._msg_parts or []
        decoder = self._msg_decoder
        if decoder is not None:
            try:
                last = decoder.decode(b"", True)
            except UnicodeDecodeError:
                raise _Failure(INVALID_DATA, "text message is not UTF-8") from None
            if last:
                parts.append(last)
            data = parts[0] if len(parts) == 1 else "".join(parts)
        else:
            data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._msg_parts = None
        self._msg_size = 0
        self._msg_opcode = 0
        self._msg_decoder = None
        return Message(data)

    def _feed_plain(self, chunk: bytes) -> None:
        decoder = self._msg_decoder
        if decoder is not None:
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                raise _Failure(INVALID_DATA, "text message is not UTF-8") from None
            if text:
                self._add_part(text)
        else:
            self._add_part(chunk)

    def _add_part(self, part: str | bytes) -> None:
        parts = self._msg_parts
        if parts is None:
            self._msg_parts = [part]
        else:
            parts.append(part)

    @staticmethod
    def _close_event(payload: bytes) -> Close:
        n = len(payload)
        if n == 0:
            return Close(NO_STATUS, "")
        if n == 1:
            raise _Failure(PROTOCOL_ERROR, "close payload of one byte")
        code = _unpack_short(payload, 0)[0]
        if not is_valid_close_code(code):
            raise _Failure(PROTOCOL_ERROR, f"invalid close code {code}")
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise _Failure(INVALID_DATA, "close reason is not UTF-8") from None
        return Close(code, reason)
