"""A Tornado-compatible template language whose expressions may be Deferreds.

Templates are text with three kinds of tags::

    {{ expression }}       the value, converted to text and autoescaped
    {% directive ... %}    control flow and other directives (see below)
    {# comment #}          dropped from the output

``{{!``, ``{%!`` and ``{#!`` output a literal ``{{``, ``{%`` or ``{#``.

Directives: ``apply <function> ... end``, ``autoescape <function or None>``,
``block <name> ... end``, ``comment ...``, ``extends "file"``,
``for ... [else] end``, ``from x import y``, ``if ... elif ... else ... end``,
``import x``, ``include "file"``, ``module <expr>``, ``raw <expr>``,
``set x = y``, ``try ... except ... else ... finally ... end``,
``while ... [else] end``, ``break``, ``continue``, ``whitespace <mode>``, and
cyclone's ``super`` which, inside a ``block``, renders the parent template's
version of that block.

Each template is compiled to one Python function.  :meth:`Template.generate`
returns the rendered ``bytes``; when an expression evaluates to a Deferred (or
a coroutine) that has not fired yet, it returns a Deferred that fires with the
bytes instead.  Runtime errors keep their type; the template file and line are
shown in the traceback and added to the exception as a note.

Example::

    t = Template("<p>{{ user }}</p>")
    t.generate(user="<b>")          # b'<p>&lt;b&gt;</p>'

    loader = Loader("/path/to/templates")
    loader.load("page.html").generate(title="Hi")
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import linecache
import os
import posixpath
import re
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Iterator
from html import escape as _html_escape
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from cyclone import escape

__all__ = [
    "Template",
    "BaseLoader",
    "Loader",
    "DictLoader",
    "ParseError",
    "TemplateError",
    "filter_whitespace",
]

_DEFAULT_AUTOESCAPE = "xhtml_escape"

# Tells "argument not given" apart from an explicit None (autoescape=None
# means "no escaping").
_UNSET: Any = object()

_WHITESPACE_MODES = ("all", "single", "oneline")

# Values an expression may produce that the template waits for.
_WAITABLE = (defer.Deferred, types.CoroutineType)


class _WaitableClasses(dict[type, bool]):
    """Maps a class to whether its instances are waited for.

    Deferred's metaclass is ABCMeta, whose isinstance() costs several times a
    dict lookup; every non-string ``{{ }}`` value is checked, so the answer
    is cached per class.
    """

    def __missing__(self, cls: type) -> bool:
        if len(self) > 4096:
            # Classes made on the fly must not pile up forever.
            self.clear()
        waits = self[cls] = issubclass(cls, _WAITABLE)
        return waits


_waits = _WaitableClasses()


def filter_whitespace(mode: str, text: str) -> str:
    """Apply whitespace mode ``mode`` to ``text``.

    ``"all"`` keeps ``text`` unchanged; ``"single"`` collapses each run of
    whitespace to one character, a newline if the run held one and a space
    otherwise; ``"oneline"`` collapses each run to a single space.  Any other
    mode raises ``ValueError``.
    """
    if mode == "all":
        return text
    if mode == "single":
        text = re.sub(r"[\t ]+", " ", text)
        return re.sub(r"\s*\n\s*", "\n", text)
    if mode == "oneline":
        return re.sub(r"\s+", " ", text)
    raise ValueError(f"invalid whitespace mode {mode!r}")


class TemplateError(Exception):
    """Base class of the errors this module raises itself."""


class ParseError(TemplateError):
    """A template could not be parsed or compiled.

    ``filename`` and ``lineno`` say where; ``str()`` gives
    ``"<message> at <filename>:<lineno>"``.
    """

    def __init__(self, message: str, filename: str | None = None, lineno: int = 0) -> None:
        super().__init__(message, filename, lineno)
        self.message = message
        self.filename = filename
        self.lineno = lineno

    def __str__(self) -> str:
        return f"{self.message} at {self.filename}:{self.lineno}"


# ---------------------------------------------------------------------------
# Generated-code file names.
#
# Each compiled template gets its own pseudo file name whose source lines are
# put into linecache, so tracebacks show the generated line followed by
# "# file.html:3".  Names must be unique among live templates: two templates
# named "<string>" would otherwise show each other's source.

_filenames_lock = threading.Lock()
_live_filenames: set[str] = set()


def _claim_filename(name: str) -> str:
    with _filenames_lock:
        candidate = f"{name}.generated.py"
        serial = 1
        while candidate in _live_filenames:
            serial += 1
            candidate = f"{name}.generated.{serial}.py"
        _live_filenames.add(candidate)
        return candidate


def _release_filename(filename: str) -> None:
    with _filenames_lock:
        _live_filenames.discard(filename)
        linecache.cache.pop(filename, None)


class _SourceLoader:
    """Gives linecache the generated source again after linecache.clearcache()."""

    def __init__(self, source: str) -> None:
        self._source = source

    def get_source(self, name: str) -> str:
        return self._source


def _text(value: Any) -> bytes:
    """A ``{{ }}`` value as bytes: strings UTF-8 encoded, anything else str()'d."""
    if value.__class__ is str:
        return value.encode("utf-8")  # type: ignore[no-any-return]
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return str(value).encode("utf-8")


_NEEDS_ESCAPE = re.compile(r"[&<>\"']").search


def _xhtml_text(value: Any) -> bytes:
    """``_tt_utf8(xhtml_escape(_text(value)))`` without the bytes round trip."""
    cls = value.__class__
    if cls is not str:
        if cls is int:
            return str(value).encode("ascii")  # digits and "-" need no escaping
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        else:
            value = str(value)
    if _NEEDS_ESCAPE(value) is None:  # the common case: nothing to replace
        return value.encode("utf-8")
    return _html_escape(value).encode("utf-8")


def _bytes_escaper(function: Callable[[bytes], Any]) -> Callable[[Any], bytes]:
    # For a namespace whose "xhtml_escape" is not ours: call it the Tornado
    # way, with bytes in, and take str or bytes out.
    def escape_text(value: Any) -> bytes:
        return escape.utf8(function(_text(value)))  # type: ignore[return-value]

    return escape_text


_BASE_NAMESPACE: dict[str, Any] = {
    "escape": escape.xhtml_escape,
    "xhtml_escape": escape.xhtml_escape,
    "url_escape": escape.url_escape,
    "json_encode": escape.json_encode,
    "squeeze": escape.squeeze,
    "linkify": escape.linkify,
    "datetime": datetime,
    "_tt_utf8": escape.utf8,
    "_tt_string_types": (str, bytes),
    "_tt_waits": _waits,
    "_tt_text": _text,
    "_tt_xhtml_escape": _xhtml_text,
}


class Template:
    """A compiled template.

    ``template_string`` is ``str`` or UTF-8 ``bytes``.  ``name`` is used in
    error messages, to resolve relative ``include``/``extends`` paths and to
    pick the default whitespace mode (``"single"`` for names ending in
    ``.html`` or ``.js``, else ``"all"``).  ``autoescape`` names the escaping
    function in the template namespace (``None`` disables escaping);
    ``whitespace`` is one of ``"all"``, ``"single"``, ``"oneline"``.
    ``compress_whitespace`` is the deprecated boolean form of ``whitespace``.

    Raises :class:`ParseError` for syntax errors, including invalid Python in
    an expression or directive.
    """

    def __init__(
        self,
        template_string: str | bytes,
        name: str = "<string>",
        loader: BaseLoader | None = None,
        compress_whitespace: Any = _UNSET,
        autoescape: Any = _UNSET,
        whitespace: str | None = None,
    ) -> None:
        self.name: str = escape.native_str(name)  # type: ignore[assignment]
        # The original cyclone's default for compress_whitespace was None
        # ("decide by extension"), so None counts as not given.
        if compress_whitespace is not _UNSET and compress_whitespace is not None:
            warnings.warn(
                "compress_whitespace is deprecated; use whitespace='single' or 'all'",
                DeprecationWarning,
                stacklevel=2,
            )
            if whitespace is not None:
                raise ValueError("cannot set both whitespace and compress_whitespace")
            whitespace = "single" if compress_whitespace else "all"
        if whitespace is None:
            if loader is not None and loader.whitespace:
                whitespace = loader.whitespace
            elif self.name.endswith((".html", ".js")):
                whitespace = "single"
            else:
                whitespace = "all"
        filter_whitespace(whitespace, "")  # rejects unknown modes early
        self.whitespace: str = whitespace
        if autoescape is not _UNSET:
            self.autoescape: str | None = autoescape
        elif loader is not None:
            self.autoescape = loader.autoescape
        else:
            self.autoescape = _DEFAULT_AUTOESCAPE
        self.namespace: dict[str, Any] = loader.namespace if loader is not None else {}
        self.loader = loader

        reader = _Reader(self.name, escape.native_str(template_string), whitespace)  # type: ignore[arg-type]
        self.file = _File(self, _parse(reader, self))

        writer = self._generate_python(loader)
        python = "\n".join(writer.lines) + "\n"
        self._locations: list[tuple[str, int, str]] = writer.locations
        # What tracebacks show: each generated line tagged with its origin.
        self.code: str = "".join(
            f"{code}  # {where}\n" for code, (_, _, where) in zip(writer.lines, writer.locations)
        )
        self._filename = _claim_filename(self.name)
        weakref.finalize(self, _release_filename, self._filename)
        try:
            self.compiled: types.CodeType = compile(
                python, self._filename, "exec", dont_inherit=True
            )
        except SyntaxError as exc:
            origin, line = self._origin(exc.lineno)
            raise ParseError(f"Invalid Python in template: {exc.msg}", origin, line) from exc
        linecache.cache[self._filename] = (
            len(self.code),
            None,  # no mtime: linecache.checkcache() leaves the entry alone
            self.code.splitlines(True),
            self._filename,
        )
        self._function_code: types.CodeType = next(
            const
            for const in self.compiled.co_consts
            if isinstance(const, types.CodeType) and const.co_name == "_tt_execute"
        )
        self._is_generator = bool(self._function_code.co_flags & inspect.CO_GENERATOR)
        self._own_namespace = dict(
            _BASE_NAMESPACE,
            __name__=self.name.replace(".", "_"),
            __loader__=_SourceLoader(self.code),
        )

    def generate(self, **kwargs: Any) -> bytes | defer.Deferred[bytes]:
        """Render the template with ``kwargs`` added to its namespace.

        Returns ``bytes``, or a Deferred firing with ``bytes`` if an
        expression produced a Deferred or coroutine that had not finished
        yet.  Exceptions keep their type and carry a note naming the template
        file and line; in the Deferred case they arrive as its errback.
        """
        namespace = {**self._own_namespace, **self.namespace, **kwargs}
        if namespace["xhtml_escape"] is not escape.xhtml_escape:
            namespace["_tt_xhtml_escape"] = _bytes_escaper(namespace["xhtml_escape"])
        execute = types.FunctionType(self._function_code, namespace, "_tt_execute")
        try:
            if self._is_generator:
                return _Run(self, execute()).advance(None)
            return execute()
        except Exception as exc:
            self._annotate(exc)
            raise

    # -- internals ---------------------------------------------------------

    def _origin(self, generated_line: int | None) -> tuple[str, int]:
        if generated_line is None or not 0 < generated_line <= len(self._locations):
            return self.name, 0
        origin, line, _ = self._locations[generated_line - 1]
        return origin, line

    def _annotate(self, exc: BaseException) -> None:
        """Add a note naming the template line where ``exc`` passed through."""
        where = None
        tb = exc.__traceback__
        while tb is not None:
            # The innermost frame of our own code wins; nested "apply"
            # functions share the file name, other templates do not.
            if tb.tb_frame.f_code.co_filename == self._filename:
                lineno = tb.tb_lineno
                if 0 < lineno <= len(self._locations):
                    where = self._locations[lineno - 1][2]
            tb = tb.tb_next
        if where is None:
            return
        note = f"in template {where}"
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)

    def _generate_python(self, loader: BaseLoader | None) -> _CodeWriter:
        ancestors = self._get_ancestors(loader)
        ancestors.reverse()
        named_blocks: dict[str, list[_NamedBlock]] = {}
        for ancestor in ancestors:
            ancestor.find_named_blocks(loader, named_blocks)
        writer = _CodeWriter(named_blocks, loader, ancestors[0].template)
        ancestors[0].generate(writer)
        return writer

    def _get_ancestors(self, loader: BaseLoader | None) -> list[_File]:
        ancestors = [self.file]
        for chunk in self.file.body.chunks:
            if isinstance(chunk, _ExtendsBlock):
                if loader is None:
                    raise ParseError(
                        "{% extends %} block found, but no template loader", self.name, chunk.line
                    )
                parent = chunk.load(loader)
                ancestors.extend(parent._get_ancestors(loader))
        return ancestors


class _Run:
    """Steps a template's generator, waiting for the Deferreds it yields.

    Deferreds that have already fired are unwrapped on the spot, so a
    template whose Deferreds are all done still renders synchronously; only
    a pending one makes :meth:`advance` return a Deferred.
    """

    __slots__ = ("template", "gen", "out", "pending", "result", "waiting")

    _NOTHING: Any = object()

    def __init__(self, template: Template, gen: Any) -> None:
        self.template = template
        self.gen = gen
        self.out: defer.Deferred[bytes] | None = None
        self.pending: defer.Deferred[Any] | None = None
        self.result: Any = self._NOTHING
        self.waiting = False

    def advance(self, value: Any) -> bytes | defer.Deferred[bytes]:
        """Feed ``value`` (a result, a Failure or something to wait for) on.

        Returns the bytes when the template finishes without waiting,
        otherwise the Deferred that will fire with them.
        """
        while True:
            while isinstance(value, _WAITABLE):
                waited = defer.ensureDeferred(value)
                self.result = self._NOTHING
                waited.addBoth(self._arrived)
                if self.result is self._NOTHING:
                    self.pending = waited
                    self.waiting = True
                    if self.out is None:
                        self.out = defer.Deferred(self._cancel)
                    return self.out
                value, self.result = self.result, self._NOTHING
            try:
                if isinstance(value, Failure):
                    value = value.throwExceptionIntoGenerator(self.gen)
                else:
                    value = self.gen.send(value)
            except StopIteration as stop:
                if self.out is None:
                    return stop.value  # type: ignore[no-any-return]
                self.out.callback(stop.value)
                return self.out
            except Exception as exc:
                if self.out is None:
                    raise
                self.template._annotate(exc)
                self.out.errback(Failure())
                return self.out

    def _arrived(self, result: Any) -> None:
        # Returning None consumes the result (and any failure), as awaiting
        # a Deferred does.
        if self.waiting:
            self.waiting = False
            self.pending = None
            self.advance(result)
        else:
            self.result = result

    def _cancel(self, out: defer.Deferred[bytes]) -> None:
        # Cancelling the render cancels what it waits for; the resulting
        # CancelledError goes through the template like any other failure.
        if self.pending is not None:
            self.pending.cancel()


class BaseLoader:
    """Loads and caches templates by name.

    ``autoescape`` and ``whitespace`` are the defaults for the templates it
    loads; ``namespace`` is added to every template's namespace.  Loading is
    thread-safe.  Subclasses implement ``_create_template`` and may override
    :meth:`resolve_path`.
    """

    def __init__(
        self,
        autoescape: str | None = _DEFAULT_AUTOESCAPE,
        namespace: dict[str, Any] | None = None,
        whitespace: str | None = None,
    ) -> None:
        self.autoescape = autoescape
        self.namespace = namespace or {}
        self.whitespace = whitespace
        self.templates: dict[str, Template] = {}
        # Reentrant: compiling one template loads those it includes/extends.
        self.lock = threading.RLock()
        self._loading: list[str] = []

    def reset(self) -> None:
        """Forget every cached template, so files are read again."""
        with self.lock:
            self.templates = {}

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        """Turn ``name``, relative to the template ``parent_path``, into a
        loader key."""
        raise NotImplementedError()

    def load(self, name: str, parent_path: str | None = None) -> Template:
        """Return the compiled template ``name`` (relative to ``parent_path``),
        compiling it on first use."""
        name = self.resolve_path(name, parent_path=parent_path)
        with self.lock:
            template = self.templates.get(name)
            if template is None:
                if name in self._loading:
                    chain = " -> ".join([*self._loading[self._loading.index(name) :], name])
                    raise ParseError(f"templates include or extend each other: {chain}", name, 0)
                self._loading.append(name)
                try:
                    template = self._create_template(name)
                finally:
                    self._loading.pop()
                self.templates[name] = template
            return template

    def _create_template(self, name: str) -> Template:
        raise NotImplementedError()


class Loader(BaseLoader):
    """Loads templates from files under ``root_directory`` (read as UTF-8).

    A missing file raises ``FileNotFoundError`` naming its path.
    """

    def __init__(self, root_directory: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = os.path.abspath(root_directory)

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        if (
            parent_path
            and not parent_path.startswith("<")
            and not parent_path.startswith("/")
            and not name.startswith("/")
        ):
            parent_dir = os.path.dirname(os.path.abspath(os.path.join(self.root, parent_path)))
            candidate = os.path.abspath(os.path.join(parent_dir, name))
            # Only names that stay under the root become root-relative keys.
            if candidate.startswith(self.root + os.sep):
                name = candidate[len(self.root) + 1 :]
        return name

    def _create_template(self, name: str) -> Template:
        path = os.path.join(self.root, name)
        with open(path, "rb") as f:
            return Template(f.read(), name=name, loader=self)


class DictLoader(BaseLoader):
    """Loads templates from a dict mapping names to template strings.

    A missing name raises ``KeyError``.
    """

    def __init__(self, dict: dict[str, str | bytes], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dict = dict

    def resolve_path(self, name: str, parent_path: str | None = None) -> str:
        if (
            parent_path
            and not parent_path.startswith("<")
            and not parent_path.startswith("/")
            and not name.startswith("/")
        ):
            name = posixpath.normpath(posixpath.join(posixpath.dirname(parent_path), name))
        return name

    def _create_template(self, name: str) -> Template:
        return Template(self.dict[name], name=name, loader=self)


# ---------------------------------------------------------------------------
# Parse tree.  Each node writes Python source through a _CodeWriter.


class _Node:
    line = 0

    def each_child(self) -> Iterator[_Node]:
        return iter(())

    def generate(self, writer: _CodeWriter) -> None:
        raise NotImplementedError()

    def find_named_blocks(
        self, loader: BaseLoader | None, named_blocks: dict[str, list[_NamedBlock]]
    ) -> None:
        for child in self.each_child():
            child.find_named_blocks(loader, named_blocks)


class _ChunkList(_Node):
    def __init__(self, chunks: list[_Node]) -> None:
        self.chunks = chunks

    def each_child(self) -> Iterator[_Node]:
        return iter(self.chunks)

    def generate(self, writer: _CodeWriter) -> None:
        for chunk in self.chunks:
            chunk.generate(writer)


class _File(_Node):
    def __init__(self, template: Template, body: _ChunkList) -> None:
        self.template = template
        self.body = body

    def each_child(self) -> Iterator[_Node]:
        yield self.body

    def generate(self, writer: _CodeWriter) -> None:
        writer.write_line("def _tt_execute():", 0)
        with writer.indent():
            writer.write_line("_tt_buffer = []", 0)
            writer.write_line("_tt_append = _tt_buffer.append", 0)
            self.body.generate(writer)
            writer.write_line("return b''.join(_tt_buffer)", 0)


class _NamedBlock(_Node):
    def __init__(self, name: str, template: Template, line: int) -> None:
        self.name = name
        self.template = template
        self.line = line
        self.body = _ChunkList([])

    def each_child(self) -> Iterator[_Node]:
        yield self.body

    def generate(self, writer: _CodeWriter) -> None:
        # Whatever the most derived template defines for this name.
        chain = writer.named_blocks.get(self.name)
        writer.generate_block(chain[-1] if chain else self, self.line)

    def find_named_blocks(
        self, loader: BaseLoader | None, named_blocks: dict[str, list[_NamedBlock]]
    ) -> None:
        chain = named_blocks.setdefault(self.name, [])
        if not any(block is self for block in chain):
            chain.append(self)
        super().find_named_blocks(loader, named_blocks)


class _SuperBlock(_Node):
    def __init__(self, block: _NamedBlock, line: int) -> None:
        self.block = block
        self.line = line

    def generate(self, writer: _CodeWriter) -> None:
        chain = writer.named_blocks.get(self.block.name, [])
        for index, block in enumerate(chain):
            if block is self.block:
                if index > 0:
                    writer.generate_block(chain[index - 1], self.line)
                return


class _ExtendsBlock(_Node):
    def __init__(self, name: str, template_name: str, line: int) -> None:
        self.name = name
        self.template_name = template_name
        self.line = line

    def load(self, loader: BaseLoader) -> Template:
        try:
            return loader.load(self.name, self.template_name)
        except (OSError, KeyError, TemplateError) as exc:
            exc.add_note(f"loading {self.name!r} for {{% extends %}} at {self.template_name}:{self.line}")
            raise

    def generate(self, writer: _CodeWriter) -> None:
        pass


class _IncludeBlock(_Node):
    def __init__(self, name: str, template_name: str, line: int) -> None:
        self.name = name
        self.template_name = template_name
        self.line = line

    def load(self, loader: BaseLoader | None) -> Template:
        if loader is None:
            raise ParseError("{% include %} needs a template loader", self.template_name, self.line)
        try:
            return loader.load(self.name, self.template_name)
        except (OSError, KeyError, TemplateError) as exc:
            exc.add_note(f"loading {self.name!r} for {{% include %}} at {self.template_name}:{self.line}")
            raise

    def find_named_blocks(
        self, loader: BaseLoader | None, named_blocks: dict[str, list[_NamedBlock]]
    ) -> None:
        self.load(loader).file.find_named_blocks(loader, named_blocks)

    def generate(self, writer: _CodeWriter) -> None:
        included = self.load(writer.loader)
        with writer.include(included, self.line):
            included.file.body.generate(writer)


class _BodyBlock(_Node):
    """A directive with a Python fragment (``statement``) and a body."""

    def __init__(self, statement: str, line: int, body: _ChunkList) -> None:
        self.statement = statement
        self.line = line
        self.body = body

    def each_child(self) -> Iterator[_Node]:
        yield self.body


class _ApplyBlock(_BodyBlock):
    """``{% apply function %}``: ``statement`` is the function's expression."""

    def generate(self, writer: _CodeWriter) -> None:
        function = f"_tt_apply{writer.apply_counter}"
        writer.apply_counter += 1
        writer.write_line(f"def {function}():", self.line)
        with writer.indent():
            writer.write_line("_tt_buffer = []", self.line)
            writer.write_line("_tt_append = _tt_buffer.append", self.line)
            outer_awaits, writer.awaits = writer.awaits, False
            self.body.generate(writer)
            # If the body can wait, the nested function is a generator and
            # has to be delegated to rather than called.
            body_awaits, writer.awaits = writer.awaits, outer_awaits
            writer.write_line("return b''.join(_tt_buffer)", self.line)
        call = f"(yield from {function}())" if body_awaits else f"{function}()"
        writer.write_line(f"_tt_tmp = ({self.statement})({call})", self.line)
        writer.write_line(
            "if _tt_waits[_tt_tmp.__class__]: _tt_tmp = (yield _tt_tmp)", self.line
        )
        writer.write_line("_tt_append(_tt_utf8(_tt_tmp))", self.line)
        writer.awaits = True


class _ControlBlock(_BodyBlock):
    def generate(self, writer: _CodeWriter) -> None:
        writer.write_line(f"{self.statement}:", self.line)
        with writer.indent():
            self.body.generate(writer)
            writer.write_line("pass", self.line)  # the body may be empty


class _IntermediateControlBlock(_Node):
    def __init__(self, statement: str, line: int) -> None:
        self.statement = statement
        self.line = line

    def generate(self, writer: _CodeWriter) -> None:
        writer.write_line("pass", self.line)  # the preceding branch may be empty
        writer.write_line(f"{self.statement}:", self.line, writer.indent_level - 1)


class _Statement(_Node):
    def __init__(self, statement: str, line: int) -> None:
        self.statement = statement
        self.line = line

    def generate(self, writer: _CodeWriter) -> None:
        writer.write_line(self.statement, self.line)


class _Expression(_Node):
    def __init__(self, expression: str, line: int, raw: bool = False) -> None:
        self.expression = expression
        self.line = line
        self.raw = raw

    def generate(self, writer: _CodeWriter) -> None:
        line = self.line
        writer.write_line(f"_tt_tmp = {self.expression}", line)
        writer.write_line("if _tt_waits[_tt_tmp.__class__]: _tt_tmp = (yield _tt_tmp)", line)
        autoescape = writer.current_template.autoescape
        if self.raw or autoescape is None:
            writer.write_line("_tt_append(_tt_text(_tt_tmp))", line)
        elif autoescape == "xhtml_escape":
            # The common case gets a fused helper that skips Tornado's
            # str -> bytes -> str round trip.  Template.generate swaps in a
            # bytes-taking call when the namespace rebinds xhtml_escape; only
            # a template rebinding it itself ({% set %}) is not noticed.
            writer.write_line("_tt_append(_tt_xhtml_escape(_tt_tmp))", line)
        else:
            # Like Tornado, the escape function receives bytes.
            writer.write_line(f"_tt_append(_tt_utf8({autoescape}(_tt_text(_tt_tmp))))", line)
        writer.awaits = True


class _Text(_Node):
    def __init__(self, value: str, line: int, whitespace: str) -> None:
        self.value = value
        self.line = line
        self.whitespace = whitespace

    def generate(self, writer: _CodeWriter) -> None:
        value = self.value
        # Whitespace inside <pre> is significant; leave such chunks alone.
        if "<pre>" not in value:
            value = filter_whitespace(self.whitespace, value)
        if value:
            writer.write_line(f"_tt_append({escape.utf8(value)!r})", self.line)


class _CodeWriter:
    """Accumulates generated lines and, for each, the template line it came from."""

    def __init__(
        self,
        named_blocks: dict[str, list[_NamedBlock]],
        loader: BaseLoader | None,
        current_template: Template,
    ) -> None:
        self.named_blocks = named_blocks
        self.loader = loader
        self.current_template = current_template
        self.lines: list[str] = []
        # (template name, template line, "name:line (via ...)") per line
        self.locations: list[tuple[str, int, str]] = []
        self.apply_counter = 0
        self.indent_level = 0
        self.include_stack: list[tuple[Template, int]] = []
        self.awaits = False
        self._blocks_in_progress: list[_NamedBlock] = []

    @contextlib.contextmanager
    def indent(self) -> Iterator[None]:
        self.indent_level += 1
        try:
            yield
        finally:
            self.indent_level -= 1

    @contextlib.contextmanager
    def include(self, template: Template, line: int) -> Iterator[None]:
        self.include_stack.append((self.current_template, line))
        self.current_template = template
        try:
            yield
        finally:
            self.current_template, _ = self.include_stack.pop()

    def generate_block(self, block: _NamedBlock, line: int) -> None:
        if any(b is block for b in self._blocks_in_progress):
            raise ParseError(
                f"block {block.name!r} contains itself", self.current_template.name, line
            )
        self._blocks_in_progress.append(block)
        try:
            if block.template is self.current_template:
                block.body.generate(self)
            else:
                with self.include(block.template, line):
                    block.body.generate(self)
        finally:
            self._blocks_in_progress.pop()

    def write_line(self, code: str, line: int, indent: int | None = None) -> None:
        name = self.current_template.name
        where = f"{name}:{line}"
        if self.include_stack:
            via = ", ".join(f"{t.name}:{n}" for t, n in reversed(self.include_stack))
            where += f" (via {via})"
        prefix = "    " * (self.indent_level if indent is None else indent)
        # A multi-line expression must keep one map entry per physical line.
        physical = code.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self.lines.append(prefix + physical[0])
        self.lines.extend(physical[1:])
        self.locations.extend([(name, line, where)] * len(physical))


class _Reader:
    """The template text with a cursor that counts lines."""

    def __init__(self, name: str, text: str, whitespace: str) -> None:
        self.name = name
        self.text = text
        self.whitespace = whitespace
        self.pos = 0
        self.line = 1

    def consume_to(self, end: int) -> str:
        chunk = self.text[self.pos : end]
        self.line += chunk.count("\n")
        self.pos = end
        return chunk

    def error(self, message: str, line: int | None = None) -> ParseError:
        return ParseError(message, self.name, self.line if line is None else line)


_INTERMEDIATE_BLOCKS = {
    "else": ("if", "for", "while", "try"),
    "elif": ("if",),
    "except": ("try",),
    "finally": ("try",),
}

_LOOPS = ("for", "while")


def _parse(
    reader: _Reader,
    template: Template,
    in_block: str | None = None,
    in_loop: str | None = None,
    named_block: _NamedBlock | None = None,
    block_line: int = 0,
) -> _ChunkList:
    body = _ChunkList([])
    text = reader.text
    while True:
        # Find the next "{{", "{%" or "{#".
        curly = reader.pos
        while True:
            curly = text.find("{", curly)
            if curly == -1 or curly + 1 >= len(text):
                if in_block is not None:
                    raise reader.error(f"Missing {{% end %}} block for {in_block}", block_line)
                line = reader.line
                body.chunks.append(_Text(reader.consume_to(len(text)), line, reader.whitespace))
                return body
            if text[curly + 1] not in "{%#":
                curly += 1
                continue
            # With three or more curlies in a row the innermost two open the
            # tag, which helps templates for languages that use braces.
            if text[curly + 1] == "{" and curly + 2 < len(text) and text[curly + 2] == "{":
                curly += 1
                continue
            break

        if curly > reader.pos:
            line = reader.line
            body.chunks.append(_Text(reader.consume_to(curly), line, reader.whitespace))

        line = reader.line
        start = reader.consume_to(curly + 2)

        if reader.pos < len(text) and text[reader.pos] == "!":
            reader.consume_to(reader.pos + 1)
            body.chunks.append(_Text(start, line, reader.whitespace))
            continue

        if start == "{#":
            end = text.find("#}", reader.pos)
            if end == -1:
                raise reader.error("Missing end comment #}", line)
            reader.consume_to(end + 2)
            continue

        if start == "{{":
            end = text.find("}}", reader.pos)
            if end == -1:
                raise reader.error("Missing end expression }}", line)
            contents = reader.consume_to(end).strip()
            reader.consume_to(end + 2)
            if not contents:
                raise reader.error("Empty expression", line)
            body.chunks.append(_Expression(contents, line))
            continue

        end = text.find("%}", reader.pos)
        if end == -1:
            raise reader.error("Missing end block %}", line)
        contents = reader.consume_to(end).strip()
        reader.consume_to(end + 2)
        if not contents:
            raise reader.error("Empty block tag ({% %})", line)
        # Any whitespace separates the operator, not only a space.
        parts = contents.split(None, 1)
        operator = parts[0]
        suffix = parts[1].strip() if len(parts) > 1 else ""

        if operator in _INTERMEDIATE_BLOCKS:
            allowed = _INTERMEDIATE_BLOCKS[operator]
            if in_block is None:
                raise reader.error(f"{operator} outside {'/'.join(allowed)} block", line)
            if in_block not in allowed:
                raise reader.error(f"{operator} block cannot be attached to {in_block} block", line)
            body.chunks.append(_IntermediateControlBlock(contents, line))
            continue

        if operator == "end":
            if in_block is None:
                raise reader.error("Extra {% end %} block", line)
            return body

        if operator == "comment":
            continue

        if operator == "autoescape":
            if not suffix:
                raise reader.error("autoescape missing function name (or None)", line)
            # Applies to the whole file: code is generated after parsing.
            template.autoescape = None if suffix == "None" else suffix
            continue

        if operator == "whitespace":
            if suffix not in _WHITESPACE_MODES:
                raise reader.error(f"invalid whitespace mode {suffix!r}", line)
            reader.whitespace = suffix
            continue

        chunk: _Node
        if operator == "extends":
            name = suffix.strip("\"'")
            if not name:
                raise reader.error("extends missing file path", line)
            chunk = _ExtendsBlock(name, reader.name, line)
        elif operator in ("import", "from"):
            if not suffix:
                raise reader.error("import missing statement", line)
            chunk = _Statement(contents, line)
        elif operator == "include":
            name = suffix.strip("\"'")
            if not name:
                raise reader.error("include missing file path", line)
            chunk = _IncludeBlock(name, reader.name, line)
        elif operator == "set":
            if not suffix:
                raise reader.error("set missing statement", line)
            chunk = _Statement(suffix, line)
        elif operator == "raw":
            if not suffix:
                raise reader.error("raw missing expression", line)
            chunk = _Expression(suffix, line, raw=True)
        elif operator == "module":
            if not suffix:
                raise reader.error("module missing expression", line)
            chunk = _Expression("_tt_modules." + suffix, line, raw=True)
        elif operator == "super":
            if named_block is None:
                raise reader.error("super outside block block", line)
            chunk = _SuperBlock(named_block, line)
        elif operator in ("break", "continue"):
            if in_loop is None:
                raise reader.error(f"{operator} outside for/while block", line)
            chunk = _Statement(contents, line)
        elif operator == "apply":
            if not suffix:
                raise reader.error("apply missing method name", line)
            # The body becomes a nested function, so it is not inside any
            # enclosing loop as far as Python is concerned.
            block_body = _parse(reader, template, "apply", None, named_block, line)
            chunk = _ApplyBlock(suffix, line, block_body)
        elif operator == "block":
            name = suffix.strip("\"'")
            if not name:
                raise reader.error("block missing name", line)
            block = _NamedBlock(name, template, line)
            block.body = _parse(reader, template, "block", in_loop, block, line)
            chunk = block
        elif operator in ("if", "try", "for", "while"):
            loop = operator if operator in _LOOPS else in_loop
            block_body = _parse(reader, template, operator, loop, named_block, line)
            chunk = _ControlBlock(contents, line, block_body)
        else:
            raise reader.error(f"unknown operator: {operator!r}", line)
        body.chunks.append(chunk)
