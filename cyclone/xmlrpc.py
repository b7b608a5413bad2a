"""XML-RPC over HTTP: ``XmlrpcRequestHandler`` serves a handler's
``xmlrpc_<name>`` methods (http://xmlrpc.com/spec.md).

.. code-block:: python

    class Math:
        def xmlrpc_add(self, a, b):
            return a + b

    class Api(cyclone.xmlrpc.XmlrpcRequestHandler):
        subHandlers = {"math": Math()}           # math.add

        async def xmlrpc_echo(self, value):
            "Return the value."
            return value

    app = cyclone.web.Application([(r"/RPC2", Api)])

Any client calls it: ``xmlrpc.client.ServerProxy(url).math.add(1, 2)`` (in a
thread: it blocks), ``twisted.web.xmlrpc.Proxy(b"http://host/RPC2").callRemote
("echo", 1)``, or this module's ``Proxy(url).math.add(1, 2)`` (both
Deferreds; ``Proxy`` refuses entity expansion in answers and stands on
``cyclone.httpclient``). The tests use all three.

Methods may return a value, a Deferred, or be ``@inlineCallbacks`` generators
or ``async def`` coroutines; they get the URL's groups first, then the
params, whose number is checked against the method's signature before it is
called. A method raises (or returns) ``xmlrpc.client.Fault`` to answer a
fault of its own; any other exception is logged with its traceback and
answered ``Fault(FAILURE, "error")`` (with the traceback in the fault string
only under the ``debug`` or ``serve_traceback`` setting). Unknown names get
``Fault(NOT_FOUND, ...)``; a body that is not an XML-RPC call, or a result
that cannot be sent (``None`` without ``allowNone``, an int beyond 32 bits,
characters XML cannot carry), ``Fault(FAILURE, ...)``. Every answer is HTTP
200 ``text/xml``, as the XML-RPC spec says.

``system.listMethods``, ``system.methodHelp`` (the method's docstring),
``system.methodSignature`` (a ``signature`` attribute such as ``[["int",
"int", "int"]]``, else one made from complete type annotations, else
``"undef"``) and ``system.multicall`` are built in, unless a sub-handler
named ``system`` replaces them.

Hostile XML: the standard library's parser for XML-RPC is expat, which
expands entities declared in a DOCTYPE. Expat 2.4+ stops a "billion laughs"
only once it has produced 8 MiB of text (measured here with expat 2.5: about
a second and 77 MB for a 600-byte body), lets a 100 KB body grow to 8 MB when
one entity is used 80 times, and silently drops external entities. XML-RPC
needs no DTD, so ``loads`` refuses any DOCTYPE when expat reports its start,
before any entity is declared or expanded: such a body costs what its bytes
cost, and is answered with a fault.

HTTP: POST only (405 otherwise), a request ``Content-Type`` of ``text/xml``
or ``application/xml`` (anything else is 415: a browser cannot send those to
another site without a CORS preflight, so the XSRF check is skipped). Limits:
the body is bounded by the application's ``max_body_size`` (413);
``xmlrpc_max_multicall`` (setting, default 100) bounds the calls of one
``system.multicall``.
"""

from __future__ import annotations

import datetime
import inspect
import re
import traceback
import xmlrpc.client
from typing import Any, Callable
from xml.parsers import expat

from twisted.internet import defer
from twisted.python import failure

from cyclone import web
from cyclone.concurrent import ensure_deferred, is_async_result
from cyclone.jsonrpc import arguments_problem
from cyclone.log import app_log
from cyclone.util import RemoteMethod

__all__ = ["XmlrpcRequestHandler", "Proxy", "XMLRPCInputError", "loads", "loads_response", "Fault"]

Fault = xmlrpc.client.Fault

#: the default of the ``xmlrpc_max_multicall`` setting
DEFAULT_MAX_MULTICALL = 100


class XMLRPCInputError(ValueError):
    """A body that is not a well-formed, DTD-free XML-RPC method call."""


# -- parsing (no I/O) ------------------------------------------------------------------------


def _refuse_doctype(*args: Any) -> None:
    raise XMLRPCInputError("a DOCTYPE (DTD, entities) is not accepted in XML-RPC")


def _refuse_external(*args: Any) -> int:
    raise XMLRPCInputError("external entities are not accepted in XML-RPC")


def _parse(data: bytes, root: str, use_datetime: bool, use_builtin_types: bool) -> tuple[tuple[Any, ...], Any]:
    """``(params, method_name)`` of a document whose root element must be ``root``."""
    unmarshaller = xmlrpc.client.Unmarshaller(use_datetime=use_datetime, use_builtin_types=use_builtin_types)
    unmarshaller.xml(None, None)  # expat gives str: nothing to decode (xmlrpc.client does the same)
    parser = expat.ParserCreate(None, None)  # the encoding comes from the XML declaration
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype  # never reached: the DOCTYPE is refused first
    parser.ExternalEntityRefHandler = _refuse_external
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    start = unmarshaller.start
    roots: list[str] = []

    def start_element(tag: str, attrs: Any) -> None:
        if not roots:
            roots.append(tag)
            if tag != root:
                raise XMLRPCInputError(f"the document is a <{tag}>, not a <{root}>")
        start(tag, attrs)

    parser.StartElementHandler = start_element
    parser.EndElementHandler = unmarshaller.end
    parser.CharacterDataHandler = unmarshaller.data
    try:
        parser.Parse(data, True)
        params = unmarshaller.close()
    except (XMLRPCInputError, Fault):
        raise
    except expat.ExpatError as exc:
        raise XMLRPCInputError(f"not well-formed XML: {exc}") from None
    except Exception as exc:  # the unmarshaller's ValueError, TypeError, ResponseError, ...
        raise XMLRPCInputError(f"not XML-RPC: {type(exc).__name__}: {exc}") from None
    return params, unmarshaller.getmethodname()


def loads(
    data: bytes, use_datetime: bool = False, use_builtin_types: bool = False
) -> tuple[tuple[Any, ...], str]:
    """``(params, method_name)`` of an XML-RPC ``methodCall`` document.

    Like ``xmlrpc.client.loads`` (the same types come out), but any DOCTYPE
    is refused as it starts, so no entity is ever declared or expanded, and
    anything but a ``methodCall`` with a ``methodName`` is refused. Raises
    ``XMLRPCInputError`` saying what is wrong.
    """
    params, name = _parse(data, "methodCall", use_datetime, use_builtin_types)
    if not name:
        raise XMLRPCInputError("the call has no <methodName>")
    return params, name


def loads_response(data: bytes, use_datetime: bool = False, use_builtin_types: bool = False) -> Any:
    """The result in an XML-RPC ``methodResponse`` document, parsed as
    ``loads`` parses calls (no DOCTYPE). Raises the ``Fault`` it carries, or
    ``XMLRPCInputError``."""
    params, _ = _parse(data, "methodResponse", use_datetime, use_builtin_types)
    if len(params) != 1:
        raise XMLRPCInputError(f"a response has one param, not {len(params)}")
    return params[0]


# characters XML 1.0 cannot carry (xmlrpc.client writes them as they are)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _dumps(value: Any, allow_none: bool) -> bytes:
    """The ``methodResponse`` for ``value`` (a result, or a Fault)."""
    body = value if isinstance(value, Fault) else (value,)
    text = xmlrpc.client.dumps(body, methodresponse=True, allow_none=allow_none)
    match = _NOT_XML.search(text)
    if match:
        raise ValueError(f"character {match.group()!r} cannot be sent in XML")
    return text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for lone surrogates


# -- introspection --------------------------------------------------------------------------

_XMLRPC_TYPES: dict[Any, str] = {
    int: "int",
    bool: "boolean",
    float: "double",
    str: "string",
    bytes: "base64",
    xmlrpc.client.Binary: "base64",
    list: "array",
    tuple: "array",
    dict: "struct",
    datetime.datetime: "dateTime.iso8601",
    xmlrpc.client.DateTime: "dateTime.iso8601",
    None: "nil",
    type(None): "nil",
}


def _signatures(method: Callable) -> list[list[str]] | str:
    """XML-RPC signatures (return type first) from a ``signature`` attribute
    or from complete annotations; ``"undef"`` when unknown."""
    explicit = getattr(method, "signature", None)
    if explicit is not None:
        return explicit
    try:
        signature = inspect.signature(method, eval_str=True)
    except Exception:  # unresolvable string annotations, builtins
        return "undef"
    result = _XMLRPC_TYPES.get(signature.return_annotation)
    if result is None:
        return "undef"
    types, optional = [], 0
    for parameter in signature.parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            return "undef"
        name = _XMLRPC_TYPES.get(parameter.annotation)
        if name is None:
            return "undef"
        types.append(name)
        optional += parameter.default is not parameter.empty
    required = len(types) - optional
    return [[result, *types[:count]] for count in range(required, len(types) + 1)]


class _SystemMethods:
    """``system.*``: introspection and multicall for one handler."""

    def __init__(self, handler: "XmlrpcRequestHandler") -> None:
        self.handler = handler

    def xmlrpc_listMethods(self) -> list[str]:
        """The names of every method this server answers."""
        return self.handler.listProcedures()

    def xmlrpc_methodHelp(self, name: str) -> str:
        """The documentation of the method ``name``."""
        return inspect.getdoc(self.handler.lookupProcedure(name)) or ""

    def xmlrpc_methodSignature(self, name: str) -> list[list[str]] | str:
        """The signatures of the method ``name`` (return type first), or "undef"."""
        return _signatures(self.handler.lookupProcedure(name))

    def xmlrpc_multicall(self, calls: list) -> Any:
        """Run several calls in one request: ``[{"methodName": ..., "params":
        [...]}, ...]`` gives a list of ``[result]`` or fault structs, in order."""
        return self.handler._multicall(calls)


# -- the handler ----------------------------------------------------------------------------


class XmlrpcRequestHandler(web.RequestHandler):
    """Serves the ``xmlrpc_<name>`` methods of the handler, and of its
    sub-handlers (``prefix.name``); see the module's documentation."""

    #: fault code for a name that is not served
    NOT_FOUND = 8001
    #: fault code for everything else that fails (input, params, exceptions, output)
    FAILURE = 8002
    #: joins a sub-handler's prefix and a method's name
    separator = "."
    #: send ``None`` as ``<nil/>`` (an extension), instead of a fault
    allowNone = False
    #: give methods ``datetime.datetime`` instead of ``xmlrpc.client.DateTime``
    useDateTime = False
    #: give methods ``bytes`` and ``datetime.datetime`` (``Binary``, ``DateTime`` otherwise)
    useBuiltinTypes = False
    #: prefix -> object whose ``xmlrpc_`` methods (and own ``subHandlers``) are served
    subHandlers: dict[str, Any] = {}
    #: request media types taken as XML-RPC (anything else is 415)
    xmlrpc_content_types = frozenset({"text/xml", "application/xml"})
    #: a non-browser API: its content types already keep other sites out (see the module doc)
    no_xsrf = True

    @classmethod
    def putSubHandler(cls, prefix: str, handler: Any) -> None:
        """Serve ``handler``'s ``xmlrpc_`` methods as ``prefix.<name>`` (for this class)."""
        cls.subHandlers = {**cls.subHandlers, prefix: handler}

    def getSubHandler(self, prefix: str) -> Any:
        return self.subHandlers.get(prefix)

    def getSubHandlerPrefixes(self) -> list[str]:
        return list(self.subHandlers)

    def lookupProcedure(self, path: str) -> Callable:
        """The callable for the dotted name ``path``; ``Fault(NOT_FOUND)`` if none."""
        target: Any = self
        prefixes = path.split(self.separator) if self.separator else [path]
        name = prefixes.pop()
        for depth, prefix in enumerate(prefixes):
            if target is self:
                sub = self.getSubHandler(prefix)
                if sub is None and prefix == "system":
                    sub = _SystemMethods(self)
            else:
                subs = getattr(target, "subHandlers", None)
                sub = subs.get(prefix) if isinstance(subs, dict) else None
            if sub is None:
                raise Fault(self.NOT_FOUND, f"no such subHandler {self.separator.join(prefixes[:depth + 1])}")
            target = sub
        method = getattr(target, "xmlrpc_" + name, None) if name else None
        if method is None or not callable(method):
            raise Fault(self.NOT_FOUND, f"function {path} not found")
        return method

    def listProcedures(self) -> list[str]:
        """Every dotted name served, ``system.*`` included, sorted."""
        names: set[str] = set()
        separator = self.separator

        def visit(target: Any, prefix: str, subs: dict, ancestors: frozenset[int]) -> None:
            if id(target) in ancestors:  # a sub-handler that contains itself
                return
            ancestors = ancestors | {id(target)}
            for attribute in dir(target):
                if attribute.startswith("xmlrpc_") and callable(getattr(target, attribute, None)):
                    names.add(prefix + attribute[len("xmlrpc_"):])
            for sub_prefix, sub in subs.items():
                nested = getattr(sub, "subHandlers", None)
                visit(sub, f"{prefix}{sub_prefix}{separator}", nested if isinstance(nested, dict) else {}, ancestors)

        subs = {prefix: self.getSubHandler(prefix) for prefix in self.getSubHandlerPrefixes()}
        subs.setdefault("system", _SystemMethods(self))
        visit(self, "", {prefix: sub for prefix, sub in subs.items() if sub is not None}, frozenset())
        return sorted(names)

    # -- HTTP --------------------------------------------------------------------------------

    def post(self, *args: Any, **kwargs: Any) -> defer.Deferred | None:
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.partition(";")[0].strip().lower() not in self.xmlrpc_content_types:
            raise web.HTTPError(415, reason="XML-RPC requests must be text/xml")
        try:
            params, name = loads(self.request.body, self.useDateTime, self.useBuiltinTypes)
        except XMLRPCInputError as exc:
            self._reply(Fault(self.FAILURE, f"Can't deserialize input: {exc}"))
            return None
        outcome = self._call(name, params, args, kwargs)
        if isinstance(outcome, defer.Deferred):
            return outcome.addCallback(self._reply)
        self._reply(outcome)
        return None

    def _reply(self, value: Any) -> None:
        try:
            body = _dumps(value, self.allowNone)
        except Exception as exc:  # TypeError, OverflowError, ValueError, RecursionError
            try:
                body = _dumps(Fault(self.FAILURE, f"can't serialize output: {exc}"), False)
            except Exception:  # the explanation itself cannot be sent
                body = _dumps(Fault(self.FAILURE, "can't serialize output"), False)
        self.set_header("Content-Type", "text/xml")
        self.finish(body)

    # -- calling -----------------------------------------------------------------------------

    def _call(self, name: str, params: tuple, path_args: tuple = (), path_kwargs: dict | None = None) -> Any:
        """The result of one call (a value, a Fault, or a Deferred of either);
        never raises."""
        try:
            method = self.lookupProcedure(name)
        except Fault as fault:
            return fault
        args = (*path_args, *params) if path_args else params
        kwargs = path_kwargs or {}
        problem = arguments_problem(method, args, kwargs)
        if problem is not None:
            return Fault(self.FAILURE, f"invalid params for {name}: {problem}")
        try:
            result = method(*args, **kwargs)
        except Exception as exc:
            return self._failed(failure.Failure(exc), name)
        if is_async_result(result):
            return ensure_deferred(result).addErrback(self._failed, name)
        return result

    def _failed(self, reason: failure.Failure, name: str) -> Fault:
        exc = reason.value
        if isinstance(exc, Fault):
            return exc
        app_log.error(
            "XML-RPC: an exception in %s (%s)",
            name,
            self._request_summary(),
            exc_info=(reason.type, exc, reason.getTracebackObject()),
        )
        settings = self.settings
        if settings.get("serve_traceback", settings.get("debug")):
            return Fault(self.FAILURE, "".join(traceback.format_exception(reason.type, exc, reason.getTracebackObject())))
        return Fault(self.FAILURE, "error")

    def _multicall(self, calls: Any) -> Any:
        if not isinstance(calls, list):
            raise Fault(self.FAILURE, "system.multicall takes an array of calls")
        limit = self.settings.get("xmlrpc_max_multicall", DEFAULT_MAX_MULTICALL)
        if len(calls) > limit:
            raise Fault(self.FAILURE, f"system.multicall of {len(calls)} calls; at most {limit} are taken")
        outcomes = [self._one_of_multicall(call) for call in calls]
        if any(isinstance(outcome, defer.Deferred) for outcome in outcomes):
            waiting = [o if isinstance(o, defer.Deferred) else defer.succeed(o) for o in outcomes]
            return defer.gatherResults(waiting, consumeErrors=True)
        return outcomes

    def _one_of_multicall(self, call: Any) -> Any:
        if not isinstance(call, dict):
            return self._fault_struct(Fault(self.FAILURE, "a call is a struct"))
        name, params = call.get("methodName"), call.get("params", [])
        if not isinstance(name, str) or not isinstance(params, list):
            return self._fault_struct(Fault(self.FAILURE, "a call has a methodName string and a params array"))
        if name == f"system{self.separator}multicall":
            return self._fault_struct(Fault(self.FAILURE, "system.multicall cannot be nested"))
        outcome = self._call(name, tuple(params))
        if isinstance(outcome, defer.Deferred):
            return outcome.addCallback(self._multicall_member)
        return self._multicall_member(outcome)

    def _multicall_member(self, outcome: Any) -> Any:
        if isinstance(outcome, Fault):
            return self._fault_struct(outcome)
        try:  # one result that cannot be sent must not lose the others
            _dumps(outcome, self.allowNone)
        except Exception as exc:
            return self._fault_struct(Fault(self.FAILURE, f"can't serialize output: {exc}"))
        return [outcome]

    @staticmethod
    def _fault_struct(fault: Fault) -> dict[str, Any]:
        return {"faultCode": fault.faultCode, "faultString": fault.faultString}


# -- the client ---------------------------------------------------------------------------------


class Proxy:
    """An XML-RPC client on ``cyclone.httpclient.fetch``, with the interface of
    ``twisted.web.xmlrpc.Proxy`` (``callRemote``) and attribute calls.

    .. code-block:: python

        proxy = cyclone.xmlrpc.Proxy("http://127.0.0.1:8888/RPC2", request_timeout=5)
        total = await proxy.callRemote("math.add", 1, 2)
        total = await proxy.math.add(1, 2)

    What it adds to Twisted's ``Proxy`` (which still works against
    ``XmlrpcRequestHandler``): answers are parsed by ``loads_response``, so a
    hostile server's DOCTYPE (entity expansion) is refused instead of
    expanded; it stands on the maintained HTTP client instead of
    ``twisted.web.http.HTTPClient`` (deprecated since Twisted 24.7), with
    keep-alive, certificate checks, timeouts and ``max_body_size``
    (``fetch_kwargs``). A fault fails the Deferred with ``Fault``; a body
    that is not an XML-RPC response with ``XMLRPCInputError``; an HTTP error
    with ``cyclone.httpclient.HTTPClientError``.
    """

    def __init__(
        self,
        url: str,
        allowNone: bool = False,
        useDateTime: bool = False,
        useBuiltinTypes: bool = False,
        **fetch_kwargs: Any,
    ) -> None:
        for name in ("method", "body", "postdata", "body_producer"):
            if name in fetch_kwargs:
                raise TypeError(f"Proxy makes the request's {name} itself")
        headers = dict(fetch_kwargs.pop("headers", None) or {})
        headers.setdefault("Content-Type", "text/xml")
        self.url = url
        self.allowNone = allowNone
        self.useDateTime = useDateTime
        self.useBuiltinTypes = useBuiltinTypes
        self._headers = headers
        self._fetch_kwargs = fetch_kwargs

    def __getattr__(self, name: str) -> RemoteMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        return RemoteMethod(self.callRemote, name)

    def __repr__(self) -> str:
        return f"<XML-RPC proxy of {self.url}>"

    def callRemote(self, method: str, *args: Any) -> defer.Deferred:
        """Call ``method`` (a dotted name) with ``args``: a Deferred of the result."""
        from cyclone.httpclient import fetch

        # xmlrpc.client.dumps writes the method name as it is: escape it here
        body = xmlrpc.client.dumps(args, xmlrpc.client.escape(method), allow_none=self.allowNone).encode("utf-8")
        d = fetch(self.url, method="POST", body=body, headers=dict(self._headers), raise_error=True,
                  **self._fetch_kwargs)
        return d.addCallback(lambda response: loads_response(response.body, self.useDateTime, self.useBuiltinTypes))
