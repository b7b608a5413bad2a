"""cyclone.bottle: small applications written as decorated functions.

The original cyclone's bottle-style API, working on Python 3, with typed URL
parameters in the style of the Retro toolkit::

    from cyclone.bottle import App

    app = App()

    @app.route("/")
    def index(handler):
        return "Hello, world"

    @app.route("/item/{id:int}")
    def item(handler, id):                  # id is an int; /item/abc is a 404
        return {"id": id}                   # a dict is sent as JSON

    @app.route("/echo", method=["GET", "POST"])
    async def echo(handler):
        return handler.get_argument("text", "")

    app.run(port=8888)                      # or: reactor.listenTCP(8888, app.create_app())

Each function receives the ``RequestHandler`` serving the request first
(``handler.get_argument``, ``handler.set_header``, ``handler.write``, ...),
then the URL's parameters. What it returns is sent: ``str`` or ``bytes`` as
they are, a ``dict`` as JSON, an iterable (a list, a generator, an async
generator) piece by piece, each piece flushed before the next is asked for
(so a slow client slows the generator; it runs on the reactor thread, so it
must not block: use an async generator to wait). ``None`` sends what the function
wrote itself. A function may be ``async def``, return a Deferred, or be
``@defer.inlineCallbacks``; decorators for handler methods
(``@cyclone.web.authenticated``) work on it.

Paths: ``{name}`` matches one path segment (a ``str``), ``{name:TYPE}``
converts it first; a value that does not convert is a 404. Types:

===================  ===============================  ===========
type                 matches                          gives
===================  ===============================  ===========
(none), ``str``      one segment (no ``/``)           ``str``
``int``              ``-12``, ``7``                   ``int``
``float``            ``3``, ``-0.5``, ``1e3``         ``float`` (finite)
``rest``, ``path``   the rest of the path, ``/`` too  ``str``
``word``             letters only                     ``str``
``digits``           digits only                      ``str``
a regular expression what it matches (no groups)      ``str``
===================  ===============================  ===========

and they are passed by name (percent-decoded: a ``rest`` value may hold
``..``, so check one before using it as a file path). A path without ``{...}`` is a Tornado regular
expression, whose groups are passed by position (the original's routes).
``method`` is one method, a list of them, or ``"any"`` (every method);
routes on one path with different methods share it.

The module-level ``route``, ``create_app`` and ``run`` work on a default
``App`` (``default_app``), as in the original cyclone, whose route list was
emptied by the first ``create_app``; here it is kept, so ``create_app`` may be
called again. ``run()`` listens on 127.0.0.1 by default (the original: all
interfaces); pass ``host="0.0.0.0"`` to be reachable from other machines.
"""

from __future__ import annotations

import inspect
import math
import re
import sys
from typing import Any, Callable, Iterable

from twisted.internet import defer

import cyclone.web
from cyclone.concurrent import ensure_deferred

__all__ = ["App", "Router", "default_app", "route", "create_app", "run", "CONVERTERS"]

_SEGMENT = r"[^/]+"
#: name -> (regular expression, conversion) of the ``{name:TYPE}`` types
CONVERTERS: dict[str, tuple[str, Callable[[str], Any] | None]] = {
    "str": (_SEGMENT, None),
    "string": (_SEGMENT, None),
    "int": (r"[-+]?[0-9]+", int),
    "integer": (r"[-+]?[0-9]+", int),
    "float": (r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", None),  # see _to_float
    "number": (r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", None),
    "rest": (r".*", None),
    "path": (r".*", None),
    "any": (r".*", None),
    "word": (r"[A-Za-z]+", None),
    "alpha": (r"[A-Za-z]+", None),
    "digits": (r"[0-9]+", None),
}
# {name} or {name:expression}; an expression may hold {m,n} repetitions
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::((?:[^{}]|\{[0-9]*,?[0-9]*\})+))?\}")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ALL_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")


def _to_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "1e999": not a price anyone meant
        raise ValueError(text)
    return value


def compile_path(path: str) -> tuple[str, dict[str, Callable[[str], Any]]]:
    """The Tornado pattern of a route's ``path`` and its conversions by
    parameter name. ``ValueError`` for an unknown type, a repeated name or
    an expression with groups."""
    pieces = []
    conversions: dict[str, Callable[[str], Any]] = {}
    names: set[str] = set()
    position = 0
    for match in _PLACEHOLDER_RE.finditer(path):
        name, kind = match.group(1), match.group(2)
        if name in names:
            raise ValueError(f"{path!r}: parameter {name!r} appears twice")
        names.add(name)
        pieces.append(re.escape(path[position : match.start()]))
        position = match.end()
        if kind is None:
            expression = _SEGMENT
        elif kind in CONVERTERS:
            expression, conversion = CONVERTERS[kind]
            if kind in ("float", "number"):
                conversion = _to_float
            if conversion is not None:
                conversions[name] = conversion
        elif _IDENTIFIER_RE.match(kind):
            raise ValueError(f"{path!r}: unknown parameter type {kind!r} (known: {', '.join(CONVERTERS)})")
        else:
            try:
                compiled = re.compile(kind)
            except re.error as exc:
                raise ValueError(f"{path!r}: bad expression for {name!r}: {exc}") from None
            if compiled.groups:
                raise ValueError(f"{path!r}: the expression for {name!r} must have no groups; use (?:...)")
            expression = kind
        pieces.append(f"(?P<{name}>{expression})")
    if not names:
        return path, {}  # a Tornado regular expression, as in the original
    pieces.append(re.escape(path[position:]))
    return "".join(pieces), conversions


def _methods(method: str | Iterable[str]) -> list[str]:
    names = [method] if isinstance(method, str) else list(method)
    result = []
    for name in names:
        for part in name.split(","):
            part = part.strip().upper()
            if part == "ANY":
                result.append("ANY")
            elif part in _ALL_METHODS:
                result.append(part)
            else:
                raise ValueError(f"unknown HTTP method {part!r}")
    if not result:
        raise ValueError("a route needs at least one method")
    return result


async def _stream_async(handler: cyclone.web.RequestHandler, pieces: Any) -> None:
    async for piece in pieces:
        handler.write(piece)
        await handler.flush()


async def _stream(handler: cyclone.web.RequestHandler, pieces: Any) -> None:
    for piece in pieces:
        handler.write(piece)
        await handler.flush()  # the next piece is asked for once the client took this one


def _send(handler: cyclone.web.RequestHandler, result: Any) -> defer.Deferred | None:
    """Send what a route function returned; a Deferred while streaming."""
    if result is None:
        return None
    if isinstance(result, (str, bytes, dict)):
        handler.write(result)
        return None
    if hasattr(result, "__aiter__"):
        return ensure_deferred(_stream_async(handler, result))
    if hasattr(result, "__iter__"):
        return ensure_deferred(_stream(handler, result))
    raise TypeError(
        f"a route function returns str, bytes, a dict, an iterable or None, not {type(result).__name__}"
    )


async def _finish_awaited(handler: cyclone.web.RequestHandler, result: Any) -> None:
    result = await ensure_deferred(result)
    streaming = _send(handler, result)
    if streaming is not None:
        await streaming


def _make_method(callback: Callable[..., Any], conversions: dict[str, Callable[[str], Any]]) -> Callable:
    """A handler method calling the route function ``callback``."""

    def method(self: cyclone.web.RequestHandler, *args: Any, **kwargs: Any) -> Any:
        if conversions:
            for name, convert in conversions.items():
                try:
                    kwargs[name] = convert(kwargs[name])
                except (ValueError, OverflowError):
                    raise cyclone.web.HTTPError(404, "%s=%r does not convert", name, kwargs[name]) from None
        result = callback(self, *args, **kwargs)
        if isinstance(result, defer.Deferred) or inspect.isawaitable(result):
            return ensure_deferred(_finish_awaited(self, result))
        return _send(self, result)

    method.__name__ = getattr(callback, "__name__", "route")
    method.__doc__ = getattr(callback, "__doc__", None)
    return method


class Router:
    """The functions routed to one path, by method; calling it makes the
    handler serving a request (the original cyclone's ``Router``)."""

    def __init__(self, base_handler: type[cyclone.web.RequestHandler] | None = None) -> None:
        self.items: list[tuple[str, Callable[..., Any]]] = []
        self.base_handler = base_handler or cyclone.web.RequestHandler
        self.conversions: dict[str, Callable[[str], Any]] = {}
        self._handler_class: type[cyclone.web.RequestHandler] | None = None

    def add(self, method: str, callback: Callable[..., Any]) -> None:
        """Route ``method`` (a name such as "get", or "default"/"any" for
        every method) to ``callback``."""
        name = method.lower()
        name = "default" if name == "any" else name
        if any(existing == name for existing, _ in self.items):
            raise ValueError(f"{name.upper()} is already routed on this path")
        self.items.append((name, callback))
        self._handler_class = None

    def handler_class(self, base_handler: type[cyclone.web.RequestHandler] | None = None) -> type:
        """A ``base_handler`` subclass whose methods call the functions."""
        base = base_handler or self.base_handler
        if self._handler_class is not None and self._handler_class.__bases__[0] is base:
            return self._handler_class
        namespace = {name: _make_method(callback, self.conversions) for name, callback in self.items}
        if "default" in namespace and "head" not in namespace:
            namespace["head"] = namespace["default"]
        callbacks = ", ".join(getattr(c, "__name__", "route") for _, c in self.items)
        cls = type(f"BottleHandler[{callbacks}]", (base,), namespace)
        self._handler_class = cls
        return cls

    def __call__(self, *args: Any, **kwargs: Any) -> cyclone.web.RequestHandler:
        return self.handler_class()(*args, **kwargs)


class App:
    """A bottle-style application: routes added with ``@app.route``, served
    by ``create_app()`` (a ``cyclone.web.Application``) or ``run()``.

    ``settings`` are defaults for ``create_app``: ``base_handler`` (the
    class every route's handler subclasses, ``RequestHandler`` by default),
    ``more_handlers`` (Tornado-style rules served after the routes) and any
    ``Application`` setting.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.routes: dict[str, Router] = {}  # Tornado pattern -> the path's functions

    def route(
        self,
        path: str | Callable[..., Any] | None = None,
        method: str | Iterable[str] = "GET",
        callback: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> Callable[..., Any]:
        """Decorator: ``@app.route("/item/{id:int}", method=["GET", "PUT"])``.

        ``@app.route`` without a path routes ``/<function name>``;
        ``app.route(path, method, callback)`` routes without decorating.
        Other keyword arguments are accepted and ignored, as the original did.
        """
        if callable(path):
            path, callback = None, path
        methods = _methods(method)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            route_path = path if path is not None else "/" + function.__name__
            if not isinstance(route_path, str) or not route_path.startswith("/"):
                raise ValueError(f"a route's path starts with '/': {route_path!r}")
            pattern, conversions = compile_path(route_path)
            router = self.routes.get(pattern)
            if router is None:
                router = self.routes[pattern] = Router()
                router.conversions = conversions
            for name in methods:
                router.add("default" if name == "ANY" else name, function)
            return function

        if callback is not None:
            return decorator(callback)
        return decorator

    def get(self, path: str) -> Callable[..., Any]:
        """``@app.get(path)``: ``route(path, method="GET")``."""
        return self.route(path, method="GET")

    def post(self, path: str) -> Callable[..., Any]:
        """``@app.post(path)``: ``route(path, method="POST")``."""
        return self.route(path, method="POST")

    def put(self, path: str) -> Callable[..., Any]:
        """``@app.put(path)``: ``route(path, method="PUT")``."""
        return self.route(path, method="PUT")

    def delete(self, path: str) -> Callable[..., Any]:
        """``@app.delete(path)``: ``route(path, method="DELETE")``."""
        return self.route(path, method="DELETE")

    def create_app(self, **settings: Any) -> cyclone.web.Application:
        """A ``cyclone.web.Application`` serving the routes (then
        ``more_handlers``); ``settings`` add to and override the App's."""
        merged = {**self.settings, **settings}
        base = merged.pop("base_handler", None) or cyclone.web.RequestHandler
        more = list(merged.pop("more_handlers", None) or [])
        for name in ("host", "port", "log"):  # run()'s own arguments
            merged.pop(name, None)
        handlers: list[Any] = [(pattern, router.handler_class(base)) for pattern, router in self.routes.items()]
        return cyclone.web.Application(handlers + more, **merged)

    def run(self, host: str = "127.0.0.1", port: int = 8888, log: Any = sys.stdout, **settings: Any) -> None:
        """Serve on ``host``:``port`` and run the reactor until it stops.

        ``log`` is a file that receives Twisted's log (``None``: no log).
        Other arguments are ``create_app``'s.
        """
        from twisted.internet import reactor

        if log is not None:
            from twisted.logger import globalLogBeginner, textFileLogObserver

            globalLogBeginner.beginLoggingTo([textFileLogObserver(log)])
        reactor.listenTCP(int(port), self.create_app(**settings), interface=host)
        reactor.run()


#: the App of the module-level ``route``, ``create_app`` and ``run``
default_app = App()


def route(
    path: str | Callable[..., Any] | None = None,
    method: str | Iterable[str] = "GET",
    callback: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> Callable[..., Any]:
    """``default_app.route``: the original cyclone's decorator."""
    return default_app.route(path, method, callback, **kwargs)


def create_app(**settings: Any) -> cyclone.web.Application:
    """``default_app.create_app``."""
    return default_app.create_app(**settings)


def run(**settings: Any) -> None:
    """``default_app.run``: ``run(host="127.0.0.1", port=8888, log=sys.stdout,
    base_handler=..., more_handlers=[...], **application_settings)``."""
    default_app.run(**settings)
