"""cyclone.jsonrpc over real sockets on 127.0.0.1.

Clients we did not write: http.client with the hand-written JSON of every
example of the JSON-RPC 2.0 specification's "Examples" section
(https://www.jsonrpc.org/specification#examples), and the ``jsonrpcclient``
package from PyPI (it builds and parses messages; http.client carries them).
http.client blocks, so it runs in a thread (deferToThread).
"""

from __future__ import annotations

import http.client
import json
import logging

import jsonrpcclient
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads

from cyclone import web
from cyclone.jsonrpc import JsonRPCError, JsonrpcRequestHandler, arguments_problem

from .conftest import poll_until

inline = pytest_twisted.inlineCallbacks


def http_post(port: int, body: bytes | str, content_type: str | None = "application/json",
              path: str = "/rpc", method: str = "POST", headers: dict | None = None):
    """(status, headers, body) of one request made with http.client."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sent = dict(headers or {})
        if content_type is not None:
            sent["Content-Type"] = content_type
        conn.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=sent)
        response = conn.getresponse()
        return response.status, response.msg, response.read()
    finally:
        conn.close()


def call(port, body, **kwargs):
    return threads.deferToThread(http_post, port, body, **kwargs)


@defer.inlineCallbacks
def rpc(port, body, **kwargs):
    """The parsed JSON answer of a 200 application/json response."""
    status, headers, data = yield call(port, body, **kwargs)
    assert status == 200, (status, data)
    assert headers["Content-Type"] == "application/json"
    return json.loads(data)


# -- the specification's examples ---------------------------------------------------------


class SpecMethods(JsonrpcRequestHandler):
    """The methods the specification's examples call."""

    def initialize(self, calls):
        self.calls = calls

    def jsonrpc_subtract(self, minuend, subtrahend):
        return minuend - subtrahend

    def jsonrpc_sum(self, *numbers):
        return sum(numbers)

    def jsonrpc_update(self, *values):
        self.calls.append(("update", values))

    def jsonrpc_notify_hello(self, value):
        self.calls.append(("notify_hello", value))

    def jsonrpc_notify_sum(self, *numbers):
        self.calls.append(("notify_sum", sum(numbers)))

    def jsonrpc_get_data(self):
        return ["hello", 5]


# (title, request text as the specification writes it, expected answer or None for no answer)
SPEC_EXAMPLES = [
    ("positional 1", '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
     {"jsonrpc": "2.0", "result": 19, "id": 1}),
    ("positional 2", '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
     {"jsonrpc": "2.0", "result": -19, "id": 2}),
    ("named 1", '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
     {"jsonrpc": "2.0", "result": 19, "id": 3}),
    ("named 2", '{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}',
     {"jsonrpc": "2.0", "result": 19, "id": 4}),
    ("notification 1", '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', None),
    ("notification 2", '{"jsonrpc": "2.0", "method": "foobar"}', None),
    ("non-existent method", '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
     {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}),
    ("invalid JSON", '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
     {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}),
    ("invalid Request object", '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
     {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}),
    ("batch, invalid JSON",
     '[\n  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},\n  {"jsonrpc": "2.0", "method"\n]',
     {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}),
    ("empty Array", "[]",
     {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}),
    ("invalid Batch (but not empty)", "[1]",
     [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}]),
    ("invalid Batch", "[1,2,3]",
     [{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}] * 3),
    ("Batch",
     """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]""",
     [
         {"jsonrpc": "2.0", "result": 7, "id": "1"},
         {"jsonrpc": "2.0", "result": 19, "id": "2"},
         {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
         {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
         {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
     ]),
    ("Batch (all notifications)",
     """[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]""", None),
]


def without_data(answer):
    """The answer with the optional ``data`` of error objects left out (the
    specification's examples show none; ours say more)."""
    if isinstance(answer, list):
        return [without_data(member) for member in answer]
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        answer = dict(answer, error={k: v for k, v in answer["error"].items() if k != "data"})
    return answer


@pytest.fixture
def spec_server(listen):
    calls: list = []
    port = listen(web.Application([(r"/rpc", SpecMethods, {"calls": calls})]))
    return port, calls


@pytest.mark.parametrize("title,request_text,expected", SPEC_EXAMPLES, ids=[e[0] for e in SPEC_EXAMPLES])
@inline
def test_every_example_of_the_specification(spec_server, title, request_text, expected):
    port, calls = spec_server
    status, headers, data = yield call(port, request_text)
    if expected is None:
        assert (status, data) == (204, b"")
        assert "Content-Type" not in headers
    else:
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert without_data(json.loads(data)) == expected


@inline
def test_the_specifications_notifications_run(spec_server):
    port, calls = spec_server
    for _, text, _ in SPEC_EXAMPLES:
        if "notif" in text or "update" in text:
            yield call(port, text)
    assert calls == [("update", (1, 2, 3, 4, 5)), ("notify_hello", 7), ("notify_sum", 7), ("notify_hello", 7)]


# -- ids, shapes, versions -------------------------------------------------------------------


@inline
def test_ids_of_every_allowed_type_are_echoed(spec_server):
    port, _ = spec_server
    for rid in ["abc", "", 0, -7, 2**70, 1.5, None]:
        answer = yield rpc(port, json.dumps({"jsonrpc": "2.0", "method": "subtract", "params": [3, 1], "id": rid}))
        # "id": null is a call (only a missing id makes a notification)
        assert answer == {"jsonrpc": "2.0", "result": 2, "id": rid}


@inline
def test_ids_of_other_types_are_invalid_requests(spec_server):
    port, calls = spec_server
    for rid in [True, [1], {"a": 1}]:
        answer = yield rpc(port, json.dumps({"jsonrpc": "2.0", "method": "notify_hello", "params": [1], "id": rid}))
        assert answer["error"]["code"] == -32600
        assert answer["id"] is None
    assert calls == []


@inline
def test_other_versions_and_bad_members_are_invalid_requests(spec_server):
    port, calls = spec_server
    bad = [
        {"jsonrpc": "1.0", "method": "subtract", "params": [1, 2], "id": 1},
        {"jsonrpc": 2.0, "method": "subtract", "params": [1, 2], "id": 1},
        {"jsonrpc": "2.0", "params": [1, 2], "id": 1},
        {"jsonrpc": "2.0", "method": "subtract", "params": 5, "id": 1},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": None, "id": 1},
    ]
    for request in bad:
        answer = yield rpc(port, json.dumps(request))
        assert answer["jsonrpc"] == "2.0"
        assert answer["error"]["code"] == -32600, request
        assert answer["id"] == 1  # a well-formed id is echoed
        assert "result" not in answer
    for scalar in ['"text"', "42", "null", "true"]:
        answer = yield rpc(port, scalar)
        assert answer == {"jsonrpc": "2.0", "error": answer["error"], "id": None}
        assert answer["error"]["code"] == -32600
    assert calls == []


@inline
def test_requests_without_a_version_get_the_original_1_0_shape(spec_server):
    port, calls = spec_server
    answer = yield rpc(port, '{"method": "subtract", "params": [42, 23], "id": 1}')
    assert answer == {"result": 19, "error": None, "id": 1}
    answer = yield rpc(port, '{"method": "nope", "params": [], "id": "x"}')
    assert answer == {"result": None, "error": {"code": -32601, "message": "Method not found"}, "id": "x"}
    answer = yield rpc(port, '{"method": "subtract", "params": [1], "id": [7]}')  # 1.0 ids may be anything
    assert answer["result"] is None and answer["error"]["code"] == -32602 and answer["id"] == [7]
    answer = yield rpc(port, '{"method": 5, "params": [], "id": 2}')
    assert answer["error"]["code"] == -32600 and answer["id"] == 2 and "jsonrpc" not in answer
    # a null id is a 1.0 notification: run, not answered
    status, _, data = yield call(port, '{"method": "notify_hello", "params": [3], "id": null}')
    assert (status, data) == (204, b"")
    assert calls == [("notify_hello", 3)]


@inline
def test_batch_members_must_say_2_0(spec_server):
    port, calls = spec_server
    answer = yield rpc(port, '[{"method": "notify_hello", "params": [1], "id": 1}]')
    assert answer == [{"jsonrpc": "2.0", "error": answer[0]["error"], "id": 1}]
    assert answer[0]["error"]["code"] == -32600
    assert calls == []


# -- parse errors and hostile bodies -----------------------------------------------------------


@inline
def test_bodies_that_are_not_json_are_parse_errors(spec_server):
    port, _ = spec_server
    bodies = [
        b"",
        b"   ",
        b'{"jsonrpc": "2.0", "method": "sum", "params": [NaN], "id": 1}',  # not JSON (RFC 8259)
        b'{"jsonrpc": "2.0", "method": "sum", "params": [Infinity], "id": 1}',
        b'{"jsonrpc": "2.0", "method": "sum", "params": ["\xff"], "id": 1}',  # not UTF-8
        b'{"jsonrpc": "2.0", "method": "sum", "params": [' + b"9" * 5000 + b'], "id": 1}',  # over int digits
        b"[" * 200_000 + b"]" * 200_000,  # deeper than the parser goes
        b'{"jsonrpc": "2.0"} trailing',
    ]
    for body in bodies:
        answer = yield rpc(port, body)
        assert answer == {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}, body[:40]


@inline
def test_results_that_are_not_json_are_internal_errors(listen, caplog):
    class Odd(JsonrpcRequestHandler):
        def jsonrpc_nan(self):
            return float("nan")

        def jsonrpc_bytes(self):
            return b"raw"

        def jsonrpc_bad_error(self):
            raise JsonRPCError(1, "with data that is not JSON", data={1, 2})

        def jsonrpc_fine(self):
            return "fine"

    port = listen(web.Application([(r"/rpc", Odd)]))
    for name in ["nan", "bytes", "bad_error"]:
        answer = yield rpc(port, json.dumps({"jsonrpc": "2.0", "method": name, "id": name}))
        assert answer == {"jsonrpc": "2.0", "error": {"code": -32603, "message": "Internal error"}, "id": name}
    logged = [r for r in caplog.records if r.name == "cyclone.application"]
    assert len(logged) == 3
    assert all(r.exc_info for r in logged)
    assert "bad_error" in logged[2].getMessage()
    # in a batch, the other members keep their answers
    batch = [{"jsonrpc": "2.0", "method": name, "id": i} for i, name in enumerate(["fine", "bytes", "fine"])]
    answer = yield rpc(port, json.dumps(batch))
    assert answer == [
        {"jsonrpc": "2.0", "result": "fine", "id": 0},
        {"jsonrpc": "2.0", "error": {"code": -32603, "message": "Internal error"}, "id": 1},
        {"jsonrpc": "2.0", "result": "fine", "id": 2},
    ]
    # and in the 1.0 shape
    answer = yield rpc(port, json.dumps({"method": "nan", "params": [], "id": 9}))
    assert answer == {"result": None, "error": {"code": -32603, "message": "Internal error"}, "id": 9}


# -- call styles, errors ------------------------------------------------------------------------


class Styles(JsonrpcRequestHandler):
    def jsonrpc_plain(self, x):
        return {"plain": x}

    def jsonrpc_deferred(self, x):
        return task.deferLater(reactor, 0, lambda: {"deferred": x})

    @defer.inlineCallbacks
    def jsonrpc_inline(self, x):
        value = yield task.deferLater(reactor, 0, lambda: x)
        return {"inline": value}

    async def jsonrpc_coroutine(self, x):
        value = await task.deferLater(reactor, 0, lambda: x)
        return {"coroutine": value}

    def jsonrpc_raise(self, x):
        raise JsonRPCError(-1, "plain says no", data={"x": x})

    def jsonrpc_errback(self, x):
        return task.deferLater(reactor, 0, lambda: (_ for _ in ()).throw(JsonRPCError(-2, "errback says no")))

    @defer.inlineCallbacks
    def jsonrpc_inline_raise(self, x):
        yield task.deferLater(reactor, 0, lambda: None)
        raise JsonRPCError(-3, "inline says no", data=[x])

    async def jsonrpc_coroutine_raise(self, x):
        await task.deferLater(reactor, 0, lambda: None)
        raise JsonRPCError(-4, "coroutine says no")

    async def jsonrpc_crash(self, x):
        await task.deferLater(reactor, 0, lambda: None)
        raise KeyError("secret detail")

    def jsonrpc_type_error_inside(self, x):
        return len(x)  # TypeError for an int: the method's own failure, not bad params

    not_a_method = 5
    jsonrpc_not_callable = 5


@pytest.fixture
def styles(listen):
    return listen(web.Application([(r"/rpc", Styles)]))


def request(method, params, rid=1):
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": rid})


@inline
def test_plain_deferred_inline_callbacks_and_coroutine_methods(styles):
    for style in ["plain", "deferred", "inline", "coroutine"]:
        answer = yield rpc(styles, request(style, ["x"]))
        assert answer == {"jsonrpc": "2.0", "result": {style: "x"}, "id": 1}
        answer = yield rpc(styles, request(style, {"x": 5}, rid="named"))
        assert answer == {"jsonrpc": "2.0", "result": {style: 5}, "id": "named"}


@inline
def test_json_rpc_errors_raised_in_every_style(styles, caplog):
    expected = {
        "raise": {"code": -1, "message": "plain says no", "data": {"x": 1}},
        "errback": {"code": -2, "message": "errback says no"},
        "inline_raise": {"code": -3, "message": "inline says no", "data": [1]},
        "coroutine_raise": {"code": -4, "message": "coroutine says no"},
    }
    for name, error in expected.items():
        answer = yield rpc(styles, request(name, [1]))
        assert answer == {"jsonrpc": "2.0", "error": error, "id": 1}
    # application errors are answers, not failures: nothing logged
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@inline
def test_exceptions_are_internal_errors_logged_with_their_traceback(styles, caplog):
    answer = yield rpc(styles, request("crash", [1]))
    assert answer == {"jsonrpc": "2.0", "error": {"code": -32603, "message": "Internal error"}, "id": 1}
    assert b"secret" not in json.dumps(answer).encode()
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "cyclone.application"
    assert "crash" in record.getMessage()
    assert record.exc_info[0] is KeyError and record.exc_info[2] is not None


@inline
def test_a_type_error_inside_the_method_is_internal_not_invalid_params(styles, caplog):
    answer = yield rpc(styles, request("type_error_inside", [1]))
    assert answer["error"]["code"] == -32603
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


@inline
def test_debug_answers_carry_the_traceback(listen):
    port = listen(web.Application([(r"/rpc", Styles)], debug=True))
    answer = yield rpc(port, request("crash", [1]))
    assert answer["error"]["code"] == -32603
    assert "Traceback" in answer["error"]["data"]
    assert "secret detail" in answer["error"]["data"]


@inline
def test_unknown_and_non_callable_names_are_method_not_found(styles):
    for name in ["nope", "not_callable", "not_a_method", "__class__", "post", "", "plain.x", "jsonrpc_plain"]:
        answer = yield rpc(styles, request(name, []))
        assert answer == {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": 1}, name


# -- invalid params, checked before the call ---------------------------------------------------


class Counted(JsonrpcRequestHandler):
    def initialize(self, calls):
        self.calls = calls

    def jsonrpc_pair(self, a, b=2):
        self.calls.append((a, b))
        return [a, b]

    def jsonrpc_keyword(self, a, *, flag):
        self.calls.append((a, flag))
        return [a, flag]

    @defer.inlineCallbacks
    def jsonrpc_decorated(self, a):
        self.calls.append(a)
        yield None
        return a

    def jsonrpc_anything(self, *args, **kwargs):
        return [list(args), kwargs]


@inline
def test_params_that_do_not_fit_the_signature_are_invalid_params(listen):
    calls: list = []
    port = listen(web.Application([(r"/rpc", Counted, {"calls": calls})]))
    wrong = [
        ("pair", []),
        ("pair", [1, 2, 3]),
        ("pair", {"b": 1}),
        ("pair", {"a": 1, "c": 3}),
        ("keyword", [1, 2]),
        ("keyword", {"a": 1}),
        ("decorated", []),  # the signature behind @inlineCallbacks
        ("decorated", {"b": 1}),
    ]
    for method, params in wrong:
        answer = yield rpc(port, request(method, params))
        assert answer["error"]["code"] == -32602, (method, params)
        assert answer["error"]["message"] == "Invalid params"
        assert isinstance(answer["error"]["data"], str) and answer["error"]["data"]
    assert calls == []  # none of them was called
    right = [
        ("pair", [1], [1, 2]),
        ("pair", {"b": 3, "a": 4}, [4, 3]),
        ("keyword", {"a": 1, "flag": True}, [1, True]),
        ("decorated", [9], 9),
        ("anything", {"z": 1}, [[], {"z": 1}]),
        ("anything", [1, 2], [[1, 2], {}]),
    ]
    for method, params, result in right:
        answer = yield rpc(port, request(method, params))
        assert answer == {"jsonrpc": "2.0", "result": result, "id": 1}
    # a notification with bad params is not answered, nor called
    status, _, data = yield call(port, json.dumps({"jsonrpc": "2.0", "method": "pair", "params": []}))
    assert (status, data) == (204, b"")
    assert calls == [(1, 2), (4, 3), (1, True), 9]


def test_arguments_problem_without_a_server():
    def f(a, b=1, *, c):
        pass

    assert arguments_problem(f, (1,), {"c": 2}) is None
    assert "c" in arguments_problem(f, (1,), {})
    assert arguments_problem(f, (1, 2, 3), {"c": 1}) is not None
    assert arguments_problem(len, (1,), {}) is None


# -- URL groups --------------------------------------------------------------------------------


class Tenant(JsonrpcRequestHandler):
    def jsonrpc_where(self, tenant, item):
        return f"{tenant}/{item}"


@inline
def test_url_groups_come_before_the_params(listen):
    port = listen(web.Application([
        (r"/rpc/(\w+)", Tenant),
        (r"/named/(?P<tenant>\w+)", Tenant),
    ]))
    answer = yield rpc(port, request("where", ["book"]), path="/rpc/acme")
    assert answer["result"] == "acme/book"
    answer = yield rpc(port, request("where", {"item": "pen"}), path="/rpc/acme")
    assert answer["result"] == "acme/pen"
    answer = yield rpc(port, request("where", {"item": "pen"}), path="/named/zeta")
    assert answer["result"] == "zeta/pen"
    # named groups are keywords: a positional param takes the first parameter, as in Python
    answer = yield rpc(port, request("where", ["cup"]), path="/named/zeta")
    assert answer["error"]["code"] == -32602
    assert "tenant" in answer["error"]["data"]
    # the URL's name cannot be overridden by a param
    answer = yield rpc(port, request("where", {"tenant": "evil", "item": "x"}), path="/named/zeta")
    assert answer["error"]["code"] == -32602


# -- batches -----------------------------------------------------------------------------------


class Gate(JsonrpcRequestHandler):
    def initialize(self, pending):
        self.pending = pending

    def jsonrpc_wait(self, name):
        d = defer.Deferred()
        self.pending[name] = d
        return d

    def jsonrpc_now(self, name):
        return name


@inline
def test_batch_answers_keep_the_order_of_the_calls_whatever_order_they_finish_in(listen):
    pending: dict = {}
    port = listen(web.Application([(r"/rpc", Gate, {"pending": pending})]))
    batch = [
        {"jsonrpc": "2.0", "method": "wait", "params": ["a"], "id": "a"},
        {"jsonrpc": "2.0", "method": "now", "params": ["b"], "id": "b"},
        {"jsonrpc": "2.0", "method": "wait", "params": ["c"]},  # a notification
        {"jsonrpc": "2.0", "method": "wait", "params": ["d"], "id": "d"},
    ]
    answer_d = rpc(port, json.dumps(batch))
    # every call of the batch has started before any finished
    yield poll_until(lambda: len(pending) == 3)
    for name in ["d", "c", "a"]:
        pending[name].callback(name.upper())
    answer = yield answer_d
    assert answer == [
        {"jsonrpc": "2.0", "result": "A", "id": "a"},
        {"jsonrpc": "2.0", "result": "b", "id": "b"},
        {"jsonrpc": "2.0", "result": "D", "id": "d"},
    ]


@inline
def test_batch_size_limit_is_a_setting(listen):
    port = listen(web.Application([(r"/rpc", Styles)], jsonrpc_max_batch_size=3))
    three = [{"jsonrpc": "2.0", "method": "plain", "params": [i], "id": i} for i in range(3)]
    answer = yield rpc(port, json.dumps(three))
    assert [member["result"] for member in answer] == [{"plain": 0}, {"plain": 1}, {"plain": 2}]
    answer = yield rpc(port, json.dumps(three + three[:1]))
    assert answer["error"]["code"] == -32600 and answer["id"] is None
    assert "at most 3" in answer["error"]["data"]


@inline
def test_default_batch_limit_is_100(styles):
    batch = [{"jsonrpc": "2.0", "method": "plain", "params": [i], "id": i} for i in range(101)]
    answer = yield rpc(styles, json.dumps(batch[:100]))
    assert len(answer) == 100
    answer = yield rpc(styles, json.dumps(batch))
    assert answer["error"]["code"] == -32600


# -- HTTP --------------------------------------------------------------------------------------


@inline
def test_post_only(styles):
    for method in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]:
        status, headers, _ = yield call(styles, b"", method=method)
        assert status == 405, method
        assert headers["Allow"] == "POST"


@inline
def test_content_types(styles):
    body = request("plain", [1])
    for content_type in ["application/json", "application/json; charset=utf-8", "Application/JSON",
                         "application/json-rpc", "application/jsonrequest"]:
        answer = yield rpc(styles, body, content_type=content_type)
        assert answer["result"] == {"plain": 1}
    # what a cross-site form or a no-preflight fetch() can send is refused
    for content_type in [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]:
        status, _, data = yield call(styles, body, content_type=content_type)
        assert status == 415, content_type
        assert b"application/json" in data


@inline
def test_body_size_is_the_applications_limit(listen):
    port = listen(web.Application([(r"/rpc", Styles)], max_body_size=1000))
    answer = yield rpc(port, request("plain", ["x" * 900]))
    assert answer["result"] == {"plain": "x" * 900}
    status, _, _ = yield call(port, request("plain", ["x" * 1000]))
    assert status == 413


@inline
def test_no_xsrf_token_needed(listen):
    port = listen(web.Application([(r"/rpc", Styles)], xsrf_cookies=True, cookie_secret="s" * 32))
    answer = yield rpc(port, request("plain", [1]))
    assert answer["result"] == {"plain": 1}


@inline
def test_a_client_that_leaves_before_the_answer(listen, caplog):
    pending: dict = {}
    port = listen(web.Application([(r"/rpc", Gate, {"pending": pending})]))

    def leave_early():
        import socket
        body = request("wait", ["x"]).encode()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    yield threads.deferToThread(leave_early)
    yield poll_until(lambda: "x" in pending)
    pending["x"].callback("late")
    # the server still answers others, and nothing went wrong
    answer = yield rpc(port, request("now", ["y"]))
    assert answer["result"] == "y"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- jsonrpcclient (PyPI) ----------------------------------------------------------------------


@inline
def test_jsonrpcclient_messages(spec_server):
    port, calls = spec_server
    answer = yield rpc(port, jsonrpcclient.request_json("subtract", params=(42, 23)))
    parsed = jsonrpcclient.parse(answer)
    assert isinstance(parsed, jsonrpcclient.Ok) and parsed.result == 19

    answer = yield rpc(port, jsonrpcclient.request_json("subtract", params={"minuend": 1, "subtrahend": 5}))
    assert jsonrpcclient.parse(answer).result == -4

    answer = yield rpc(port, jsonrpcclient.request_json("missing"))
    parsed = jsonrpcclient.parse(answer)
    assert isinstance(parsed, jsonrpcclient.Error) and parsed.code == -32601

    answer = yield rpc(port, jsonrpcclient.request_json("subtract", params=[1]))
    parsed = jsonrpcclient.parse(answer)
    assert isinstance(parsed, jsonrpcclient.Error) and parsed.code == -32602 and parsed.data

    batch = [jsonrpcclient.request("sum", params=[1, 2], id=1), jsonrpcclient.request("get_data", id=2),
             jsonrpcclient.notification("notify_hello", params=[5])]
    answer = yield rpc(port, json.dumps(batch))
    parsed = list(jsonrpcclient.parse(answer))
    assert [(p.id, p.result) for p in parsed] == [(1, 3), (2, ["hello", 5])]

    status, _, data = yield call(port, jsonrpcclient.notification_json("notify_hello", params=[6]))
    assert (status, data) == (204, b"")
    assert calls == [("notify_hello", 5), ("notify_hello", 6)]


# -- the quick argument check agrees with Signature.bind ----------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402
import inspect  # noqa: E402

NAMES = ["a", "b", "c", "d"]


@st.composite
def signatures_and_calls(draw):
    """A signature of up to four parameters (of every kind) and a call of up to
    five positional arguments and a few names (some unknown)."""
    kinds = [inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
             inspect.Parameter.KEYWORD_ONLY]
    count = draw(st.integers(0, 4))
    if draw(st.booleans()):  # the usual method: plain parameters only (the hand-checked path)
        chosen = [inspect.Parameter.POSITIONAL_OR_KEYWORD] * count
    else:
        chosen = sorted(draw(st.lists(st.sampled_from(kinds), min_size=count, max_size=count)))
    plain = draw(st.booleans())
    parameters, defaults_started = [], False
    for name, kind in zip(NAMES, chosen):
        has_default = draw(st.booleans())
        if kind is not inspect.Parameter.KEYWORD_ONLY:
            # positional parameters with defaults come last
            has_default = has_default or defaults_started
            defaults_started = has_default
        parameters.append(inspect.Parameter(name, kind, default=0 if has_default else inspect.Parameter.empty))
    if not plain and draw(st.booleans()):
        index = sum(1 for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY)
        parameters.insert(index, inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL))
    if not plain and draw(st.booleans()):
        parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    signature = inspect.Signature(parameters)
    args = tuple(range(draw(st.integers(0, 5))))
    kwargs = {name: 1 for name in draw(st.lists(st.sampled_from(NAMES + ["zz"]), unique=True, max_size=3))}
    return signature, args, kwargs


@settings(max_examples=400, deadline=None)
@given(signatures_and_calls())
def test_arguments_problem_agrees_with_signature_bind(case):
    signature, args, kwargs = case

    class Target:
        def method(self, *a, **k):
            pass

    # a method on a class (the cached path), with this signature behind it
    Target.method.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *signature.parameters.values()])
    try:
        signature.bind(*args, **kwargs)
        fits = True
    except TypeError:
        fits = False
    assert (arguments_problem(Target().method, args, kwargs) is None) == fits


# -- the client: cyclone.httpclient.JsonRPC -------------------------------------------------------

import subprocess  # noqa: E402
import sys  # noqa: E402

from cyclone import httpclient  # noqa: E402
from cyclone.jsonrpc import JsonRPCProxy, JsonRPCResponseError  # noqa: E402


class ClientTarget(SpecMethods):
    def jsonrpc_header(self, name):
        return self.request.headers.get(name)

    def jsonrpc_never(self):
        return defer.Deferred()

    def jsonrpc_fail(self, data):
        raise JsonRPCError(7, "as asked", data=data)


class NotJson(web.RequestHandler):
    def post(self):
        self.write("<html>not json</html>")


class WrongId(web.RequestHandler):
    def post(self):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"jsonrpc": "2.0", "result": 1, "id": "someone else"}))


class Mirror(web.RequestHandler):
    """Answers each call with the request object it got (and its Content-Type)."""

    def post(self):
        request = json.loads(self.request.body)
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"result": [request, self.request.headers["Content-Type"]], "error": None,
                               "id": request["id"]}))


class ErrorWith500(web.RequestHandler):
    """Some servers answer JSON-RPC errors with HTTP 500."""

    def post(self):
        self.set_status(500)
        self.set_header("Content-Type", "application/json")
        request = json.loads(self.request.body)
        self.write(json.dumps({"jsonrpc": "2.0", "error": {"code": -32000, "message": "down"}, "id": request["id"]}))


@pytest.fixture
def client_server(listen):
    calls: list = []
    port = listen(web.Application([
        (r"/rpc", ClientTarget, {"calls": calls}),
        (r"/not-json", NotJson),
        (r"/wrong-id", WrongId),
        (r"/mirror", Mirror),
        (r"/error-500", ErrorWith500),
    ], jsonrpc_max_batch_size=6))
    return f"http://127.0.0.1:{port}", calls


def test_httpclient_exports_the_client_without_importing_the_server():
    assert httpclient.JsonRPC is JsonRPCProxy
    code = "import sys, cyclone.httpclient; print('cyclone.jsonrpc' in sys.modules, 'cyclone.web' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr


@inline
def test_client_calls(client_server):
    base, _ = client_server
    proxy = httpclient.JsonRPC(base + "/rpc")
    assert (yield proxy.subtract(42, 23)) == 19
    assert (yield proxy.subtract(subtrahend=23, minuend=42)) == 19
    assert (yield proxy.call("sum", 1, 2, 3)) == 6
    assert (yield proxy.get_data()) == ["hello", 5]
    with pytest.raises(JsonRPCError) as caught:
        yield proxy.fail({"why": [1]})
    assert (caught.value.code, caught.value.message, caught.value.data) == (7, "as asked", {"why": [1]})
    with pytest.raises(JsonRPCError) as caught:
        yield proxy.foo.get(name="myself")  # a dotted name, and a param called "name"
    assert caught.value.code == -32601
    assert (yield proxy.call("subtract", minuend=1, subtrahend=1)) == 0
    with pytest.raises(JsonRPCError) as caught:
        yield proxy.subtract(1)
    assert caught.value.code == -32602 and "subtrahend" in caught.value.data
    with pytest.raises(TypeError):
        proxy.subtract(1, subtrahend=2)


@inline
def test_client_notifications_and_batches(client_server):
    base, calls = client_server
    proxy = httpclient.JsonRPC(base + "/rpc")
    assert (yield proxy.notify("notify_hello", 1)) is None
    assert calls == [("notify_hello", 1)]
    outcomes = yield proxy.batch(
        [("sum", [1, 2]), ("nope", []), ("subtract", {"minuend": 5, "subtrahend": 3}), ("get_data", None)],
        notifications=[("notify_hello", [2]), ("update", [3, 4])],
    )
    assert outcomes[0] == 3 and outcomes[2] == 2 and outcomes[3] == ["hello", 5]
    assert isinstance(outcomes[1], JsonRPCError) and outcomes[1].code == -32601
    assert calls == [("notify_hello", 1), ("notify_hello", 2), ("update", (3, 4))]
    # notifications only: the server answers nothing
    assert (yield proxy.batch([], notifications=[("notify_hello", [3])])) == []
    assert calls[-1] == ("notify_hello", 3)
    # over the server's limit (6): every call gets the server's error
    outcomes = yield proxy.batch([("sum", [i]) for i in range(7)])
    assert len(outcomes) == 7 and all(o.code == -32600 for o in outcomes)
    with pytest.raises(ValueError):
        proxy.batch([])


@inline
def test_client_messages(client_server):
    base, _ = client_server
    proxy = httpclient.JsonRPC(base + "/mirror")
    request, content_type = yield proxy.foo.get(name="myself")
    assert request == {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": 1}
    assert content_type == "application/json"
    request, _ = yield proxy.call("with space", 1, [2])
    assert request == {"jsonrpc": "2.0", "method": "with space", "params": [1, [2]], "id": 2}
    request, _ = yield proxy.bare()
    assert request == {"jsonrpc": "2.0", "method": "bare", "id": 3}  # no params: the member is left out
    request, _ = yield httpclient.JsonRPC(base + "/mirror", version="1.0").old(1)
    assert request == {"method": "old", "params": [1], "id": 1}


@inline
def test_client_in_the_1_0_shape(client_server):
    base, calls = client_server
    proxy = httpclient.JsonRPC(base + "/rpc", version="1.0")
    assert (yield proxy.subtract(42, 23)) == 19
    with pytest.raises(JsonRPCError) as caught:
        yield proxy.nope()
    assert caught.value.code == -32601
    assert (yield proxy.notify("notify_hello", 9)) is None
    assert calls == [("notify_hello", 9)]
    with pytest.raises(TypeError):
        proxy.subtract(minuend=1, subtrahend=2)


@inline
def test_client_passes_fetch_options(client_server):
    base, _ = client_server
    proxy = httpclient.JsonRPC(base + "/rpc", headers={"X-Tenant": "acme"}, request_timeout=0.5)
    assert (yield proxy.header("X-Tenant")) == "acme"
    assert (yield proxy.header("Content-Type")) == "application/json"
    with pytest.raises(httpclient.HTTPTimeoutError):
        yield proxy.never()
    with pytest.raises(TypeError):
        httpclient.JsonRPC(base + "/rpc", body=b"x")


@inline
def test_client_on_answers_that_are_not_json_rpc(client_server):
    base, _ = client_server
    with pytest.raises(httpclient.HTTPClientError) as caught:
        yield httpclient.JsonRPC(base + "/missing").anything()
    assert caught.value.code == 404
    with pytest.raises(httpclient.HTTPClientError) as caught:
        yield httpclient.JsonRPC(base + "/rpc", headers={"Content-Type": "text/plain"}).sum(1)
    assert caught.value.code == 415
    with pytest.raises(JsonRPCResponseError):
        yield httpclient.JsonRPC(base + "/not-json").anything()
    with pytest.raises(JsonRPCResponseError):
        yield httpclient.JsonRPC(base + "/wrong-id").anything()
    # a JSON-RPC error answered with HTTP 500 is still the JSON-RPC error
    with pytest.raises(JsonRPCError) as caught:
        yield httpclient.JsonRPC(base + "/error-500").anything()
    assert (caught.value.code, caught.value.message) == (-32000, "down")
