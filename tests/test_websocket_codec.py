"""cyclone.websocket_codec, sans-IO: frames in, events out."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from cyclone import websocket_codec as wc


def frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, mask: bytes | None = b"\x01\x02\x03\x04",
          length_override: int | None = None) -> bytes:
    """A raw frame built by hand (not by the codec under test)."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload) if length_override is None else length_override
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes((first, mask_bit | n))
    elif n < 65536:
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", n)
    else:
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server(**kwargs) -> wc.Codec:
    return wc.Codec(client=False, **kwargs)


def only(events):
    assert len(events) == 1, events
    return events[0]


def failed(events, code):
    assert events and type(events[-1]) is wc.Fail, events
    assert events[-1].code == code, events[-1]
    return events[-1]


# -- well-formed input -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_lengths_and_unmasking(size):
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    event = only(server().receive(frame(wc.BINARY, payload)))
    assert type(event) is wc.Message and event.data == payload and event.binary


def test_text_is_str():
    event = only(server().receive(frame(wc.TEXT, "héllo €".encode())))
    assert event.data == "héllo €" and not event.binary


def test_fragmented_with_interleaved_control_frames():
    codec = server()
    data = (frame(wc.TEXT, b"fra", fin=False) + frame(wc.PING, b"p1")
            + frame(wc.CONTINUATION, "g€".encode()[:2], fin=False) + frame(wc.PONG, b"p2")
            + frame(wc.CONTINUATION, "g€".encode()[2:]))
    events = codec.receive(data)
    assert [type(e) for e in events] == [wc.Ping, wc.Pong, wc.Message]
    assert events[0].data == b"p1" and events[1].data == b"p2" and events[2].data == "frag€"


def test_byte_by_byte_gives_the_same_events():
    data = (
        frame(wc.TEXT, ("a€" * 100).encode(), fin=False) + frame(wc.PING, b"x") + frame(wc.CONTINUATION, b"end")
        + frame(wc.BINARY, b"\xff" * 300) + frame(wc.CLOSE, struct.pack("!H", 1000) + b"bye"))
    codec = server()
    events = []
    for i in range(len(data)):
        events += codec.receive(data[i:i + 1])
    assert [type(e) for e in events] == [wc.Ping, wc.Message, wc.Message, wc.Close]
    assert events[1].data == "a€" * 100 + "end" and events[2].data == b"\xff" * 300
    assert (events[3].code, events[3].reason) == (1000, "bye")


def test_close_without_payload_is_1005_and_input_after_close_is_ignored():
    codec = server()
    assert type(only(codec.receive(frame(wc.CLOSE)))) is wc.Close
    assert codec.receive(frame(wc.TEXT, b"late")) == []


def test_server_frames_are_unmasked_and_client_frames_masked():
    assert wc.Codec(client=False).message("hi") == b"\x81\x02hi"
    masked = wc.Codec(client=True).message(b"hi")
    assert masked[0] == 0x82 and masked[1] == 0x82 and len(masked) == 8
    assert only(server().receive(masked)).data == b"hi"
    assert wc.Codec(client=False).message(b"x" * 70000)[:10] == b"\x82\x7f" + struct.pack("!Q", 70000)


def test_client_codec_rejects_masked_server_frames():
    client = wc.Codec(client=True)
    assert only(client.receive(frame(wc.TEXT, b"ok", mask=None))).data == "ok"
    failed(wc.Codec(client=True).receive(frame(wc.TEXT, b"no")), 1002)


# -- protocol errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    frame(wc.TEXT, b"x", rsv=0x40),                      # RSV1 without deflate
    frame(wc.TEXT, b"x", rsv=0x20),
    frame(wc.TEXT, b"x", rsv=0x10),
    frame(wc.TEXT, b"x", mask=None),                     # unmasked from a client
    frame(0x3, b""), frame(0x7, b""), frame(0xB, b""), frame(0xF, b""),  # reserved opcodes
    frame(wc.PING, b"x" * 126),                          # control frame too long
    frame(wc.PING, b"x", fin=False),                     # fragmented control frame
    frame(wc.CONTINUATION, b"x"),                        # continuation without a message
    frame(wc.TEXT, b"a", fin=False) + frame(wc.TEXT, b"b"),  # new message mid-message
    frame(wc.CLOSE, b"\x03"),                            # close payload of one byte
    frame(wc.PING, b"x", rsv=0x40),
    b"\x82\xff" + b"\x80" + b"\0" * 7 + b"mask",         # 64-bit length with its top bit
])
def test_protocol_errors_are_1002(data):
    failed(server().receive(data), 1002)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_codes_are_1002(code):
    failed(server().receive(frame(wc.CLOSE, struct.pack("!H", code))), 1002)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes(code):
    assert only(server().receive(frame(wc.CLOSE, struct.pack("!H", code)))).code == code


def test_close_reason_not_utf8_is_1007():
    failed(server().receive(frame(wc.CLOSE, struct.pack("!H", 1000) + b"\xff")), 1007)


@pytest.mark.parametrize("bad", [b"\xff", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"ok\xe2\x82"])
def test_invalid_utf8_text_is_1007(bad):
    failed(server().receive(frame(wc.TEXT, bad)), 1007)


def test_invalid_utf8_fails_fast_within_a_frame():
    """The failure comes with the first bad bytes, before the frame is complete."""
    data = frame(wc.TEXT, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"more" * 100)
    codec = server()
    head = data[: 8 + len("κόσμε".encode()) + 2]  # 2 + 2 (length) + 4 (mask) header bytes
    assert codec.receive(head[:-2]) == []
    failed(codec.receive(head[-2:]), 1007)


def test_surrogate_fails_at_its_second_byte():
    codec = server()
    assert codec.receive(frame(wc.TEXT, b"ok\xed", fin=False)) == []
    failed(codec.receive(frame(wc.CONTINUATION, b"\xa0", fin=False)), 1007)


def test_utf8_split_across_fragments_is_fine():
    euro = "€".encode()
    events = server().receive(frame(wc.TEXT, euro[:1], fin=False) + frame(wc.CONTINUATION, euro[1:2], fin=False)
                              + frame(wc.CONTINUATION, euro[2:]))
    assert only(events).data == "€"


def test_truncated_utf8_at_the_end_is_1007():
    failed(server().receive(frame(wc.TEXT, b"a\xe2\x82", fin=False) + frame(wc.CONTINUATION, b"")), 1007)


def test_message_too_big_is_1009_before_the_payload_arrives():
    codec = server(max_message_size=1000)
    header_only = frame(wc.BINARY, b"", length_override=1001)  # no payload at all
    failed(codec.receive(header_only), 1009)


def test_fragmented_message_too_big_is_1009():
    codec = server(max_message_size=1000)
    assert codec.receive(frame(wc.BINARY, b"x" * 600, fin=False)) == []
    failed(codec.receive(frame(wc.CONTINUATION, b"x" * 401)), 1009)
    assert only(server(max_message_size=1000).receive(frame(wc.BINARY, b"x" * 1000))).data == b"x" * 1000


def test_after_a_failure_input_is_ignored():
    codec = server()
    failed(codec.receive(frame(0x3)), 1002)
    assert codec.receive(frame(wc.TEXT, b"x")) == []


# -- permessage-deflate ---------------------------------------------------------------------------


def deflate_pair(offer="permessage-deflate; client_max_window_bits", options=None, max_size=10 * 2**20):
    pmd, response = wc.negotiate_deflate(offer, options)
    client_pmd = wc.accept_deflate_response(response, {})
    return (wc.Codec(client=True, deflate=client_pmd, max_message_size=max_size),
            wc.Codec(client=False, deflate=pmd, max_message_size=max_size), response)


def compressed(data: bytes, wbits: int = 15) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def test_deflate_round_trip_both_ways():
    client, srv, _ = deflate_pair()
    for message in ["hello " * 100, b"\x00" * 5000, "", "é"]:
        wire = client.message(message)
        assert wire[0] & 0x40  # RSV1: compressed
        assert only(srv.receive(wire)).data == message
        assert only(client.receive(srv.message(message))).data == message


def test_deflate_compressed_frame_from_zlib_directly_and_fragmented():
    pmd, _ = wc.negotiate_deflate("permessage-deflate")
    codec = wc.Codec(client=False, deflate=pmd)
    body = compressed(b"abc" * 1000)
    events = codec.receive(frame(wc.BINARY, body[:5], fin=False, rsv=0x40) + frame(wc.CONTINUATION, body[5:]))
    assert only(events).data == b"abc" * 1000


def test_rsv1_on_a_continuation_frame_is_1002():
    pmd, _ = wc.negotiate_deflate("permessage-deflate")
    codec = wc.Codec(client=False, deflate=pmd)
    failed(codec.receive(frame(wc.BINARY, b"", fin=False) + frame(wc.CONTINUATION, b"", rsv=0x40)), 1002)


def test_zip_bomb_is_1009_without_inflating_it_all():
    pmd, _ = wc.negotiate_deflate("permessage-deflate")
    codec = wc.Codec(client=False, deflate=pmd, max_message_size=1 << 20)
    bomb = compressed(b"\0" * (200 << 20))  # 200 MiB of zeros, about 200 KB compressed
    assert len(bomb) < 1 << 20
    failed(codec.receive(frame(wc.BINARY, bomb, rsv=0x40)), 1009)


def test_no_context_takeover_resets_the_compressor():
    client, srv, response = deflate_pair("permessage-deflate; server_no_context_takeover")
    assert response == "permessage-deflate; server_no_context_takeover"
    first, second = srv.message("repeat " * 50), srv.message("repeat " * 50)
    assert first == second  # the same bytes: no window carried over
    client2, srv2, _ = deflate_pair("permessage-deflate")
    assert srv2.message("repeat " * 50) != srv2.message("repeat " * 50)
    assert only(client.receive(first)).data == "repeat " * 50


@pytest.mark.parametrize("offer, expected", [
    ("permessage-deflate", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits=10", "permessage-deflate; client_max_window_bits=10"),
    ("permessage-deflate; server_max_window_bits=8", "permessage-deflate; server_max_window_bits=8"),
    ('permessage-deflate; server_max_window_bits="12"', "permessage-deflate; server_max_window_bits=12"),
    ("permessage-deflate; client_no_context_takeover",
     "permessage-deflate; client_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=7, permessage-deflate",
     "permessage-deflate"),  # the first offer is invalid: the second is taken
    ("permessage-deflate; foo=1", None),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
    ("permessage-deflate; server_max_window_bits", None),
    ("x-webkit-deflate-frame", None),
])
def test_negotiation(offer, expected):
    result = wc.negotiate_deflate(offer)
    assert (result[1] if result else None) == expected


def test_negotiation_with_server_options():
    _, response = wc.negotiate_deflate("permessage-deflate; client_max_window_bits",
                                       {"client_max_window_bits": 9, "server_no_context_takeover": True})
    assert response == "permessage-deflate; server_no_context_takeover; client_max_window_bits=9"
    with pytest.raises(ValueError):
        wc.negotiate_deflate('permessage-deflate; a="unterminated')


@pytest.mark.parametrize("bits", [8, 9, 12, 15])
def test_small_server_windows_decode_with_a_window_that_small(bits):
    pmd, _ = wc.negotiate_deflate(f"permessage-deflate; server_max_window_bits={bits}")
    codec = wc.Codec(client=False, deflate=pmd)
    data = bytes(range(256)) * 40 + b"tail" * 300
    wire = codec.message(data)
    body = wire[4:] if wire[1] == 126 else wire[2:]
    inflater = zlib.decompressobj(-max(bits, 9) if bits == 8 else -bits)
    assert inflater.decompress(body + b"\x00\x00\xff\xff") == data


def test_client_rejects_an_answer_beyond_its_offer():
    with pytest.raises(ValueError):
        wc.accept_deflate_response("permessage-deflate; server_max_window_bits=15", {"server_max_window_bits": 10})
    with pytest.raises(ValueError):
        wc.accept_deflate_response("permessage-deflate; unknown")
    assert wc.accept_deflate_response(None) is None


# -- property tests -------------------------------------------------------------------------------

messages = st.one_of(st.text(max_size=3000), st.binary(max_size=3000))


@settings(max_examples=150, deadline=None)
@given(st.lists(messages, min_size=1, max_size=8), st.booleans(), st.integers(1, 97), st.data())
def test_round_trips_in_any_chunking(batch, deflate, step, data):
    if deflate:
        client, srv, _ = deflate_pair()
    else:
        client, srv = wc.Codec(client=True), wc.Codec(client=False)
    wire = b"".join(client.message(m) for m in batch)
    events = []
    pos = 0
    while pos < len(wire):
        n = data.draw(st.integers(1, step))
        events += srv.receive(wire[pos:pos + n])
        pos += n
    assert [e.data for e in events] == batch
    back = b"".join(srv.message(m) for m in batch)
    assert [e.data for e in client.receive(back)] == batch


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_raises(junk):
    for client in (False, True):
        events = wc.Codec(client=client, max_message_size=1000).receive(junk)
        assert all(type(e) in (wc.Message, wc.Ping, wc.Pong, wc.Close, wc.Fail) for e in events)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=2500), st.binary(min_size=4, max_size=4))
def test_unmask_matches_a_plain_xor(payload, mask):
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert wc._unmask_python(payload, mask) == expected
    assert wc._unmask(payload, mask) == expected  # the C one when built


def _speedups():
    try:
        from cyclone import _speedups
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("cyclone._speedups is not built (python setup.py build_ext --inplace)")
    return _speedups


@pytest.mark.parametrize("size", [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 1000, 65536 + 5])
def test_c_mask_is_used_and_agrees(size):
    speedups = _speedups()
    assert wc._unmask is speedups.xor_mask
    payload = os.urandom(size)
    for mask in (b"\x00\x00\x00\x00", b"\xff\x01\x80\x7f", os.urandom(4)):
        expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert speedups.xor_mask(payload, mask) == expected
        assert speedups.xor_mask(bytearray(payload), memoryview(mask)) == expected


def test_c_mask_refuses_bad_arguments():
    speedups = _speedups()
    with pytest.raises(ValueError):
        speedups.xor_mask(b"abc", b"12345")
    with pytest.raises(TypeError):
        speedups.xor_mask("text", b"1234")
    with pytest.raises(TypeError):
        speedups.xor_mask(b"abc")


# -- lengths in their shortest form (RFC 6455 §5.2) -----------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"\x82\xfe" + struct.pack("!H", 0),          # 16-bit length of 0
        b"\x82\xfe" + struct.pack("!H", 125),        # 16-bit length that fits in 7 bits
        b"\x82\xff" + struct.pack("!Q", 125),        # 64-bit length that fits in 7 bits
        b"\x82\xff" + struct.pack("!Q", 65535),      # 64-bit length that fits in 16 bits
        b"\x89\xfe" + struct.pack("!H", 5),          # a ping, too
    ],
)
@pytest.mark.parametrize("client", [False, True])
def test_lengths_not_in_their_shortest_form_are_1002(header, client):
    if client:  # frames from a server are not masked
        header = bytes((header[0], header[1] & 0x7F)) + header[2:]
    else:
        header += b"mask"
    event = failed(wc.Codec(client=client).receive(header + b"x" * 200), wc.PROTOCOL_ERROR)
    assert "shortest form" in event.reason


@pytest.mark.parametrize("size", [126, 65535, 65536])
def test_lengths_at_the_edges_of_each_form_are_fine(size):
    # 126 and 65535: the first and last 16-bit lengths; 65536: the first 64-bit one
    payload = b"y" * size
    assert only(server().receive(frame(wc.BINARY, payload))).data == payload
    sent = wc.Codec(client=False).message(payload)
    assert sent[1] == (126 if size < 65536 else 127)


def test_a_large_message_is_sent_as_one_frame():
    data = wc.Codec(client=False).message(b"z" * 3_000_000)
    assert data[0] == 0x82 and data[1] == 127  # FIN, binary; a 64-bit length
    assert struct.unpack("!Q", data[2:10])[0] == 3_000_000 and len(data) == 10 + 3_000_000
