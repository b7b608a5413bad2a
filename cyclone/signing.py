"""Signed values (secure cookies) and XSRF tokens, as pure functions.

Nothing here touches Twisted or the request machinery; ``cyclone.web`` imports
and re-exports these names.  The wire formats are Tornado's, so cookies and
tokens are interchangeable between a Tornado and a cyclone application that
share a secret:

* signed value v1: ``b64(value)|timestamp|hmac-sha1-hex(name + b64(value) + timestamp)``
* signed value v2 (the default): ``2|1:<keyver>|<n>:<timestamp>|<n>:<name>|<n>:<b64 value>|<sig>``
  where every ``<n>:`` is the byte length of the field after it and ``<sig>``
  is the HMAC-SHA256 hex digest of everything before it, final pipe included.
* XSRF token v2: ``2|hex(mask)|hex(mask XOR token)|timestamp`` with a fresh
  random 4-byte mask per encoding; v1: ``hex(token)``.

Decoders never raise on malformed input: anything that is not exactly a
well-formed, correctly signed, in-date value gives ``None``.  Every comparison
that involves a secret or a signature uses :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from typing import Union

__all__ = [
    "DEFAULT_SIGNED_VALUE_VERSION",
    "DEFAULT_SIGNED_VALUE_MIN_VERSION",
    "create_signed_value",
    "decode_signed_value",
    "get_signature_key_version",
    "new_xsrf_token",
    "encode_xsrf_token",
    "decode_xsrf_token",
    "xsrf_tokens_match",
]

#: Version written by :func:`create_signed_value` when ``version`` is None.
DEFAULT_SIGNED_VALUE_VERSION = 2
#: Oldest version accepted by :func:`decode_signed_value` when ``min_version``
#: is None.  It is 1 so cookies set by the original cyclone (v1 only) stay
#: readable after an upgrade; pass ``min_version=2`` to refuse SHA-1 values.
DEFAULT_SIGNED_VALUE_MIN_VERSION = 1

Secret = Union[str, bytes]
SecretOrKeys = Union[str, bytes, Mapping[int, Union[str, bytes]]]
Clock = Callable[[], float]

_DAY = 86400
# Values stamped further than this into the future are refused whatever
# max_age_days says: a forged or mis-clocked stamp must not live forever.
_MAX_FUTURE_SECONDS = 31 * _DAY
# Upper bound on the digits of any number we parse.  It keeps int() well away
# from Python's int-from-str digit limit (which raises ValueError) and rejects
# absurd lengths before doing any arithmetic with them.
_MAX_DIGITS = 20
_XSRF_TOKEN_BYTES = 16
_XSRF_MASK_BYTES = 4


def _to_bytes(s: str | bytes) -> bytes:
    if isinstance(s, str):
        return s.encode("utf-8")
    return bytes(s)


def _input_bytes(value: object) -> bytes | None:
    """Untrusted input as bytes, or None if it cannot be a signed value/token.

    Signed values and tokens are pure ASCII, so a str that is not ASCII is
    garbage by definition (and encoding it could raise on lone surrogates).
    """
    if isinstance(value, str):
        if not value.isascii():
            return None
        return value.encode("ascii")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return None


def _parse_uint(digits: bytes) -> int | None:
    """Parse a canonical unsigned decimal: ASCII digits only, no sign, no
    whitespace, no underscores, no leading zero (except ``0`` itself)."""
    # int() alone would accept b" +1_0 "; bytes.isdigit() is ASCII-only.
    if not digits or len(digits) > _MAX_DIGITS or not digits.isdigit():
        return None
    if len(digits) > 1 and digits[:1] == b"0":
        return None
    return int(digits)


def _b64decode(data: bytes) -> bytes | None:
    try:
        # validate=True: refuse characters outside the alphabet instead of
        # silently dropping them, so one signed value has one meaning.
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _time_independent_equals(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality for signatures and tokens (original cyclone name)."""
    return hmac.compare_digest(_to_bytes(a), _to_bytes(b))


def _create_signature(secret: Secret, *parts: str | bytes) -> bytes:
    """HMAC-SHA1 hex digest of the concatenated ``parts``: the v1 signature.

    Kept under the original cyclone name; returns ASCII hex as bytes.
    """
    mac = hmac.new(_to_bytes(secret), digestmod=hashlib.sha1)
    for part in parts:
        mac.update(_to_bytes(part))
    return mac.hexdigest().encode("ascii")


def _create_signature_v2(secret: Secret, payload: bytes) -> bytes:
    return hmac.new(_to_bytes(secret), payload, hashlib.sha256).hexdigest().encode("ascii")


def _format_field(data: bytes) -> bytes:
    return b"%d:%s" % (len(data), data)


def create_signed_value(
    secret: SecretOrKeys,
    name: str | bytes,
    value: str | bytes,
    version: int | None = None,
    clock: Clock | None = None,
    key_version: int | None = None,
) -> bytes:
    """Sign ``value`` under ``name`` with a timestamp; returns ASCII bytes.

    ``secret`` is a str/bytes key, or a ``{key_version: key}`` mapping for key
    rotation, in which case ``key_version`` picks the key (and is required).
    ``version`` is 2 (default, HMAC-SHA256, key version embedded) or 1
    (HMAC-SHA1, no key version; a mapping secret is refused).  ``clock``
    returns the current UNIX time (default :func:`time.time`).

    Raises ValueError for an unsupported version, a missing/unknown key
    version, or a negative timestamp.
    """
    if version is None:
        version = DEFAULT_SIGNED_VALUE_VERSION
    if clock is None:
        clock = time.time
    timestamp = int(clock())
    if timestamp < 0:
        raise ValueError("signed values cannot carry a negative timestamp")
    ts = str(timestamp).encode("ascii")
    b64 = base64.b64encode(_to_bytes(value))
    name_b = _to_bytes(name)

    if isinstance(secret, Mapping):
        if version == 1:
            # v1 has nowhere to record which key was used.
            raise ValueError("key rotation (a secret mapping) needs version 2")
        if key_version is None:
            raise ValueError("key_version is required when secret is a mapping")
        if key_version not in secret:
            raise ValueError(f"no secret for key_version {key_version!r}")
        key: Secret = secret[key_version]
    else:
        key = secret

    if version == 1:
        signature = _create_signature(key, name_b, b64, ts)
        return b"|".join([b64, ts, signature])
    if version == 2:
        kv = key_version or 0
        if kv < 0:
            raise ValueError("key_version must be a non-negative integer")
        payload = b"|".join(
            [
                b"2",
                _format_field(str(kv).encode("ascii")),
                _format_field(ts),
                _format_field(name_b),
                _format_field(b64),
                b"",  # the signature covers the trailing pipe too
            ]
        )
        return payload + _create_signature_v2(key, payload)
    raise ValueError(f"unsupported signed value version {version!r}")


def _timestamp_ok(timestamp: int, clock: Clock, max_age_days: float) -> bool:
    now = clock()
    if timestamp < now - max_age_days * _DAY:
        return False
    if timestamp > now + _MAX_FUTURE_SECONDS:
        return False
    return True


def _decode_v1(
    secret: SecretOrKeys, name: bytes, data: bytes, max_age_days: float, clock: Clock
) -> bytes | None:
    if isinstance(secret, Mapping):
        # v1 carries no key version, so there is no key to check it against.
        return None
    parts = data.split(b"|")
    if len(parts) != 3:
        return None
    b64, ts, signature = parts
    # The signature is over the fields concatenated without separators, so a
    # leading zero would let digits move between value and timestamp; the
    # canonical parse also refuses signs, spaces and over-long numbers.
    timestamp = _parse_uint(ts)
    if timestamp is None:
        return None
    expected = _create_signature(secret, name, b64, ts)
    if not hmac.compare_digest(expected, signature):
        return None
    if not _timestamp_ok(timestamp, clock, max_age_days):
        return None
    return _b64decode(b64)


def _split_v2(data: bytes) -> tuple[int, int, bytes, bytes, bytes, bytes] | None:
    """Split a v2 value into (key_version, timestamp, name, b64 value,
    signed payload, signature), checking the framing but not the signature."""
    if not data.startswith(b"2|"):
        return None
    pos = 2
    fields: list[bytes] = []
    for _ in range(4):
        colon = data.find(b":", pos, pos + _MAX_DIGITS + 1)
        if colon < 0:
            return None
        length = _parse_uint(data[pos:colon])
        if length is None:
            return None
        start = colon + 1
        end = start + length
        # The declared length must land exactly on a pipe: no short or
        # overlong fields, no reading past the end of the input.
        if end >= len(data) or data[end : end + 1] != b"|":
            return None
        fields.append(data[start:end])
        pos = end + 1
    key_version = _parse_uint(fields[0])
    timestamp = _parse_uint(fields[1])
    if key_version is None or timestamp is None:
        return None
    return key_version, timestamp, fields[2], fields[3], data[:pos], data[pos:]


def _decode_v2(
    secret: SecretOrKeys, name: bytes, data: bytes, max_age_days: float, clock: Clock
) -> bytes | None:
    split = _split_v2(data)
    if split is None:
        return None
    key_version, timestamp, name_field, b64, payload, signature = split
    if isinstance(secret, Mapping):
        try:
            key: Secret = secret[key_version]
        except KeyError:
            return None
    else:
        key = secret
    if not hmac.compare_digest(name_field, name):
        return None
    if not hmac.compare_digest(_create_signature_v2(key, payload), signature):
        return None
    if not _timestamp_ok(timestamp, clock, max_age_days):
        return None
    return _b64decode(b64)


def decode_signed_value(
    secret: SecretOrKeys,
    name: str | bytes,
    value: str | bytes | None,
    max_age_days: float = 31,
    clock: Clock | None = None,
    min_version: int | None = None,
) -> bytes | None:
    """Return the original value of a signed ``value`` as bytes, or None.

    None when ``value`` is missing, malformed, signed for another ``name``,
    signed with another key (or an unknown key version when ``secret`` is a
    mapping), older than ``max_age_days``, stamped more than 31 days in the
    future, or of a version below ``min_version``.  ``min_version`` defaults
    to :data:`DEFAULT_SIGNED_VALUE_MIN_VERSION` (1), so v1 values from older
    applications are still read; pass 2 to accept only v2.  Never raises on
    bad ``value``; raises ValueError for a ``min_version`` other than 1 or 2.
    """
    if min_version is None:
        min_version = DEFAULT_SIGNED_VALUE_MIN_VERSION
    if min_version not in (1, 2):
        raise ValueError(f"unsupported min_version {min_version!r}")
    if clock is None:
        clock = time.time
    data = _input_bytes(value)
    if not data:
        return None
    name_b = _to_bytes(name)
    # A v1 value starts with base64, whose length is a multiple of 4, so it
    # can never begin with the one-character field "2|": the prefix alone
    # tells the versions apart.
    if data.startswith(b"2|"):
        return _decode_v2(secret, name_b, data, max_age_days, clock)
    if min_version > 1:
        return None
    return _decode_v1(secret, name_b, data, max_age_days, clock)


def get_signature_key_version(value: str | bytes | None) -> int | None:
    """The key version embedded in a v2 signed value; None for v1 or garbage.

    The signature is not checked: use this only to pick a key.
    """
    data = _input_bytes(value)
    if data is None:
        return None
    split = _split_v2(data)
    if split is None:
        return None
    return split[0]


# --- XSRF tokens -----------------------------------------------------------


def new_xsrf_token() -> bytes:
    """A fresh raw XSRF token: 16 bytes from :func:`os.urandom`."""
    return os.urandom(_XSRF_TOKEN_BYTES)


def _xor_mask(mask: bytes, data: bytes) -> bytes:
    # The mask repeats over the token (same scheme as Tornado/WebSocket
    # masking), so tokens of any length round-trip.
    return bytes(b ^ mask[i % len(mask)] for i, b in enumerate(data))


def encode_xsrf_token(token: bytes, timestamp: float, version: int = 2) -> bytes:
    """Serialise a raw XSRF token for a cookie or form field.

    v2 (default) masks the token with fresh random bytes on every call, so the
    text differs each time and compressed pages do not leak it (BREACH);
    ``timestamp`` is stored as whole seconds.  v1 is the bare hex token.
    Raises ValueError for other versions or an empty token.
    """
    if not token:
        raise ValueError("cannot encode an empty XSRF token")
    if version == 1:
        return binascii.hexlify(token)
    if version == 2:
        mask = os.urandom(_XSRF_MASK_BYTES)
        return b"|".join(
            [
                b"2",
                binascii.hexlify(mask),
                binascii.hexlify(_xor_mask(mask, token)),
                str(int(timestamp)).encode("ascii"),
            ]
        )
    raise ValueError(f"unsupported XSRF token version {version!r}")


def _unhex(data: bytes) -> bytes | None:
    try:
        return binascii.unhexlify(data)
    except (binascii.Error, ValueError):
        return None


_GARBAGE: tuple[None, None, None] = (None, None, None)


def decode_xsrf_token(
    cookie: bytes | str | None, *, clock: Clock | None = None
) -> tuple[int | None, bytes | None, float | None]:
    """Parse an XSRF cookie or submitted token into (version, raw token, timestamp).

    Accepts v2 (masked), v1 (hex) and the un-versioned legacy form (any other
    printable ASCII without ``|``, used as the raw token itself; reported as
    version 1).  v1 and legacy tokens carry no time, so their timestamp is
    ``clock()`` (default :func:`time.time`), as in Tornado.  Anything else,
    including empty input, gives ``(None, None, None)``; never raises.
    """
    data = _input_bytes(cookie)
    if not data:
        return _GARBAGE
    if b"|" in data:
        parts = data.split(b"|")
        if len(parts) != 4 or parts[0] != b"2":
            return _GARBAGE
        _, mask_hex, masked_hex, ts = parts
        mask = _unhex(mask_hex)
        masked = _unhex(masked_hex)
        timestamp = _parse_uint(ts)
        if mask is None or len(mask) != _XSRF_MASK_BYTES:
            return _GARBAGE
        if not masked or timestamp is None:
            return _GARBAGE
        return 2, _xor_mask(mask, masked), float(timestamp)
    # Cookie and header values never legitimately hold controls or spaces;
    # refusing them keeps odd bytes out of the legacy raw-token path.
    if not all(0x21 <= c <= 0x7E for c in data):
        return _GARBAGE
    if clock is None:
        clock = time.time
    token = _unhex(data)
    if token is None:
        token = data
    return 1, token, float(clock())


def xsrf_tokens_match(a: bytes | None, b: bytes | None) -> bool:
    """Constant-time comparison of two raw tokens; False if either is empty/None."""
    if not a or not b:
        return False
    return hmac.compare_digest(a, b)
