"""cyclone.resp, the sans-IO RESP2 encoder and reply parser: known bytes, every
split of a stream of replies, and the limits on bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from cyclone.resp import ProtocolError, ReplyError, ReplyParser, encode_command


def test_encode_command_takes_bytes_str_and_int():
    assert encode_command("SET", b"k\r\n", 12, "é") == (
        b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n12\r\n$2\r\n\xc3\xa9\r\n")


@pytest.mark.parametrize("bad", [1.5, None, True, ["x"]])
def test_encode_command_refuses_other_types(bad):
    with pytest.raises(TypeError):
        encode_command("SET", "k", bad)
    with pytest.raises(ValueError):
        encode_command()


def test_each_reply_type():
    parser = ReplyParser()
    replies = parser.feed(b"+OK\r\n-ERR no\r\n:-42\r\n$5\r\nhe\r\no\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
                          b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n+QUEUED\r\n")
    assert replies[0] == "OK" and type(replies[0]) is str
    assert isinstance(replies[1], ReplyError) and str(replies[1]) == "ERR no"
    assert replies[2:] == [-42, b"he\r\no", b"", None, None, [], [1, [b"a", None], "QUEUED"]]
    assert parser.pending == 0


def test_a_reply_cut_anywhere_waits_for_its_end():
    stream = b"$11\r\nhello world\r\n*2\r\n:7\r\n+OK\r\n"
    for cut in range(1, len(stream)):
        parser = ReplyParser()
        first = parser.feed(stream[:cut])
        assert first + parser.feed(stream[cut:]) == [b"hello world", [7, "OK"]], cut
        assert parser.pending == 0


def test_the_error_class_is_the_caller_s():
    class MyError(Exception):
        pass

    (error,) = ReplyParser(error_class=MyError).feed(b"-WRONGTYPE bad\r\n")
    assert type(error) is MyError and error.args == ("WRONGTYPE bad",)


@pytest.mark.parametrize("data, message", [
    (b"?what\r\n", "unknown reply type"),
    (b"$abc\r\n", "not a 64-bit decimal number"),
    (b"$ 1\r\nx\r\n", "not a 64-bit decimal number"),
    (b"$1_0\r\n", "not a 64-bit decimal number"),
    (b":" + b"9" * 5000 + b"\r\n", "not a 64-bit decimal number"),
    (b"$-2\r\n", "negative length"),
    (b"$3\r\nabcdef\r\n", "longer than its announced length"),
    (b"$600000000\r\n", "max_bulk"),
    (b"+" + b"x" * 70000, "longer than 65536"),
    (b"*1\r\n" * 65 + b":1\r\n", "nested deeper than 64"),
])
def test_bad_input_is_a_protocol_error_and_stays_one(data, message):
    parser = ReplyParser()
    with pytest.raises(ProtocolError, match=message):
        parser.feed(data)
    with pytest.raises(ProtocolError):  # the stream is out of step for good
        parser.feed(b"+OK\r\n")


def test_a_large_bulk_is_not_parsed_again_at_each_read():
    parser = ReplyParser()
    body = b"x" * 100_000
    data = b"$%d\r\n%s\r\n" % (len(body), body)
    assert parser.feed(data[:1000]) == []
    # from the header on, the parser knows how much it waits for and skips
    # parsing until it has it (else a large reply costs its size squared)
    assert parser._need == len(data)
    results = [parser.feed(data[i:i + 1000]) for i in range(1000, len(data), 1000)]
    assert results[-1] == [body] and not any(results[:-1])


# -- any reply, split anywhere ---------------------------------------------------------------

def _encode(value) -> bytes:
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, ReplyError):
        return b"-%s\r\n" % str(value).encode()
    if isinstance(value, str):
        return b"+%s\r\n" % value.encode()
    return b"*%d\r\n" % len(value) + b"".join(_encode(item) for item in value)


_line = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)
_scalar = (st.none() | st.binary(max_size=40) | st.integers(-2**63, 2**63 - 1) | _line
           | _line.map(lambda text: ReplyError("ERR " + text)))
_reply = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=5), max_leaves=20)


def _comparable(value):
    if isinstance(value, ReplyError):
        return ("error", str(value))
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value


@settings(max_examples=300, deadline=None)
@given(st.lists(_reply, min_size=1, max_size=6), st.data())
def test_any_replies_split_anywhere_come_out_whole_and_in_order(replies, data):
    stream = b"".join(_encode(reply) for reply in replies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    parser = ReplyParser()
    parsed = []
    start = 0
    for cut in cuts + [len(stream)]:
        parsed += parser.feed(stream[start:cut])
        start = cut
    assert _comparable(parsed) == _comparable(replies)
    assert parser.pending == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_replies_or_a_protocol_error(data):
    parser = ReplyParser()
    try:
        parser.feed(data)
    except ProtocolError:
        pass
