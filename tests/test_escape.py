"""cyclone.escape against the outputs Tornado 6 gives for the same input."""

import json
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyclone import escape
from cyclone.escape import (
    json_decode,
    json_encode,
    linkify,
    native_str,
    parse_qs_bytes,
    recursive_unicode,
    squeeze,
    to_basestring,
    to_unicode,
    url_escape,
    url_unescape,
    utf8,
    xhtml_escape,
    xhtml_unescape,
)
from cyclone.urlencoded import UrlencodedError


@pytest.mark.parametrize(
    "raw, escaped",
    [
        ("<foo>", "&lt;foo&gt;"),
        ("<script>alert('x')</script>", "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"),
        ('a "quoted" & \'single\'', "a &quot;quoted&quot; &amp; &#x27;single&#x27;"),
        ("&amp;", "&amp;amp;"),
        ("plain", "plain"),
        ("", ""),
        ("é ü \u2028", "é ü \u2028"),
        (b"<bytes>", "&lt;bytes&gt;"),
        ("<\xe9>".encode("utf-8"), "&lt;\xe9&gt;"),
    ],
)
def test_xhtml_escape(raw, escaped):
    assert xhtml_escape(raw) == escaped
    assert isinstance(xhtml_escape(raw), str)


@pytest.mark.parametrize(
    "escaped, raw",
    [
        ("&lt;foo&gt;", "<foo>"),
        ("&#39;&#x27;&#X27;", "'''"),
        ("&amp;amp;", "&amp;"),
        ("&quot;&apos;", "\"'"),
        ("&#233;&#xe9;&eacute;", "ééé"),
        ("&foo; &#xzz; &", "&foo; &#xzz; &"),
        ("&amp &lt", "& <"),  # HTML5: some names work without ';'
        ("&#0;&#xd800;", "\ufffd\ufffd"),
        ("&nbsp;", "\xa0"),
        (b"&lt;b&gt;", "<b>"),
    ],
)
def test_xhtml_unescape(escaped, raw):
    assert xhtml_unescape(escaped) == raw


@pytest.mark.parametrize(
    "value", ["<a href=\"x\">'&'</a>", "", "\x00\r\n", "&&&;;;", "é€😀"]
)
def test_xhtml_round_trip(value):
    assert xhtml_unescape(xhtml_escape(value)) == value


@pytest.mark.parametrize(
    "value, plus, expected",
    [
        ("a b/c?é", True, "a+b%2Fc%3F%C3%A9"),
        ("a b/c?é", False, "a%20b/c%3F%C3%A9"),
        ("~-._", True, "~-._"),
        ("a+b&c=d", True, "a%2Bb%26c%3Dd"),
        (b"\xff\x00 ", True, "%FF%00+"),
        (b"\xff\x00 ", False, "%FF%00%20"),
        ("", True, ""),
    ],
)
def test_url_escape(value, plus, expected):
    assert url_escape(value, plus=plus) == expected


def test_url_escape_plus_is_default():
    assert url_escape("a b") == "a+b"


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        ("a+b%20%C3%A9", {}, "a b é"),
        (b"a+b%20%C3%A9", {}, "a b é"),
        ("a+b%20", {"plus": False}, "a+b "),
        ("%ff", {}, "\ufffd"),
        ("%E9", {"encoding": "latin1"}, "é"),
        ("a+b%20", {"encoding": None}, b"a b "),
        (b"a+b%20", {"encoding": None}, b"a b "),
        ("a+b%20", {"encoding": None, "plus": False}, b"a+b "),
        ("%ff%00", {"encoding": None}, b"\xff\x00"),
        ("100%", {}, "100%"),
        ("%zz", {"encoding": None}, b"%zz"),
    ],
)
def test_url_unescape(value, kwargs, expected):
    result = url_unescape(value, **kwargs)
    assert result == expected
    assert type(result) is type(expected)


@given(st.text())
def test_url_round_trip(value):
    assert url_unescape(url_escape(value)) == value
    assert url_unescape(url_escape(value, plus=False), plus=False) == value
    assert url_unescape(url_escape(value), encoding=None) == value.encode("utf-8")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("</script>", '"<\\/script>"'),
        ({"a": "</b>"}, '{"a": "<\\/b>"}'),
        ([1, 2.5, None, True], "[1, 2.5, null, true]"),
        ("é", '"\\u00e9"'),
        ("<", '"<"'),
    ],
)
def test_json_encode(value, expected):
    assert json_encode(value) == expected
    assert json.loads(expected) == value


@pytest.mark.parametrize(
    "value, expected",
    [
        ('{"a": [1, "x"]}', {"a": [1, "x"]}),
        (b'{"a": "\\u00e9"}', {"a": "é"}),
        ('"<\\/script>"', "</script>"),
        ('{"a": 1}'.encode("utf-16"), {"a": 1}),
    ],
)
def test_json_decode(value, expected):
    assert json_decode(value) == expected


def test_json_decode_rejects_garbage():
    with pytest.raises(ValueError):
        json_decode("{nope")


@pytest.mark.parametrize(
    "value, expected",
    [
        (" a \t\n b ", "a b"),
        ("a\x00\x01\x1fb", "a b"),
        ("", ""),
        ("  \r\n ", ""),
        ("a\xa0b", "a\xa0b"),  # only ASCII controls and space are squeezed
    ],
)
def test_squeeze(value, expected):
    assert squeeze(value) == expected


@pytest.mark.parametrize(
    "func, value, expected",
    [
        (utf8, "é", b"\xc3\xa9"),
        (utf8, b"\xff", b"\xff"),
        (utf8, None, None),
        (to_unicode, b"\xc3\xa9", "é"),
        (to_unicode, "x", "x"),
        (to_unicode, None, None),
        (native_str, b"a", "a"),
        (to_basestring, b"a", "a"),
        (escape._unicode, b"a", "a"),
    ],
)
def test_string_conversions(func, value, expected):
    assert func(value) == expected


@pytest.mark.parametrize("func", [utf8, to_unicode])
@pytest.mark.parametrize("value", [1, 1.5, bytearray(b"x"), ["a"], object()])
def test_string_conversions_reject_other_types(func, value):
    with pytest.raises(TypeError, match="Expected bytes, unicode, or None"):
        func(value)


def test_to_unicode_rejects_invalid_utf8():
    with pytest.raises(UnicodeDecodeError):
        to_unicode(b"\xff")


def test_recursive_unicode():
    value = {b"k": [b"v", (b"t", 1, {b"n": None})], "s": b"\xc3\xa9"}
    assert recursive_unicode(value) == {"k": ["v", ("t", 1, {"n": None})], "s": "é"}
    assert isinstance(recursive_unicode((b"a",)), tuple)
    assert recursive_unicode(5) == 5


def test_python2_aliases():
    assert escape.unicode_type is str
    assert escape.bytes_type is bytes
    assert escape.basestring_type is str


@pytest.mark.parametrize(
    "qs, kwargs, expected",
    [
        ("a=1&b=2&a=3", {}, {"a": [b"1", b"3"], "b": [b"2"]}),
        ("a=%ff&b=%C3%A9", {}, {"a": [b"\xff"], "b": [b"\xc3\xa9"]}),
        (b"a=\xe9+x", {}, {"a": [b"\xe9 x"]}),
        ("a=&b", {}, {}),
        ("a=&b", {"keep_blank_values": True}, {"a": [b""], "b": [b""]}),
        ("%C3%A9=x", {}, {"Ã©": [b"x"]}),  # names are latin-1, as in Tornado
        ("a=1;b=2", {}, {"a": [b"1;b=2"]}),
        ("", {}, {}),
    ],
)
def test_parse_qs_bytes(qs, kwargs, expected):
    assert parse_qs_bytes(qs, **kwargs) == expected


def test_parse_qs_bytes_strict_parsing():
    with pytest.raises(ValueError):
        parse_qs_bytes("a&b=1", strict_parsing=True)


def _extra_params_cb(url):
    if url.startswith("http://example.com"):
        return 'class="internal"'
    return 'class="external" rel="nofollow"'


LONG = "http://x.com/path/to/something/very/very/long/indeed?query=1&other=2"
LONG_HREF = LONG.replace("&", "&amp;")

# Outputs of tornado.escape.linkify 6.5 for the same arguments.
LINKIFY_CASES = [
    ("Hello http://tornadoweb.org!", {},
     'Hello <a href="http://tornadoweb.org">http://tornadoweb.org</a>!'),
    ("hello http://world.com/!", {},
     'hello <a href="http://world.com/">http://world.com/</a>!'),
    ("hello http://world.com/with?param=true&stuff=yes", {},
     'hello <a href="http://world.com/with?param=true&amp;stuff=yes">'
     "http://world.com/with?param=true&amp;stuff=yes</a>"),
    ("http://url.com/w(aaa)", {},
     '<a href="http://url.com/w(aaa)">http://url.com/w(aaa)</a>'),
    ("http://url.com/w(aaa))", {},
     '<a href="http://url.com/w(aaa)">http://url.com/w(aaa)</a>)'),
    ("(see http://example.com)", {},
     '(see <a href="http://example.com">http://example.com</a>)'),
    ("http://example.com/a.(b)", {},
     '<a href="http://example.com/a">http://example.com/a</a>.(b)'),
    ("see www.example.com.", {},
     'see <a href="http://www.example.com">www.example.com</a>.'),
    ("see www.example.com.", {"require_protocol": True}, "see www.example.com."),
    ("javascript:alert(1)", {}, "javascript:alert(1)"),
    ("javascript://alert(1)", {}, "javascript://alert(1)"),
    ("ftp://files.example.org/pub", {}, "ftp://files.example.org/pub"),
    ("ftp://files.example.org/pub", {"permitted_protocols": ["http", "ftp"]},
     '<a href="ftp://files.example.org/pub">ftp://files.example.org/pub</a>'),
    ("mailto:joe@example.com", {"permitted_protocols": ["mailto"]},
     "mailto:joe@example.com"),
    ("a http://x.com b", {"extra_params": 'rel="nofollow"'},
     'a <a href="http://x.com" rel="nofollow">http://x.com</a> b'),
    ("a http://x.com b", {"extra_params": '  rel="nofollow"  '},
     'a <a href="http://x.com" rel="nofollow">http://x.com</a> b'),
    ("http://example.com/x and www.other.org", {"extra_params": _extra_params_cb},
     '<a href="http://example.com/x" class="internal">http://example.com/x</a> and '
     '<a href="http://www.other.org" class="external" rel="nofollow">www.other.org</a>'),
    ("<b>http://x.com/?a=1&b=2</b>", {},
     '&lt;b&gt;<a href="http://x.com/?a=1&amp;b=2">http://x.com/?a=1&amp;b=2</a>&lt;/b&gt;'),
    ("http://x.com/?q='a'", {},
     '<a href="http://x.com/?q">http://x.com/?q</a>=&#x27;a&#x27;'),
    ('http://x.com/"quoted"', {},
     '<a href="http://x.com/&quot;quoted">http://x.com/&quot;quoted</a>&quot;'),
    (LONG, {"shorten": True},
     f'<a href="{LONG_HREF}" title="{LONG_HREF}">http://x.com/path...</a>'),
    (LONG, {"shorten": True, "extra_params": 'rel="nofollow"'},
     f'<a href="{LONG_HREF}" rel="nofollow" title="{LONG_HREF}">http://x.com/path...</a>'),
    ("www.example.com/a-long-path-segment.html?x=1&y=2&z=3", {"shorten": True},
     '<a href="http://www.example.com/a-long-path-segment.html?x=1&amp;y=2&amp;z=3" '
     'title="http://www.example.com/a-long-path-segment.html?x=1&amp;y=2&amp;z=3">'
     "www.example.com/a-long-p...</a>"),
    ("http://www.example.com/wpstyle/?p=364.", {"shorten": True},
     '<a href="http://www.example.com/wpstyle/?p=364" '
     'title="http://www.example.com/wpstyle/?p=364">http://www.example.com/wpstyle...</a>.'),
    ("http://a.com/short", {"shorten": True},
     '<a href="http://a.com/short">http://a.com/short</a>'),
    ("http://averyveryveryveryveryverylonghostname.example.com/path/x", {"shorten": True},
     '<a href="http://averyveryveryveryveryverylonghostname.example.com/path/x" '
     'title="http://averyveryveryveryveryverylonghostname.example.com/path/x">'
     "http://averyveryveryveryveryve...</a>"),
    ("http://a.com?aaaaaaaaaaaa=1&bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", {"shorten": True},
     '<a href="http://a.com?aaaaaaaaaaaa=1&amp;bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" '
     'title="http://a.com?aaaaaaaaaaaa=1&amp;bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb">'
     "http://a.com?aaaaaaaaaaaa=1...</a>"),
    ("https://exampleexample.com/a.html", {"shorten": True},
     '<a href="https://exampleexample.com/a.html" title="https://exampleexample.com/a.html">'
     "https://exampleexample.com/a...</a>"),
    # Shortening would not make it shorter: left alone, no title.
    ("www.exampleexampleexample.com/aaaaaaaaaa", {"shorten": True},
     '<a href="http://www.exampleexampleexample.com/aaaaaaaaaa">'
     "www.exampleexampleexample.com/aaaaaaaaaa</a>"),
    ("https://localhost:8080/a_b-c/d~e", {},
     '<a href="https://localhost:8080/a_b-c/d~e">https://localhost:8080/a_b-c/d~e</a>'),
    ("http:// not a link", {}, '<a href="http://">http://</a> not a link'),
    ("Unicode: http://例え.jp/パス done", {},
     'Unicode: <a href="http://例え.jp/パス">http://例え.jp/パス</a> done'),
    ("two http://a.com and https://b.com/x.", {},
     'two <a href="http://a.com">http://a.com</a> and <a href="https://b.com/x">https://b.com/x</a>.'),
    ("no links here & <there>", {}, "no links here &amp; &lt;there&gt;"),
    (b"bytes http://x.com", {}, 'bytes <a href="http://x.com">http://x.com</a>'),
    # A scheme runs over the whole [\w-] run it starts in.
    ("see --ftp://x.org here", {}, "see --ftp://x.org here"),
    ("see --ftp://x.org here", {"permitted_protocols": ["ftp"]},
     'see --<a href="ftp://x.org">ftp://x.org</a> here'),
    ("-http://a.com", {}, '-<a href="http://a.com">http://a.com</a>'),
    ("a-b-http://x.com", {}, "a-b-http://x.com"),
    ("x_-https://y.z/", {}, "x_-https://y.z/"),
    ("foo-www.x.com", {}, 'foo-<a href="http://www.x.com">www.x.com</a>'),
]


@pytest.mark.parametrize("text, kwargs, expected", LINKIFY_CASES)
def test_linkify(text, kwargs, expected):
    assert linkify(text, **kwargs) == expected


def test_linkify_permitted_protocols_accepts_a_set():
    assert linkify("ftp://a.org", permitted_protocols={"ftp"}) == (
        '<a href="ftp://a.org">ftp://a.org</a>'
    )


def test_linkify_callable_gets_the_href():
    seen = []

    def params(url):
        seen.append(url)
        return ""

    linkify("www.a.com and https://b.com", extra_params=params)
    assert seen == ["http://www.a.com", "https://b.com"]


def _strip_links(html):
    out = html.replace("</a>", "")
    while "<a href=" in out:
        start = out.index("<a href=")
        out = out[:start] + out[out.index(">", start) + 1 :]
    return out


_LINKIFY_PIECES = list("ab:/.()&;'\"<> w\t") + ["http://", "www.", "&amp;", "&quot;"]


@given(st.lists(st.sampled_from(_LINKIFY_PIECES)).map("".join))
def test_linkify_adds_only_its_own_tags(text):
    # Whatever the input, the only markup in the output is the <a> tags
    # linkify adds, and removing them gives back the escaped input.
    assert xhtml_unescape(_strip_links(linkify(text))) == text
    for out in (linkify(text, shorten=True), linkify(text, require_protocol=True)):
        stripped = _strip_links(out)
        assert "<" not in stripped and ">" not in stripped and '"' not in stripped


def test_linkify_is_linear_on_pathological_input():
    # Long runs of punctuation after a URL, and a huge www. chain: a
    # backtracking pattern would not return on these.
    punct = "!." * 50000
    assert linkify("http://a.com/" + punct + " tail") == (
        '<a href="http://a.com/">http://a.com/</a>' + punct + " tail"
    )
    chain = "www." * 20000
    assert linkify(chain) == f'<a href="http://{chain[:-1]}">{chain[:-1]}</a>.'
    # Word boundaries all along one long [\w-] run: trying a scheme at each
    # of them would rescan the run every time.
    words = "ab-" * 100_000
    assert linkify(words) == words


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text() | st.integers() | st.booleans() | st.none(), children, max_size=4),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_json_encode_is_json_dumps_with_script_escape(value):
    assert json_encode(value) == json.dumps(value).replace("</", "<\\/")


def test_json_encode_refuses_what_json_cannot_carry():
    with pytest.raises(TypeError):
        json_encode({"a": object()})
    circular: list = []
    circular.append(circular)
    with pytest.raises((ValueError, RecursionError)):
        json_encode(circular)
    assert json_encode({"after": "errors"}) == '{"after": "errors"}'  # nothing left over


# -- property tests: percent-decoding and query strings (hypothesis) ---------
# Bounded runs for the normal suite; fuzz/urlencoded.py runs the same oracles
# without a bound (see fuzz/README.rst).

PROPERTY = settings(max_examples=200, deadline=None)

# text biased towards escapes whole and cut, "+" and non-ASCII next to them
_ESCAPE_TEXT_ATOMS = ["%", "%4", "%41", "%C3", "%A9", "%e2%82%ac", "%zz", "+", "&", "=", "a", "é", "€",
                      "\x00", " "]
escape_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(_ESCAPE_TEXT_ATOMS), max_size=40).map("".join),
)
_QS_ATOMS = [b"%", b"%4", b"%41", b"%ff", b"%zz", b"+", b"&", b"&&", b"=", b"a", b"b", b"\xe9", b" ", b";"]
qs_bytes = st.one_of(
    st.binary(max_size=100),
    st.lists(st.sampled_from(_QS_ATOMS), max_size=40).map(b"".join),
)


def _stdlib_parse_qs(qs, **kwargs):
    """urllib.parse.parse_qs read byte for byte (latin-1), values as bytes;
    ``ValueError`` where it raises."""
    try:
        parsed = urllib.parse.parse_qs(qs.decode("latin1"), encoding="latin1", **kwargs)
    except ValueError:
        return ValueError
    return {name: [v.encode("latin1") for v in values] for name, values in parsed.items()}


def _ours(qs, **kwargs):
    try:
        return parse_qs_bytes(qs, **kwargs)
    except UrlencodedError:  # the documented ValueError
        return ValueError


@PROPERTY
@given(escape_text)
def test_property_url_unescape_equals_stdlib_on_text(text):
    assert url_unescape(text) == urllib.parse.unquote_plus(text)
    assert url_unescape(text, plus=False) == urllib.parse.unquote(text)
    assert url_unescape(text, encoding="latin1") == urllib.parse.unquote_plus(text, encoding="latin1")
    assert url_unescape(text, encoding=None, plus=False) == urllib.parse.unquote_to_bytes(text)
    assert url_unescape(text, encoding=None) == urllib.parse.unquote_to_bytes(text.replace("+", " "))
    assert url_unescape(text.encode("utf-8"), plus=False) == urllib.parse.unquote(text)


@PROPERTY
@given(qs_bytes)
def test_property_url_unescape_bytes_equals_stdlib(data):
    assert url_unescape(data, encoding=None, plus=False) == urllib.parse.unquote_to_bytes(data)
    assert url_unescape(data, encoding=None) == urllib.parse.unquote_to_bytes(data.replace(b"+", b" "))


@PROPERTY
@given(st.text(max_size=60), st.sets(st.sampled_from(sorted(set("/:;=&+?@!$'()*,~%")))))
def test_property_url_unescape_undoes_quote(text, safe):
    safe = "".join(safe - {"%"})  # a literal "%" is not quoted: it would not round-trip
    assert url_unescape(urllib.parse.quote(text, safe=safe), plus=False) == text
    assert url_unescape(urllib.parse.quote_plus(text, safe=safe.replace("+", ""))) == text
    assert url_unescape(urllib.parse.quote(text, safe=safe), encoding=None, plus=False) == text.encode()


@PROPERTY
@given(qs_bytes, st.booleans(), st.booleans(), st.none() | st.integers(0, 12))
def test_property_parse_qs_bytes_equals_stdlib(qs, keep_blank_values, strict_parsing, max_num_fields):
    kwargs = {"keep_blank_values": keep_blank_values, "strict_parsing": strict_parsing,
              "max_num_fields": max_num_fields}
    expected = _stdlib_parse_qs(qs, **kwargs)
    assert _ours(qs, **kwargs) == expected
    # a str is read as latin-1 when it can be
    assert _ours(qs.decode("latin1"), **kwargs) == expected


@PROPERTY
@given(st.text(max_size=60), st.none() | st.integers(0, 12))
def test_property_parse_qs_bytes_on_any_text(text, max_num_fields):
    # never raises without a limit, nor anything but the documented error with one
    result = parse_qs_bytes(text, keep_blank_values=True)
    try:
        data = text.encode("latin1")
    except UnicodeEncodeError:
        data = text.encode("utf-8")  # other characters: read as UTF-8
    assert result == parse_qs_bytes(data, keep_blank_values=True)
    assert all(isinstance(v, bytes) for values in result.values() for v in values)
    fields = text.count("&") + 1 if text else 0  # as urllib.parse: "" holds no field
    if max_num_fields is not None and fields > max_num_fields:
        with pytest.raises(UrlencodedError, match=f"more than {max_num_fields} fields"):
            parse_qs_bytes(text, max_num_fields=max_num_fields)
    else:
        assert parse_qs_bytes(text, True, max_num_fields=max_num_fields) == result
