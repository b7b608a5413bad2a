"""cyclone.xmlrpc over real sockets on 127.0.0.1, with clients we did not
write: the standard library's ``xmlrpc.client.ServerProxy`` (in a thread, so
the reactor keeps serving), Twisted's ``twisted.web.xmlrpc.Proxy``, and
http.client for hostile and malformed bodies."""

from __future__ import annotations

import datetime
import http.client
import logging
import socket
import tracemalloc
import warnings
import xmlrpc.client
from xmlrpc.client import Binary, DateTime, Fault, MultiCall, ServerProxy

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads

with warnings.catch_warnings():
    # twisted.web.xmlrpc's Proxy stands on twisted.web.http.HTTPClient, deprecated in Twisted 24.7
    warnings.filterwarnings("ignore", "twisted.web.http.HTTPClient was deprecated", DeprecationWarning)
    from twisted.web import server as twisted_server, xmlrpc as twisted_xmlrpc
Proxy = twisted_xmlrpc.Proxy

from cyclone import web
from cyclone.xmlrpc import XMLRPCInputError, XmlrpcRequestHandler, loads

from .conftest import poll_until

inline = pytest_twisted.inlineCallbacks


class Trig:
    def xmlrpc_zero(self):
        return 0.0


class Arithmetic:
    subHandlers = {"trig": Trig()}

    def xmlrpc_add(self, a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    def xmlrpc_scale(self, value: float, factor: float = 2.0) -> float:
        return value * factor


class Api(XmlrpcRequestHandler):
    subHandlers = {"math": Arithmetic()}

    def initialize(self, calls=None, pending=None):
        self.calls = calls if calls is not None else []
        self.pending = pending if pending is not None else {}

    def xmlrpc_echo(self, value):
        """Return the value."""
        return value

    def xmlrpc_kind(self, value):
        return type(value).__name__

    def xmlrpc_deferred(self, x):
        return task.deferLater(reactor, 0, lambda: ["deferred", x])

    @defer.inlineCallbacks
    def xmlrpc_inline(self, x):
        value = yield task.deferLater(reactor, 0, lambda: x)
        return ["inline", value]

    async def xmlrpc_coroutine(self, x):
        value = await task.deferLater(reactor, 0, lambda: x)
        return ["coroutine", value]

    def xmlrpc_fault(self):
        raise Fault(42, "custom fault")

    def xmlrpc_returned_fault(self):
        return Fault(43, "returned fault")

    async def xmlrpc_async_fault(self):
        await task.deferLater(reactor, 0, lambda: None)
        raise Fault(44, "async fault")

    async def xmlrpc_crash(self):
        await task.deferLater(reactor, 0, lambda: None)
        raise KeyError("secret detail")

    def xmlrpc_pair(self, a, b):
        self.calls.append((a, b))
        return [a, b]

    def xmlrpc_none(self):
        return None

    def xmlrpc_big(self):
        return 2**40

    def xmlrpc_control(self):
        return "bell\x07"

    def xmlrpc_set(self):
        return {1, 2}

    def xmlrpc_wait(self, name):
        d = defer.Deferred()
        self.pending[name] = d
        return d

    def xmlrpc_typed(self, a, b):
        return a

    xmlrpc_typed.signature = [["string", "int", "int"]]

    xmlrpc_not_callable = 5


class NoneApi(Api):
    allowNone = True


class DateTimeApi(Api):
    useDateTime = True


class BuiltinApi(Api):
    useBuiltinTypes = True


@pytest.fixture
def server(listen):
    """(url, calls, pending) of an Api served at /RPC2."""
    calls: list = []
    pending: dict = {}
    app = web.Application([
        (r"/RPC2", Api, {"calls": calls, "pending": pending}),
        (r"/none", NoneApi),
        (r"/datetime", DateTimeApi),
        (r"/builtin", BuiltinApi),
    ])
    port = listen(app)
    return f"http://127.0.0.1:{port}/RPC2", calls, pending


def in_thread(function, *args, **kwargs):
    return threads.deferToThread(function, *args, **kwargs)


def remote(url, name, *params, **proxy_kwargs):
    """Call through xmlrpc.client.ServerProxy in a thread: a Deferred of the result
    (or of the Fault, returned rather than raised)."""
    def blocking():
        method = ServerProxy(url, **proxy_kwargs)
        for part in name.split("."):
            method = getattr(method, part)
        try:
            return method(*params)
        except Fault as fault:
            return fault

    return in_thread(blocking)


# -- xmlrpc.client.ServerProxy ------------------------------------------------------------------


@inline
def test_every_type_round_trips_through_server_proxy(server):
    url, _, _ = server
    values = [
        7, -2**31, 2**31 - 1, True, False, 1.5, "", "text with <&> and é€😀",
        [1, "two", [3.0]], {"a": 1, "nested": {"b": [True]}}, [], {},
        Binary(b"\x00\xffbytes"), DateTime("20261206T10:20:30"),
    ]
    for value in values:
        result = yield remote(url, "echo", value)
        assert result == value, value
        assert type(result) is type(value)


@inline
def test_sub_handlers_and_not_found(server):
    url, _, _ = server
    assert (yield remote(url, "math.add", 2, 3)) == 5
    assert (yield remote(url, "math.trig.zero")) == 0.0
    for name, message in [
        ("nope", "function nope not found"),
        ("math.nope", "function math.nope not found"),
        ("physics.add", "no such subHandler physics"),
        ("math.geometry.area", "no such subHandler math.geometry"),
        ("not_callable", "function not_callable not found"),
        ("content_types", "function content_types not found"),
        ("post", "function post not found"),
    ]:
        fault = yield remote(url, name)
        assert isinstance(fault, Fault), name
        assert (fault.faultCode, fault.faultString) == (8001, message)


@inline
def test_faults_raised_or_returned_by_methods_pass_through(server, caplog):
    url, _, _ = server
    for name, code, message in [
        ("fault", 42, "custom fault"),
        ("returned_fault", 43, "returned fault"),
        ("async_fault", 44, "async fault"),
    ]:
        fault = yield remote(url, name)
        assert (fault.faultCode, fault.faultString) == (code, message)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@inline
def test_exceptions_are_failure_faults_logged_with_their_traceback(server, caplog):
    url, _, _ = server
    fault = yield remote(url, "crash")
    assert (fault.faultCode, fault.faultString) == (8002, "error")
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "cyclone.application" and "crash" in record.getMessage()
    assert record.exc_info[0] is KeyError


@inline
def test_debug_faults_carry_the_traceback(listen):
    port = listen(web.Application([(r"/RPC2", Api)], debug=True))
    fault = yield remote(f"http://127.0.0.1:{port}/RPC2", "crash")
    assert fault.faultCode == 8002
    assert "Traceback" in fault.faultString and "secret detail" in fault.faultString


@inline
def test_params_are_checked_against_the_signature_before_the_call(server):
    url, calls, _ = server
    for params in [(), (1,), (1, 2, 3)]:
        fault = yield remote(url, "pair", *params)
        assert fault.faultCode == 8002
        assert fault.faultString.startswith("invalid params for pair: ")
    assert calls == []
    assert (yield remote(url, "pair", 1, 2)) == [1, 2]
    assert calls == [(1, 2)]


@inline
def test_results_that_cannot_be_sent_are_faults(server):
    url, _, _ = server
    for name, words in [("none", "None"), ("big", "int exceeds"), ("control", "cannot be sent in XML"),
                        ("set", "cannot marshal")]:
        fault = yield remote(url, name)
        assert isinstance(fault, Fault), name
        assert fault.faultCode == 8002
        assert fault.faultString.startswith("can't serialize output: ") and words in fault.faultString, fault


@inline
def test_allow_none(server):
    url, _, _ = server
    none_url = url.replace("/RPC2", "/none")
    assert (yield remote(none_url, "none", allow_none=True)) is None
    assert (yield remote(none_url, "echo", None, allow_none=True)) is None
    # a nil param comes in whatever allowNone says (it only governs answers)
    assert (yield remote(url, "kind", None, allow_none=True)) == "NoneType"


@inline
def test_use_datetime_and_builtin_types(server):
    url, _, _ = server
    moment = datetime.datetime(2026, 12, 6, 10, 20, 30)
    assert (yield remote(url, "kind", moment)) == "DateTime"
    assert (yield remote(url, "kind", b"raw")) == "Binary"
    assert (yield remote(url.replace("/RPC2", "/datetime"), "kind", moment)) == "datetime"
    assert (yield remote(url.replace("/RPC2", "/datetime"), "kind", b"raw")) == "Binary"
    assert (yield remote(url.replace("/RPC2", "/builtin"), "kind", b"raw")) == "bytes"
    assert (yield remote(url.replace("/RPC2", "/builtin"), "echo", moment, use_builtin_types=True)) == moment


# -- introspection and multicall --------------------------------------------------------------


@inline
def test_system_list_methods_help_and_signature(server):
    url, _, _ = server
    names = yield remote(url, "system.listMethods")
    assert names == sorted([
        "async_fault", "big", "control", "coroutine", "crash", "deferred", "echo", "fault", "inline",
        "kind", "none", "pair", "returned_fault", "set", "typed", "wait",
        "math.add", "math.scale", "math.trig.zero",
        "system.listMethods", "system.methodHelp", "system.methodSignature", "system.multicall",
    ])
    assert (yield remote(url, "system.methodHelp", "math.add")) == "Add two integers."
    assert (yield remote(url, "system.methodHelp", "echo")) == "Return the value."
    assert (yield remote(url, "system.methodHelp", "pair")) == ""
    assert (yield remote(url, "system.methodSignature", "math.add")) == [["int", "int", "int"]]
    assert (yield remote(url, "system.methodSignature", "math.scale")) == [
        ["double", "double"], ["double", "double", "double"]]
    assert (yield remote(url, "system.methodSignature", "typed")) == [["string", "int", "int"]]
    assert (yield remote(url, "system.methodSignature", "pair")) == "undef"
    fault = yield remote(url, "system.methodHelp", "nope")
    assert fault.faultCode == 8001


@inline
def test_multicall_with_the_standard_librarys_multicall(server):
    url, _, _ = server

    def once():
        batch = MultiCall(ServerProxy(url))
        batch.math.add(1, 2)
        batch.fault()
        batch.nope()
        batch.deferred("d")
        batch.none()
        batch.pair(1)
        results = batch()
        outcomes = []
        for index in range(6):
            try:
                outcomes.append(results[index])
            except Fault as fault:
                outcomes.append((fault.faultCode, fault.faultString))
        return outcomes

    outcomes = yield in_thread(once)
    assert outcomes[0] == 3
    assert outcomes[1] == (42, "custom fault")
    assert outcomes[2] == (8001, "function nope not found")
    assert outcomes[3] == ["deferred", "d"]
    assert outcomes[4][0] == 8002 and "can't serialize output" in outcomes[4][1]
    assert outcomes[5][0] == 8002 and "invalid params" in outcomes[5][1]


@inline
def test_multicall_runs_its_calls_together_and_answers_in_order(server):
    url, _, pending = server
    calls = [{"methodName": "wait", "params": [name]} for name in "abc"]
    answer = remote(url, "system.multicall", calls)
    yield poll_until(lambda: len(pending) == 3)
    for name in "cba":
        pending[name].callback(name.upper())
    assert (yield answer) == [["A"], ["B"], ["C"]]


@inline
def test_multicall_limits(listen):
    port = listen(web.Application([(r"/RPC2", Api)], xmlrpc_max_multicall=2))
    url = f"http://127.0.0.1:{port}/RPC2"
    two = [{"methodName": "echo", "params": [i]} for i in range(2)]
    assert (yield remote(url, "system.multicall", two)) == [[0], [1]]
    fault = yield remote(url, "system.multicall", two + two)
    assert fault.faultCode == 8002 and "at most 2" in fault.faultString
    nested = [{"methodName": "system.multicall", "params": [two]}, "not a struct"]
    answer = yield remote(url, "system.multicall", nested)
    assert [member["faultCode"] for member in answer] == [8002, 8002]
    assert "nested" in answer[0]["faultString"] and "struct" in answer[1]["faultString"]
    answer = yield remote(url, "system.multicall", [{"methodName": 5, "params": []}, {"methodName": "echo"}])
    assert answer[0]["faultCode"] == 8002 and "methodName" in answer[0]["faultString"]
    assert answer[1]["faultCode"] == 8002 and "invalid params" in answer[1]["faultString"]


# -- twisted.web.xmlrpc.Proxy --------------------------------------------------------------


# twisted.web.xmlrpc.Proxy still stands on twisted.web.http.HTTPClient, deprecated in Twisted 24.7
@pytest.mark.filterwarnings("ignore:twisted.web.http.HTTPClient was deprecated:DeprecationWarning")
@inline
def test_twisted_proxy(server):
    url, _, _ = server
    proxy = Proxy(url.encode())
    for style in ["deferred", "inline", "coroutine"]:
        assert (yield proxy.callRemote(style, 5)) == [style, 5]
    assert (yield proxy.callRemote("math.add", 40, 2)) == 42
    assert (yield proxy.callRemote("echo", {"k": ["v", 1.5]})) == {"k": ["v", 1.5]}
    with pytest.raises(Fault) as caught:
        yield proxy.callRemote("async_fault")
    assert caught.value.faultCode == 44
    with pytest.raises(Fault) as caught:
        yield proxy.callRemote("nope")
    assert caught.value.faultCode == 8001
    none_proxy = Proxy(url.replace("/RPC2", "/none").encode(), allowNone=True)
    assert (yield none_proxy.callRemote("echo", None)) is None
    names = yield proxy.callRemote("system.listMethods")
    assert "math.trig.zero" in names


# -- hostile and malformed input ---------------------------------------------------------------

CALL_TAIL = (
    "<methodCall><methodName>echo</methodName><params><param><value><string>{}</string>"
    "</value></param></params></methodCall>"
)


def billion_laughs(levels: int = 10) -> str:
    entities = '<!ENTITY a0 "ha">' + "".join(
        f'<!ENTITY a{i} "{("&a%d;" % (i - 1)) * 10}">' for i in range(1, levels)
    )
    return f'<?xml version="1.0"?><!DOCTYPE methodCall [{entities}]>' + CALL_TAIL.format(f"&a{levels - 1};")


def one_entity_many_times(size: int = 20_000, uses: int = 50) -> str:
    return (f'<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY x "{"A" * size}">]>'
            + CALL_TAIL.format("&x;" * uses))


def external_entity(system_id: str) -> str:
    return (f'<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY x SYSTEM "{system_id}">]>'
            + CALL_TAIL.format("&x;"))


def parameter_entity(system_id: str) -> str:
    return (f'<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY % p SYSTEM "{system_id}"> %p;]>'
            + CALL_TAIL.format("&x;"))


def post_xml(url: str, body: bytes, content_type: str | None = "text/xml", method: str = "POST"):
    """(status, headers, body) of one http.client request."""
    address = url.split("/")[2]
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        conn.request(method, "/" + url.split("/", 3)[3], body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.msg, response.read()
    finally:
        conn.close()


@defer.inlineCallbacks
def fault_for(url: str, body: bytes):
    """The Fault the server answers ``body`` with (200, text/xml)."""
    status, headers, data = yield in_thread(post_xml, url, body)
    assert status == 200, (status, data)
    assert headers["Content-Type"] == "text/xml"
    with pytest.raises(Fault) as caught:
        xmlrpc.client.loads(data)
    return caught.value


def peak_bytes(function, *args):
    """The peak of memory allocated (tracemalloc) while ``function(*args)`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            function(*args)
        except Exception:
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_entity_expansion_is_refused_before_it_starts():
    for body in [billion_laughs(), one_entity_many_times(), external_entity("file:///etc/passwd")]:
        with pytest.raises(XMLRPCInputError, match="DOCTYPE"):
            loads(body.encode())
    # what the refusal costs is about the size of the input, and far less than expansion:
    # the standard library's loads (same expat) expands this 20 kB body 50 times
    expanding = one_entity_many_times().encode()
    assert peak_bytes(xmlrpc.client.loads, expanding) > 20 * len(expanding)
    assert peak_bytes(loads, expanding) < 4 * len(expanding)
    # the billion laughs (about 1 kB, ~1e9 characters if expanded) stays as small
    laughs = billion_laughs().encode()
    assert peak_bytes(loads, laughs) < 64 * 1024


def test_loads_returns_what_xmlrpc_client_loads_returns():
    body = xmlrpc.client.dumps((1, "two", [3.0], {"four": b"5"}), "some.method").encode()
    assert loads(body) == xmlrpc.client.loads(body)
    body = xmlrpc.client.dumps((datetime.datetime(2026, 1, 2, 3, 4, 5), b"x"), "m").encode()
    assert loads(body, use_builtin_types=True) == xmlrpc.client.loads(body, use_builtin_types=True)


@inline
def test_hostile_bodies_get_a_fault(server):
    url, _, _ = server
    # a listener that counts connections: no entity may make the parser fetch anything
    fetches = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.01)
    evil = f"http://127.0.0.1:{listener.getsockname()[1]}/evil.dtd"
    try:
        bodies = [
            billion_laughs().encode(),
            one_entity_many_times().encode(),
            external_entity("file:///etc/passwd").encode(),
            external_entity(evil).encode(),
            parameter_entity(evil).encode(),
            # the same refusal whatever the encoding
            billion_laughs().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16"),
            b'<?xml version="1.0"?><!DOCTYPE methodCall>' + CALL_TAIL.format("x").encode(),
        ]
        for body in bodies:
            fault = yield fault_for(url, body)
            assert fault.faultCode == 8002
            assert fault.faultString == "Can't deserialize input: a DOCTYPE (DTD, entities) is not accepted in XML-RPC"
        try:
            fetches.append(listener.accept())
        except OSError:
            pass
    finally:
        listener.close()
    assert fetches == []


@inline
def test_malformed_bodies_get_a_fault(server):
    url, _, _ = server
    bodies = {
        b"": "not well-formed XML",
        b"not xml at all": "not well-formed XML",
        CALL_TAIL.format("x").encode()[:-5]: "not well-formed XML",
        b"<methodCall><methodName>echo</methodName><params><param><value>&undefined;</value></param></params></methodCall>":
            "not well-formed XML",
        xmlrpc.client.dumps((1,), methodresponse=True).encode(): "not a <methodCall>",
        xmlrpc.client.dumps(Fault(1, "x"), methodresponse=True).encode(): "not a <methodCall>",
        b"<methodCall><params></params></methodCall>": "no <methodName>",
        b"<methodCall><methodName>echo</methodName><params><param><value><boolean>2</boolean></value>"
        b"</param></params></methodCall>": "not XML-RPC: ",
        b"<methodCall><methodName>echo</methodName><params><param><value><int>x</int></value>"
        b"</param></params></methodCall>": "not XML-RPC: ",
        b"<methodCall><methodName>echo</methodName><params><param><value><int>" + b"9" * 5000
        + b"</int></value></param></params></methodCall>": "not XML-RPC: ",
        b"<methodCall><methodName>echo</methodName><params><param><value><bogus/></value>"
        b"</param></params></methodCall>": "not XML-RPC: ",
    }
    for body, words in bodies.items():
        fault = yield fault_for(url, body)
        assert fault.faultCode == 8002, body
        assert fault.faultString.startswith("Can't deserialize input: ") and words in fault.faultString, (
            body, fault.faultString)


@inline
def test_http_rules(listen):
    port = listen(web.Application([(r"/RPC2", Api)], max_body_size=2000))
    url = f"http://127.0.0.1:{port}/RPC2"
    body = xmlrpc.client.dumps(("x",), "echo").encode()
    for method in ["GET", "PUT"]:
        status, headers, _ = yield in_thread(post_xml, url, body, method=method)
        assert (status, headers["Allow"]) == (405, "POST")
    for content_type in [None, "text/plain", "application/x-www-form-urlencoded", "application/json"]:
        status, _, data = yield in_thread(post_xml, url, body, content_type)
        assert status == 415 and b"text/xml" in data
    for content_type in ["text/xml", "text/xml; charset=utf-8", "application/xml"]:
        status, _, data = yield in_thread(post_xml, url, body, content_type)
        assert status == 200 and xmlrpc.client.loads(data)[0] == ("x",)
    status, _, _ = yield in_thread(post_xml, url, xmlrpc.client.dumps(("x" * 2000,), "echo").encode())
    assert status == 413


@inline
def test_xsrf_cookies_do_not_apply(listen):
    port = listen(web.Application([(r"/RPC2", Api)], xsrf_cookies=True, cookie_secret="s" * 32))
    assert (yield remote(f"http://127.0.0.1:{port}/RPC2", "echo", "ok")) == "ok"


def test_put_sub_handler_is_per_class():
    class One(XmlrpcRequestHandler):
        pass

    class Two(XmlrpcRequestHandler):
        pass

    One.putSubHandler("math", Arithmetic())
    assert list(One.subHandlers) == ["math"]
    assert Two.subHandlers == {} and XmlrpcRequestHandler.subHandlers == {}


# -- the client: cyclone.xmlrpc.Proxy -----------------------------------------------------------

from cyclone import httpclient  # noqa: E402
from cyclone.xmlrpc import Proxy as CycloneProxy, loads_response  # noqa: E402


class TwistedSide(twisted_xmlrpc.XMLRPC):
    """A server we did not write: Twisted's own XML-RPC resource."""

    def xmlrpc_add(self, a, b):
        return a + b

    def xmlrpc_later(self, value):
        return task.deferLater(reactor, 0, lambda: {"later": value})

    def xmlrpc_refuse(self):
        raise Fault(17, "twisted says no")


class Hostile(web.RequestHandler):
    """A server that answers with entity expansions."""

    def post(self):
        self.set_header("Content-Type", "text/xml")
        kind = self.get_query_argument("kind")
        body = {"laughs": billion_laughs(), "blowup": one_entity_many_times(),
                "external": external_entity("file:///etc/passwd")}[kind]
        self.write(body.replace("methodCall", "methodResponse").replace(
            "<methodName>echo</methodName>", ""))


class NotXml(web.RequestHandler):
    def post(self):
        self.write("not xml")


@inline
def test_cyclone_proxy_against_our_handler(server):
    url, _, _ = server
    proxy = CycloneProxy(url, request_timeout=10)
    assert (yield proxy.callRemote("math.add", 2, 3)) == 5
    assert (yield proxy.math.trig.zero()) == 0.0
    for style in ["deferred", "inline", "coroutine"]:
        assert (yield proxy.callRemote(style, "x")) == [style, "x"]
    with pytest.raises(Fault) as caught:
        yield proxy.async_fault()
    assert (caught.value.faultCode, caught.value.faultString) == (44, "async fault")
    with pytest.raises(Fault) as caught:
        yield proxy.callRemote("a<b>&c")  # escaped on the way out, named in the fault on the way back
    assert (caught.value.faultCode, caught.value.faultString) == (8001, "function a<b>&c not found")
    with pytest.raises(TypeError):  # None needs allowNone
        yield proxy.echo(None)
    assert (yield CycloneProxy(url.replace("/RPC2", "/none"), allowNone=True).echo(None)) is None
    moment = datetime.datetime(2026, 12, 6, 10, 20, 30)
    assert (yield CycloneProxy(url, useDateTime=True).echo(moment)) == moment
    assert (yield CycloneProxy(url, useBuiltinTypes=True).echo(b"raw")) == b"raw"
    assert isinstance((yield proxy.echo(b"raw")), Binary)


@inline
def test_cyclone_proxy_against_twisteds_xmlrpc_server(listen):
    port = listen(twisted_server.Site(TwistedSide()))
    proxy = CycloneProxy(f"http://127.0.0.1:{port}/")
    assert (yield proxy.add(40, 2)) == 42
    assert (yield proxy.callRemote("later", "v")) == {"later": "v"}
    with pytest.raises(Fault) as caught:
        yield proxy.refuse()
    assert caught.value.faultCode == 17


@inline
def test_cyclone_proxy_refuses_hostile_answers(listen):
    port = listen(web.Application([(r"/hostile", Hostile), (r"/not-xml", NotXml)]))
    base = f"http://127.0.0.1:{port}"
    for kind in ["laughs", "blowup", "external"]:
        with pytest.raises(XMLRPCInputError, match="DOCTYPE"):
            yield CycloneProxy(f"{base}/hostile?kind={kind}").anything()
    with pytest.raises(XMLRPCInputError, match="not well-formed"):
        yield CycloneProxy(f"{base}/not-xml").anything()
    with pytest.raises(httpclient.HTTPClientError) as caught:
        yield CycloneProxy(f"{base}/missing").anything()
    assert caught.value.code == 404


def test_loads_response():
    assert loads_response(xmlrpc.client.dumps(([1, "x"],), methodresponse=True).encode()) == [1, "x"]
    with pytest.raises(Fault) as caught:
        loads_response(xmlrpc.client.dumps(Fault(3, "no"), methodresponse=True).encode())
    assert caught.value.faultCode == 3
    with pytest.raises(XMLRPCInputError, match="not a <methodResponse>"):
        loads_response(xmlrpc.client.dumps((1,), "call").encode())
    expanding = one_entity_many_times().replace("methodCall", "methodResponse").encode()
    with pytest.raises(XMLRPCInputError, match="DOCTYPE"):
        loads_response(expanding)
    assert peak_bytes(loads_response, expanding) < 4 * len(expanding)


class TenantApi(XmlrpcRequestHandler):
    def xmlrpc_where(self, tenant, item):
        return f"{tenant}/{item}"

    def xmlrpc_owned(self, item, *, tenant):
        return f"{tenant}/{item}"


@inline
def test_url_groups_come_before_the_params(listen):
    port = listen(web.Application([(r"/RPC2/(\w+)", TenantApi), (r"/named/(?P<tenant>\w+)", TenantApi)]))
    assert (yield remote(f"http://127.0.0.1:{port}/RPC2/acme", "where", "book")) == "acme/book"
    fault = yield remote(f"http://127.0.0.1:{port}/RPC2/acme", "where")
    assert fault.faultCode == 8002 and "item" in fault.faultString
    # named groups are keywords
    assert (yield remote(f"http://127.0.0.1:{port}/named/zeta", "owned", "book")) == "zeta/book"


def test_list_procedures_with_a_sub_handler_twice_and_a_cycle():
    class Node:
        def xmlrpc_ping(self):
            return "pong"

    node = Node()
    node.subHandlers = {"again": node}  # contains itself

    class Twice(XmlrpcRequestHandler):
        subHandlers = {"a": node, "b": node}

    handler = Twice.__new__(Twice)  # listProcedures needs no request
    assert handler.listProcedures() == [
        "a.ping", "b.ping",
        "system.listMethods", "system.methodHelp", "system.methodSignature", "system.multicall",
    ]
    assert handler.lookupProcedure("a.again.again.ping")() == "pong"
