"""cyclone.i18n: extraction from Python and templates, .po reading/writing,
.mo compiling (checked against the stdlib and GNU msgfmt), merging, CLI."""

from __future__ import annotations

import gettext
import io
import logging
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cyclone.locale
from cyclone import i18n
from cyclone.i18n import (
    CompileError,
    ExtractError,
    Keyword,
    Message,
    POFileError,
    compile_po,
    extract_messages,
    merge_po,
    read_po,
    write_po,
    write_pot,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demos" / "locale"


@pytest.fixture
def locale_state():
    """Tests that load catalogs into cyclone.locale put its globals back."""
    names = ["_translations", "_supported_locales", "_use_gettext", "_default_locale"]
    saved = {name: getattr(cyclone.locale, name) for name in names}
    cyclone.locale.Locale._cache.clear()
    yield
    for name, value in saved.items():
        setattr(cyclone.locale, name, value)
    cyclone.locale.Locale._cache.clear()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def summary(messages: list[Message]) -> list[tuple]:
    """(msgctxt, msgid, msgid_plural, [lines]) per message, in order."""
    return [(m.msgctxt, m.msgid, m.msgid_plural, [line for _, line in m.locations]) for m in messages]


# ---------------------------------------------------------------------------
# Extraction from Python

PYTHON_SOURCE = '''\
import cyclone.web

class Handler(cyclone.web.RequestHandler):
    def get(self):
        _ = self.locale.translate
        self.write(_("plain"))
        self.write(gettext("via gettext"))
        n = 3
        self.write(ngettext("%d apple", "%d apples", n) % n)
        self.write(_("%(n)d file", "%(n)d files", n) % {"n": n})
        self.write(pgettext("month", "May"))
        self.write(pgettext("verb", "May"))
        self.write(pgettext("stick", "club", "clubs", n))
        self.write(npgettext("org", "club", "clubs", n))
        self.write(self.locale.translate("attribute call"))
        self.write(self.locale.pgettext("ctx", "attribute pgettext"))
        self.write(self.locale.translate(
            "spans "
            "lines",
        ))
        self.write(translate(message="by keyword", plural_message="by keywords", count=n))
        self.write(_("joined " + "by plus"))
        self.write(_("plain"))
        self.write(_('it\\'s "quoted"\\n'))
        self.write(_("""tri
ple"""))
        self.write(_(name_in_a_variable))
        self.write("abc".translate(table))
        self.write(_(*args))
        self.write(translate("no plural", None, None))
'''


def test_extract_python(tmp_path):
    src = write(tmp_path / "app.py", PYTHON_SOURCE)
    messages = extract_messages([src])
    assert summary(messages) == [
        (None, "plain", None, [6, 23]),
        (None, "via gettext", None, [7]),
        (None, "%d apple", "%d apples", [9]),
        (None, "%(n)d file", "%(n)d files", [10]),
        ("month", "May", None, [11]),
        ("verb", "May", None, [12]),
        ("stick", "club", "clubs", [13]),
        ("org", "club", "clubs", [14]),
        (None, "attribute call", None, [15]),
        ("ctx", "attribute pgettext", None, [16]),
        (None, "spans lines", None, [17]),
        (None, "by keyword", "by keywords", [21]),
        (None, "joined by plus", None, [22]),
        (None, 'it\'s "quoted"\n', None, [24]),
        (None, "tri\nple", None, [25]),
        (None, "no plural", None, [30]),
    ]
    ref = str(src).replace("\\", "/")
    assert messages[0].locations == [(ref, 6), (ref, 23)]
    flags = {m.msgid: m.flags for m in messages}
    assert flags["%d apple"] == ["python-format"]
    assert flags["%(n)d file"] == ["python-format"]
    assert flags["plain"] == []


@pytest.mark.parametrize(
    "line, warning",
    [
        ('_("Hello %s" % name)', "not a plain string literal"),
        ('_(f"Hello {name}")', "not a plain string literal"),
        ('self.locale.translate("a %s".format(x))', "not a plain string literal"),
        ('_("")', "empty message"),
        ('_("one", plural_variable, n)', "plural argument of _() is not a string literal"),
        ('pgettext(ctx_variable, "msg")', "context argument of pgettext() is not a string literal"),
    ],
)
def test_extract_python_warns_about_unextractable_calls(tmp_path, caplog, line, warning):
    src = write(tmp_path / "app.py", f"x = 1\n{line}\n")
    with caplog.at_level(logging.WARNING, logger="cyclone.i18n"):
        assert extract_messages([src]) == []
    assert f"{str(src).replace(chr(92), '/')}:2: " in caplog.text.replace("\\", "/")
    assert warning in caplog.text


def test_extract_python_quiet_for_unrelated_calls(tmp_path, caplog):
    src = write(tmp_path / "app.py", "s.translate(table)\nt = _(name)\nself.gettext(msg)\n")
    with caplog.at_level(logging.WARNING, logger="cyclone.i18n"):
        assert extract_messages([src]) == []
    assert caplog.text == ""


def test_extract_python_honours_coding_cookie(tmp_path):
    src = tmp_path / "latin.py"
    src.write_bytes('# -*- coding: latin-1 -*-\n_("caf\u00e9")\n'.encode("latin-1"))
    assert [m.msgid for m in extract_messages([src])] == ["caf\u00e9"]


def test_extract_custom_keywords(tmp_path):
    src = write(
        tmp_path / "app.py",
        """\
        lazy("lazy one")
        cp("ctx", "with context", "plural form")
        _("default keyword")
        """,
    )
    messages = extract_messages([src], keywords=["lazy", "cp:1c,2,3"])
    assert summary(messages) == [
        (None, "lazy one", None, [1]),
        ("ctx", "with context", "plural form", [2]),
    ]
    both = extract_messages([src], keywords=[*i18n.DEFAULT_KEYWORDS, Keyword("lazy")])
    assert [m.msgid for m in both] == ["lazy one", "default keyword"]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("lazy", Keyword("lazy", 1)),
        ("n_:1,2", Keyword("n_", 1, 2)),
        ("cp:1c,2", Keyword("cp", 2, None, 1)),
        ("cnp:3,1c,4", Keyword("cnp", 3, 4, 1)),
    ],
)
def test_keyword_parse(spec, expected):
    assert Keyword.parse(spec) == expected


@pytest.mark.parametrize("spec", ["", "1abc", "x:", "x:0", "x:a", "x:1c,1", "x:1,2,3", "x:1c,2c,3", "x:2,2"])
def test_keyword_parse_rejects(spec):
    with pytest.raises(ValueError, match="invalid keyword"):
        Keyword.parse(spec)


# ---------------------------------------------------------------------------
# Extraction from templates

TEMPLATE = """\
<!DOCTYPE html>
{% set title = _("Page title") %}
<title>{{ title }}</title>
<h1>{{ _("Hello") }}</h1>
<p>{{ _("%(n)d file", "%(n)d files", n) % {"n": n} }}</p>
<p>{{ pgettext("month", "May") }} {{ locale.pgettext("verb", "May") }}</p>
{% if _("in if") %}{% elif x == _("in elif") %}{% end %}
{% for item in [_("in for")] %}{{ item }}{% end %}
{% while not _("in while") %}{% end %}
{% module Template("box.html", label=_("in module")) %}
{% raw _("in raw") %}
{% apply translate_filter(_("in apply")) %}text{% end %}
{# {{ _("in a comment") }} #}
{{! _("escaped, literal text") }}
{%! _("escaped too") %}
{% comment _("a comment directive") %}
{% include "other.html" %}
{{ _(
     "continued on"
     " the next line") }}
<input value="{{ _('single quotes') }}" placeholder="{{ locale.translate("attribute") }}">
{{{ _("innermost braces") }}}
{% block body %}{{ _("in block") }}{% end %}
{{ "}" + _("brace in string") }}
"""


def test_extract_template(tmp_path):
    tpl = write(tmp_path / "templates" / "page.html", TEMPLATE)
    assert summary(extract_messages([tpl])) == [
        (None, "Page title", None, [2]),
        (None, "Hello", None, [4]),
        (None, "%(n)d file", "%(n)d files", [5]),
        ("month", "May", None, [6]),
        ("verb", "May", None, [6]),
        (None, "in if", None, [7]),
        (None, "in elif", None, [7]),
        (None, "in for", None, [8]),
        (None, "in while", None, [9]),
        (None, "in module", None, [10]),
        (None, "in raw", None, [11]),
        (None, "in apply", None, [12]),
        (None, "continued on the next line", None, [18]),
        (None, "single quotes", None, [21]),
        (None, "attribute", None, [21]),
        (None, "innermost braces", None, [22]),
        (None, "in block", None, [23]),
        (None, "brace in string", None, [24]),
    ]


@pytest.mark.parametrize("name", ["mail.txt", "app.js", "page.htm", "feed.xml", "no_extension"])
def test_explicit_non_python_files_are_templates(tmp_path, name):
    path = write(tmp_path / name, 'line one\n{{ _("from %s") }}\n' % name)
    assert summary(extract_messages([path])) == [(None, f"from {name}", None, [2])]


def test_extract_walks_directories(tmp_path):
    write(tmp_path / "b.py", '_("b.py")\n')
    write(tmp_path / "a.py", '_("a.py")\n')
    write(tmp_path / "templates" / "x.html", '{{ _("x.html") }}\n')
    write(tmp_path / "templates" / "y.txt", '{{ _("y.txt") }}\n')
    write(tmp_path / "static" / "z.js", '{{ _("z.js") }}\n')
    write(tmp_path / "README.rst", '{{ _("not scanned: .rst") }}\n')
    write(tmp_path / "feed.xml", '{{ _("not scanned: .xml") }}\n')
    write(tmp_path / ".hidden" / "h.py", '_("not scanned: hidden dir")\n')
    write(tmp_path / "__pycache__" / "c.py", '_("not scanned: cache")\n')
    write(tmp_path / ".dotfile.py", '_("not scanned: hidden file")\n')
    messages = extract_messages([tmp_path])
    assert [m.msgid for m in messages] == ["a.py", "b.py", "z.js", "x.html", "y.txt"]
    assert messages[3].locations == [(str(tmp_path / "templates" / "x.html").replace("\\", "/"), 1)]


def test_extract_merges_duplicates_across_files(tmp_path, caplog):
    a = write(tmp_path / "a.py", '_("same")\n_("n", "ns", 2)\n')
    b = write(tmp_path / "b.html", '{{ _("same") }}\n{{ _("n") }}\n{{ _("n", "other plural", 3) }}\n')
    with caplog.at_level(logging.WARNING, logger="cyclone.i18n"):
        messages = extract_messages([a, b])
    assert summary(messages) == [(None, "same", None, [1, 1]), (None, "n", "ns", [2, 2, 3])]
    assert "has plural 'other plural' here but 'ns' elsewhere" in caplog.text


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.py", "x = 1\ndef f(:\n", "bad.py:2: invalid Python syntax"),
        ("bad.html", "ok\n\n{{ _('a' }}\n", "bad.html:3: cannot parse template expression \"_('a'\""),
        ("bad.html", "{% set x = = 1 %}", "bad.html:1: cannot parse template expression"),
        ("bad.html", "{% if _('x') ) %}{% end %}", "bad.html:1: cannot parse"),
        ("bad.html", "a\n{{ _('x')\n", "bad.html:2: missing '}}' for '{{'"),
        ("bad.html", "{% if x\n", "bad.html:1: missing '%}' for '{%'"),
        ("bad.html", "\n\n{# never closed", "bad.html:3: missing '#}' for '{#'"),
    ],
)
def test_extract_reports_unparsable_input(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ExtractError) as info:
        extract_messages([path])
    assert message in str(info.value)


def test_extract_rejects_non_utf8_template_and_missing_path(tmp_path):
    bad = tmp_path / "latin.html"
    bad.write_bytes(b'{{ _("caf\xe9") }}')
    with pytest.raises(ExtractError, match=r"latin\.html: not valid UTF-8"):
        extract_messages([bad])
    with pytest.raises(ExtractError, match="nowhere.py: no such file or directory"):
        extract_messages([tmp_path / "nowhere.py"])


# ---------------------------------------------------------------------------
# .pot / .po writing and reading


def test_write_pot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = write(Path("app.py"), PYTHON_SOURCE)
    buf = io.StringIO()
    write_pot(extract_messages([src]), buf, project="demo 1.0", creation_date="2024-03-15 12:00+0000")
    text = buf.getvalue()
    ref = "app.py"
    assert text.startswith("# Translations template.\n")
    assert '"Project-Id-Version: demo 1.0\\n"\n' in text
    assert '"POT-Creation-Date: 2024-03-15 12:00+0000\\n"\n' in text
    assert '"Content-Type: text/plain; charset=UTF-8\\n"\n' in text
    assert f'#: {ref}:6 {ref}:23\nmsgid "plain"\nmsgstr ""\n' in text
    assert (
        f'#: {ref}:10\n#, python-format\nmsgid "%(n)d file"\nmsgid_plural "%(n)d files"\n'
        'msgstr[0] ""\nmsgstr[1] ""\n'
    ) in text
    assert f'#: {ref}:13\nmsgctxt "stick"\nmsgid "club"\nmsgid_plural "clubs"\n' in text
    assert 'msgid "it\'s \\"quoted\\"\\n"\nmsgstr ""\n' in text
    assert 'msgid ""\n"tri\\n"\n"ple"\nmsgstr ""\n' in text
    # the template reads back as the same messages, untranslated
    pot = tmp_path / "messages.pot"
    pot.write_text(text, encoding="utf-8")
    back = read_po(pot)
    assert back[0].msgid == "" and "fuzzy" in back[0].flags
    assert summary(back[1:]) == summary(extract_messages([src]))
    assert not any(m.translated for m in back[1:])


def test_write_pot_creation_date_from_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    buf = io.StringIO()
    write_pot([], buf)
    assert '"POT-Creation-Date: 1970-01-02 00:00+0000\\n"' in buf.getvalue()


PO_TEXT = r'''# translator comment
#. extracted comment
#: app.py:3 templates/a.html:7
#: b.py
#, python-format
msgid "%(n)d file"
msgid_plural "%(n)d files"
msgstr[0] "%(n)d fichier"
msgstr[1] "%(n)d "
"fichiers"

msgctxt "month"
msgid "May"
msgstr "mai"
msgid "esc\t\"\\\101\x42\a"
msgstr ""
"multi\n"
"line"

#, fuzzy
msgid "fuzzy one"
msgstr "flou"

#~ msgid "gone"
#~ msgstr "parti"
'''


def test_read_po(tmp_path):
    path = tmp_path / "fr.po"
    path.write_text(PO_TEXT, encoding="utf-8")
    messages = read_po(path)
    assert [(m.msgctxt, m.msgid) for m in messages] == [
        (None, "%(n)d file"),
        ("month", "May"),
        (None, 'esc\t"\\AB\a'),
        (None, "fuzzy one"),
        (None, "gone"),
    ]
    plural = messages[0]
    assert plural.msgid_plural == "%(n)d files"
    assert plural.msgstr_plural == ["%(n)d fichier", "%(n)d fichiers"]
    assert plural.locations == [("app.py", 3), ("templates/a.html", 7), ("b.py", 0)]
    assert plural.flags == ["python-format"]
    assert plural.comments == ["translator comment"]
    assert plural.auto_comments == ["extracted comment"]
    assert messages[1].msgstr == "mai"
    assert messages[2].msgstr == "multi\nline"
    assert messages[3].fuzzy
    assert messages[4].obsolete and messages[4].msgstr == "parti"


def test_read_po_with_crlf_and_latin1(tmp_path):
    path = tmp_path / "fr.po"
    text = (
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=ISO-8859-1\\n"\n\n'
        'msgid "coffee"\nmsgstr "caf\u00e9"\n'
    )
    path.write_bytes(text.replace("\n", "\r\n").encode("latin-1"))
    assert read_po(path)[1].msgstr == "caf\u00e9"


@pytest.mark.parametrize(
    "text, message",
    [
        ('msgid "a"\nmsgstr "b"\nbogus\n', ':3: unexpected line'),
        ('msgid "a\nmsgstr "b"\n', ":1: expected a quoted string"),
        ('msgid "a"b"\nmsgstr ""\n', ":1: unescaped '\"'"),
        ('msgid "a\\q"\nmsgstr ""\n', ":1: unknown escape"),
        ('msgid "a"\n\nmsgstr "b"\n', ":1: msgid without msgstr"),
        ('msgstr "b"\n', ":1: msgstr before msgid"),
        ('"floating"\n', ":1: string continuation outside an entry"),
        ('msgid "a"\nmsgstr "x"\n\nmsgid "a"\nmsgstr "y"\n', ":4: duplicate message 'a', first defined at line 1"),
        ('msgid "a"\nmsgid_plural "as"\nmsgstr "x"\n', ":1: plural entry needs msgstr[N]"),
        ('msgid "a"\nmsgstr[0] "x"\n', ":1: msgstr[N] without msgid_plural"),
        ('msgid "a"\nmsgid_plural "as"\nmsgstr[0] "x"\nmsgstr[2] "y"\n', "without gaps"),
        ('msgid "a"\nmsgid_plural "as"\nmsgstr[0] "x"\nmsgstr[0] "y"\n', ":4: msgstr[0] given twice"),
        ('msgctxt "c"\nmsgctxt "d"\nmsgid "a"\nmsgstr ""\n', ":2: msgctxt given twice"),
        ('msgid "a"\nmsgctxt "c"\nmsgstr ""\n', ":2: msgctxt out of order"),
        ('msgctxt "c"\n\n', ":1: entry without msgid"),
        ('msgid ""\nmsgstr "Content-Type: text/plain; charset=klingon\\n"\n', "unknown charset 'klingon'"),
        ('msgid "a"\nmsgstr "\xff"\n'.encode("latin-1"), ":2: not valid utf-8"),
    ],
)
def test_read_po_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.po"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(POFileError) as info:
        read_po(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


# Text that a catalog can carry: no NUL (the .mo separator) and no EOT (the
# context separator); everything else, newlines and odd line breaks included.
po_text = st.text(
    alphabet=st.characters(blacklist_characters="\x00\x04", blacklist_categories=("Cs",)),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(
    msgid=po_text.filter(bool),
    msgstr=po_text.filter(bool),
    ctxt=st.none() | po_text,
    plural=st.none() | po_text,
)
def test_po_and_mo_round_trip(tmp_path_factory, msgid, msgstr, ctxt, plural):
    d = tmp_path_factory.mktemp("rt")
    header = Message("", msgstr="Content-Type: text/plain; charset=UTF-8\n")
    if plural is None:
        msg = Message(msgid, msgctxt=ctxt, msgstr=msgstr)
    else:
        msg = Message(msgid, plural, ctxt, msgstr_plural=[msgstr, msgstr + "s"])
    po = d / "x.po"
    with open(po, "w", encoding="utf-8", newline="") as f:
        write_po([header, msg], f)
    back = read_po(po)[1]
    assert (back.msgctxt, back.msgid, back.msgid_plural) == (ctxt, msgid, plural)
    assert (back.msgstr, back.msgstr_plural) == (msg.msgstr, msg.msgstr_plural)
    compile_po(po, d / "x.mo")
    with open(d / "x.mo", "rb") as f:
        t = gettext.GNUTranslations(f)
    if plural is None:
        assert (t.pgettext(ctxt, msgid) if ctxt is not None else t.gettext(msgid)) == msgstr
    else:
        forms = [t.npgettext(ctxt, msgid, plural, n) if ctxt is not None else t.ngettext(msgid, plural, n) for n in (1, 2)]
        assert forms == [msgstr, msgstr + "s"]


# ---------------------------------------------------------------------------
# Compiling

CATALOG = """\
# A French catalog exercising every kind of entry.
msgid ""
msgstr ""
"Project-Id-Version: test\\n"
"POT-Creation-Date: 2024-03-15 12:00+0000\\n"
"Language: fr\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=UTF-8\\n"
"Content-Transfer-Encoding: 8bit\\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\\n"

msgid "school"
msgstr "\u00e9cole"

#, python-format
msgid "%(n)d file"
msgid_plural "%(n)d files"
msgstr[0] "%(n)d fichier"
msgstr[1] "%(n)d fichiers"

msgctxt "law"
msgid "right"
msgstr "le droit"

msgctxt "good"
msgid "right"
msgstr "le bien"

msgctxt "stick"
msgid "club"
msgid_plural "clubs"
msgstr[0] "le b\u00e2ton"
msgstr[1] "les b\u00e2tons"

msgid "multi\\nline"
msgstr "multi\\nligne"

#, fuzzy
msgid "fuzzy"
msgstr "flou"

msgid "untranslated"
msgstr ""

msgid "half"
msgid_plural "halves"
msgstr[0] "moiti\u00e9"
msgstr[1] ""

#~ msgid "obsolete"
#~ msgstr "obsol\u00e8te"
"""

HALF_ENTRY = '''msgid "half"
msgid_plural "halves"
msgstr[0] "moiti\u00e9"
msgstr[1] ""

'''
assert HALF_ENTRY in CATALOG


@pytest.fixture
def catalog(tmp_path):
    po = tmp_path / "fr.po"
    po.write_text(CATALOG, encoding="utf-8")
    return po


def test_compile_po_readable_by_stdlib_gettext(catalog, tmp_path):
    mo = tmp_path / "fr.mo"
    assert compile_po(catalog, mo) == 6
    with open(mo, "rb") as f:
        t = gettext.GNUTranslations(f)
    assert t.info()["language"] == "fr"
    assert t.charset() == "UTF-8"
    assert "pot-creation-date" not in t.info()
    assert t.gettext("school") == "\u00e9cole"
    assert [t.ngettext("%(n)d file", "%(n)d files", n) for n in (0, 1, 2)] == [
        "%(n)d fichier", "%(n)d fichier", "%(n)d fichiers",
    ]
    assert t.pgettext("law", "right") == "le droit"
    assert t.pgettext("good", "right") == "le bien"
    assert t.gettext("right") == "right"
    assert t.npgettext("stick", "club", "clubs", 2) == "les b\u00e2tons"
    assert t.gettext("multi\nline") == "multi\nligne"
    # left out, as msgfmt does: fuzzy, untranslated, partly translated, obsolete
    assert t.gettext("fuzzy") == "fuzzy"
    assert t.gettext("untranslated") == "untranslated"
    assert t.ngettext("half", "halves", 1) == "half"
    assert t.gettext("obsolete") == "obsolete"


def mo_keys(data: bytes) -> list[bytes]:
    """The original strings of a little-endian .mo file, in table order."""
    magic, revision, count, originals_at = struct.unpack_from("<4I", data)
    assert (magic, revision) == (0x950412DE, 0)
    keys = []
    for i in range(count):
        length, offset = struct.unpack_from("<2I", data, originals_at + 8 * i)
        assert data[offset + length] == 0
        keys.append(data[offset : offset + length])
    return keys


def test_compile_po_table_is_sorted_for_binary_search(catalog, tmp_path):
    # GNU libintl binary-searches the originals (the stdlib does not care).
    compile_po(catalog, tmp_path / "fr.mo")
    keys = mo_keys((tmp_path / "fr.mo").read_bytes())
    assert keys == sorted(keys)
    assert keys == [
        b"",
        b"%(n)d file\x00%(n)d files",
        b"good\x04right",
        b"law\x04right",
        b"multi\nline",
        b"school",
        b"stick\x04club\x00clubs",
    ]


def test_compile_po_matches_gnu_msgfmt(tmp_path):
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.skip("GNU msgfmt is not installed")
    # GNU msgfmt keeps a plural entry with some empty forms (the program
    # would then print ""); compile_po leaves it out, so compare without it.
    full = tmp_path / "full.po"
    full.write_text(CATALOG.replace(HALF_ENTRY, ""), encoding="utf-8")
    catalogs = [full] + sorted(DEMO.glob("locale/*/LC_MESSAGES/demo.po"))
    assert len(catalogs) == 3
    for i, po in enumerate(catalogs):
        ours, gnu = tmp_path / f"ours{i}.mo", tmp_path / f"gnu{i}.mo"
        compile_po(po, ours)
        subprocess.run([msgfmt, "--no-hash", "-o", str(gnu), str(po)], check=True)
        assert ours.read_bytes() == gnu.read_bytes(), po


def test_compile_po_converts_charset_to_utf8(tmp_path):
    po = tmp_path / "de.po"
    po.write_bytes(
        b'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=ISO-8859-1\\n"\n\n'
        b'msgid "over"\nmsgstr "\xfcber"\n'
    )
    compile_po(po, tmp_path / "de.mo")
    with open(tmp_path / "de.mo", "rb") as f:
        t = gettext.GNUTranslations(f)
    assert t.charset() == "UTF-8"
    assert t.gettext("over") == "\u00fcber"


def test_compile_po_adds_a_charset_when_missing(tmp_path):
    po = tmp_path / "x.po"
    po.write_text('msgid "a"\nmsgstr "\u00e4"\n', encoding="utf-8")  # no header at all
    compile_po(po, tmp_path / "x.mo")
    with open(tmp_path / "x.mo", "rb") as f:
        assert gettext.GNUTranslations(f).gettext("a") == "\u00e4"


@pytest.mark.parametrize(
    "plural_forms, entry, message",
    [
        ("nplurals=INTEGER; plural=EXPRESSION;", "", "Plural-Forms header 'nplurals=INTEGER; plural=EXPRESSION;' is not set"),
        ("nplurals=2; plural=n ?? 1;", "", "does not load"),
        ("nplurals=0; plural=0;", "", "nplurals must be at least 1"),
        (
            "nplurals=3; plural=(n==1 ? 0 : n==2 ? 1 : 2);",
            'msgid "a"\nmsgid_plural "as"\nmsgstr[0] "x"\nmsgstr[1] "y"\n',
            "'a' has 2 plural forms but the header says nplurals=3",
        ),
        (
            "nplurals=2; plural=(n != 1);",
            '#, python-format\nmsgid "Hi %(name)s"\nmsgstr "Salut %(nom)s"\n',
            "uses %(nom)s, which the original does not define",
        ),
        (
            "nplurals=2; plural=(n != 1);",
            '#, python-format\nmsgid "%s of %s"\nmsgstr "%s"\n',
            "has 1 positional %-directives, the original has 2",
        ),
        (
            "nplurals=2; plural=(n != 1);",
            '#, python-format\nmsgid "%(n)d file"\nmsgid_plural "%(n)d files"\n'
            'msgstr[0] "un fichier"\nmsgstr[1] "%d fichiers"\n',
            "mixes positional %-directives",
        ),
    ],
)
def test_compile_po_refuses_catalogs_that_would_fail_later(tmp_path, plural_forms, entry, message):
    po = tmp_path / "bad.po"
    po.write_text(
        f'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
        f'"Plural-Forms: {plural_forms}\\n"\n\n{entry}',
        encoding="utf-8",
    )
    mo = tmp_path / "bad.mo"
    with pytest.raises(CompileError) as info:
        compile_po(po, mo)
    assert str(info.value).startswith(str(po))
    assert message in str(info.value)
    assert not mo.exists()
    assert list(tmp_path.iterdir()) == [po]  # no temporary file left behind


def test_compile_po_allows_safe_format_changes(tmp_path):
    po = tmp_path / "ok.po"
    po.write_text(
        'msgid ""\nmsgstr "Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n\n'
        '#, python-format\nmsgid "%(n)d file"\nmsgid_plural "%(n)d files"\n'
        'msgstr[0] "un fichier"\nmsgstr[1] "%(n)d fichiers"\n\n'
        '#, python-format\nmsgid "%(a)s and %(b)s"\nmsgstr "%(b)s et %(a)s"\n\n'
        '#, python-format\nmsgid "100%% of %s"\nmsgstr "%s : 100 %%"\n',
        encoding="utf-8",
    )
    assert compile_po(po, tmp_path / "ok.mo") == 3


# ---------------------------------------------------------------------------
# Merging


def test_merge_po(tmp_path):
    po = tmp_path / "fr.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: fr\\n"\n"Plural-Forms: nplurals=3; plural=(n==1 ? 0 : n==2 ? 1 : 2);\\n"\n\n'
        '# keep this comment\nmsgid "kept"\nmsgstr "gard\u00e9"\n\n'
        'msgid "one"\nmsgid_plural "old plural"\nmsgstr[0] "un"\nmsgstr[1] "deux"\nmsgstr[2] "beaucoup"\n\n'
        'msgid "removed"\nmsgstr "supprim\u00e9"\n\n'
        'msgid "never translated, removed"\nmsgstr ""\n\n'
        '#~ msgid "revived"\n#~ msgstr "ressuscit\u00e9"\n',
        encoding="utf-8",
    )
    pot = tmp_path / "new.pot"
    write(tmp_path / "src.py", '_("new")\n_("kept")\n_("one", "new plural", n)\n_("revived")\n_("p", "ps", n)\n')
    with open(pot, "w", encoding="utf-8") as f:
        write_pot(extract_messages([tmp_path / "src.py"]), f)

    merged = merge_po(po, pot)
    assert merged[0].msgid == "" and "Language: fr" in merged[0].msgstr
    by_id = {m.msgid: m for m in merged[1:]}
    assert [m.msgid for m in merged[1:]] == ["new", "kept", "one", "revived", "p", "removed"]
    assert by_id["new"].msgstr == "" and not by_id["new"].fuzzy
    assert by_id["kept"].msgstr == "gard\u00e9" and by_id["kept"].comments == ["keep this comment"]
    assert by_id["kept"].locations[0][1] == 2
    assert by_id["one"].msgid_plural == "new plural"
    assert by_id["one"].msgstr_plural == ["un", "deux", "beaucoup"] and by_id["one"].fuzzy
    assert by_id["revived"].msgstr == "ressuscit\u00e9" and not by_id["revived"].obsolete
    assert by_id["p"].msgstr_plural == ["", "", ""]  # nplurals from the catalog's header
    assert by_id["removed"].obsolete and by_id["removed"].msgstr == "supprim\u00e9"

    out = tmp_path / "merged.po"
    with open(out, "w", encoding="utf-8") as f:
        write_po(merged, f)
    text = out.read_text(encoding="utf-8")
    assert '#~ msgid "removed"\n#~ msgstr "supprim\u00e9"\n' in text
    assert "never translated" not in text
    assert [m.msgid for m in read_po(out)] == ["", "new", "kept", "one", "revived", "p", "removed"]
    compile_po(out, tmp_path / "merged.mo")
    with open(tmp_path / "merged.mo", "rb") as f:
        t = gettext.GNUTranslations(f)
    assert t.gettext("kept") == "gard\u00e9"
    assert t.gettext("removed") == "removed"
    assert t.ngettext("one", "new plural", 1) == "one"  # fuzzy after the change


# ---------------------------------------------------------------------------
# Command line


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = i18n.main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_extract_compile_workflow(tmp_path, capsys, locale_state):
    write(tmp_path / "app" / "handlers.py", '_("Hello")\n_("%(n)d file", "%(n)d files", n)\n')
    write(tmp_path / "app" / "templates" / "index.html", '<p>{{ pgettext("menu", "Open") }}</p>\n')
    pot = tmp_path / "app.pot"
    code, out, err = run_main(["extract", "-o", str(pot), str(tmp_path / "app")], capsys)
    assert (code, out) == (0, "")
    assert "3 messages extracted" in err
    text = pot.read_text(encoding="utf-8")
    assert 'msgctxt "menu"\nmsgid "Open"\n' in text

    po = tmp_path / "locale" / "pt_BR" / "LC_MESSAGES" / "app.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        text.replace("nplurals=INTEGER; plural=EXPRESSION;", "nplurals=2; plural=(n > 1);")
        .replace('msgid "Hello"\nmsgstr ""', 'msgid "Hello"\nmsgstr "Ol\u00e1"')
        .replace('msgid "Open"\nmsgstr ""', 'msgid "Open"\nmsgstr "Abrir"')
        .replace('msgstr[0] ""\nmsgstr[1] ""', 'msgstr[0] "%(n)d arquivo"\nmsgstr[1] "%(n)d arquivos"'),
        encoding="utf-8",
    )
    code, out, err = run_main(["compile", str(po)], capsys)  # output defaults to app.mo
    assert code == 0, err
    assert f"3 messages compiled into {po.with_suffix('.mo')}" in err

    cyclone.locale.load_gettext_translations(str(tmp_path / "locale"), "app")
    pt = cyclone.locale.get("pt_BR")
    assert pt.translate("Hello") == "Ol\u00e1"
    assert pt.pgettext("menu", "Open") == "Abrir"
    assert pt.translate("%(n)d file", "%(n)d files", 0) % {"n": 0} == "0 arquivo"


def test_cli_extract_to_stdout_with_keywords(tmp_path, capsys):
    src = write(tmp_path / "a.py", 'lazy("x")\n_("y")\n')
    code, out, _ = run_main(["extract", "--no-default-keywords", "-k", "lazy", str(src)], capsys)
    assert code == 0
    assert 'msgid "x"' in out and 'msgid "y"' not in out
    code, out, _ = run_main(["extract", "--keyword", "lazy", str(src)], capsys)
    assert code == 0
    assert 'msgid "x"' in out and 'msgid "y"' in out


def test_cli_merge(tmp_path, capsys):
    po = tmp_path / "fr.po"
    po.write_text('msgid "a"\nmsgstr "A"\n\nmsgid "b"\nmsgstr "B"\n', encoding="utf-8")
    pot = tmp_path / "new.pot"
    with open(pot, "w", encoding="utf-8") as f:
        write_pot([Message("a"), Message("c")], f)
    code, out, err = run_main(["merge", str(po), str(pot), "-o", "-"], capsys)
    assert code == 0, err
    assert 'msgid "a"\nmsgstr "A"\n' in out and '#~ msgid "b"\n' in out
    assert po.read_text() == 'msgid "a"\nmsgstr "A"\n\nmsgid "b"\nmsgstr "B"\n'
    code, _, err = run_main(["merge", str(po), str(pot)], capsys)  # in place
    assert code == 0, err
    # the catalog had no header: it gets the template's
    assert [(m.msgid, m.obsolete) for m in read_po(po)] == [("", False), ("a", False), ("c", False), ("b", True)]


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "a command is required"),
        (["frobnicate"], "invalid choice"),
        (["extract"], "the following arguments are required: PATH"),
        (["extract", "-k", "bad:spec", "x.py"], "invalid keyword 'bad:spec'"),
        (["extract", "--no-default-keywords", "x.py"], "needs at least one --keyword"),
        (["compile"], "the following arguments are required: po"),
        (["compile", "a.po", "b.mo", "c"], "unrecognized arguments: c"),
        (["merge", "only-one.po"], "the following arguments are required: pot"),
    ],
)
def test_cli_bad_arguments_exit_2(argv, message, capsys):
    code, out, err = run_main(argv, capsys)
    assert code == 2
    assert message in err


def test_cli_bad_input_exits_1(tmp_path, capsys):
    bad_tpl = write(tmp_path / "bad.html", "{{ _('x' }}\n")
    code, _, err = run_main(["extract", str(bad_tpl)], capsys)
    assert code == 1
    assert err.startswith("cyclone.i18n: error: ") and "bad.html:1: cannot parse" in err

    code, _, err = run_main(["extract", str(tmp_path / "missing")], capsys)
    assert code == 1 and "missing: no such file or directory" in err

    bad_po = write(tmp_path / "bad.po", 'msgid "a"\n')
    code, _, err = run_main(["compile", str(bad_po), str(tmp_path / "out.mo")], capsys)
    assert code == 1 and f"{bad_po}:1: msgid without msgstr" in err
    assert not (tmp_path / "out.mo").exists()

    code, _, err = run_main(["compile", str(tmp_path / "nope.po")], capsys)
    assert code == 1 and "nope.po: cannot read" in err

    good_po = write(tmp_path / "good.po", 'msgid "a"\nmsgstr "b"\n')
    code, _, err = run_main(["compile", str(good_po), str(tmp_path / "no" / "dir" / "x.mo")], capsys)
    assert code == 1 and "x.mo: cannot write" in err


def test_module_entry_point(tmp_path):
    bad = write(tmp_path / "bad.py", "def (\n")
    result = subprocess.run(
        [sys.executable, "-m", "cyclone.i18n", "extract", str(bad)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 1
    assert "bad.py:1: invalid Python syntax" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "cyclone.i18n", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    assert "extract" in result.stdout and "compile" in result.stdout


# ---------------------------------------------------------------------------
# The demo's catalogs are in sync with its sources


def test_demo_catalogs_match_extracted_messages():
    sources = [DEMO / "locale_demo.py", DEMO / "templates"]
    extracted = {(m.msgctxt, m.msgid): m.msgid_plural for m in extract_messages(sources)}
    # one plural and one pgettext at least, as the demo promises
    assert any(plural for plural in extracted.values())
    assert any(ctxt for ctxt, _ in extracted)
    # walking the whole demo directory finds exactly the same messages
    assert {(m.msgctxt, m.msgid) for m in extract_messages([DEMO])} == set(extracted)
    catalogs = sorted(DEMO.glob("locale/*/LC_MESSAGES/demo.po"))
    assert [p.parent.parent.name for p in catalogs] == ["es_ES", "pt_BR"]
    for po in catalogs:
        entries = [m for m in read_po(po) if m.msgid and not m.obsolete]
        assert {m.key: m.msgid_plural for m in entries} == extracted, po
        untranslated = [m.msgid for m in entries if not m.translated or m.fuzzy]
        assert untranslated == [], po


def test_demo_catalogs_compile_and_translate(tmp_path, locale_state):
    for po in DEMO.glob("locale/*/LC_MESSAGES/demo.po"):
        lang = po.parent.parent.name
        mo = tmp_path / lang / "LC_MESSAGES" / "demo.mo"
        mo.parent.mkdir(parents=True)
        compile_po(po, mo)
    cyclone.locale.load_gettext_translations(str(tmp_path), "demo")
    pt, es = cyclone.locale.get("pt_BR"), cyclone.locale.get("es_ES")
    files = "%(n)d file", "%(n)d files"
    assert [pt.translate(*files, n) % {"n": n} for n in (0, 1, 2)] == [
        "0 arquivo", "1 arquivo", "2 arquivos",
    ]
    assert [es.translate(*files, n) % {"n": n} for n in (0, 1, 2)] == [
        "0 archivos", "1 archivo", "2 archivos",
    ]
    assert (pt.pgettext("sorting", "Order"), pt.pgettext("purchase", "Order")) == ("Ordem", "Pedido")
    assert (es.pgettext("sorting", "Order"), es.pgettext("purchase", "Order")) == ("Orden", "Pedido")
    assert es.translate("Hello, %(name)s!") % {"name": "Ana"} == "\u00a1Hola, Ana!"
