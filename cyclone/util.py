"""Small utilities shared across cyclone: ``ObjectDict``, ``import_object`` and
the Python 2-era type aliases the original cyclone exported.

Importing this module changes nothing global (the original patched Twisted's
log observer on import; we never do).
"""

from __future__ import annotations

import importlib
import types
from typing import Any, Callable

__all__ = [
    "ObjectDict",
    "import_object",
    "bytes_type",
    "unicode_type",
    "basestring_type",
    "doctests",
    "lazy_attribute",
]

bytes_type = bytes
unicode_type = str
basestring_type = str


class ObjectDict(dict):
    """A dict whose keys can also be read and written as attributes.

    >>> d = ObjectDict(a=1)
    >>> d.b = 2
    >>> (d.a, d["b"])
    (1, 2)
    >>> d.missing
    Traceback (most recent call last):
        ...
    AttributeError: missing
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


class lazy_attribute:
    """An attribute made on first use by ``function(instance)``, where
    ``function`` is the dotted name of a function imported only then, and kept
    on the instance: later reads cost a plain attribute lookup, and assigning
    the attribute replaces it (a non-data descriptor).

    ``RequestHandler.session`` and ``Application.redis`` are made this way, so
    that a class carries a feature's attribute without importing the feature.
    """

    __slots__ = ("function", "name", "_made_by")

    def __init__(self, function: str) -> None:
        self.function = function
        self.name = ""
        self._made_by: Any = None  # the function, once imported

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        made_by = self._made_by
        if made_by is None:
            made_by = self._made_by = import_object(self.function)
        value = made_by(instance)
        instance.__dict__[self.name] = value
        return value


class RemoteMethod:
    """``proxy.name`` of an RPC client: calling it calls ``call(name, *args,
    **kwargs)``; an attribute of it is a dotted name (``proxy.system.listMethods``)."""

    __slots__ = ("_call", "_name")

    def __init__(self, call: Callable[..., Any], name: str) -> None:
        self._call = call
        self._name = name

    def __getattr__(self, name: str) -> "RemoteMethod":
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteMethod(self._call, f"{self._name}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(self._name, *args, **kwargs)


def import_object(name: str) -> Any:
    """Import a module or an object by dotted name.

    >>> import_object("os.path") is import_object("os").path
    True
    >>> import_object("os.path.join").__name__
    'join'

    Raises ``ImportError`` when the module or the attribute does not exist.
    An ``ImportError`` raised *inside* an existing module (a broken import of
    its own) propagates unchanged rather than being reported as "not found".
    """
    if "." not in name:
        return importlib.import_module(name)
    parent_name, _, attr = name.rpartition(".")
    # Resolving the parent recursively handles "pkg.module.Class.attr".
    parent = import_object(parent_name)
    try:
        return getattr(parent, attr)
    except AttributeError:
        pass
    if isinstance(parent, types.ModuleType):
        # A submodule that its package does not import by itself.
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    raise ImportError(f"No module or object named {name!r}")


def doctests() -> Any:
    """The doctests of this module as a ``unittest`` suite (original
    cyclone API)."""
    import doctest

    return doctest.DocTestSuite()
