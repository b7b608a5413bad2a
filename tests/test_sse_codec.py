"""cyclone.sse_codec: the bytes of events, read back by sseclient-py (a
client we did not write) and checked against the standard's rules."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sseclient import SSEClient

from cyclone.sse_codec import HEARTBEAT, encode_comment, encode_event, event_data


def parse(data: bytes) -> list:
    """The events sseclient-py reads from ``data``, fed in small pieces as
    from a socket."""
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    return list(SSEClient(iter(pieces)).events())


def test_a_named_event_with_id_and_retry():
    wire = encode_event("hello", event="greeting", id="17", retry=2500)
    assert wire == b"event: greeting\nid: 17\nretry: 2500\ndata: hello\n\n"
    (event,) = parse(wire)
    assert (event.event, event.id, event.retry, event.data) == ("greeting", "17", "2500", "hello")


@pytest.mark.parametrize("text", ["a\nb", "a\r\nb", "a\rb"])
def test_every_line_break_makes_a_data_line(text):
    wire = encode_event(text)
    assert wire == b"data: a\ndata: b\n\n"
    (event,) = parse(wire)
    assert event.data == "a\nb"  # the browser joins data lines with LF


def test_a_trailing_line_break_and_leading_spaces_survive():
    (event,) = parse(encode_event("  indented\n"))
    assert event.data == "  indented\n"


def test_dicts_and_lists_are_json_and_bytes_are_utf8():
    (event,) = parse(encode_event({"a": [1, "</script>"]}))
    assert json.loads(event.data) == {"a": [1, "</script>"]}
    assert "</" not in event.data
    assert json.loads(parse(encode_event([1, 2]))[0].data) == [1, 2]
    assert parse(encode_event("café €".encode()))[0].data == "café €"


def test_consecutive_events_are_separate():
    wire = b"".join(encode_event(str(n), id=n) for n in range(5))
    assert [(e.id, e.data) for e in parse(wire)] == [(str(n), str(n)) for n in range(5)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nevent: b"},
        {"event": "x\r"},
        {"id": "1\ndata: injected"},
        {"id": "a\0b"},
        {"retry": -1},
        {"retry": "10"},
        {"retry": True},
        {"retry": 1.5},
    ],
)
def test_fields_that_would_break_the_framing_are_refused(kwargs):
    with pytest.raises(ValueError):
        encode_event("x", **kwargs)


def test_bad_data_is_refused_clearly():
    with pytest.raises(ValueError, match="not UTF-8"):
        encode_event(b"\xff\xfe")
    with pytest.raises(TypeError, match="str, bytes, dict or list"):
        event_data(3.5)


def test_comments_and_heartbeat_are_ignored_by_clients():
    assert HEARTBEAT == b":\n\n" == encode_comment()
    assert encode_comment("two\nlines") == b": two\n: lines\n\n"
    wire = HEARTBEAT + encode_comment("x") + encode_event("real")
    assert [e.data for e in parse(wire)] == ["real"]


def test_fields_without_data_dispatch_nothing():
    assert encode_event(id="5", retry=100) == b"id: 5\nretry: 100\n\n"
    assert parse(encode_event(id="5")) == []


# no surrogates (they cannot be UTF-8); the standard's line breaks are CR, LF, CRLF
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1)


@settings(max_examples=300, deadline=None)
@given(_TEXT, st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)))
def test_any_text_round_trips_with_line_breaks_made_lf(text, name):
    (event,) = parse(encode_event(text, event=name))
    assert event.data == text.replace("\r\n", "\n").replace("\r", "\n")
    assert event.event == (name or "message")
