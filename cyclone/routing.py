"""Routing: which target serves a request (Tornado's ``tornado.routing``).

A ``Router`` turns a request into a *request delegate*, the object
``cyclone.httpserver`` feeds the request to (``headers_received()``,
``data_received(chunk)``, ``finish()``, ``on_connection_close()``; see that
module). Routers are factories' ``start_request`` too, so one can be served
directly: ``HTTPServer(router)``.

A ``RuleRouter`` tries its rules in order. A rule is a ``Matcher``
(``PathMatches``, ``HostMatches``, ``AnyMatches``, ``DefaultHostMatches``) and a
target; the first rule whose matcher matches *and* whose target gives a
delegate wins, so a nested router that finds nothing lets the next rule try::

    router = RuleRouter([
        Rule(HostMatches(r"api\\.example\\.com"), api_application),
        Rule(PathMatches("/app/.*"), other_application),
        ("/legacy", plain_callable),
    ])
    HTTPServer(router)

A target is a ``Router`` (an ``Application`` is one), an object with
``start_request(connection, request)``, or a callable taking the request
(called once its body is read; it answers through ``request.connection``).
A ``RequestHandler`` class or a list of rules is a target only in an
``Application``'s rules. ``URLSpec`` is the rule of a path pattern and a handler,
as ``cyclone.web.URLSpec``.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from typing import Any, Sequence

from cyclone.escape import url_escape, url_unescape, utf8
from cyclone.log import app_log
from cyclone.util import import_object

__all__ = [
    "Router",
    "ReversibleRouter",
    "RuleRouter",
    "ReversibleRuleRouter",
    "Rule",
    "Matcher",
    "AnyMatches",
    "HostMatches",
    "DefaultHostMatches",
    "PathMatches",
    "URLSpec",
    "URLReverseError",
]


class URLReverseError(ValueError):
    """``reverse_url``/``reverse`` could not build a URL for the arguments: the
    pattern is not a literal path with groups, or the argument count is wrong."""


# ----------------------------------------------------------------------------
# Routers
# ----------------------------------------------------------------------------


class Router:
    """Finds the request delegate for a request; subclasses implement
    ``find_handler``."""

    def find_handler(self, request: Any, **kwargs: Any) -> Any | None:
        """The request delegate that serves ``request``, or None if this
        router has none (a parent router then tries its next rule; at the top
        the answer is a bare 404). ``kwargs`` are what a parent's matcher
        found (``path_args``, ``path_kwargs``, ``target_kwargs``)."""
        raise NotImplementedError()

    def start_request(self, connection: Any, request: Any) -> Any:
        """The ``cyclone.httpserver`` factory interface: a router serves as
        ``HTTPServer(router)``."""
        delegate = self.find_handler(request)
        if delegate is None:
            app_log.debug("No route for %s %s", request.method, request.path)
            return _NotFoundDelegate(connection)
        return _adapt_message_delegate(request, delegate)


class ReversibleRouter(Router):
    """A router that builds URLs for named routes."""

    def reverse_url(self, name: str, *args: Any) -> str | None:
        """The URL of the route ``name`` with ``args`` in its groups, or None
        if this router has no such route."""
        raise NotImplementedError()


# a rule given as a tuple: (matcher or path pattern, target[, target_kwargs[, name]])
RuleList = Sequence[Any]


class RuleRouter(Router):
    """A router over an ordered list of ``Rule`` objects.

    A rule may be given as a tuple of ``Rule``'s arguments; a string (or
    compiled pattern) in place of the matcher is a path pattern, and such a
    tuple becomes a ``URLSpec``.
    """

    def __init__(self, rules: RuleList | None = None) -> None:
        self.rules: list[Rule] = []
        if rules:
            self.add_rules(rules)

    def add_rules(self, rules: RuleList) -> None:
        """Append ``rules`` (``Rule`` objects or tuples of their arguments)."""
        for rule in rules:
            rule = _as_rule(rule)
            if type(self).get_target_delegate is RuleRouter.get_target_delegate:
                _refuse_handler_class(rule._target)
            self.rules.append(self.process_rule(rule))

    def process_rule(self, rule: Rule) -> Rule:
        """A hook to check or change each rule as it is added."""
        return rule

    def find_handler(self, request: Any, **kwargs: Any) -> Any | None:
        for rule in self.rules:
            params = rule.matcher.match(request)
            if params is None:
                continue
            if rule.target_kwargs:
                params["target_kwargs"] = rule.target_kwargs
            delegate = self.get_target_delegate(rule.target, request, **params)
            if delegate is not None:
                return delegate
        return None

    def get_target_delegate(self, target: Any, request: Any, **target_params: Any) -> Any | None:
        """The request delegate of a rule's ``target`` (None: no match here).

        A ``Router`` is asked with ``find_handler(request, **target_params)``;
        an object with ``start_request`` is asked for a delegate as
        ``cyclone.httpserver`` asks a factory; a callable is called as
        ``target(request, **target_params)`` once the body is read.
        Subclasses extend this for other kinds of target.
        """
        if isinstance(target, Router):
            return _adapt_message_delegate(request, target.find_handler(request, **target_params))
        start_request = getattr(target, "start_request", None)
        if start_request is not None and not isinstance(target, type):
            from cyclone.httpserver import _is_tornado_style_delegate

            if _is_tornado_style_delegate(target):  # Tornado's (server_conn, request_conn)
                delegate = start_request(request.connection, request.connection)
            else:
                delegate = start_request(request.connection, request)
            return _adapt_message_delegate(request, delegate)
        if callable(target):
            _refuse_handler_class(target)  # a dotted name, imported only now
            if target_params:
                target = functools.partial(target, **target_params)
            from cyclone.httpserver import _BufferingDelegate

            return _BufferingDelegate(request.connection, request, target)
        return None


class ReversibleRuleRouter(ReversibleRouter, RuleRouter):
    """A ``RuleRouter`` whose named rules build URLs (``reverse_url``),
    looking into nested reversible routers too."""

    def __init__(self, rules: RuleList | None = None) -> None:
        self.named_rules: dict[str, Rule] = {}
        super().__init__(rules)

    def process_rule(self, rule: Rule) -> Rule:
        rule = super().process_rule(rule)
        if rule.name:
            if rule.name in self.named_rules:
                app_log.warning("Multiple handlers named %s; replacing previous value", rule.name)
            self.named_rules[rule.name] = rule
        return rule

    def reverse_url(self, name: str, *args: Any) -> str | None:
        rule = self.named_rules.get(name)
        if rule is not None:
            return rule.matcher.reverse(*args)
        for rule in self.rules:
            target = rule.target
            if isinstance(target, ReversibleRouter):
                try:
                    url = target.reverse_url(name, *args)
                except KeyError:  # an Application: "not found" is a KeyError there
                    url = None
                if url is not None:
                    return url
        return None


# ----------------------------------------------------------------------------
# Rules and matchers
# ----------------------------------------------------------------------------


class Rule:
    """A ``matcher`` and the ``target`` that serves what it matches.

    ``target_kwargs`` reach the target (a handler's ``initialize``, or
    ``target_kwargs=`` of a callable); ``name`` is for ``reverse_url``. A
    target given as a dotted name is imported when first used.
    """

    def __init__(
        self,
        matcher: Matcher,
        target: Any,
        target_kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(matcher, Matcher):
            raise TypeError(f"a Rule's matcher must be a Matcher, not {matcher!r}")
        self.matcher = matcher
        self._target = target
        self.target_kwargs: dict[str, Any] = target_kwargs or {}
        self.name = name

    @property
    def target(self) -> Any:
        target = self._target
        if isinstance(target, str):
            target = self._target = import_object(target)
        return target

    @target.setter
    def target(self, value: Any) -> None:
        self._target = value

    def reverse(self, *args: Any) -> str | None:
        return self.matcher.reverse(*args)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.matcher!r}, {self._target!r}, "
            f"kwargs={self.target_kwargs!r}, name={self.name!r})"
        )


class Matcher:
    """Decides whether a rule applies to a request."""

    def match(self, request: Any) -> dict[str, Any] | None:
        """None if the request does not match; otherwise a new dict of
        parameters for the target (``path_args``, ``path_kwargs``, or none)."""
        raise NotImplementedError()

    def reverse(self, *args: Any) -> str | None:
        """The URL this matcher matches for ``args``, if it can build one."""
        return None


class AnyMatches(Matcher):
    """Matches every request."""

    def match(self, request: Any) -> dict[str, Any] | None:
        return {}

    def __repr__(self) -> str:
        return "AnyMatches()"


def _compile_full(pattern: str | re.Pattern) -> re.Pattern:
    """A pattern anchored at the end (``$`` appended to a string without one)."""
    if isinstance(pattern, re.Pattern):
        return pattern
    if not pattern.endswith("$"):
        pattern += "$"
    return re.compile(pattern)


class HostMatches(Matcher):
    """Matches requests whose host name (``request.host_name``: the Host
    header, lower-cased, without the port) matches ``host_pattern``."""

    def __init__(self, host_pattern: str | re.Pattern) -> None:
        self.host_pattern = _compile_full(host_pattern)

    def match(self, request: Any) -> dict[str, Any] | None:
        if self.host_pattern.match(request.host_name):
            return {}
        return None

    def __repr__(self) -> str:
        return f"HostMatches({self.host_pattern.pattern!r})"


class DefaultHostMatches(Matcher):
    """Matches every request, if the application's ``default_host`` matches
    ``host_pattern``, except those that came through a proxy (with an
    ``X-Real-Ip`` header): they were meant for a named host."""

    def __init__(self, application: Any, host_pattern: str | re.Pattern) -> None:
        self.application = application
        self.host_pattern = _compile_full(host_pattern)

    def match(self, request: Any) -> dict[str, Any] | None:
        default_host = self.application.default_host
        if default_host is None or "X-Real-Ip" in request.headers:
            return None
        if self.host_pattern.match(default_host):
            return {}
        return None

    def __repr__(self) -> str:
        return f"DefaultHostMatches({self.host_pattern.pattern!r})"


def _unquote_path(value: str | None) -> bytes | None:
    """A matched group, percent-decoded to bytes (the handler decodes them);
    None for an optional group that did not take part in the match."""
    if value is None:
        return None
    return url_unescape(value, encoding=None, plus=False)


class PathMatches(Matcher):
    """Matches requests whose path matches ``path_pattern`` (``$`` is
    appended). Its groups become the handler's arguments: positional, or by
    name if named; mixing the two is refused. A group that did not take part
    (``/a/(.+)?``) passes None."""

    def __init__(self, path_pattern: str | re.Pattern) -> None:
        self.regex = _compile_full(path_pattern)
        if self.regex.groupindex and len(self.regex.groupindex) != self.regex.groups:
            raise ValueError(
                f"groups in url patterns must be all named or all positional: {self.regex.pattern!r}"
            )
        self._path, self._group_count, self._optional = _reverse_template(self.regex)

    def match(self, request: Any) -> dict[str, Any] | None:
        match = self.regex.match(request.path)
        if match is None:
            return None
        if not self.regex.groups:
            return {}
        if self.regex.groupindex:
            return {
                "path_args": [],
                "path_kwargs": {str(k): _unquote_path(v) for k, v in match.groupdict().items()},
            }
        return {"path_args": [_unquote_path(g) for g in match.groups()], "path_kwargs": {}}

    def reverse(self, *args: Any) -> str:
        """The path with ``args`` (converted with ``str``, UTF-8, URL-escaped)
        in its groups; None for an optional group leaves it out.

        ``URLReverseError`` if the pattern is not a literal path with groups
        (character classes, alternation or repetition outside the groups) or
        the number of arguments is not the number of groups.
        """
        if self._path is None:
            raise URLReverseError(f"cannot reverse url regex {self.regex.pattern}")
        if len(args) != self._group_count:
            raise URLReverseError(
                f"{self.regex.pattern} takes {self._group_count} arguments, not {len(args)}"
            )
        if not args:
            return self._path
        converted = []
        for arg, optional in zip(args, self._optional):
            if arg is None and optional:
                converted.append("")
                continue
            if not isinstance(arg, (str, bytes)):
                arg = str(arg)
            converted.append(url_escape(utf8(arg), plus=False))
        return self._path % tuple(converted)

    def __repr__(self) -> str:
        return f"PathMatches({self.regex.pattern!r})"


def _reverse_template(regex: re.Pattern) -> tuple[str | None, int | None, tuple[bool, ...]]:
    """(``%s`` template, group count, which groups are optional) for a path
    pattern, or (None, None, ()) if it cannot be reversed.

    Reversible: literal text (``\\``-escaped punctuation, and ``.`` taken as
    itself, as Tornado does) around plain groups; a ``?`` after a group or a
    character makes it optional, and the URL built keeps it (or leaves out an
    optional group given None).
    """
    pattern = regex.pattern
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    if regex.groups != pattern.count("(") or pattern.count(")") != regex.groups:
        return None, None, ()  # nested, non-capturing or escaped parentheses
    fragments = pattern.split("(")
    pieces = []
    optional = []
    first = _unescape_literal(fragments[0])
    if first is None:
        return None, None, ()
    pieces.append(first)
    for fragment in fragments[1:]:
        if fragment.count(")") != 1:
            return None, None, ()  # nested groups
        after = fragment.split(")", 1)[1]
        is_optional = after.startswith("?")
        if is_optional:
            after = after[1:]
        literal = _unescape_literal(after)
        if literal is None:
            return None, None, ()
        optional.append(is_optional)
        pieces.append("%s" + literal)
    return "".join(pieces), regex.groups, tuple(optional)


def _unescape_literal(fragment: str) -> str | None:
    """A regex fragment as the literal text it matches (``%`` doubled for the
    template), or None if it matches more than one string."""
    out: list[str] = []
    chars = iter(fragment)
    for char in chars:
        if char == "\\":
            nxt = next(chars, None)
            if nxt is None or nxt.isalnum():
                return None  # a character class (\d, \w, ...) or a dangling escape
            out.append(nxt)
        elif char == "?":
            if not out:
                return None  # nothing before it to make optional
            # "x?": the URL built keeps the character
        elif char in "*+[]{}|^$()":
            return None
        else:
            out.append(char)
    return "".join(out).replace("%", "%%")


class URLSpec(Rule):
    """A path pattern and a handler: ``URLSpec(r"/user/([0-9]+)", UserHandler,
    kwargs, name="user")``, a ``Rule`` with a ``PathMatches`` matcher.
    ``handler_class`` may be a dotted name (imported when first used)."""

    def __init__(
        self,
        pattern: str | re.Pattern,
        handler: Any,
        kwargs: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        matcher = PathMatches(pattern)
        super().__init__(matcher, handler, kwargs, name)
        self.regex = matcher.regex

    @property
    def handler_class(self) -> Any:
        """The handler class (a dotted name is imported on first use)."""
        return self.target

    @handler_class.setter
    def handler_class(self, value: Any) -> None:
        self._target = value

    @property
    def kwargs(self) -> dict[str, Any]:
        """The handler's ``initialize`` arguments (``target_kwargs``)."""
        return self.target_kwargs

    @kwargs.setter
    def kwargs(self, value: dict[str, Any] | None) -> None:
        self.target_kwargs = value or {}

    def reverse(self, *args: Any, **kwargs: Any) -> str:
        """The path for ``args`` (see ``PathMatches.reverse``); keyword
        arguments become a sorted query string."""
        path = self.matcher.reverse(*args)
        if kwargs:
            path += "?" + urllib.parse.urlencode(sorted(kwargs.items()))
        return path

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.regex.pattern!r}, {self._target!r}, "
            f"kwargs={self.target_kwargs!r}, name={self.name!r})"
        )


def _as_rule(rule: Any) -> Rule:
    """A ``Rule`` from a rule or a tuple of ``Rule``'s (or ``URLSpec``'s) arguments."""
    if isinstance(rule, Rule):
        return rule
    if isinstance(rule, (tuple, list)):
        if not 2 <= len(rule) <= 4:
            raise ValueError(f"a rule must have 2 to 4 elements: {rule!r}")
        if isinstance(rule[0], (str, re.Pattern)):
            return URLSpec(*rule)
        return Rule(*rule)
    raise TypeError(f"a rule must be a Rule or a tuple, not {rule!r}")


def _refuse_handler_class(target: Any) -> None:
    """``TypeError`` for a ``RequestHandler`` class: only an ``Application``
    (whose handlers need it) serves one."""
    if not isinstance(target, type):
        return
    from cyclone.web import RequestHandler  # here: cyclone.web imports this module

    if issubclass(target, RequestHandler):
        raise TypeError(
            f"{target.__name__} is a RequestHandler: it is a target only in an "
            "Application's rules (route to Application([...]) instead)"
        )


# ----------------------------------------------------------------------------
# Delegates for targets that are not handlers
# ----------------------------------------------------------------------------


def _adapt_message_delegate(request: Any, delegate: Any) -> Any:
    """A Tornado-style ``HTTPMessageDelegate`` (``headers_received(start_line,
    headers)``) adapted to the request delegate interface; others as they are."""
    from cyclone.httpserver import _adapt_message_delegate as adapt

    return adapt(request, delegate)


class _NotFoundDelegate:
    """A router found nothing: a bodiless 404 once the request is read."""

    __slots__ = ("connection",)

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def headers_received(self) -> None:
        return None

    def data_received(self, chunk: bytes) -> None:
        return None

    def finish(self) -> None:
        self.connection.write_head(404, [("Content-Length", "0")], finish=True)

    def on_connection_close(self) -> None:
        return None
