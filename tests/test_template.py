"""Tests for cyclone.template: syntax, directives, loaders, errors, Deferreds."""

from __future__ import annotations

import datetime
import linecache
import threading
import traceback

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.python.failure import Failure

from cyclone import template
from cyclone.escape import to_unicode, utf8
from cyclone.template import (
    BaseLoader,
    DictLoader,
    Loader,
    ParseError,
    Template,
    TemplateError,
    filter_whitespace,
)
from cyclone.util import ObjectDict


def render(source: str | bytes, **kwargs: object) -> bytes:
    result = Template(source).generate(**kwargs)
    assert isinstance(result, bytes)
    return result


def upper(s: bytes) -> bytes:
    return s.upper()


# -- expressions, comments and escapes ----------------------------------------

@pytest.mark.parametrize(
    "source, kwargs, expected",
    [
        ("Hello {{ name }}!", {"name": "Ben"}, b"Hello Ben!"),
        ("{{ n + 1 }}", {"n": 41}, b"42"),
        ("{{ value }}", {"value": None}, b"None"),
        ("{{ value }}", {"value": b"raw bytes"}, b"raw bytes"),
        ("{{ value }}", {"value": 1.5}, b"1.5"),
        ("{{ 'caf\u00e9' }}", {}, "caf\u00e9".encode()),
        (b"\xc3\xa9 {{ 1 }}", {}, "\u00e9 1".encode()),
        ("{{ '<&>' }}", {}, b"&lt;&amp;&gt;"),
        ("{{ \"'\" }}", {}, b"&#x27;"),
        ("a{# a comment #}b", {}, b"ab"),
        ("a{# spans\nlines #}b", {}, b"ab"),
        ("{{! x }}", {}, b"{{ x }}"),
        ("{%! if x %}", {}, b"{% if x %}"),
        ("{#! not a comment #}", {}, b"{# not a comment #}"),
        ("{{{ x }}}", {"x": 1}, b"{1}"),
        ("{ not a tag } and {x}", {}, b"{ not a tag } and {x}"),
        ("ends with {", {}, b"ends with {"),
        ("{{ max(x,\n   2) }}", {"x": 1}, b"2"),
        ("{{ [i for i in range(3)] }}", {}, b"[0, 1, 2]"),
    ],
)
def test_expressions_and_escapes(source, kwargs, expected):
    assert render(source, **kwargs) == expected


# -- directives ---------------------------------------------------------------

class Counter:
    def __init__(self) -> None:
        self.n = 0

    def bump(self) -> int:
        self.n += 1
        return self.n


DIRECTIVE_CASES = [
    ("{% if x %}yes{% end %}", {"x": True}, b"yes"),
    ("{% if x %}yes{% end %}", {"x": False}, b""),
    ("{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% end %}", {"x": 1}, b"one"),
    ("{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% end %}", {"x": 2}, b"two"),
    ("{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% end %}", {"x": 9}, b"many"),
    ("{% if True %}{% else %}{% end %}", {}, b""),
    ("{% for i in items %}[{{ i }}]{% end %}", {"items": [1, 2]}, b"[1][2]"),
    # for/else is Python's: else runs when the loop did not break.
    ("{% for i in items %}{{ i }}{% else %}E{% end %}", {"items": []}, b"E"),
    ("{% for i in items %}{{ i }}{% else %}E{% end %}", {"items": [1]}, b"1E"),
    ("{% for i in items %}{{ i }}{% break %}{% else %}E{% end %}", {"items": [1, 2]}, b"1"),
    (
        "{% for i in range(6) %}{% if i == 1 %}{% continue %}{% end %}"
        "{% if i == 4 %}{% break %}{% end %}{{ i }}{% end %}",
        {},
        b"023",
    ),
    ("{% set n = 3 %}{% while n %}{{ n }}{% set n -= 1 %}{% end %}", {}, b"321"),
    ("{% while False %}{% else %}done{% end %}", {}, b"done"),
    ("{% set x = 2; y = 3 %}{{ x * y }}", {}, b"6"),
    ("{% import math %}{{ math.floor(2.5) }}", {}, b"2"),
    ("{% from os.path import join %}{{ join('a', 'b') }}", {}, b"a/b"),
    ("{% comment this is ignored %}after", {}, b"after"),
    ("{% apply upper %}shout {{ x }}{% end %}", {"upper": upper, "x": "<i>"}, b"SHOUT &LT;I&GT;"),
    ("{% apply lambda s: s[::-1] %}abc{% end %}", {}, b"cba"),
    ("{% apply f %}\u00e9{% end %}", {"f": lambda s: to_unicode(s).upper()}, "\u00c9".encode()),
    ("{% apply upper %}{% end %}", {"upper": upper}, b""),
    ("{% raw x %} {{ x }}", {"x": "<b>"}, b"<b> &lt;b&gt;"),
    ("{% module Thing(1) %}", {"_tt_modules": ObjectDict(Thing=lambda n: f"<m{n}>")}, b"<m1>"),
    (
        "{% try %}{{ 1 / x }}{% except ZeroDivisionError %}div0{% else %}-ok{% finally %}-fin{% end %}",
        {"x": 1},
        b"1.0-ok-fin",
    ),
    (
        "{% try %}{{ 1 / x }}{% except ZeroDivisionError %}div0{% else %}-ok{% finally %}-fin{% end %}",
        {"x": 0},
        b"div0-fin",
    ),
    ("{% try %}{% finally %}f{% end %}", {}, b"f"),
    ("{%if x%}tight{%end%}", {"x": 1}, b"tight"),
    ("{% if\tx %}tab{% end %}", {"x": 1}, b"tab"),
    ("{% set c = counter.bump() %}{% set c = counter.bump() %}{{ c }}", {"counter": Counter()}, b"2"),
]


@pytest.mark.parametrize("source, kwargs, expected", DIRECTIVE_CASES)
def test_directives(source, kwargs, expected):
    assert render(source, **kwargs) == expected


def test_loop_with_whitespace_between_directives():
    source = """\
{% for i in range(10) %}
    {% if i == 2 %}
        {% continue %}
    {% end %}
    {{ i }}
    {% if i == 6 %}
        {% break %}
    {% end %}
{% end %}"""
    assert b"".join(render(source).split()) == b"013456"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("{{ escape('<') }}", b"&amp;lt;"),  # escaped once by the call, once by autoescape
        ("{% raw escape('<') %}", b"&lt;"),
        ("{% raw xhtml_escape('\"') %}", b"&quot;"),
        ("{% raw url_escape('a b&c') %}", b"a+b%26c"),
        ("{% raw json_encode({'k': '</script>'}) %}", b'{"k": "<\\/script>"}'),
        ("{{ squeeze('a   b \\n c') }}", b"a b c"),
        ("{% raw linkify('see http://example.com') %}", b'see <a href="http://example.com">http://example.com</a>'),
        ("{{ datetime.date(2020, 1, 2).isoformat() }}", b"2020-01-02"),
        ("{% raw _tt_utf8('x') %}", b"x"),
        ("{{ _tt_string_types == (str, bytes) }}", b"True"),
    ],
)
def test_default_namespace(source, expected):
    assert render(source) == expected


def test_kwargs_override_loader_namespace():
    loader = DictLoader({"t.html": "{{ inc(5) }}-{{ who }}"}, namespace={"inc": lambda x: x + 1, "who": "ns"})
    assert loader.load("t.html").generate() == b"6-ns"
    assert loader.load("t.html").generate(who="kw") == b"6-kw"


def test_include_shares_the_local_namespace():
    loader = DictLoader(
        {
            "main.html": "{% set a = 1 %}{% include 'part.html' %}{{ b }}",
            "part.html": "{{ a }}{% set b = 2 %}",
        }
    )
    assert loader.load("main.html").generate() == b"12"


def test_generate_is_repeatable_and_isolated():
    t = Template("{% set y = x + 1 %}{{ y }}")
    assert t.generate(x=1) == b"2"
    assert t.generate(x=10) == b"11"


# -- autoescape ----------------------------------------------------------------

NAME = "Bobby <table>s"

AUTOESCAPE_TEMPLATES = {
    "default.html": "{{ name }}",
    "escaped.html": "{% autoescape xhtml_escape %}{{ name }}",
    "unescaped.html": "{% autoescape None %}{{ name }}",
    "late_directive.html": "{{ name }}{% autoescape None %}",
    "mixed.html": "{% autoescape xhtml_escape %}{{ name }} {% raw name %} {% raw escape(name) %}",
    "unescaped_block.html": "{% autoescape None %}{% block name %}base: {{ name }}{% end %}",
    "escaped_extends_unescaped.html": '{% autoescape xhtml_escape %}{% extends "unescaped_block.html" %}',
    "escaped_overrides_unescaped.html": (
        '{% autoescape xhtml_escape %}{% extends "unescaped_block.html" %}'
        "{% block name %}extended: {{ name }}{% end %}"
    ),
    "includes_unescaped.html": "{{ name }}|{% include 'unescaped.html' %}",
    "custom.html": "{% autoescape py_escape %}{{ name }}",
}


@pytest.mark.parametrize(
    "loader_autoescape, name, expected",
    [
        ("xhtml_escape", "default.html", b"Bobby &lt;table&gt;s"),
        (None, "default.html", b"Bobby <table>s"),
        (None, "escaped.html", b"Bobby &lt;table&gt;s"),
        ("xhtml_escape", "unescaped.html", b"Bobby <table>s"),
        ("xhtml_escape", "late_directive.html", b"Bobby <table>s"),
        (None, "mixed.html", b"Bobby &lt;table&gt;s Bobby <table>s Bobby &lt;table&gt;s"),
        ("xhtml_escape", "unescaped_block.html", b"base: Bobby <table>s"),
        # A block is escaped by the rules of the file that wrote it.
        ("xhtml_escape", "escaped_extends_unescaped.html", b"base: Bobby <table>s"),
        ("xhtml_escape", "escaped_overrides_unescaped.html", b"extended: Bobby &lt;table&gt;s"),
        ("xhtml_escape", "includes_unescaped.html", b"Bobby &lt;table&gt;s|Bobby <table>s"),
    ],
)
def test_autoescape(loader_autoescape, name, expected):
    loader = DictLoader(AUTOESCAPE_TEMPLATES, autoescape=loader_autoescape)
    assert loader.load(name).generate(name=NAME) == expected


def test_custom_autoescape_function_receives_bytes():
    seen = []

    def py_escape(value):
        seen.append(type(value))
        return repr(to_unicode(value))

    loader = DictLoader(AUTOESCAPE_TEMPLATES)
    assert loader.load("custom.html").generate(name="x'", py_escape=py_escape) == b"\"x'\""
    assert seen == [bytes]


def test_rebinding_xhtml_escape_in_namespace_is_honoured():
    seen = []

    def my_escape(value):
        seen.append(value)
        return b"[" + value + b"]"

    loader = DictLoader({"t.html": "{{ x }}"}, namespace={"xhtml_escape": my_escape})
    assert loader.load("t.html").generate(x=5) == b"[5]"
    assert seen == [b"5"]
    assert Template("{{ x }}").generate(x="<", xhtml_escape=lambda b: b"E") == b"E"


@pytest.mark.parametrize(
    "kwargs, expected",
    [({}, b"&lt;b&gt;"), ({"autoescape": None}, b"<b>"), ({"autoescape": "shout"}, b"<B>!")],
)
def test_template_autoescape_argument(kwargs, expected):
    t = Template("{{ x }}", **kwargs)
    assert t.generate(x="<b>", shout=lambda b: b.upper() + b"!") == expected


def test_template_autoescape_overrides_loader():
    loader = DictLoader({}, autoescape=None)
    assert Template("{{ x }}", loader=loader).generate(x="<") == b"<"
    assert Template("{{ x }}", loader=loader, autoescape="xhtml_escape").generate(x="<") == b"&lt;"
    assert template._DEFAULT_AUTOESCAPE == "xhtml_escape"


# -- whitespace ------------------------------------------------------------------

@pytest.mark.parametrize(
    "mode, text, expected",
    [
        ("all", " a \n\n\t b ", " a \n\n\t b "),
        ("single", " a \n\n\t b ", " a\nb "),
        ("single", "a\t \tb", "a b"),
        ("oneline", " a \n\n\t b ", " a b "),
        ("single", "", ""),
    ],
)
def test_filter_whitespace(mode, text, expected):
    assert filter_whitespace(mode, text) == expected


def test_filter_whitespace_rejects_unknown_mode():
    with pytest.raises(ValueError, match="bogus"):
        filter_whitespace("bogus", "x")


def test_whitespace_default_depends_on_file_name():
    loader = DictLoader(
        {
            "foo.html": "   \n\t\n asdf\t   ",
            "bar.js": " \n\n\n\t qwer     ",
            "baz.txt": "\t    zxcv\n\n",
            "include.html": "  {% include baz.txt %} \n ",
            "include.txt": "\t\t{% include foo.html %}    ",
        }
    )
    assert loader.load("foo.html").generate() == b"\nasdf "
    assert loader.load("bar.js").generate() == b"\nqwer "
    assert loader.load("baz.txt").generate() == b"\t    zxcv\n\n"
    # Each file keeps its own mode when included by a file of another kind.
    assert loader.load("include.html").generate() == b" \t    zxcv\n\n\n"
    assert loader.load("include.txt").generate() == b"\t\t\nasdf     "


@pytest.mark.parametrize(
    "mode, html, txt",
    [
        ("all", b"\t\tfoo\n\n", b"\t\tbar\n\n"),
        ("single", b" foo\n", b" bar\n"),
        ("oneline", b" foo ", b" bar "),
    ],
)
def test_whitespace_from_loader(mode, html, txt):
    loader = DictLoader({"foo.html": "\t\tfoo\n\n", "bar.txt": "\t\tbar\n\n"}, whitespace=mode)
    assert loader.load("foo.html").generate() == html
    assert loader.load("bar.txt").generate() == txt


def test_whitespace_directive():
    source = """\
{% whitespace oneline %}
    {% for i in range(3) %}
        {{ i }}
    {% end %}
{% whitespace all %}
    pre\tformatted
"""
    assert Template(source, name="foo.html").generate() == b"  0  1  2  \n    pre\tformatted\n"


def test_whitespace_argument_and_pre_blocks():
    assert Template("a  \n\n  b", whitespace="single").generate() == b"a\nb"
    assert Template("a  \n\n  b", name="x.html", whitespace="all").generate() == b"a  \n\n  b"
    # A text chunk holding <pre> is left alone even in single mode.
    assert Template("<pre>a  \n\n  b</pre>", name="x.html").generate() == b"<pre>a  \n\n  b</pre>"


@pytest.mark.parametrize("flag, expected", [(True, b"a b\nc"), (False, b"a  b\n\n c")])
def test_compress_whitespace_is_a_deprecated_alias(flag, expected):
    with pytest.warns(DeprecationWarning, match="compress_whitespace"):
        t = Template("a  b\n\n c", compress_whitespace=flag)
    assert t.generate() == expected


def test_compress_whitespace_none_means_unset_and_conflicts_are_refused():
    assert Template("a  b", name="x.html", compress_whitespace=None).generate() == b"a b"
    with pytest.raises(ValueError), pytest.warns(DeprecationWarning):
        Template("x", compress_whitespace=True, whitespace="all")
    with pytest.raises(ValueError):
        Template("x", whitespace="sideways")


# -- extends, block, super, include -----------------------------------------------

INHERITANCE = {
    "base.html": "<title>{% block title %}Base{% end %}</title>|{% block body %}base body{% end %}",
    "child.html": "{% extends 'base.html' %}ignored text{% block title %}Child{% end %}",
    "grandchild.html": "{% extends 'child.html' %}{% block body %}gc body{% end %}",
    "super1.html": "{% extends 'base.html' %}{% block title %}[{% super %}]{% end %}",
    "super2.html": "{% extends 'super1.html' %}{% block title %}({% super %}){% end %}",
    "super_no_parent.html": "{% block b %}x{% super %}y{% end %}",
    "uses_var.html": "{% extends 'base.html' %}{% block body %}{{ who }}{% end %}",
    "nested_base.html": "{% block outer %}<{% block inner %}in{% end %}>{% end %}",
    "nested_child.html": "{% extends 'nested_base.html' %}{% block inner %}IN{% end %}",
    "layout.html": "{% include 'header.html' %}|{% block main %}main{% end %}",
    "header.html": "{% block header %}H{% end %}",
    "page.html": "{% extends 'layout.html' %}{% block header %}PAGE-H{% end %}",
    "loop_base.html": "{% for i in range(3) %}{% block item %}{{ i }}{% end %}{% end %}",
    "loop_child.html": "{% extends 'loop_base.html' %}{% block item %}<{{ i }}>{% end %}",
}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("base.html", b"<title>Base</title>|base body"),
        ("child.html", b"<title>Child</title>|base body"),
        ("grandchild.html", b"<title>Child</title>|gc body"),
        ("super1.html", b"<title>[Base]</title>|base body"),
        ("super2.html", b"<title>([Base])</title>|base body"),
        ("super_no_parent.html", b"xy"),
        ("uses_var.html", b"<title>Base</title>|&lt;you&gt;"),
        ("nested_child.html", b"<IN>"),
        ("page.html", b"PAGE-H|main"),
        ("loop_child.html", b"<0><1><2>"),
    ],
)
def test_inheritance(name, expected):
    loader = DictLoader(INHERITANCE)
    assert loader.load(name).generate(who="<you>") == expected


def test_dict_loader_relative_paths():
    loader = DictLoader(
        {
            "a/page.html": "{% include 'part.html' %}+{% include '../top.html' %}+{% include '/abs.html' %}",
            "a/part.html": "part",
            "top.html": "top",
            "/abs.html": "abs",
            "a/child.html": "{% extends 'base.html' %}{% block b %}child{% end %}",
            "a/base.html": "[{% block b %}{% end %}]",
        }
    )
    assert loader.load("a/page.html").generate() == b"part+top+abs"
    assert loader.load("a/child.html").generate() == b"[child]"
    assert loader.resolve_path("x.html", "<string>") == "x.html"
    assert loader.resolve_path("x.html", "d/e/f.html") == "d/e/x.html"


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text("{% include 'sub/part.html' %}!")
    (tmp_path / "sub" / "part.html").write_text("{% include 'leaf.html' %}<{% include '../top.txt' %}>")
    (tmp_path / "sub" / "leaf.html").write_text("leaf {{ 1 + 1 }}")
    (tmp_path / "top.txt").write_text("top")
    (tmp_path / "sub" / "child.html").write_text("{% extends '../base.html' %}{% block b %}\u00e9{% end %}")
    (tmp_path / "base.html").write_text("({% block b %}{% end %})", encoding="utf-8")
    return tmp_path


def test_loader_reads_files_and_resolves_relative_includes(tree):
    loader = Loader(str(tree))
    assert loader.load("index.html").generate() == b"leaf 2<top>!"
    assert loader.load("sub/child.html").generate() == "(\u00e9)".encode()
    assert loader.resolve_path("leaf.html", "sub/part.html") == "sub/leaf.html"
    # A relative name that would leave the root is not rewritten.
    assert loader.resolve_path("../../x.html", "sub/part.html") == "../../x.html"


def test_loader_accepts_pathlike_and_options(tree):
    loader = Loader(tree, autoescape=None, namespace={"v": "<v>"}, whitespace="oneline")
    (tree / "opts.html").write_text("{{ v }}\n\n  x")
    assert loader.load("opts.html").generate() == b"<v> x"


def test_loader_missing_file_names_the_path(tree):
    loader = Loader(str(tree))
    with pytest.raises(FileNotFoundError) as info:
        loader.load("nope.html")
    assert str(tree / "nope.html") in str(info.value)


def test_missing_include_names_the_including_template(tree):
    (tree / "bad.html").write_text("line\n{% include 'gone.html' %}")
    loader = Loader(str(tree))
    with pytest.raises(FileNotFoundError) as info:
        loader.load("bad.html")
    assert str(tree / "gone.html") in str(info.value)
    assert any("bad.html:2" in note for note in info.value.__notes__)


def test_dict_loader_missing_name_raises_key_error():
    with pytest.raises(KeyError):
        DictLoader({}).load("missing.html")


def test_loader_caches_until_reset(tree):
    loader = Loader(str(tree))
    first = loader.load("sub/leaf.html")
    assert loader.load("leaf.html", parent_path="sub/part.html") is first
    (tree / "sub" / "leaf.html").write_text("changed")
    assert loader.load("sub/leaf.html").generate() == b"leaf 2"
    loader.reset()
    reloaded = loader.load("sub/leaf.html")
    assert reloaded is not first
    assert reloaded.generate() == b"changed"


def test_concurrent_loads_compile_once():
    created = []

    class CountingLoader(DictLoader):
        def _create_template(self, name):
            created.append(name)
            return super()._create_template(name)

    loader = CountingLoader({"t.html": "{{ 1 }}"})
    barrier = threading.Barrier(8)
    results = []

    def worker():
        barrier.wait()
        results.append(loader.load("t.html"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert created == ["t.html"]
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_base_loader_is_abstract():
    with pytest.raises(NotImplementedError):
        BaseLoader().load("x")


@pytest.mark.parametrize(
    "templates, entry",
    [
        ({"a.html": "{% include 'a.html' %}"}, "a.html"),
        ({"a.html": "{% include 'b.html' %}", "b.html": "{% include 'a.html' %}"}, "a.html"),
        ({"a.html": "{% extends 'b.html' %}", "b.html": "{% extends 'a.html' %}"}, "a.html"),
    ],
)
def test_include_and_extends_cycles_are_parse_errors(templates, entry):
    with pytest.raises(ParseError, match="include or extend each other"):
        DictLoader(templates).load(entry)


def test_block_that_contains_itself_via_super_is_refused():
    loader = DictLoader(
        {
            "base.html": "{% block a %}{% block a %}{% super %}{% end %}{% end %}",
        }
    )
    with pytest.raises(ParseError, match="contains itself"):
        loader.load("base.html")


# -- parse errors ------------------------------------------------------------------

@pytest.mark.parametrize(
    "source, message, lineno",
    [
        ("\n\n{{", "Missing end expression }}", 3),
        ("a\n{{ }}", "Empty expression", 2),
        ("{# never closed", "Missing end comment #}", 1),
        ("\n{% if x", "Missing end block %}", 2),
        ("{% %}", "Empty block tag ({% %})", 1),
        ("a\n\n{% if x %}\nb\n", "Missing {% end %} block for if", 3),
        ("{% for x in y %}{% if x %}{% end %}", "Missing {% end %} block for for", 1),
        ("x\n{% end %}", "Extra {% end %} block", 2),
        ("{% else %}", "else outside if/for/while/try block", 1),
        ("{% for x in y %}\n{% elif z %}{% end %}", "elif block cannot be attached to for block", 2),
        ("{% if x %}{% except %}{% end %}", "except block cannot be attached to if block", 1),
        ("{% break %}", "break outside for/while block", 1),
        ("{% if x %}{% continue %}{% end %}", "continue outside for/while block", 1),
        ("{% for i in x %}{% apply f %}{% break %}{% end %}{% end %}", "break outside for/while block", 1),
        ("{% frobnicate %}", "unknown operator: 'frobnicate'", 1),
        ("{% super %}", "super outside block block", 1),
        ("\n{% whitespace sideways %}", "invalid whitespace mode 'sideways'", 2),
        ("{% extends %}", "extends missing file path", 1),
        ("{% include '' %}", "include missing file path", 1),
        ("{% set %}", "set missing statement", 1),
        ("{% import %}", "import missing statement", 1),
        ("{% apply %}{% end %}", "apply missing method name", 1),
        ("{% block %}{% end %}", "block missing name", 1),
        ("{% autoescape %}", "autoescape missing function name (or None)", 1),
        ("{% raw %}", "raw missing expression", 1),
        ("{% module %}", "module missing expression", 1),
        ("ok\n\n{{ 1 + }}", "Invalid Python in template", 3),
        ("{% if x: %}{% end %}", "Invalid Python in template", 1),
        ("{% extends 'base.html' %}", "{% extends %} block found, but no template loader", 1),
        ("\n{% include 'x.html' %}", "{% include %} needs a template loader", 2),
    ],
)
def test_parse_errors(source, message, lineno):
    with pytest.raises(ParseError) as info:
        Template(source, name="foo.html")
    error = info.value
    assert message in error.message
    assert (error.filename, error.lineno) == ("foo.html", lineno)
    assert str(error).endswith(f" at foo.html:{lineno}")
    assert isinstance(error, TemplateError)


def test_parse_error_str_and_loader_file_names():
    loader = DictLoader({"foo.html": "\n\n{% if x %}", "outer.html": "{% include 'inner.html' %}", "inner.html": "\n{{ (}}"})
    with pytest.raises(ParseError) as info:
        loader.load("foo.html")
    assert str(info.value) == "Missing {% end %} block for if at foo.html:3"
    # Invalid Python in an included file is reported against that file.
    with pytest.raises(ParseError) as info:
        loader.load("outer.html")
    assert (info.value.filename, info.value.lineno) == ("inner.html", 2)
    assert isinstance(info.value.__cause__, SyntaxError)


# -- runtime errors ------------------------------------------------------------------

def format_error(loader: DictLoader, name: str, exc_type: type[BaseException], **kwargs: object) -> tuple[BaseException, str]:
    with pytest.raises(exc_type) as info:
        loader.load(name).generate(**kwargs)
    return info.value, "".join(traceback.format_exception(info.value))


@pytest.mark.parametrize(
    "templates, entry, marker",
    [
        ({"test.html": "one\ntwo{{1/0}}\nthree\n"}, "test.html", "# test.html:2"),
        ({"test.html": "one\n{% if 1/0 %}x{% end %}\n"}, "test.html", "# test.html:2"),
        ({"test.html": "{% set a = 1 %}\n\n{% set b = 1/0 %}"}, "test.html", "# test.html:3"),
        ({"base.html": "{% include 'sub.html' %}", "sub.html": "{{1/0}}"}, "base.html", "# sub.html:1 (via base.html:1)"),
        (
            {"a.html": "{% include 'b.html' %}", "b.html": "\n{% include 'c.html' %}", "c.html": "{{1/0}}"},
            "a.html",
            "# c.html:1 (via b.html:2, a.html:1)",
        ),
        ({"base.html": "{{1/0}}", "sub.html": "{% extends 'base.html' %}"}, "sub.html", "# base.html:1"),
        (
            {
                "base.html": "{% block b %}{% end %}",
                "sub.html": "{% extends 'base.html' %}\n{% block b %}\n{{1/0}}\n{% end %}",
            },
            "sub.html",
            "# sub.html:3 (via base.html:1)",
        ),
        ({"t.html": "{% apply f %}\n{{ 1/0 }}{% end %}"}, "t.html", "# t.html:2"),
    ],
)
def test_runtime_errors_keep_type_and_show_template_line(templates, entry, marker):
    error, text = format_error(DictLoader(templates), entry, ZeroDivisionError, f=upper)
    assert marker in text
    where = marker[2:]
    assert f"in template {where}" in error.__notes__


def test_runtime_error_in_module_rendering_another_template():
    loader: DictLoader

    def load_generate(path, **kwargs):
        return loader.load(path).generate(**kwargs)

    loader = DictLoader(
        {"base.html": "{% module Template('sub.html') %}", "sub.html": "{{1/0}}"},
        namespace={"_tt_modules": ObjectDict(Template=load_generate)},
    )
    error, text = format_error(loader, "base.html", ZeroDivisionError)
    assert "# base.html:1" in text and "# sub.html:1" in text
    assert error.__notes__ == ["in template sub.html:1", "in template base.html:1"]


def test_exceptions_caught_inside_the_template_get_no_note():
    t = Template("{% try %}{{ f() }}{% except KeyError %}caught{% end %}")

    def f():
        raise KeyError("x")

    assert t.generate(f=f) == b"caught"


def test_generated_source_is_kept_per_template():
    first = Template("{{ 1/0 }}")
    second = Template("\n{{ [][1] }}")
    assert first._filename != second._filename
    assert "# <string>:1" in first.code and "# <string>:2" in second.code
    assert linecache.getline(second._filename, 5).endswith("# <string>:2\n")
    # Survives someone else clearing linecache: the source comes back from
    # the namespace's __loader__.
    linecache.clearcache()
    with pytest.raises(IndexError) as info:
        second.generate()
    assert "# <string>:2" in "".join(traceback.format_exception(info.value))


def test_bytes_escape_result_type_errors_propagate():
    with pytest.raises(TypeError):
        Template("{% apply f %}x{% end %}").generate(f=lambda b: 5)


# -- Deferreds and coroutines -------------------------------------------------------

def test_fired_deferreds_render_synchronously():
    t = Template("{{ a }}|{% raw b %}|{% apply f %}{{ c }}{% end %}|{% module M() %}", name="x.html")
    out = t.generate(
        a=defer.succeed("<a>"),
        b=defer.succeed("<b>"),
        c=defer.succeed(7),
        f=upper,
        _tt_modules=ObjectDict(M=lambda: defer.succeed("mod")),
    )
    assert out == b"&lt;a&gt;|<b>|7|mod"


def test_pending_deferred_makes_generate_return_a_deferred():
    first, second = defer.Deferred(), defer.Deferred()
    t = Template("{% for d in ds %}[{{ d }}]{% end %} after {{ tail }}")
    result = t.generate(ds=[first, defer.succeed("2"), second], tail="<t>")
    assert isinstance(result, defer.Deferred)
    assert not result.called
    first.callback("<1>")
    assert not result.called
    second.callback(3)
    assert result.called
    assert result.result == b"[&lt;1&gt;][2][3] after &lt;t&gt;"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("{% raw d %}", b"<ab>"),
        ("{% module M() %}", b"<ab>"),
        ("{% apply f %}{{ d }}{% end %}", b"&LT;AB&GT;"),
        ("{% apply g %}x{% end %}", b"<ab>"),
    ],
)
def test_pending_deferred_in_raw_module_and_apply(source, expected):
    d = defer.Deferred()
    result = Template(source).generate(
        d=d, f=upper, g=lambda body: d, _tt_modules=ObjectDict(M=lambda: d)
    )
    assert isinstance(result, defer.Deferred) and not result.called
    d.callback("<ab>")
    assert result.result == expected


def test_chained_deferred_waits_for_the_inner_one():
    inner = defer.Deferred()
    outer = defer.succeed(None)
    outer.addCallback(lambda _: inner)
    result = Template("<{{ d }}>").generate(d=outer)
    assert isinstance(result, defer.Deferred) and not result.called
    inner.callback("done")
    assert result.result == b"<done>"


def test_failing_deferred_errbacks_with_template_location():
    d = defer.Deferred()
    loader = DictLoader({"t.html": "a\n\n{{ d }}"})
    result = loader.load("t.html").generate(d=d)
    failures: list[Failure] = []
    result.addErrback(failures.append)
    d.errback(ValueError("boom"))
    [failure] = failures
    assert failure.check(ValueError)
    assert "in template t.html:3" in failure.value.__notes__
    assert "# t.html:3" in failure.getTraceback()


def test_error_after_resuming_errbacks():
    d = defer.Deferred()
    result = Template("{{ d }}\n{{ 1/0 }}", name="r.html").generate(d=d)
    failures: list[Failure] = []
    result.addErrback(failures.append)
    d.callback("x")
    [failure] = failures
    assert failure.check(ZeroDivisionError)
    assert failure.value.__notes__ == ["in template r.html:2"]


def test_template_try_except_catches_deferred_failure():
    d = defer.Deferred()
    t = Template("{% try %}{{ d }}{% except ValueError as e %}caught {{ e }}{% end %}")
    result = t.generate(d=d)
    d.errback(ValueError("v"))
    assert result.result == b"caught v"


def test_already_failed_deferred_raises_synchronously():
    with pytest.raises(KeyError) as info:
        Template("{{ d }}", name="f.html").generate(d=defer.fail(KeyError("k")))
    assert info.value.__notes__ == ["in template f.html:1"]


def test_cancelling_the_result_cancels_what_it_waits_for():
    d = defer.Deferred()
    result = Template("{{ d }}").generate(d=d)
    failures: list[Failure] = []
    result.addErrback(failures.append)
    result.cancel()
    assert d.called
    [failure] = failures
    assert failure.check(defer.CancelledError)


def test_coroutine_that_finishes_at_once_renders_synchronously():
    async def value():
        return "<c>"

    assert Template("{{ c }}").generate(c=value()) == b"&lt;c&gt;"


def test_coroutine_waiting_on_a_deferred():
    d = defer.Deferred()

    async def value():
        return (await d) * 2

    result = Template("{{ c }}").generate(c=value())
    assert isinstance(result, defer.Deferred) and not result.called
    d.callback(21)
    assert result.result == b"42"


def test_deferred_firing_with_a_coroutine_is_awaited_too():
    async def value():
        return "deep"

    assert Template("{{ d }}").generate(d=defer.succeed(value())) == b"deep"


@pytest_twisted.ensureDeferred
async def test_rendering_across_reactor_turns():
    first, second = defer.Deferred(), defer.Deferred()
    t = Template("{{ a }}-{{ b }}-{{ datetime.date(2001, 2, 3) }}")
    rendering = t.generate(a=first, b=second)
    reactor.callLater(0, first.callback, "one")
    reactor.callLater(0, second.callback, "two")
    assert await rendering == b"one-two-2001-02-03"


# -- misc ----------------------------------------------------------------------------

def test_template_attributes():
    loader = DictLoader({"t\u00e9st.html": "hello"})
    t = loader.load("t\u00e9st.html")
    assert t.generate() == b"hello"
    assert t.name == "t\u00e9st.html"
    assert t.loader is loader
    assert t.autoescape == "xhtml_escape"
    assert t.whitespace == "single"
    assert "def _tt_execute():" in t.code
    assert Template(utf8("x"), name=b"bytes.txt").name == "bytes.txt"


def test_plain_text_template_is_not_a_generator():
    # Templates without expressions compile to a plain function.
    t = Template("just text")
    assert not t._is_generator
    assert t.generate() == b"just text"
    assert Template("{{ 1 }}")._is_generator


def test_waitable_class_cache_is_bounded():
    cache = template._waits
    cache.clear()
    for i in range(5000):
        assert cache[type(f"C{i}", (), {})] is False
    assert len(cache) <= 4097
    assert cache[defer.Deferred] is True
    assert cache[type("MyDeferred", (defer.Deferred,), {})] is True
    assert cache[datetime.date] is False
