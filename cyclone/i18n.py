"""Message catalogs without GNU gettext: extract, merge and compile.

``xgettext`` cannot read templates, and the original cyclone told users to
pipe them through a regex "fix" script first. This module parses Python code
with :mod:`ast` and cyclone/Tornado templates tag by tag, so no
pre-processing is needed. The workflow::

    # 1. collect the messages of the code and the templates into a template
    python -m cyclone.i18n extract -o myapp.pot myapp.py templates/

    # 2. start a catalog per language (first time): copy the template, then
    #    set "Language:" and "Plural-Forms:" in its header, e.g. for pt_BR
    #    "Plural-Forms: nplurals=2; plural=(n > 1);\\n"
    mkdir -p locale/pt_BR/LC_MESSAGES
    cp myapp.pot locale/pt_BR/LC_MESSAGES/myapp.po
    #    ... or, when the code changed, bring an existing catalog up to date
    #    (new messages are added, vanished ones kept as obsolete "#~" entries)
    python -m cyclone.i18n merge locale/pt_BR/LC_MESSAGES/myapp.po myapp.pot

    # 3. translate the msgstr lines, then compile (writes myapp.mo beside it)
    python -m cyclone.i18n compile locale/pt_BR/LC_MESSAGES/myapp.po

    # 4. load them in the application
    cyclone.locale.load_gettext_translations("locale", "myapp")

What is extracted, by default: calls to ``_``, ``gettext``, ``ngettext``,
``pgettext``, ``npgettext`` and ``translate``, whether plain (``_("x")``) or
through an attribute (``self.locale.translate("x")``), with string-literal
arguments. ``_("%(n)d file", "%(n)d files", n)`` yields a plural entry
(``msgid_plural``), ``pgettext("month", "May")`` an entry with ``msgctxt``.
In templates (``*.html``, ``*.htm``, ``*.txt``, ``*.js`` when walking a
directory; any non-``.py`` file named explicitly) the bodies of ``{{ ... }}``
and of ``{% set/if/elif/while/for/raw/module/apply ... %}`` are parsed;
``{# ... #}`` comments and ``{{!``-escaped text are skipped. References
(``#: templates/index.html:12``) give the line in the template.

Extra keywords use xgettext's notation: ``--keyword lazy_gettext`` (message
is argument 1) or ``--keyword 'cpgettext:1c,2,3'`` (context is argument 1,
message 2, plural 3).
"""

from __future__ import annotations

import argparse
import ast
import bisect
import codecs
import datetime
import gettext
import io
import logging
import os
import re
import struct
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence, TextIO

__all__ = [
    "DEFAULT_KEYWORDS",
    "CompileError",
    "ExtractError",
    "I18nError",
    "Keyword",
    "Message",
    "POFileError",
    "compile_messages",
    "compile_po",
    "extract_messages",
    "main",
    "merge_po",
    "read_po",
    "write_po",
    "write_pot",
]

log = logging.getLogger(__name__)

TEMPLATE_EXTENSIONS = (".html", ".htm", ".txt", ".js")
_CONTEXT_SEPARATOR = "\x04"
_MO_MAGIC = 0x950412DE


class I18nError(Exception):
    """Base class of the errors this module reports for bad input."""


class ExtractError(I18nError):
    """A source file or template cannot be read or parsed."""


class POFileError(I18nError):
    """A .po file is malformed; the message names the file and line."""


class CompileError(I18nError):
    """A .po file is well-formed but cannot become a correct .mo file."""


@dataclass
class Message:
    """One catalog entry.

    ``locations`` are ``(path, line)`` pairs (line 0: unknown). For a plural
    entry ``msgid_plural`` is set and the translations are in
    ``msgstr_plural`` (one per plural form); otherwise in ``msgstr``.
    ``flags`` holds ``#,`` flags such as ``"fuzzy"`` or ``"python-format"``;
    ``comments`` are translator comments (``#``), ``auto_comments`` extracted
    ones (``#.``). ``obsolete`` marks ``#~`` entries kept by a merge.
    """

    msgid: str
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: str = ""
    msgstr_plural: list[str] = field(default_factory=list)
    locations: list[tuple[str, int]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    auto_comments: list[str] = field(default_factory=list)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        """``(msgctxt, msgid)``: what identifies an entry in a catalog."""
        return (self.msgctxt, self.msgid)

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    @property
    def translated(self) -> bool:
        """True when every form has a (non-empty) translation."""
        if self.msgid_plural is not None:
            return bool(self.msgstr_plural) and all(self.msgstr_plural)
        return bool(self.msgstr)


# --------------------------------------------------------------------------
# Keywords


@dataclass(frozen=True)
class Keyword:
    """Which arguments of a call named ``name`` hold the strings (1-based).

    ``plural`` and ``context`` are optional positions; a call with fewer
    arguments than ``plural`` yields a singular entry, which is how ``_``
    covers both ``_("x")`` and ``_("%(n)d file", "%(n)d files", n)``.
    """

    name: str
    msgid: int = 1
    plural: int | None = None
    context: int | None = None

    @classmethod
    def parse(cls, spec: str) -> "Keyword":
        """Parse xgettext notation: ``name``, ``name:1,2`` or ``name:1c,2,3``."""
        name, sep, args = spec.partition(":")
        if not name.isidentifier():
            raise ValueError(f"invalid keyword {spec!r}: {name!r} is not a name")
        if not sep:
            return cls(name)
        positions: list[int] = []
        context = None
        for part in args.split(","):
            part = part.strip()
            m = re.fullmatch(r"([1-9][0-9]*)(c?)", part)
            if not m:
                raise ValueError(f"invalid keyword {spec!r}: bad argument spec {part!r}")
            if m.group(2):
                if context is not None:
                    raise ValueError(f"invalid keyword {spec!r}: two context arguments")
                context = int(m.group(1))
            else:
                positions.append(int(m.group(1)))
        if not 1 <= len(positions) <= 2:
            raise ValueError(f"invalid keyword {spec!r}: give one or two message arguments")
        if len(set(positions + ([context] if context else []))) != len(positions) + bool(context):
            raise ValueError(f"invalid keyword {spec!r}: argument used twice")
        plural = positions[1] if len(positions) == 2 else None
        return cls(name, positions[0], plural, context)


DEFAULT_KEYWORDS: tuple[Keyword, ...] = (
    Keyword("_", 1, 2),
    Keyword("gettext", 1),
    Keyword("ngettext", 1, 2),
    Keyword("pgettext", 2, 3, 1),
    Keyword("npgettext", 2, 3, 1),
    Keyword("translate", 1, 2),
)

# Keyword arguments of Locale.translate/pgettext, for calls that name them.
_ROLE_KWARGS = {"msgid": "message", "plural": "plural_message", "context": "context"}


def _keyword_table(keywords: Iterable[Keyword | str] | None) -> dict[str, Keyword]:
    if keywords is None:
        keywords = DEFAULT_KEYWORDS
    table = {}
    for kw in keywords:
        if isinstance(kw, str):
            kw = Keyword.parse(kw)
        table[kw.name] = kw
    return table


# --------------------------------------------------------------------------
# Extraction

_FORMAT_RE = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?"  # optional mapping key
    r"[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?"  # flags, width, precision
    r"(?P<conv>[diouxXeEfFgGcrsa%])"
)


def _format_directives(s: str) -> list[tuple[str | None, str]]:
    """The ``%`` directives of ``s`` as (name, conversion), ``%%`` excluded."""
    return [
        (m.group("name"), m.group("conv"))
        for m in _FORMAT_RE.finditer(s)
        if m.group("conv") != "%"
    ]


@dataclass
class _Found:
    msgid: str
    plural: str | None
    context: str | None
    line: int
    col: int


def _literal(node: ast.AST | None) -> str | None:
    """The string value of a literal (``"a" "b"`` and ``"a" + "b"`` included)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def _mentions_string(node: ast.AST) -> bool:
    # _("Hello %s" % name) or _(f"Hello {name}") looks up the *formatted*
    # text at run time, which no catalog can contain: worth a warning.
    return any(
        isinstance(n, ast.JoinedStr) or (isinstance(n, ast.Constant) and isinstance(n.value, str))
        for n in ast.walk(node)
    )


def _argument(call: ast.Call, position: int | None, role: str) -> tuple[bool, ast.AST | None]:
    """The argument at 1-based ``position``, else the keyword argument of ``role``."""
    if position is not None and position <= len(call.args):
        return True, call.args[position - 1]
    for k in call.keywords:
        if k.arg == _ROLE_KWARGS[role]:
            return True, k.value
    return False, None


def _calls(
    tree: ast.AST, keywords: dict[str, Keyword], where: str, base_line: int = 1
) -> list[_Found]:
    """The keyword calls in ``tree`` with literal arguments, in source order.

    ``base_line`` is the file line of the snippet's first line (templates).
    """
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name):
            name = node.func.id
        elif isinstance(node.func, ast.Attribute):
            name = node.func.attr
        else:
            continue
        kw = keywords.get(name)
        if kw is None:
            continue
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            continue  # _(*args) / _(**kw): nothing literal to extract
        line = base_line + node.lineno - 1

        present, msgid_node = _argument(node, kw.msgid, "msgid")
        if not present:
            continue
        msgid = _literal(msgid_node)
        if msgid is None:
            if msgid_node is not None and _mentions_string(msgid_node):
                log.warning(
                    "%s:%d: %s() argument is not a plain string literal; not extracted "
                    '(translate first, then format: _("...%%s") %% value)',
                    where, line, name,
                )
            continue
        if msgid == "":
            log.warning(
                "%s:%d: empty message in %s() is reserved for the header; skipped",
                where, line, name,
            )
            continue

        plural = None
        if kw.plural is not None:
            present, plural_node = _argument(node, kw.plural, "plural")
            # translate(msg, None, None) is a singular call spelled out in full
            is_none = isinstance(plural_node, ast.Constant) and plural_node.value is None
            if present and not is_none:
                plural = _literal(plural_node)
                if plural is None:
                    log.warning(
                        "%s:%d: plural argument of %s() is not a string literal; not extracted",
                        where, line, name,
                    )
                    continue

        context = None
        if kw.context is not None:
            present, context_node = _argument(node, kw.context, "context")
            if not present:
                continue
            context = _literal(context_node)
            if context is None:
                log.warning(
                    "%s:%d: context argument of %s() is not a string literal; not extracted",
                    where, line, name,
                )
                continue
        found.append(_Found(msgid, plural, context, line, node.col_offset))
    found.sort(key=lambda f: (f.line, f.col))
    return found


def _extract_python(path: str, keywords: dict[str, Keyword]) -> list[_Found]:
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as e:
        raise ExtractError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        # bytes, so that a PEP 263 coding cookie is honoured
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise ExtractError(f"{path}:{e.lineno}: invalid Python syntax: {e.msg}") from e
    except ValueError as e:  # e.g. null bytes
        raise ExtractError(f"{path}: cannot parse: {e}") from e
    return _calls(tree, keywords, path)


# Template directives whose argument is a Python expression.
_EXPRESSION_DIRECTIVES = {"if", "elif", "while", "raw", "module", "apply"}


def _template_tags(text: str, path: str) -> Iterator[tuple[str, str, int]]:
    """Yield ``(kind, body, offset)`` for each ``{{ }}`` / ``{% %}`` tag.

    ``kind`` is ``"{"`` or ``"%"``; ``offset`` is where ``body`` starts in
    ``text``. Follows the template reader: ``{{!`` and friends are literal
    text, ``{# #}`` is a comment, and in ``{{{`` the innermost pair opens.
    """
    pos, n = 0, len(text)
    while True:
        start = text.find("{", pos)
        if start == -1 or start + 1 >= n:
            return
        kind = text[start + 1]
        if kind not in "{%#":
            pos = start + 1
            continue
        if kind == "{" and start + 2 < n and text[start + 2] == "{":
            pos = start + 1
            continue
        if start + 2 < n and text[start + 2] == "!":
            pos = start + 3
            continue
        closer = {"{": "}}", "%": "%}", "#": "#}"}[kind]
        end = text.find(closer, start + 2)
        if end == -1:
            line = text.count("\n", 0, start) + 1
            raise ExtractError(f"{path}:{line}: missing {closer!r} for {text[start:start + 2]!r}")
        if kind != "#":
            yield kind, text[start + 2 : end], start + 2
        pos = end + 2


def _extract_template(path: str, keywords: dict[str, Keyword]) -> list[_Found]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ExtractError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExtractError(f"{path}: not valid UTF-8 (byte offset {e.start})") from e
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(offset: int) -> int:
        return bisect.bisect_right(line_starts, offset)

    found: list[_Found] = []
    for kind, body, offset in _template_tags(text, path):
        if kind == "{":
            source, mode, base = "(" + body + "\n)", "eval", offset
        else:
            m = re.match(r"\s*(\S+)\s*", body)
            if m is None:
                continue
            directive = m.group(1)
            suffix = body[m.end() :].rstrip()
            base = offset + m.end()
            if directive in _EXPRESSION_DIRECTIVES:
                source, mode = "(" + suffix + "\n)", "eval"
            elif directive == "set":
                source, mode = suffix, "exec"
            elif directive == "for":
                source, mode = "for " + suffix + ":\n pass", "exec"
            else:
                continue  # end, block, include, extends, comment, ...: no expression
        # The prefixes added above contain no newline, so line numbers
        # inside the parsed snippet count from the tag body's first line.
        try:
            tree = ast.parse(source, mode=mode)
        except SyntaxError as e:
            snippet = " ".join(body.split())
            if len(snippet) > 60:
                snippet = snippet[:57] + "..."
            raise ExtractError(
                f"{path}:{line_of(base)}: cannot parse template expression {snippet!r}: {e.msg}"
            ) from e
        found.extend(_calls(tree, keywords, path, base_line=line_of(base)))
    return found


def _is_python(path: str) -> bool:
    return path.endswith((".py", ".pyw"))


def _walk(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if _is_python(name) or name.endswith(TEMPLATE_EXTENSIONS):
                yield os.path.join(dirpath, name)


def extract_messages(
    paths: Iterable[str | os.PathLike[str]],
    keywords: Iterable[Keyword | str] | None = None,
) -> list[Message]:
    """Extract translatable messages from Python files and templates.

    ``paths`` are files or directories (walked recursively, hidden ones and
    ``__pycache__`` skipped). A ``.py`` file is parsed as Python, any other
    file as a template. ``keywords`` replaces :data:`DEFAULT_KEYWORDS`; items
    are :class:`Keyword` objects or xgettext-style specs (``"name:1c,2"``).

    Messages come out in order of first appearance, one per
    ``(msgctxt, msgid)``, with every location. Raises :class:`ExtractError`
    for a missing file or one that cannot be parsed.
    """
    table = _keyword_table(keywords)
    files: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            files.extend(_walk(p))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise ExtractError(f"{p}: no such file or directory")

    messages: dict[tuple[str | None, str], Message] = {}
    for path in files:
        found = _extract_python(path, table) if _is_python(path) else _extract_template(path, table)
        ref = os.path.normpath(path).replace(os.sep, "/")
        for f in found:
            msg = messages.get((f.context, f.msgid))
            if msg is None:
                msg = messages[(f.context, f.msgid)] = Message(f.msgid, f.plural, f.context)
            elif f.plural is not None and f.plural != msg.msgid_plural:
                if msg.msgid_plural is None:
                    msg.msgid_plural = f.plural
                else:
                    log.warning(
                        "%s:%d: %r has plural %r here but %r elsewhere; keeping the first",
                        ref, f.line, f.msgid, f.plural, msg.msgid_plural,
                    )
            if (ref, f.line) not in msg.locations:
                msg.locations.append((ref, f.line))
    for msg in messages.values():
        if _format_directives(msg.msgid) or (
            msg.msgid_plural and _format_directives(msg.msgid_plural)
        ):
            msg.flags.append("python-format")
    return list(messages.values())


# --------------------------------------------------------------------------
# .po writing

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append("\\%03o" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def _po_string(keyword: str, s: str, prefix: str = "") -> str:
    # Only "\n" ends a line in a .po file; str.splitlines would also split
    # at \x85 or \u2028, which are ordinary characters there.
    lines = re.findall(r"[^\n]*\n|[^\n]+", s)
    if len(lines) <= 1:
        return f'{prefix}{keyword} "{_escape(s)}"\n'
    # Multi-line strings: one quoted piece per line, as msgmerge writes them.
    out = [f'{prefix}{keyword} ""\n']
    out.extend(f'{prefix}"{_escape(piece)}"\n' for piece in lines)
    return "".join(out)


def _write_entry(msg: Message, fileobj: TextIO) -> None:
    out = []
    for c in msg.comments:
        out.append(f"# {c}".rstrip() + "\n")
    for c in msg.auto_comments:
        out.append(f"#. {c}".rstrip() + "\n")
    if msg.locations and not msg.obsolete:
        refs = [f"{p}:{n}" if n else p for p, n in msg.locations]
        line = "#:"
        for ref in refs:
            if len(line) + 1 + len(ref) > 78 and line != "#:":
                out.append(line + "\n")
                line = "#:"
            line += " " + ref
        out.append(line + "\n")
    if msg.flags:
        out.append("#, " + ", ".join(msg.flags) + "\n")
    prefix = "#~ " if msg.obsolete else ""
    if msg.msgctxt is not None:
        out.append(_po_string("msgctxt", msg.msgctxt, prefix))
    out.append(_po_string("msgid", msg.msgid, prefix))
    if msg.msgid_plural is not None:
        out.append(_po_string("msgid_plural", msg.msgid_plural, prefix))
        forms = msg.msgstr_plural or ["", ""]
        for i, form in enumerate(forms):
            out.append(_po_string(f"msgstr[{i}]", form, prefix))
    else:
        out.append(_po_string("msgstr", msg.msgstr, prefix))
    fileobj.write("".join(out))


def write_po(messages: Iterable[Message], fileobj: TextIO) -> None:
    """Write ``messages`` (header entry included, if any) as a .po file."""
    first = True
    for msg in messages:
        if not first:
            fileobj.write("\n")
        _write_entry(msg, fileobj)
        first = False


def _creation_date() -> str:
    # Reproducible builds: honour SOURCE_DATE_EPOCH when it is set.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.isdigit():
        when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    else:
        when = datetime.datetime.now(datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M%z")


def write_pot(
    messages: Iterable[Message],
    fileobj: TextIO,
    *,
    project: str = "PACKAGE VERSION",
    creation_date: str | None = None,
) -> None:
    """Write ``messages`` as a .pot template: every translation left empty.

    The header's ``Plural-Forms`` is GNU's placeholder on purpose: each
    language must set its own, and :func:`compile_po` refuses the placeholder.
    """
    header_fields = [
        ("Project-Id-Version", project),
        ("Report-Msgid-Bugs-To", ""),
        ("POT-Creation-Date", creation_date or _creation_date()),
        ("PO-Revision-Date", "YEAR-MO-DA HO:MI+ZONE"),
        ("Last-Translator", "FULL NAME <EMAIL@ADDRESS>"),
        ("Language-Team", "LANGUAGE <LL@li.org>"),
        ("Language", ""),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=UTF-8"),
        ("Content-Transfer-Encoding", "8bit"),
        ("Plural-Forms", "nplurals=INTEGER; plural=EXPRESSION;"),
        ("Generated-By", "cyclone.i18n"),
    ]
    header = Message(
        "",
        msgstr="".join(f"{k}: {v}\n" for k, v in header_fields),
        comments=[
            "Translations template.",
            "This file is distributed under the same license as the PACKAGE package.",
        ],
        flags=["fuzzy"],
    )
    blank = []
    for m in messages:
        blank.append(
            Message(
                m.msgid,
                m.msgid_plural,
                m.msgctxt,
                locations=list(m.locations),
                flags=[f for f in m.flags if f != "fuzzy"],
                auto_comments=list(m.auto_comments),
            )
        )
    write_po([header] + blank, fileobj)


# --------------------------------------------------------------------------
# .po reading

_UNESCAPES = {
    "\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r",
    "a": "\a", "b": "\b", "f": "\f", "v": "\v", "'": "'", "?": "?",
}  # fmt: skip
_KEYWORD_LINE = re.compile(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s*(".*)$')


def _unquote(token: str, where: str) -> str:
    if len(token) < 2 or token[0] != '"' or token[-1] != '"':
        raise POFileError(f"{where}: expected a quoted string, got {token!r}")
    body = token[1:-1]
    out = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == '"':
            raise POFileError(f"{where}: unescaped '\"' inside a string")
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            raise POFileError(f"{where}: string ends with a lone backslash")
        esc = body[i + 1]
        if esc in _UNESCAPES:
            out.append(_UNESCAPES[esc])
            i += 2
        elif esc in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert m is not None
            out.append(chr(int(m.group(), 8)))
            i += 1 + len(m.group())
        elif esc == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :])
            if not m:
                raise POFileError(f"{where}: bad \\x escape")
            out.append(chr(int(m.group(), 16)))
            i += 2 + len(m.group())
        else:
            raise POFileError(f"{where}: unknown escape '\\{esc}'")
    return "".join(out)


def _decode_po(path: str, data: bytes) -> str:
    m = re.search(rb"charset=([A-Za-z0-9_.:-]+)", data)
    charset = m.group(1).decode("ascii") if m else "utf-8"
    if charset.upper() == "CHARSET":  # the .pot placeholder
        charset = "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        raise POFileError(f"{path}: unknown charset {charset!r} in the header") from None
    try:
        text = data.decode(charset)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise POFileError(f"{path}:{line}: not valid {charset}: {e.reason}") from e
    return text.removeprefix("\ufeff")


class _POParser:
    def __init__(self, path: str) -> None:
        self.path = path
        self.messages: list[Message] = []
        self.seen: dict[tuple[str | None, str], int] = {}
        self._reset()

    def _reset(self) -> None:
        self.comments: list[str] = []
        self.auto_comments: list[str] = []
        self.locations: list[tuple[str, int]] = []
        self.flags: list[str] = []
        self.fields: dict[str, str] = {}
        self.plural_forms: dict[int, str] = {}
        self.current: tuple[str, int | None] | None = None
        self.obsolete = False
        self.start_line = 0

    def _has_msgstr(self) -> bool:
        return "msgstr" in self.fields or bool(self.plural_forms)

    def finish(self) -> None:
        where = f"{self.path}:{self.start_line}"
        if not self.fields and not self.plural_forms:
            return  # only comments so far: they belong to the next entry
        if "msgid" not in self.fields:
            raise POFileError(f"{where}: entry without msgid")
        if not self._has_msgstr():
            raise POFileError(f"{where}: msgid without msgstr")
        plural = self.fields.get("msgid_plural")
        if plural is not None:
            if "msgstr" in self.fields:
                raise POFileError(f"{where}: plural entry needs msgstr[N], not msgstr")
            indices = sorted(self.plural_forms)
            if indices != list(range(len(indices))):
                raise POFileError(f"{where}: msgstr[N] indices must be 0, 1, ... without gaps")
            forms = [self.plural_forms[i] for i in indices]
            msgstr = ""
        else:
            if self.plural_forms:
                raise POFileError(f"{where}: msgstr[N] without msgid_plural")
            forms = []
            msgstr = self.fields["msgstr"]
        msg = Message(
            self.fields["msgid"],
            plural,
            self.fields.get("msgctxt"),
            msgstr=msgstr,
            msgstr_plural=forms,
            locations=self.locations,
            flags=self.flags,
            comments=self.comments,
            auto_comments=self.auto_comments,
            obsolete=self.obsolete,
        )
        if not msg.obsolete:
            if msg.key in self.seen:
                raise POFileError(
                    f"{where}: duplicate message {msg.msgid!r}"
                    + (f" (context {msg.msgctxt!r})" if msg.msgctxt is not None else "")
                    + f", first defined at line {self.seen[msg.key]}"
                )
            self.seen[msg.key] = self.start_line
        self.messages.append(msg)
        self._reset()

    def feed(self, raw_line: str, lineno: int) -> None:
        line = raw_line.strip()
        where = f"{self.path}:{lineno}"
        if not line:
            self.finish()
            return
        obsolete = False
        if line.startswith("#~"):
            line = line[2:].strip()
            if not line or line.startswith("|"):
                return  # "#~|": previous msgid of an obsolete entry
            obsolete = True
        elif line.startswith("#"):
            if self._has_msgstr():
                self.finish()
            if line.startswith("#,"):
                for flag in line[2:].split(","):
                    if flag.strip() and flag.strip() not in self.flags:
                        self.flags.append(flag.strip())
            elif line.startswith("#:"):
                for ref in line[2:].split():
                    file, sep, num = ref.rpartition(":")
                    if sep and num.isdigit():
                        self.locations.append((file, int(num)))
                    else:
                        self.locations.append((ref, 0))
            elif line.startswith("#."):
                self.auto_comments.append(line[2:].strip())
            elif line.startswith("#|"):
                pass  # previous msgid (msgmerge --previous): informational
            else:
                self.comments.append(line[1:].removeprefix(" "))
            return

        m = _KEYWORD_LINE.match(line)
        if m:
            keyword, index = m.group(1), m.group(2)
            if keyword.startswith("msgstr["):
                keyword = "msgstr[]"
            if keyword in ("msgctxt", "msgid") and self._has_msgstr():
                self.finish()
            if not self.fields and not self.plural_forms:
                self.start_line = lineno
                self.obsolete = obsolete
            value = _unquote(m.group(3), where)
            if keyword == "msgstr[]":
                if "msgid" not in self.fields:
                    raise POFileError(f"{where}: msgstr[{index}] before msgid")
                idx = int(index)
                if idx in self.plural_forms:
                    raise POFileError(f"{where}: msgstr[{idx}] given twice")
                self.plural_forms[idx] = value
                self.current = ("msgstr[]", idx)
                return
            if keyword in self.fields:
                raise POFileError(f"{where}: {keyword} given twice in one entry")
            order = ["msgctxt", "msgid", "msgid_plural", "msgstr"]
            later = [k for k in order[order.index(keyword) + 1 :] if k in self.fields]
            if later or (self.plural_forms and keyword != "msgstr"):
                raise POFileError(f"{where}: {keyword} out of order")
            if keyword in ("msgid_plural", "msgstr") and "msgid" not in self.fields:
                raise POFileError(f"{where}: {keyword} before msgid")
            self.fields[keyword] = value
            self.current = (keyword, None)
            return
        if line.startswith('"'):
            if self.current is None:
                raise POFileError(f"{where}: string continuation outside an entry")
            value = _unquote(line, where)
            keyword, idx = self.current
            if keyword == "msgstr[]":
                assert idx is not None
                self.plural_forms[idx] += value
            else:
                self.fields[keyword] += value
            return
        raise POFileError(f"{where}: unexpected line {raw_line.strip()[:60]!r}")


def read_po(path: str | os.PathLike[str]) -> list[Message]:
    """Parse a .po/.pot file into its entries, in file order.

    The header is the entry whose ``msgid`` is ``""``; obsolete ``#~``
    entries are included with ``obsolete=True``. The file's encoding comes
    from the ``charset`` of its header (UTF-8 if none). Raises
    :class:`POFileError` with ``file:line`` for any syntax error, duplicate
    entry or undecodable byte.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise POFileError(f"{path}: cannot read: {e.strerror or e}") from e
    text = _decode_po(path, data)
    parser = _POParser(path)
    for lineno, line in enumerate(text.split("\n"), 1):
        parser.feed(line.removesuffix("\r"), lineno)
    parser.finish()
    return parser.messages


def _header_of(messages: Sequence[Message]) -> Message | None:
    for m in messages:
        if m.msgid == "" and m.msgctxt is None and not m.obsolete:
            return m
    return None


def _header_value(header: str, name: str) -> str | None:
    for line in header.split("\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return None


def _nplurals(header: Message | None, where: str) -> int:
    value = _header_value(header.msgstr, "Plural-Forms") if header else None
    if value is None:
        return 2  # gettext's default rule: n != 1
    m = re.search(r"nplurals\s*=\s*(\d+)\s*;\s*plural\s*=", value)
    if not m:
        raise CompileError(
            f"{where}: Plural-Forms header {value!r} is not set for this language; "
            'write e.g. "nplurals=2; plural=(n != 1);"'
        )
    n = int(m.group(1))
    if n < 1:
        raise CompileError(f"{where}: nplurals must be at least 1")
    return n


# --------------------------------------------------------------------------
# Compiling


def _check_format(msg: Message, where: str) -> None:
    """Refuse translations whose ``%`` directives would fail at run time."""
    if "python-format" not in msg.flags:
        return
    sources = [msg.msgid] + ([msg.msgid_plural] if msg.msgid_plural else [])
    source_dirs = [d for s in sources for d in _format_directives(s)]
    names = {name for name, _ in source_dirs if name is not None}
    positional = [d for d in _format_directives(msg.msgid) if d[0] is None]
    for text in msg.msgstr_plural if msg.msgid_plural is not None else [msg.msgstr]:
        dirs = _format_directives(text)
        for name, _ in dirs:
            if name is not None and name not in names:
                raise CompileError(
                    f"{where}: translation of {msg.msgid!r} uses %({name})s, "
                    "which the original does not define"
                )
        trans_positional = [d for d in dirs if d[0] is None]
        if names and trans_positional:
            raise CompileError(
                f"{where}: translation of {msg.msgid!r} mixes positional %-directives "
                "into a message formatted with a mapping"
            )
        if positional and len(trans_positional) != len(positional):
            raise CompileError(
                f"{where}: translation of {msg.msgid!r} has {len(trans_positional)} "
                f"positional %-directives, the original has {len(positional)}"
            )


def _mo_header(text: str) -> str:
    # The .mo is always written in UTF-8, so its header must say so: the
    # stdlib decodes a .mo without a charset as ASCII.
    # POT-Creation-Date is dropped (as GNU msgfmt does) so that re-extracting
    # without changing any message leaves the compiled file byte-identical.
    lines = [
        line
        for line in re.findall(r"[^\n]*\n|[^\n]+", text)
        if line.partition(":")[0].strip().lower() != "pot-creation-date"
    ]
    for i, line in enumerate(lines):
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "content-type":
            if re.search(r"charset\s*=", value):
                value = re.sub(r"charset\s*=\s*[^\s;]*", "charset=UTF-8", value)
            else:
                value = value.rstrip("\n").rstrip("; ") + "; charset=UTF-8\n"
            lines[i] = key + ":" + value
            break
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append("Content-Type: text/plain; charset=UTF-8\n")
    return "".join(lines)


def _mo_bytes(pairs: dict[bytes, bytes]) -> bytes:
    """Serialize a GNU .mo file (little-endian, no hash table)."""
    keys = sorted(pairs)  # gettext implementations binary-search the ids
    n = len(keys)
    originals_at = 7 * 4
    translations_at = originals_at + n * 8
    data_at = translations_at + n * 8
    blob = io.BytesIO()
    originals, translations = [], []
    for k in keys:
        originals.append((len(k), data_at + blob.tell()))
        blob.write(k + b"\0")
    for k in keys:
        v = pairs[k]
        translations.append((len(v), data_at + blob.tell()))
        blob.write(v + b"\0")
    out = [struct.pack("<7I", _MO_MAGIC, 0, n, originals_at, translations_at, 0, data_at)]
    out.extend(struct.pack("<2I", *entry) for entry in originals)
    out.extend(struct.pack("<2I", *entry) for entry in translations)
    out.append(blob.getvalue())
    return b"".join(out)


def compile_messages(messages: Sequence[Message], where: str = "<catalog>") -> bytes:
    """Return the .mo image of parsed ``messages`` (see :func:`compile_po`)."""
    header = _header_of(messages)
    nplurals = _nplurals(header, where)
    pairs: dict[bytes, bytes] = {}
    pairs[b""] = _mo_header(header.msgstr if header else "").encode("utf-8")
    for msg in messages:
        if msg.obsolete or msg is header or msg.fuzzy or not msg.translated:
            continue
        if msg.msgid == "":
            continue  # a context-qualified empty msgid cannot be looked up
        _check_format(msg, where)
        key = msg.msgid
        if msg.msgctxt is not None:
            key = msg.msgctxt + _CONTEXT_SEPARATOR + key
        if msg.msgid_plural is not None:
            if len(msg.msgstr_plural) != nplurals:
                raise CompileError(
                    f"{where}: {msg.msgid!r} has {len(msg.msgstr_plural)} plural forms "
                    f"but the header says nplurals={nplurals}"
                )
            k = (key + "\0" + msg.msgid_plural).encode("utf-8")
            v = "\0".join(msg.msgstr_plural).encode("utf-8")
        else:
            k, v = key.encode("utf-8"), msg.msgstr.encode("utf-8")
        pairs[k] = v
    data = _mo_bytes(pairs)
    # Read it back with the stdlib, which also evaluates the Plural-Forms
    # expression: a catalog that would fail to load fails here instead.
    try:
        gettext.GNUTranslations(io.BytesIO(data))
    except Exception as e:
        raise CompileError(f"{where}: the compiled catalog does not load: {e}") from e
    return data


def compile_po(po_path: str | os.PathLike[str], mo_path: str | os.PathLike[str]) -> int:
    """Compile the .po file ``po_path`` into the GNU .mo file ``mo_path``.

    Like ``msgfmt --no-hash`` (byte for byte): fuzzy, untranslated and
    obsolete entries are left out, contexts become ``msgctxt\\x04msgid``
    keys, plural entries keep all their forms, and ``POT-Creation-Date`` is
    dropped from the header. Unlike msgfmt, a plural entry with any empty
    form is left out too (it would translate to an empty string), and the
    header always declares ``charset=UTF-8`` (the .mo is written in UTF-8
    whatever the .po's encoding).

    Refused with :class:`CompileError`, so that they fail here and not on a
    live request: ``python-format`` entries whose translation would raise
    when formatted, plural entries whose form count differs from the
    header's ``nplurals``, an unset or invalid ``Plural-Forms``. The output
    is replaced atomically. Returns the number of messages written.
    """
    po_path, mo_path = os.fspath(po_path), os.fspath(mo_path)
    messages = read_po(po_path)
    data = compile_messages(messages, po_path)
    # Write beside the target and rename, so a running server that reloads
    # never sees half a file; os.open applies the umask (mkstemp would not).
    tmp = f"{mo_path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise CompileError(f"{mo_path}: cannot write: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, mo_path)
    except BaseException:
        os.unlink(tmp)
        raise
    return struct.unpack_from("<I", data, 8)[0] - 1  # minus the header entry


# --------------------------------------------------------------------------
# Merging


def merge_po(po_path: str | os.PathLike[str], pot_path: str | os.PathLike[str]) -> list[Message]:
    """Bring the catalog ``po_path`` in line with the template ``pot_path``.

    Returns the merged entries (write them with :func:`write_po`): the
    catalog's header, then every template message in template order with
    the catalog's translation when it has one, then the catalog's messages
    the template no longer has, as obsolete entries. A translation whose
    ``msgid_plural`` changed is kept but flagged fuzzy. No fuzzy matching of
    similar msgids is attempted.
    """
    old = read_po(po_path)
    new = read_po(pot_path)
    old_header = _header_of(old)
    header = old_header or _header_of(new)
    try:
        nplurals = _nplurals(header, os.fspath(po_path))
    except CompileError:
        nplurals = 2
    # A live entry wins over an obsolete one with the same key.
    by_key = {m.key: m for m in old if m.obsolete}
    by_key.update((m.key, m) for m in old if not m.obsolete and m is not old_header)
    merged: list[Message] = [header] if header else []
    used: set[tuple[str | None, str]] = set()
    for tmpl in new:
        if tmpl.obsolete or (tmpl.msgid == "" and tmpl.msgctxt is None):
            continue
        prev = by_key.get(tmpl.key)
        flags = [f for f in tmpl.flags if f != "fuzzy"]
        msg = Message(
            tmpl.msgid,
            tmpl.msgid_plural,
            tmpl.msgctxt,
            locations=list(tmpl.locations),
            flags=flags,
            auto_comments=list(tmpl.auto_comments),
        )
        if tmpl.msgid_plural is not None:
            msg.msgstr_plural = [""] * nplurals
        if prev is not None:
            used.add(tmpl.key)
            msg.comments = list(prev.comments)
            if (prev.msgid_plural is None) == (tmpl.msgid_plural is None):
                msg.msgstr = prev.msgstr
                if prev.msgstr_plural:
                    msg.msgstr_plural = list(prev.msgstr_plural)
                if prev.fuzzy or prev.msgid_plural != tmpl.msgid_plural:
                    msg.flags.insert(0, "fuzzy")
        merged.append(msg)
    for prev in old:
        if prev is old_header or prev.key in used:
            continue
        if prev.translated or prev.obsolete:
            prev.obsolete = True
            prev.locations = []
            merged.append(prev)
    return merged


# --------------------------------------------------------------------------
# Command line


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cyclone.i18n",
        description="Extract, merge and compile gettext catalogs for cyclone applications.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "extract", help="collect messages from Python files and templates into a .pot"
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to scan")
    p.add_argument("-o", "--output", default="-", help="output file (default: standard output)")
    p.add_argument(
        "-k", "--keyword", action="append", default=[], metavar="SPEC",
        help="extra keyword, xgettext notation: NAME or NAME:1c,2,3 (repeatable)",
    )
    p.add_argument("--no-default-keywords", action="store_true", help="only use the --keyword ones")
    p.add_argument("--project", default="PACKAGE VERSION", help="Project-Id-Version of the header")

    p = sub.add_parser("merge", help="update a .po catalog from a new .pot template")
    p.add_argument("po", help="the translated catalog")
    p.add_argument("pot", help="the freshly extracted template")
    p.add_argument(
        "-o", "--output", help="write here instead of updating PO in place ('-': stdout)"
    )

    p = sub.add_parser("compile", help="compile a .po catalog into a binary .mo file")
    p.add_argument("po", help="input .po file")
    p.add_argument("mo", nargs="?", help="output .mo file (default: the input with a .mo suffix)")
    return parser


def _write_text(path: str, write: Callable[[TextIO], None]) -> None:
    if path == "-":
        write(sys.stdout)
        return
    buf = io.StringIO()
    write(buf)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(buf.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line tool; returns the exit status (2: bad usage, 1: bad input)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("a command is required: extract, merge or compile")

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cyclone.i18n: %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    try:
        if args.command == "extract":
            keywords: list[Keyword | str] = []
            if not args.no_default_keywords:
                keywords.extend(DEFAULT_KEYWORDS)
            try:
                keywords += [Keyword.parse(spec) for spec in args.keyword]
            except ValueError as e:
                parser.error(str(e))
            if not keywords:
                parser.error("--no-default-keywords needs at least one --keyword")
            messages = extract_messages(args.paths, keywords)
            _write_text(args.output, lambda f: write_pot(messages, f, project=args.project))
            print(f"cyclone.i18n: {len(messages)} messages extracted", file=sys.stderr)
        elif args.command == "merge":
            merged = merge_po(args.po, args.pot)
            _write_text(args.output or args.po, lambda f: write_po(merged, f))
        elif args.command == "compile":
            mo = args.mo or os.path.splitext(args.po)[0] + ".mo"
            count = compile_po(args.po, mo)
            print(f"cyclone.i18n: {count} messages compiled into {mo}", file=sys.stderr)
    except (I18nError, OSError) as e:
        message = str(e)
        if isinstance(e, OSError) and e.filename:
            message = f"{e.filename}: {e.strerror}"
        print(f"cyclone.i18n: error: {message}", file=sys.stderr)
        return 1
    finally:
        log.removeHandler(handler)
        log.propagate = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
