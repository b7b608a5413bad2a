"""cyclone.urlencoded: percent-decoding and form parsing, linear on any input.

The budgets here are the ones issue 11 sets: for each worst case, an input of
300 KB and of 3 MB is parsed within a tracemalloc peak of 12 times its size,
and in CPU time within a small multiple of a plain form of the same size
(measured in the same test: no absolute times).
"""

from __future__ import annotations

import itertools
import random
import time
import tracemalloc
import urllib.parse
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyclone import urlencoded
from cyclone.escape import parse_qs_bytes, url_unescape
from cyclone.urlencoded import UrlencodedError, UrlencodedParser, parse_urlencoded, unquote_bytes

SIZES = [300_000, 3_000_000]


def stdlib_qs(data: bytes, keep_blank_values: bool = True, strict_parsing: bool = False):
    parsed = urllib.parse.parse_qs(
        data.decode("latin1"), keep_blank_values, strict_parsing, encoding="latin1"
    )
    return {name: [v.encode("latin1") for v in values] for name, values in parsed.items()}


def feed_in_pieces(data: bytes, size: int = 65536, **kwargs) -> dict[str, list[bytes]]:
    parser = UrlencodedParser(**kwargs)
    for i in range(0, len(data), size):
        parser.feed(data[i : i + size])
    return parser.close()


@pytest.mark.parametrize(
    "data",
    [b"", b"%", b"%%", b"%4", b"%41", b"%4g", b"%%41", b"a%2", b"%e2%82%ac", b"%GG%41%", b"\xff%ff%FF"],
)
def test_unquote_bytes_equals_stdlib(data):
    assert unquote_bytes(data) == urllib.parse.unquote_to_bytes(data)


def test_unquote_bytes_across_slice_cuts(monkeypatch):
    # every cut position of a small slice size, against the standard library
    monkeypatch.setattr(urlencoded, "_SLICE", 4)
    rng = random.Random(11)
    alphabet = b"%%%4aAg1+"
    for _ in range(3000):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert unquote_bytes(data) == urllib.parse.unquote_to_bytes(data), data


QS_CASES = [
    b"a=1&b=2&a=3",
    b"a&b=&=c&&=",
    b"a+b=c+d&%41=%42",
    b"%%=%4&x=%4g%",
    b"&&&a=1&&",
    b"a==b&c=d=e",
    b"name=%e2%82%ac&n\xff=v\xfe",
]


@pytest.mark.parametrize("data", QS_CASES)
@pytest.mark.parametrize("keep_blank_values", [True, False])
def test_parse_urlencoded_equals_stdlib(data, keep_blank_values):
    expected = stdlib_qs(data, keep_blank_values)
    assert parse_urlencoded(data, keep_blank_values=keep_blank_values) == expected
    assert parse_qs_bytes(data, keep_blank_values) == expected
    # fed in pieces split at every position, the result is the same
    for cut in range(len(data) + 1):
        parser = UrlencodedParser(keep_blank_values=keep_blank_values)
        parser.feed(data[:cut])
        parser.feed(data[cut:])
        assert parser.close() == expected, cut


def test_strict_parsing_as_stdlib():
    for data in (b"a=1&&b=2", b"a", b"a=1&"):
        with pytest.raises(ValueError):
            urllib.parse.parse_qs(data.decode(), strict_parsing=True)
        with pytest.raises(UrlencodedError):
            parse_urlencoded(data, strict_parsing=True)
    assert parse_urlencoded(b"", strict_parsing=True) == {}


def test_random_inputs_fed_in_random_pieces_equal_stdlib():
    rng = random.Random(7)
    alphabet = b"%%%41aZ+0fF9g&&==\xff"
    for _ in range(2000):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        expected = stdlib_qs(data)
        parser = UrlencodedParser()
        i = 0
        while i < len(data):
            j = i + rng.randint(1, 7)
            parser.feed(data[i:j])
            i = j
        assert parser.close() == expected, data


def test_max_fields_counts_every_field_and_stops_at_once():
    assert parse_urlencoded(b"a=1&b=2", max_fields=2) == {"a": [b"1"], "b": [b"2"]}
    with pytest.raises(UrlencodedError, match="more than 2 fields"):
        parse_urlencoded(b"a=1&b=2&", max_fields=2)  # the empty third field counts
    parser = UrlencodedParser(max_fields=3)
    parser.feed(b"a=1&b=2&")
    with pytest.raises(UrlencodedError):
        parser.feed(b"c=3&d=4")
    with pytest.raises(UrlencodedError):  # it stays failed
        parser.feed(b"e=5")
    with pytest.raises(UrlencodedError):
        parser.close()
    with pytest.raises(ValueError, match="more than 1 fields"):
        parse_qs_bytes("a=1&b=2", max_num_fields=1)


def test_url_unescape_equals_stdlib_on_text():
    for text in ["a%20b+c", "%e2%82%ac", "é%41€%", "%C3é%A9", "%ff", "+%2B"]:
        assert url_unescape(text) == urllib.parse.unquote_plus(text)
        assert url_unescape(text, plus=False) == urllib.parse.unquote(text)
        assert url_unescape(text, encoding=None, plus=False) == urllib.parse.unquote_to_bytes(text)
        assert url_unescape(text.encode(), plus=False) == urllib.parse.unquote(text)


# -- budgets ------------------------------------------------------------------


def worst_cases(size: int) -> dict[str, bytes]:
    """Inputs of ``size`` bytes made of each worst case."""
    return {
        "%": b"a=" + b"%" * (size - 2),
        "%41": b"a=" + b"%41" * ((size - 2) // 3),
        "%4": b"a=" + b"%4" * ((size - 2) // 2),
        "+": b"a=" + b"+" * (size - 2),
        "&": b"&" * size,
        "=": b"=" * size,
        "a=b&": b"a=b&" * (size // 4),
    }


def plain_form(size: int) -> bytes:
    """An ordinary form of ``size`` bytes: a few fields of text."""
    field = b"comment=" + b"some+text%2C+and+more+text+here+for+the+form" * 200 + b"&"
    return (field * (size // len(field) + 1))[:size]


def peak_memory(function, *args) -> int:
    tracemalloc.start()
    try:
        function(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def cpu_time(function, *args) -> float:
    """The least process CPU time of three runs (robust to a busy machine)."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        function(*args)
        best = min(best, time.process_time() - start)
    return best


def server_parse(data: bytes) -> None:
    """What the server does with a urlencoded body: feed the pieces as they
    arrive, with the default limit of 1000 fields."""
    try:
        feed_in_pieces(data, max_fields=1000)
    except UrlencodedError:
        pass


@pytest.mark.parametrize("size", SIZES)
def test_memory_budget(size):
    for name, data in worst_cases(size).items():
        for parse in (server_parse, lambda d: parse_urlencoded(d, max_fields=1000), unquote_bytes):
            try:
                peak = peak_memory(parse, data)
            except UrlencodedError:
                continue
            assert peak <= 12 * len(data), (name, parse, peak / len(data))


@pytest.mark.parametrize("size", SIZES)
def test_unlimited_parse_of_the_worst_cases_stays_within_budget(size):
    # no field limit: results with many fields cost what they hold, but the
    # parsing itself adds no more than a constant per field
    for name in ("%", "%41", "%4", "+", "&", "="):
        data = worst_cases(size)[name]
        peak = peak_memory(parse_urlencoded, data)
        assert peak <= 12 * len(data), (name, peak / len(data))


def test_time_budget_relative_to_a_plain_form():
    size = SIZES[-1]
    plain = cpu_time(server_parse, plain_form(size))
    for name, data in worst_cases(size).items():
        assert cpu_time(server_parse, data) <= 10 * plain + 0.01, name


def test_time_grows_linearly():
    small, large = 100_000, 1_000_000
    for name in ("%41", "%", "a=b&"):
        data_small, data_large = worst_cases(small)[name], worst_cases(large)[name]
        t_small = cpu_time(parse_urlencoded, data_small)
        t_large = cpu_time(parse_urlencoded, data_large)
        # 10 times the input: about 10 times the time (quadratic would be 100)
        assert t_large <= 25 * t_small + 0.01, (name, t_large / max(t_small, 1e-9))


def test_no_single_feed_holds_the_caller():
    # the server feeds each network read: the costliest piece takes about
    # its share of the whole, never the cost of the whole body at the end
    data = worst_cases(SIZES[-1])["%41"]
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    parser = UrlencodedParser(max_fields=1000)
    steps = []
    for piece in pieces:
        start = time.process_time()
        parser.feed(piece)
        steps.append(time.process_time() - start)
    start = time.process_time()
    result = parser.close()
    steps.append(time.process_time() - start)
    assert result["a"] == [b"A" * ((len(data) - 2) // 3)]
    assert max(steps) <= 10 * sum(steps) / len(pieces) + 0.005


# -- property tests (hypothesis) ----------------------------------------------
# Bounded runs for the normal suite; fuzz/urlencoded.py runs the same oracles
# without a bound (see fuzz/README.rst).

PROPERTY = settings(max_examples=200, deadline=None)

# bytes biased towards what the decoders branch on: escapes whole and cut,
# separators, "+" and non-ASCII
_QS_ATOMS = [b"%", b"%4", b"%41", b"%e2%82%ac", b"%zz", b"%%", b"+", b"&", b"=", b"a", b"Z", b"0",
             b"f", b"\xff", b" ", b";"]
qs_bytes = st.one_of(
    st.binary(max_size=120),
    st.lists(st.sampled_from(_QS_ATOMS), max_size=50).map(b"".join),
)


def pieces_of(data, cuts):
    """``data`` cut at the positions ``cuts`` (clamped, sorted)."""
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)] or [data]


@PROPERTY
@given(qs_bytes, st.integers(3, 40))  # a slice holds at least one whole escape
def test_property_unquote_bytes_equals_stdlib(data, slice_size):
    expected = urllib.parse.unquote_to_bytes(data)
    assert unquote_bytes(data) == expected
    # and the same with the input cut into slices of any size
    with mock.patch.object(urlencoded, "_SLICE", slice_size):
        assert unquote_bytes(data) == expected


@PROPERTY
@given(st.binary(max_size=120), st.sets(st.sampled_from(sorted(set("/:;=&+?@!$'()*,~ ")))))
def test_property_unquote_bytes_undoes_quote(data, safe):
    quoted = urllib.parse.quote_from_bytes(data, safe="".join(safe))
    assert unquote_bytes(quoted.encode("ascii")) == data


@PROPERTY
@given(qs_bytes, st.lists(st.integers(0, 130), max_size=8), st.booleans(), st.booleans())
def test_property_form_in_pieces_equals_stdlib(data, cuts, keep_blank_values, strict_parsing):
    try:
        expected = stdlib_qs(data, keep_blank_values, strict_parsing)
    except ValueError:
        expected = ValueError
    try:
        whole = parse_urlencoded(data, keep_blank_values=keep_blank_values, strict_parsing=strict_parsing)
    except UrlencodedError:
        whole = ValueError
    assert whole == expected
    parser = UrlencodedParser(keep_blank_values=keep_blank_values, strict_parsing=strict_parsing)
    try:
        for piece in pieces_of(data, cuts):
            parser.feed(piece)
        fed = parser.close()
    except UrlencodedError:
        fed = ValueError
    assert fed == expected


@PROPERTY
@given(qs_bytes, st.integers(0, 12), st.lists(st.integers(0, 130), max_size=8))
def test_property_max_fields_refuses_exactly_past_the_limit(data, max_fields, cuts):
    fields = data.count(b"&") + 1 if data else 0  # as urllib.parse: b"" holds no field
    unlimited = parse_urlencoded(data)
    if fields > max_fields:
        with pytest.raises(UrlencodedError):
            parse_urlencoded(data, max_fields=max_fields)
    else:
        assert parse_urlencoded(data, max_fields=max_fields) == unlimited
    # fed in pieces: the feed that passes the limit raises, not a later one
    parser = UrlencodedParser(max_fields=max_fields)
    seen = 0
    for piece in pieces_of(data, cuts):
        seen += piece.count(b"&")
        if piece and seen + 1 > max_fields:
            with pytest.raises(UrlencodedError):
                parser.feed(piece)
            with pytest.raises(UrlencodedError):
                parser.close()
            return
        parser.feed(piece)
    assert parser.close() == unlimited


# -- found by the property tests ----------------------------------------------


def test_empty_input_is_no_field_for_max_fields():
    # as urllib.parse.parse_qs and Tornado: b"" holds no field, so even
    # max_fields=0 accepts it (it used to count as one empty field)
    assert urllib.parse.parse_qs("", max_num_fields=0) == {}
    assert parse_urlencoded(b"", max_fields=0) == {}
    assert parse_qs_bytes(b"", max_num_fields=0) == {}
    parser = UrlencodedParser(max_fields=0)
    parser.feed(b"")
    assert parser.close() == {}
    with pytest.raises(UrlencodedError):
        parse_urlencoded(b"a", max_fields=0)
