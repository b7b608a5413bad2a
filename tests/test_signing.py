"""Tests for cyclone.signing: signed values v1/v2 and XSRF tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyclone.signing import (
    DEFAULT_SIGNED_VALUE_MIN_VERSION,
    DEFAULT_SIGNED_VALUE_VERSION,
    _create_signature,
    _time_independent_equals,
    create_signed_value,
    decode_signed_value,
    decode_xsrf_token,
    encode_xsrf_token,
    get_signature_key_version,
    new_xsrf_token,
    xsrf_tokens_match,
)

SECRET = "It's a secret to everybody"
NOW = 1300000000
DAY = 86400
# Vectors from Tornado's SignedValueTest (tornado/test/web_test.py).
V1_VECTOR = b"dmFsdWU=|1300000000|31c934969f53e48164c50768b40cbd7e2daaaa4f"
V2_VECTOR = (
    b"2|1:0|10:1300000000|3:key|8:dmFsdWU=|"
    b"3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152"
)


def clock_at(t: float):
    return lambda: t


def v2_signed(payload: bytes, secret: str = SECRET) -> bytes:
    """Append a correct v2 signature to an arbitrary (possibly malformed) payload."""
    sig = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest().encode()
    return payload + sig


def decode(value, **kw):
    kw.setdefault("clock", clock_at(NOW))
    return decode_signed_value(SECRET, "key", value, **kw)


# --- known vectors ----------------------------------------------------------


def test_v1_known_vector():
    assert create_signed_value(SECRET, "key", "value", version=1, clock=clock_at(NOW)) == V1_VECTOR


def test_v2_known_vector():
    assert create_signed_value(SECRET, "key", "value", version=2, clock=clock_at(NOW)) == V2_VECTOR


def test_default_version_is_2_and_min_version_is_1():
    assert DEFAULT_SIGNED_VALUE_VERSION == 2
    assert DEFAULT_SIGNED_VALUE_MIN_VERSION == 1
    assert create_signed_value(SECRET, "key", "value", clock=clock_at(NOW)) == V2_VECTOR


@pytest.mark.parametrize("vector", [V1_VECTOR, V2_VECTOR, V1_VECTOR.decode(), V2_VECTOR.decode()])
def test_known_vectors_decode(vector):
    assert decode(vector) == b"value"


def test_create_signature_alias_is_v1_hmac_sha1():
    sig = _create_signature(SECRET, "key", b"dmFsdWU=", "1300000000")
    assert sig == b"31c934969f53e48164c50768b40cbd7e2daaaa4f"


def test_time_independent_equals():
    assert _time_independent_equals("abc", b"abc")
    assert not _time_independent_equals(b"abc", b"abd")
    assert not _time_independent_equals(b"abc", b"abcd")


# --- round trips ------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(
    "value, expected",
    [
        ("value", b"value"),
        (b"value", b"value"),
        ("", b""),
        (b"", b""),
        ("h\u00e9llo \u2603", "h\u00e9llo \u2603".encode()),
        (b"\x00\xff|:2|", b"\x00\xff|:2|"),
        ("x" * 5000, b"x" * 5000),
    ],
)
def test_round_trip(version, value, expected):
    signed = create_signed_value(SECRET, "key", value, version=version, clock=clock_at(NOW))
    assert isinstance(signed, bytes)
    assert decode(signed) == expected
    assert decode(signed.decode("ascii")) == expected


@pytest.mark.parametrize("version", [1, 2])
def test_bytes_secret_and_bytes_name(version):
    signed = create_signed_value(SECRET.encode(), b"key", "v", version=version, clock=clock_at(NOW))
    assert decode_signed_value(SECRET, "key", signed, clock=clock_at(NOW)) == b"v"
    assert decode_signed_value(SECRET.encode(), b"key", signed, clock=clock_at(NOW)) == b"v"


@pytest.mark.parametrize("version", [1, 2])
def test_non_ascii_name(version):
    signed = create_signed_value(SECRET, "n\u00e4me", "v", version=version, clock=clock_at(NOW))
    assert decode_signed_value(SECRET, "n\u00e4me", signed, clock=clock_at(NOW)) == b"v"
    assert decode_signed_value(SECRET, "name", signed, clock=clock_at(NOW)) is None


@pytest.mark.parametrize("version", [1, 2])
def test_wrong_name_and_wrong_secret(version):
    signed = create_signed_value(SECRET, "key", "value", version=version, clock=clock_at(NOW))
    assert decode_signed_value(SECRET, "other", signed, clock=clock_at(NOW)) is None
    assert decode_signed_value("another secret", "key", signed, clock=clock_at(NOW)) is None


def test_default_clock_round_trip():
    signed = create_signed_value(SECRET, "key", "value")
    assert decode_signed_value(SECRET, "key", signed) == b"value"


def test_create_rejects_bad_version_and_negative_time():
    with pytest.raises(ValueError):
        create_signed_value(SECRET, "key", "value", version=3)
    with pytest.raises(ValueError):
        create_signed_value(SECRET, "key", "value", clock=clock_at(-1))


def test_decode_rejects_bad_min_version():
    with pytest.raises(ValueError):
        decode(V2_VECTOR, min_version=3)


# --- key rotation -----------------------------------------------------------


KEYS = {0: "a", 1: "b"}


def test_key_rotation():
    signed = create_signed_value(KEYS, "key", "value", clock=clock_at(NOW), key_version=1)
    assert signed.startswith(b"2|1:1|")
    assert get_signature_key_version(signed) == 1
    assert decode_signed_value(KEYS, "key", signed, clock=clock_at(NOW)) == b"value"
    # Signed with "b": the plain key "b" verifies it, "a" does not.
    assert decode_signed_value("b", "key", signed, clock=clock_at(NOW)) == b"value"
    assert decode_signed_value("a", "key", signed, clock=clock_at(NOW)) is None


def test_key_rotation_unknown_version():
    signed = create_signed_value(KEYS, "key", "value", clock=clock_at(NOW), key_version=1)
    assert decode_signed_value({0: "a"}, "key", signed, clock=clock_at(NOW)) is None
    # The same key under a different version number is not accepted either.
    assert decode_signed_value({0: "b"}, "key", signed, clock=clock_at(NOW)) is None


def test_key_rotation_old_key_still_valid():
    old = create_signed_value(KEYS, "key", "old", clock=clock_at(NOW), key_version=0)
    assert get_signature_key_version(old) == 0
    assert decode_signed_value(KEYS, "key", old, clock=clock_at(NOW)) == b"old"


def test_key_rotation_create_errors():
    with pytest.raises(ValueError):
        create_signed_value(KEYS, "key", "value")  # no key_version
    with pytest.raises(ValueError):
        create_signed_value(KEYS, "key", "value", key_version=7)
    with pytest.raises(ValueError):
        create_signed_value(KEYS, "key", "value", version=1, key_version=0)


def test_mapping_secret_does_not_decode_v1():
    v1 = create_signed_value("a", "key", "value", version=1, clock=clock_at(NOW))
    assert decode_signed_value("a", "key", v1, clock=clock_at(NOW)) == b"value"
    assert decode_signed_value(KEYS, "key", v1, clock=clock_at(NOW)) is None


def test_get_signature_key_version_garbage():
    assert get_signature_key_version(V2_VECTOR) == 0
    assert get_signature_key_version(V2_VECTOR.decode()) == 0
    assert get_signature_key_version(V1_VECTOR) is None
    assert get_signature_key_version(None) is None
    assert get_signature_key_version("") is None
    assert get_signature_key_version("2|1:x|") is None
    assert get_signature_key_version("2|\u00e9") is None


# --- tampering ----------------------------------------------------------------


def test_tampering_any_byte_of_v2_is_rejected():
    assert decode(V2_VECTOR) == b"value"
    for i in range(len(V2_VECTOR)):
        for replacement in {ord("0"), ord("1"), ord("a"), ord("|"), ord(":"), V2_VECTOR[i] ^ 0x20}:
            if replacement == V2_VECTOR[i]:
                continue
            tampered = V2_VECTOR[:i] + bytes([replacement]) + V2_VECTOR[i + 1 :]
            assert decode(tampered) is None, (i, tampered)
        deleted = V2_VECTOR[:i] + V2_VECTOR[i + 1 :]
        assert decode(deleted) is None, (i, deleted)


def test_tampering_any_byte_of_v1_is_rejected():
    assert decode(V1_VECTOR) == b"value"
    for i in range(len(V1_VECTOR)):
        for replacement in {ord("0"), ord("1"), ord("a"), ord("|"), V1_VECTOR[i] ^ 0x20}:
            if replacement == V1_VECTOR[i]:
                continue
            tampered = V1_VECTOR[:i] + bytes([replacement]) + V1_VECTOR[i + 1 :]
            assert decode(tampered) is None, (i, tampered)


def test_truncated_and_extended_values():
    for value in (V1_VECTOR, V2_VECTOR):
        for n in range(len(value)):
            assert decode(value[:n]) is None
        assert decode(value + b"0") is None
        assert decode(value + b"|") is None


# --- time -----------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_expiry(version):
    signed = create_signed_value(SECRET, "key", "v", version=version, clock=clock_at(NOW))
    assert decode(signed, clock=clock_at(NOW + 30 * DAY)) == b"v"
    assert decode(signed, clock=clock_at(NOW + 31 * DAY)) == b"v"
    assert decode(signed, clock=clock_at(NOW + 31 * DAY + 1)) is None
    assert decode(signed, clock=clock_at(NOW + DAY), max_age_days=2) == b"v"
    assert decode(signed, clock=clock_at(NOW + 3 * DAY), max_age_days=2) is None
    assert decode(signed, clock=clock_at(NOW + DAY), max_age_days=0.5) is None
    assert decode(signed, clock=clock_at(NOW + 100 * DAY), max_age_days=365) == b"v"


@pytest.mark.parametrize("version", [1, 2])
def test_future_timestamps(version):
    signed = create_signed_value(
        SECRET, "key", "v", version=version, clock=clock_at(NOW + 30 * DAY)
    )
    assert decode(signed, clock=clock_at(NOW)) == b"v"
    signed = create_signed_value(
        SECRET, "key", "v", version=version, clock=clock_at(NOW + 32 * DAY)
    )
    # Still refused even with a generous max age: the limit is on the future.
    assert decode(signed, clock=clock_at(NOW), max_age_days=365) is None


def test_v1_leading_zero_timestamp_rejected():
    good_ts, bad_ts = b"1300000000", b"01300000000"
    for ts, expected in ((good_ts, b"value"), (bad_ts, None)):
        sig = _create_signature(SECRET, "key", b"dmFsdWU=", ts)
        assert decode(b"|".join([b"dmFsdWU=", ts, sig])) == expected


@pytest.mark.parametrize("ts", [b"+1300000000", b" 1300000000", b"1_300_000_000", b"-5", b"", b"1e9"])
def test_v1_non_canonical_timestamp_rejected(ts):
    sig = _create_signature(SECRET, "key", b"dmFsdWU=", ts)
    assert decode(b"|".join([b"dmFsdWU=", ts, sig])) is None


def test_v1_bad_base64_with_valid_signature_rejected():
    b64 = b"dmFs*dWU="  # valid base64 once the stray "*" is dropped
    sig = _create_signature(SECRET, "key", b64, b"1300000000")
    assert decode(b"|".join([b64, b"1300000000", sig])) is None


# --- min_version ------------------------------------------------------------------


def test_min_version_2_rejects_v1():
    assert decode(V1_VECTOR, min_version=1) == b"value"
    assert decode(V1_VECTOR, min_version=2) is None
    assert decode(V2_VECTOR, min_version=2) == b"value"


# --- malformed v2 framing ------------------------------------------------------------


def test_v2_helper_builds_valid_value():
    # Guards the helper the malformed-framing tests rely on.
    assert v2_signed(b"2|1:0|10:1300000000|3:key|8:dmFsdWU=|") == V2_VECTOR


@pytest.mark.parametrize(
    "payload",
    [
        b"2|1:0|10:1300000000|3:ke|8:dmFsdWU=|",  # declared length too long
        b"2|1:0|10:1300000000|2:key|8:dmFsdWU=|",  # declared length too short
        b"2|1:0|10:1300000000|-3:key|8:dmFsdWU=|",  # negative length
        b"2|1:0|10:1300000000|+3:key|8:dmFsdWU=|",  # signed length
        b"2|1:0|10:1300000000| 3:key|8:dmFsdWU=|",  # whitespace
        b"2|1:0|10:1300000000|03:key|8:dmFsdWU=|",  # leading zero in length
        b"2|1:0|10:1300000000|3_:key|8:dmFsdWU=|",
        b"2|1:0|10:1300000000|:key|8:dmFsdWU=|",  # missing length
        b"2|1:0|10:1300000000|3key|8:dmFsdWU=|",  # missing colon
        b"2|1:0|10:1300000000|99999999999999999999999:key|8:dmFsdWU=|",
        b"2|1:0|10:1300000000|" + b"9" * 5000 + b":key|8:dmFsdWU=|",
        b"2|1:0|10:1300000000|3:key|8:dmFsdWU=",  # no final pipe
        b"2|1:0|10:1300000000|3:key|",  # missing value field
        b"2|1:x|10:1300000000|3:key|8:dmFsdWU=|",  # non-numeric key version
        b"2|1:-|10:1300000000|3:key|8:dmFsdWU=|",
        b"2|10:13000000x0|3:key|8:dmFsdWU=|",  # field count wrong
        b"2|1:0|10:13000000x0|3:key|8:dmFsdWU=|",  # non-numeric timestamp
        b"2|1:0|10:0130000000|3:key|8:dmFsdWU=|",  # leading-zero timestamp
        b"2|1:0|10:1300000000|3:keyX8:dmFsdWU=|",  # field not followed by a pipe
        b"2|1:0|10:1300000000|3:key|9:dmFs*dWU=|",  # not base64
        b"2|1:0|10:1300000000|3:key|7:dmFsdWU|",  # bad base64 padding
    ],
)
def test_v2_malformed_framing_with_valid_signature(payload):
    assert decode(v2_signed(payload)) is None


def test_v2_huge_timestamp_with_valid_signature():
    ts = b"9" * 30
    payload = b"2|1:0|%d:%s|3:key|8:dmFsdWU=|" % (len(ts), ts)
    assert decode(v2_signed(payload)) is None


def test_v2_far_future_timestamp_with_valid_signature():
    ts = b"99999999999"
    payload = b"2|1:0|%d:%s|3:key|8:dmFsdWU=|" % (len(ts), ts)
    assert decode(v2_signed(payload)) is None


# --- garbage ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        b"",
        "|",
        "||",
        "2|",
        "2|1:0|",
        "\u00e9\u00e9\u00e9",
        "2|\u2603|x",
        "\ud800",
        b"\xff\xfe|\x00|\x80",
        "a" * 100_000,
        "2|" + "1:0|" * 50_000,
        "3|1:0|10:1300000000|3:key|8:dmFsdWU=|abc",
        123,
    ],
)
def test_decode_garbage_returns_none(garbage):
    assert decode(garbage) is None
    assert decode_signed_value(KEYS, "key", garbage, clock=clock_at(NOW)) is None


def _mutations_of(base: bytes):
    return st.tuples(st.integers(0, len(base)), st.integers(0, 8), st.binary(max_size=8)).map(
        lambda t: base[: t[0]] + t[2] + base[t[0] + t[1] :]
    )


@settings(deadline=None, max_examples=300)
@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.text(alphabet="2|:0123456789abcdef=").map(lambda s: "2|" + s),
        _mutations_of(V2_VECTOR),
        _mutations_of(V1_VECTOR),
    )
)
def test_decoders_never_raise(value):
    for secret in (SECRET, KEYS):
        result = decode_signed_value(secret, "key", value, clock=clock_at(NOW))
        assert result is None or isinstance(result, bytes)
    kv = get_signature_key_version(value)
    assert kv is None or isinstance(kv, int)
    version, token, ts = decode_xsrf_token(value, clock=clock_at(NOW))
    assert (version, token, ts) == (None, None, None) or (
        version in (1, 2) and isinstance(token, bytes) and token and isinstance(ts, float)
    )


@settings(deadline=None, max_examples=100)
@given(st.binary(), st.text(), st.integers(0, 2**40))
def test_round_trip_property(value, name, ts):
    for version in (1, 2):
        signed = create_signed_value(SECRET, name, value, version=version, clock=clock_at(ts))
        assert decode_signed_value(SECRET, name, signed, clock=clock_at(ts)) == value


# --- XSRF ------------------------------------------------------------------------------


def test_new_xsrf_token():
    a, b = new_xsrf_token(), new_xsrf_token()
    assert isinstance(a, bytes) and len(a) == 16
    assert a != b


def test_xsrf_v2_masked_each_time_but_same_token():
    token = new_xsrf_token()
    encoded = {encode_xsrf_token(token, NOW + 0.7) for _ in range(20)}
    assert len(encoded) == 20
    for enc in encoded:
        parts = enc.split(b"|")
        assert parts[0] == b"2" and len(parts[1]) == 8 and len(parts[2]) == 32
        assert parts[3] == b"1300000000"
        # The token never appears in clear.
        assert binascii.hexlify(token) not in enc
        assert decode_xsrf_token(enc) == (2, token, float(NOW))
        assert decode_xsrf_token(enc.decode()) == (2, token, float(NOW))


def test_xsrf_v2_known_mask():
    # mask 01020304 XOR token 00112233... ; checks the cycling mask layout.
    token = bytes(range(0, 0x88, 0x11)) + bytes(8)
    masked = bytes(b ^ (1, 2, 3, 4)[i % 4] for i, b in enumerate(token))
    cookie = b"2|01020304|" + binascii.hexlify(masked) + b"|1300000000"
    assert decode_xsrf_token(cookie) == (2, token, 1300000000.0)


def test_xsrf_v1_and_legacy():
    token = new_xsrf_token()
    v1 = encode_xsrf_token(token, NOW, version=1)
    assert v1 == binascii.hexlify(token)
    assert decode_xsrf_token(v1, clock=clock_at(NOW)) == (1, token, float(NOW))
    # The original cyclone cookie: uuid4 hex, read as a hex v1 token.
    legacy_uuid = "0123456789abcdef0123456789abcdef"
    assert decode_xsrf_token(legacy_uuid, clock=clock_at(5)) == (1, bytes.fromhex(legacy_uuid), 5.0)
    # Non-hex un-versioned value: the text itself is the token.
    assert decode_xsrf_token("not-hex_token", clock=clock_at(5)) == (1, b"not-hex_token", 5.0)


def test_xsrf_default_clock_for_v1():
    version, token, ts = decode_xsrf_token("abcd")
    assert (version, token) == (1, b"\xab\xcd")
    assert isinstance(ts, float) and ts > NOW


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        "",
        b"",
        "|",
        "2|",
        "2|0102|00|1",  # short mask
        "2|01020304||1300000000",  # empty token
        "2|0102030g|00|1",  # non-hex mask
        "2|01020304|0|1",  # odd hex
        "2|01020304|00|-1",
        "2|01020304|00|1.5",
        "2|01020304|00|" + "9" * 5000,
        "2|01020304|00|1|extra",
        "3|01020304|00|1",
        "has space",
        "tab\t",
        "\u00e9t\u00e9",
        b"\xff\xfe",
        "\ud800",
        42,
    ],
)
def test_xsrf_decode_garbage(garbage):
    assert decode_xsrf_token(garbage, clock=clock_at(NOW)) == (None, None, None)


def test_xsrf_encode_errors():
    with pytest.raises(ValueError):
        encode_xsrf_token(b"", NOW)
    with pytest.raises(ValueError):
        encode_xsrf_token(b"x", NOW, version=3)


def test_xsrf_tokens_match():
    token = new_xsrf_token()
    _, from_cookie, _ = decode_xsrf_token(encode_xsrf_token(token, NOW))
    _, from_form, _ = decode_xsrf_token(encode_xsrf_token(token, NOW))
    assert xsrf_tokens_match(from_cookie, from_form)
    assert not xsrf_tokens_match(token, new_xsrf_token())
    assert not xsrf_tokens_match(token, token[:-1])
    assert not xsrf_tokens_match(b"", b"")
    assert not xsrf_tokens_match(None, None)


def test_base64_layout_of_v2_value():
    signed = create_signed_value(SECRET, "key", b"\xfb\xff", clock=clock_at(NOW))
    b64 = base64.b64encode(b"\xfb\xff")
    assert b"|%d:%s|" % (len(b64), b64) in signed
