"""JSON-RPC over HTTP: ``JsonrpcRequestHandler`` serves a handler's
``jsonrpc_<name>`` methods.

.. code-block:: python

    class Calculator(cyclone.jsonrpc.JsonrpcRequestHandler):
        def jsonrpc_subtract(self, minuend, subtrahend):
            return minuend - subtrahend

        async def jsonrpc_lookup(self, key):
            value = await self.settings["db"].get(key)
            if value is None:
                raise cyclone.jsonrpc.JsonRPCError(404, "no such key", data=key)
            return value

    app = cyclone.web.Application([(r"/rpc", Calculator)])

Requests with ``"jsonrpc": "2.0"`` are answered as the JSON-RPC 2.0
specification (https://www.jsonrpc.org/specification) says: ids of any allowed
type echoed, params by position (array) or by name (object), notifications (no
``id``) get no answer, batches (arrays) are answered member by member in
order, and errors are the spec's error objects:

====== ================ ==================================================
code   message          when
====== ================ ==================================================
-32700 Parse error      the body is not JSON (or not UTF-8)
-32600 Invalid Request  not a request object; an empty batch; a batch over
                        ``jsonrpc_max_batch_size`` members
-32601 Method not found no ``jsonrpc_<method>`` on the handler
-32602 Invalid params   the params do not fit the method's signature
                        (checked before it is called)
-32603 Internal error   the method raised: logged with its traceback; the
                        answer carries the traceback (as ``data``) only with
                        the ``debug`` or ``serve_traceback`` setting
====== ================ ==================================================

A method raises ``JsonRPCError(code, message, data=None)`` to answer an error
of its own. A request object without a ``"jsonrpc"`` member is answered in the
JSON-RPC 1.0 shape the original cyclone used (``{"result": ..., "error":
..., "id": ...}``, with the same error objects), so its clients keep working.

HTTP: POST only (405 otherwise), a request ``Content-Type`` of
``application/json`` (or the older ``application/json-rpc`` and
``application/jsonrequest``; anything else is 415), answers in
``application/json`` with status 200, and 204 with no body when nothing is
to be answered (notifications only). Because a browser cannot send those
content types to another site without a CORS preflight (which this handler
does not answer), the XSRF check is skipped (``no_xsrf = True``).

Limits: the body is bounded by the application's ``max_body_size`` (413);
``jsonrpc_max_batch_size`` (setting, default 100) bounds the calls of one batch.

The client, ``JsonRPCProxy`` (``cyclone.httpclient.JsonRPC``), stands on
``cyclone.httpclient.fetch``: ``await proxy.subtract(42, 23)``, named params,
notifications and batches; see its docstring.
"""

from __future__ import annotations

import inspect
import json
import traceback
from typing import Any, Callable, Iterable

from twisted.internet import defer
from twisted.python import failure

from cyclone import web
from cyclone.concurrent import ensure_deferred, is_async_result
from cyclone.log import app_log
from cyclone.util import RemoteMethod

__all__ = [
    "JsonRPCError",
    "JsonrpcRequestHandler",
    "JsonRPCProxy",
    "JsonRPCResponseError",
    "PARSE_ERROR",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "INVALID_PARAMS",
    "INTERNAL_ERROR",
    "arguments_problem",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

#: the default of the ``jsonrpc_max_batch_size`` setting
DEFAULT_MAX_BATCH_SIZE = 100


class JsonRPCError(Exception):
    """A JSON-RPC error: raised by a ``jsonrpc_`` method to answer with this
    error object, and raised (as the Deferred's failure) by the client for an
    error answer. ``data`` is any JSON value; None leaves it out."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        if type(code) is not int:
            raise TypeError(f"a JSON-RPC error code is an integer, not {code!r}")
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        return text if self.data is None else f"{text} ({self.data!r})"

    def to_dict(self) -> dict[str, Any]:
        """The error object of the answer."""
        error: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.data is not None:
            error["data"] = self.data
        return error


# -- arguments against a signature -------------------------------------------------------------


class _Arity:
    """What a callable accepts, for cheap checks of the usual calls; anything
    else (and every misfit, to say why) goes through ``Signature.bind``."""

    __slots__ = ("signature", "min_positional", "max_positional", "names", "index")

    def __init__(self, signature: inspect.Signature) -> None:
        self.signature = signature
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        required = 0
        maximum: int | None = 0
        keyword_only_required = False
        plain = True  # only positional-or-keyword parameters: named calls are checked by hand
        for parameter in signature.parameters.values():
            if parameter.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
                plain = False
            if parameter.kind in positional:
                maximum = maximum + 1 if maximum is not None else None
                if parameter.default is parameter.empty:
                    required += 1
            elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                maximum = None
            elif parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
                keyword_only_required = True
        # a required keyword-only parameter: no positional call fits, bind() says why
        self.min_positional = required if not keyword_only_required else 1 << 62
        self.max_positional = maximum
        # for plain signatures: the names in order, the required ones first
        self.names: tuple[str, ...] | None = tuple(signature.parameters) if plain else None
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names or ())}

    def fits(self, args: tuple | list, kwargs: dict[str, Any]) -> bool:
        """True when the call surely fits; False when ``bind`` must decide."""
        count = len(args)
        if not kwargs:
            maximum = self.max_positional
            return self.min_positional <= count and (maximum is None or count <= maximum)
        names = self.names
        if names is None or count > len(names):
            return False
        index = self.index
        for name in kwargs:
            position = index.get(name)
            if position is None or position < count:  # unknown, or also given by position
                return False
        for position in range(count, self.min_positional):
            if names[position] not in kwargs:
                return False
        return True


# methods defined on classes are finite, so this cache (keyed by the function) stays small
_ARITIES: dict[Any, _Arity | None] = {}


def _arity(method: Callable) -> _Arity | None:
    key = getattr(method, "__func__", None)
    if key is not None:
        try:
            return _ARITIES[key]
        except KeyError:
            pass
    try:
        arity: _Arity | None = _Arity(inspect.signature(method))
    except (TypeError, ValueError):  # some builtins have no signature: called unchecked
        arity = None
    if key is not None:
        _ARITIES[key] = arity
    return arity


def arguments_problem(method: Callable, args: tuple | list, kwargs: dict[str, Any]) -> str | None:
    """Why ``method(*args, **kwargs)`` does not fit its signature (wrong number
    of arguments, unknown or missing names), or None when it fits. Nothing is
    called: a TypeError raised inside the method is the method's own error."""
    arity = _arity(method)
    if arity is None or arity.fits(args, kwargs):
        return None
    try:
        arity.signature.bind(*args, **kwargs)
    except TypeError as exc:
        return str(exc)
    return None


# -- the handler ----------------------------------------------------------------------------


class _Absent:
    __slots__ = ()


_ABSENT = _Absent()
_ID_TYPES = (str, int, float)  # and None; bool is not an allowed id (type() is bool)


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); Python's parser accepts them by default
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_encode = _ENCODER.encode

_PARSE_ERROR_ANSWER = _encode(
    {"jsonrpc": "2.0", "error": {"code": PARSE_ERROR, "message": "Parse error"}, "id": None}
).encode()
# types that are never Deferreds, coroutines or awaitables: no need to ask is_async_result
_PLAIN_RESULTS = frozenset({int, float, str, bool, list, dict, tuple, type(None)})


class _Answer(dict):
    """One response object, with the name of the method it answers (for the
    log, should it not be JSON)."""

    __slots__ = ("method",)


def _error_member(v2: bool, rid: Any, code: int, message: str, data: Any = None, method: str = "") -> _Answer:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    answer = _Answer(jsonrpc="2.0", error=error, id=rid) if v2 else _Answer(result=None, error=error, id=rid)
    answer.method = method
    return answer


def _invalid_request(v2: bool, rid: Any, data: Any = None) -> _Answer:
    return _error_member(v2, rid, INVALID_REQUEST, "Invalid Request", data)


class JsonrpcRequestHandler(web.RequestHandler):
    """Serves the ``jsonrpc_<name>`` methods of the handler over JSON-RPC 2.0
    (and the 1.0 shape); see the module's documentation.

    Methods may return a value, a Deferred, or be ``@inlineCallbacks``
    generators or ``async def`` coroutines. They are called with the URL's
    groups first, then the params: ``jsonrpc_m(*path_args, *params)`` or
    ``jsonrpc_m(*path_args, **params)``; named groups are keywords (a param
    may not override one).
    """

    #: request media types taken as JSON-RPC (anything else is 415)
    jsonrpc_content_types = frozenset({"application/json", "application/json-rpc", "application/jsonrequest"})
    #: a non-browser API: its content types already keep other sites out (see the module doc)
    no_xsrf = True

    def post(self, *args: Any, **kwargs: Any) -> defer.Deferred | None:
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.partition(";")[0].strip().lower() not in self.jsonrpc_content_types:
            raise web.HTTPError(415, reason="JSON-RPC requests must be application/json")
        try:
            payload = _DECODER.decode(self.request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            # RecursionError: arrays nested too deep for the parser
            self._reply(_PARSE_ERROR_ANSWER)
            return None
        if type(payload) is not list:
            member = self._answer(payload, False, args, kwargs)
            if isinstance(member, defer.Deferred):
                return member.addCallback(self._reply)
            self._reply(member)
            return None
        if not payload:
            self._reply(_invalid_request(True, None))
            return None
        limit = self.settings.get("jsonrpc_max_batch_size", DEFAULT_MAX_BATCH_SIZE)
        if len(payload) > limit:
            data = f"a batch of {len(payload)} calls; at most {limit} are taken"
            self._reply(_invalid_request(True, None, data))
            return None
        members = [self._answer(call, True, args, kwargs) for call in payload]
        if any(isinstance(member, defer.Deferred) for member in members):
            waiting = [m if isinstance(m, defer.Deferred) else defer.succeed(m) for m in members]
            return defer.gatherResults(waiting, consumeErrors=True).addCallback(self._reply_batch)
        self._reply_batch(members)
        return None

    # -- answering --------------------------------------------------------------------------

    def _reply(self, answer: Any) -> None:
        """Send one answer (an _Answer, JSON bytes, or None for no answer)."""
        if answer is None:
            self.set_status(204)
            self.finish()
            return
        if type(answer) is not bytes:
            try:
                answer = _encode(answer).encode()
            except (TypeError, ValueError, RecursionError) as exc:
                answer = _encode(self._unencodable(answer, exc)).encode()
        self.set_header("Content-Type", "application/json")
        self.finish(answer)

    def _reply_batch(self, members: list) -> None:
        answers = [member for member in members if member is not None]
        if not answers:
            self._reply(None)
            return
        try:
            body = _encode(answers)
        except (TypeError, ValueError, RecursionError):
            # one bad member must not cost the others their answers
            parts = []
            for answer in answers:
                try:
                    parts.append(_encode(answer))
                except (TypeError, ValueError, RecursionError) as exc:
                    parts.append(_encode(self._unencodable(answer, exc)))
            body = f"[{','.join(parts)}]"
        self._reply(body.encode())

    def _unencodable(self, answer: _Answer, exc: Exception) -> _Answer:
        """The internal error that replaces an answer that is not JSON (logged)."""
        v2 = "jsonrpc" in answer
        return self._failed(failure.Failure(exc), v2, answer.get("id"), False, answer.method, "the answer of")

    def _answer(self, call: Any, in_batch: bool, path_args: tuple, path_kwargs: dict) -> Any:
        """One request object's answer: an _Answer, None (a notification), or a
        Deferred of either."""
        if type(call) is not dict:
            return _invalid_request(True, None)
        version = call.get("jsonrpc", _ABSENT)
        if version is _ABSENT and not in_batch:
            return self._answer_v1(call, path_args, path_kwargs)
        rid = call.get("id")
        if rid is not None and type(rid) not in _ID_TYPES:
            return _invalid_request(True, None, "an id is a string, a number or null")
        if version != "2.0":
            return _invalid_request(True, rid, 'a request says "jsonrpc": "2.0"')
        method = call.get("method")
        if type(method) is not str:
            return _invalid_request(True, rid, "the method is a string")
        params = call.get("params", _ABSENT)
        if params is _ABSENT:
            params = ()
        elif type(params) is not list and type(params) is not dict:
            return _invalid_request(True, rid, "params are an array or an object")
        return self._dispatch(True, rid, "id" not in call, method, params, path_args, path_kwargs)

    def _answer_v1(self, call: dict, path_args: tuple, path_kwargs: dict) -> Any:
        # JSON-RPC 1.0: any id; a null (or missing) id is a notification
        rid = call.get("id")
        method = call.get("method")
        params = call.get("params")
        if params is None:
            params = ()
        elif type(params) is not list and type(params) is not dict:
            return _invalid_request(False, rid, "params are an array or an object")
        if type(method) is not str:
            return _invalid_request(False, rid, "the method is a string")
        return self._dispatch(False, rid, rid is None, method, params, path_args, path_kwargs)

    def _dispatch(
        self, v2: bool, rid: Any, notify: bool, name: str, params: Any, path_args: tuple, path_kwargs: dict
    ) -> Any:
        method = getattr(self, "jsonrpc_" + name, None)
        if method is None or not callable(method):
            return None if notify else _error_member(v2, rid, METHOD_NOT_FOUND, "Method not found", None, name)
        if type(params) is dict:
            clash = params.keys() & path_kwargs.keys()
            if clash:
                problem: str | None = f"{sorted(clash)} come from the URL"
                args, kwargs = path_args, path_kwargs
            else:
                args, kwargs = path_args, {**path_kwargs, **params} if path_kwargs else params
                problem = arguments_problem(method, args, kwargs)
        else:
            args = (*path_args, *params) if path_args else params
            kwargs = path_kwargs
            problem = arguments_problem(method, args, kwargs)
        if problem is not None:
            return None if notify else _error_member(v2, rid, INVALID_PARAMS, "Invalid params", problem, name)
        try:
            result = method(*args, **kwargs)
        except Exception as exc:
            return self._failed(failure.Failure(exc), v2, rid, notify, name)
        if type(result) not in _PLAIN_RESULTS and is_async_result(result):
            d = ensure_deferred(result)
            d.addCallbacks(self._succeeded, self._failed, (v2, rid, notify, name), None, (v2, rid, notify, name))
            return d
        return self._succeeded(result, v2, rid, notify, name)

    def _succeeded(self, result: Any, v2: bool, rid: Any, notify: bool, name: str) -> _Answer | None:
        if notify:
            return None
        answer = _Answer(jsonrpc="2.0", result=result, id=rid) if v2 else _Answer(result=result, error=None, id=rid)
        answer.method = name
        return answer

    def _failed(
        self, reason: failure.Failure, v2: bool, rid: Any, notify: bool, name: str, what: str = "an exception in"
    ) -> _Answer | None:
        exc = reason.value
        if isinstance(exc, JsonRPCError):
            if notify:
                return None
            return _error_member(v2, rid, exc.code, str(exc.message), exc.data, name)
        app_log.error(
            "JSON-RPC: %s %s (%s)",
            what,
            name,
            self._request_summary(),
            exc_info=(reason.type, exc, reason.getTracebackObject()),
        )
        if notify:
            return None
        data = None
        settings = self.settings
        if settings.get("serve_traceback", settings.get("debug")):
            data = "".join(traceback.format_exception(reason.type, exc, reason.getTracebackObject()))
        return _error_member(v2, rid, INTERNAL_ERROR, "Internal error", data, name)


# -- the client ---------------------------------------------------------------------------------


class JsonRPCResponseError(ValueError):
    """An answer that is not a JSON-RPC response to the call made (not JSON,
    another id, no result nor error); ``response`` is the ``HTTPResponse``."""

    def __init__(self, message: str, response: Any = None) -> None:
        super().__init__(message)
        self.response = response


class JsonRPCProxy:
    """A JSON-RPC client on ``cyclone.httpclient.fetch`` (exported as
    ``cyclone.httpclient.JsonRPC``).

    .. code-block:: python

        proxy = cyclone.httpclient.JsonRPC("http://127.0.0.1:8888/rpc", request_timeout=5)
        total = await proxy.add(1, 2)                       # params by position
        diff = await proxy.subtract(minuend=42, subtrahend=23)   # or by name
        names = await proxy.system.listMethods()             # dotted names
        await proxy.notify("log", "hello")                  # no answer expected
        answers = await proxy.batch([("add", [1, 2]), ("nope", [])])
        # -> [3, JsonRPCError(-32601, 'Method not found')]

    Each call is a Deferred of the result; an error answer fails it with
    ``JsonRPCError`` (``code``, ``message``, ``data``). An answer that is not
    a response to the call fails with ``JsonRPCResponseError``; an HTTP
    error without a JSON-RPC answer in its body, with
    ``cyclone.httpclient.HTTPClientError``; no answer at all, with the HTTP
    client's errors (timeouts, refused connections). ``fetch_kwargs`` go to
    every ``fetch`` (``request_timeout``, ``headers``, ``auth_username``,
    ``ca_certs``, ...). ``version="1.0"`` speaks the original cyclone's shape
    (``{"method", "params", "id"}``, positional params only).
    """

    def __init__(self, url: str, version: str = "2.0", **fetch_kwargs: Any) -> None:
        if version not in ("1.0", "2.0"):
            raise ValueError(f"JSON-RPC version is '1.0' or '2.0', not {version!r}")
        for name in ("method", "body", "postdata", "body_producer"):
            if name in fetch_kwargs:
                raise TypeError(f"JsonRPC makes the request's {name} itself")
        from cyclone.httputil import HTTPHeaders

        headers = HTTPHeaders()
        given = fetch_kwargs.pop("headers", None) or {}
        for name, value in given.get_all() if isinstance(given, HTTPHeaders) else given.items():
            for one in value if isinstance(value, (list, tuple)) else [value]:
                headers.add(name, one)
        if "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
        self.url = url
        self.version = version
        self._headers = headers
        self._fetch_kwargs = fetch_kwargs
        self._next_id = 1

    def __getattr__(self, name: str) -> RemoteMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        return RemoteMethod(self.call, name)

    def __repr__(self) -> str:
        return f"<JsonRPC proxy of {self.url}>"

    # -- messages ---------------------------------------------------------------------------

    def _request(self, name: str, params: tuple, named: dict, notify: bool = False) -> dict[str, Any]:
        if params and named:
            raise TypeError("JSON-RPC params are by position or by name, not both")
        if type(name) is not str:
            raise TypeError(f"a method name is a string, not {name!r}")
        request: dict[str, Any] = {"method": name}
        if self.version == "2.0":
            request = {"jsonrpc": "2.0", "method": name}
            if params or named:
                request["params"] = dict(named) if named else list(params)
            if not notify:
                request["id"] = self._take_id()
        else:
            if named:
                raise TypeError("JSON-RPC 1.0 has positional params only")
            request["params"] = list(params)
            request["id"] = None if notify else self._take_id()
        return request

    def _take_id(self) -> int:
        rid = self._next_id
        self._next_id += 1
        return rid

    def _post(self, payload: Any) -> defer.Deferred:
        from cyclone.httpclient import fetch

        body = _encode(payload).encode()
        return fetch(self.url, method="POST", body=body, headers=self._headers.copy(), **self._fetch_kwargs)

    @staticmethod
    def _parsed(response: Any) -> Any:
        """The JSON of the response's body; the HTTP error if it is not JSON."""
        try:
            return _DECODER.decode(response.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            if response.error is not None:
                raise response.error from None
            raise JsonRPCResponseError(f"the answer is not JSON: {response.body[:200]!r}", response) from None

    def _outcome(self, answer: Any, rid: Any, response: Any) -> Any:
        """The result of one response object, or the JsonRPCError it carries (returned, not raised)."""
        if type(answer) is not dict or _id_key(answer.get("id", _ABSENT)) != _id_key(rid):
            raise JsonRPCResponseError(f"not an answer to call {rid!r}: {answer!r:.200}", response)
        error = answer.get("error")
        if error is not None:
            if type(error) is not dict or type(error.get("code")) is not int:
                return JsonRPCError(INTERNAL_ERROR, str(error))  # 1.0 servers may send any error value
            return JsonRPCError(error["code"], str(error.get("message", "")), error.get("data"))
        if "result" not in answer:
            raise JsonRPCResponseError(f"an answer with neither result nor error: {answer!r:.200}", response)
        return answer["result"]

    # -- calls ------------------------------------------------------------------------------

    def call(self, name: str, /, *params: Any, **named: Any) -> defer.Deferred:
        """Call the method ``name`` (any name, e.g. one that is not an identifier)."""
        request = self._request(name, params, named)

        def answered(response: Any) -> Any:
            outcome = self._outcome(self._parsed(response), request["id"], response)
            if isinstance(outcome, JsonRPCError):
                raise outcome
            return outcome

        return self._post(request).addCallback(answered)

    def notify(self, name: str, /, *params: Any, **named: Any) -> defer.Deferred:
        """Send a notification: a Deferred that fires with None once the
        server has taken it (no answer comes back)."""
        request = self._request(name, params, named, notify=True)

        def sent(response: Any) -> None:
            if response.error is not None:
                raise response.error

        return self._post(request).addCallback(sent)

    def batch(self, calls: Iterable[tuple[str, Any]], notifications: Iterable[tuple[str, Any]] = ()) -> defer.Deferred:
        """Send several calls in one request: ``calls`` and ``notifications``
        are ``(name, params)`` pairs, params a list (by position) or a dict
        (by name). A Deferred of the calls' outcomes in order: each a result,
        or the ``JsonRPCError`` the server answered for that call."""
        if self.version != "2.0":
            raise TypeError("batches are JSON-RPC 2.0")
        requests = [self._pair(name, params, False) for name, params in calls]
        payload = requests + [self._pair(name, params, True) for name, params in notifications]
        if not payload:
            raise ValueError("an empty batch is not a JSON-RPC request")

        def answered(response: Any) -> list:
            if not requests and not response.body:
                if response.error is not None:
                    raise response.error
                return []
            answers = self._parsed(response)
            if type(answers) is not list:
                # a whole-batch error (too large, ...): every call gets it
                if type(answers) is dict and type(answers.get("error")) is dict and answers.get("id") is None:
                    error = self._outcome(answers, None, response)
                    return [error] * len(requests)
                raise JsonRPCResponseError(f"a batch's answer is an array, not {answers!r:.200}", response)
            by_id = {}
            for answer in answers:
                if type(answer) is dict:
                    by_id[_id_key(answer.get("id"))] = answer
            outcomes = []
            for request in requests:
                answer = by_id.get(_id_key(request["id"]))
                if answer is None:
                    raise JsonRPCResponseError(f"no answer to call {request['id']!r} of the batch", response)
                outcomes.append(self._outcome(answer, request["id"], response))
            return outcomes

        return self._post(payload).addCallback(answered)

    def _pair(self, name: str, params: Any, notify: bool) -> dict[str, Any]:
        if isinstance(params, dict):
            return self._request(name, (), params, notify)
        return self._request(name, tuple(params or ()), {}, notify)


def _id_key(rid: Any) -> tuple[str, Any]:
    # 1 and "1" (and True) are different ids
    return (type(rid).__name__, rid)
