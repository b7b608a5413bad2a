"""cyclone.routing: matchers, rule routers, nested routers, an Application as
a router and as a rule target, reverse_url through them, host matching.

What is dispatched is checked over real sockets with http.client."""

from __future__ import annotations

import http.client
import json
import logging

import pytest
import pytest_twisted
from twisted.internet import threads

from cyclone import httputil, routing, web
from cyclone.httpserver import HTTPServer
from cyclone.httputil import HTTPHeaders, HTTPServerRequest
from cyclone.routing import (
    AnyMatches,
    DefaultHostMatches,
    HostMatches,
    Matcher,
    PathMatches,
    ReversibleRouter,
    ReversibleRuleRouter,
    Router,
    Rule,
    RuleRouter,
    URLReverseError,
    URLSpec,
)

inline = pytest_twisted.inlineCallbacks


def request(path: str = "/", host: str = "a.example", **headers: str) -> HTTPServerRequest:
    all_headers = HTTPHeaders({"Host": host})
    for name, value in headers.items():
        all_headers[name.replace("_", "-")] = value
    return HTTPServerRequest("GET", path, headers=all_headers)


def fetch(port, path, method="GET", host=None, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        all_headers = dict(headers or {})
        if host is not None:
            all_headers["Host"] = host
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.msg, response.read()
    finally:
        conn.close()


def get(port, path, **kwargs):
    return threads.deferToThread(fetch, port, path, **kwargs)


class Echo(web.RequestHandler):
    """Writes what it was called with, the tag it was made with, and the
    name of its application."""

    def initialize(self, tag: str = "") -> None:
        self.tag = tag

    def get(self, *args, **kwargs):
        self.write({
            "args": list(args),
            "kwargs": kwargs,
            "tag": self.tag,
            "app": self.settings.get("app_name"),
        })

    post = get


def named(name: str) -> type[web.RequestHandler]:
    class Named(web.RequestHandler):
        def get(self, *args):
            self.write(f"{name} {self.reverse_url(name, *args)}")

    return Named


# -- matchers ----------------------------------------------------------------------------------


def test_path_matches_positional_named_and_optional_groups():
    assert PathMatches("/a").match(request("/a")) == {}
    assert PathMatches("/a").match(request("/a/b")) is None  # "$" is appended
    assert PathMatches(r"/u/([^/]+)/(\d+)").match(request("/u/x%20y/7")) == {
        "path_args": [b"x y", b"7"], "path_kwargs": {}}
    assert PathMatches(r"/u/(?P<who>[^/]+)").match(request("/u/%C3%A9")) == {
        "path_args": [], "path_kwargs": {"who": b"\xc3\xa9"}}
    optional = PathMatches(r"/opt/(.+)?")
    assert optional.match(request("/opt/")) == {"path_args": [None], "path_kwargs": {}}
    assert PathMatches(r"/opt/(?P<rest>.+)?").match(request("/opt/")) == {
        "path_args": [], "path_kwargs": {"rest": None}}


def test_path_matches_refuses_mixed_groups():
    with pytest.raises(ValueError, match="all named or all positional"):
        PathMatches(r"/(?P<a>\w+)/(\w+)")


def test_host_matches_host_name_without_port_anchored_at_end():
    matcher = HostMatches(r"a\.example")
    assert matcher.match(request(host="A.Example:8080")) == {}
    assert matcher.match(request(host="a.example.evil")) is None
    assert matcher.match(request(host="b.example")) is None
    assert HostMatches(r".*\.example").match(request(host="x.example")) == {}


def test_default_host_matches_follows_the_application():
    app = web.Application()
    matcher = DefaultHostMatches(app, r"main\.test")
    assert app.default_host is None and matcher.match(request(host="other")) is None
    app.default_host = "main.test"
    assert matcher.match(request(host="other")) == {}
    # proxied requests named their host: the default does not apply
    assert matcher.match(request(host="other", X_Real_Ip="10.0.0.1")) is None
    app.default_host = "else.test"
    assert matcher.match(request(host="other")) is None


def test_any_matches_and_the_abstract_matcher():
    assert AnyMatches().match(request("/whatever", host="any")) == {}
    assert Matcher().reverse() is None
    with pytest.raises(NotImplementedError):
        Matcher().match(request())


# -- rules -------------------------------------------------------------------------------------


def test_rule_checks_its_arguments():
    with pytest.raises(TypeError, match="Matcher"):
        Rule("/path", Echo)
    with pytest.raises(ValueError, match="2 to 4"):
        RuleRouter([("/only",)])
    with pytest.raises(TypeError, match="a rule must be"):
        RuleRouter(["/just-a-string"])
    # a handler class needs an application to run in
    with pytest.raises(TypeError, match="Echo is a RequestHandler"):
        RuleRouter([("/h", Echo)])


def test_tuples_become_rules_and_dotted_targets_import_when_used():
    router = ReversibleRuleRouter([
        ("/a", "json.dumps", {"k": 1}, "a"),
        (HostMatches("h"), "json.loads"),
    ])
    spec, host_rule = router.rules
    assert type(spec) is URLSpec and isinstance(spec, Rule) and type(spec.matcher) is PathMatches
    assert type(host_rule) is Rule and type(host_rule.matcher) is HostMatches
    assert spec._target == "json.dumps"  # not imported yet
    assert spec.target is json.dumps and host_rule.target is json.loads
    assert router.named_rules == {"a": spec} and spec.target_kwargs == {"k": 1}


def test_url_spec_is_the_web_one_and_keeps_its_attributes():
    assert web.URLSpec is URLSpec and web.url is URLSpec and web.URLReverseError is URLReverseError
    spec = web.url(r"/x/(\d+)", "tests.test_routing.Echo", {"tag": "t"}, name="x")
    assert spec.regex.pattern == r"/x/(\d+)$" and spec.regex is spec.matcher.regex
    assert spec.handler_class is Echo and spec.target is Echo
    assert spec.kwargs is spec.target_kwargs and spec.kwargs == {"tag": "t"}
    spec.handler_class = named("n")
    assert spec.target is spec.handler_class and spec.target is not Echo
    spec.kwargs = None
    assert spec.target_kwargs == {}
    assert "URLSpec('/x/(\\\\d+)$'" in repr(spec)


# -- reverse -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern,args,path", [
    (r"/optional_path/(.+)?", ("foo",), "/optional_path/foo"),
    (r"/optional_path/(.+)?", (None,), "/optional_path/"),
    (r"/opt/(?P<rest>.+)?", ("a b",), "/opt/a%20b"),
    (r"/c/(\d+)?/d", (3,), "/c/3/d"),
    (r"/c/(\d+)?/d", (None,), "/c//d"),
    (r"/items/?", (), "/items/"),
    (r"/favicon.ico", (), "/favicon.ico"),
    (r"^/favicon\.ico$", (), "/favicon.ico"),
    (r"/api\.v1/foo/([0-9]+)/icon\.png", (5,), "/api.v1/foo/5/icon.png"),
    (r"/u/(\w+)", ("\u00e9",), "/u/%C3%A9"),
    (r"/u/(\w+)", (b"\xe9",), "/u/%E9"),
    (r"/u/(\w+)", ("1 + 1",), "/u/1%20%2B%201"),
    (r"/u/(\w+)", (None,), "/u/None"),  # a required group: str(None), as Tornado
    (r"/100%/(\d+)", (1,), "/100%/1"),
])
def test_reverse(pattern, args, path):
    assert PathMatches(pattern).reverse(*args) == path
    assert URLSpec(pattern, Echo).reverse(*args) == path


@pytest.mark.parametrize("pattern", [
    r"/api/v\d+/foo/(\w+)",  # a character class outside the groups
    r"/a/(?:x|y)+",
    r"/a/((\d+)-(\d+))",
    r"/a+/(\d)",
    r"/a|/b",
    r"/a/(\d+)+",
    r"/\(x\)/(\d)",
])
def test_not_reversible(pattern):
    with pytest.raises(URLReverseError, match="cannot reverse"):
        PathMatches(pattern).reverse(*([1] * PathMatches(pattern).regex.groups))


def test_reverse_checks_the_argument_count():
    with pytest.raises(URLReverseError, match="takes 2 arguments, not 1"):
        PathMatches(r"/a/(\d+)/(\d+)").reverse(1)
    assert issubclass(URLReverseError, ValueError)


def test_reverse_url_through_nested_routers():
    inner = web.Application([web.url(r"/inner/(\d+)", Echo, name="inner")])
    app = web.Application([
        (r"/top", Echo, {}, "top"),
        Rule(HostMatches(r"a\.example"), [(r"/host/(\w+)", Echo, {}, "in-host-list")]),
        Rule(PathMatches("/inner.*"), inner),
    ])
    app.add_handlers(r"b\.example", [(r"/added", Echo, {}, "added")])
    assert app.reverse_url("top") == "/top"
    assert app.reverse_url("in-host-list", "x y") == "/host/x%20y"
    assert app.reverse_url("inner", 42) == "/inner/42"
    assert app.reverse_url("added", page=2, a="b") == "/added?a=b&page=2"
    with pytest.raises(KeyError, match="nowhere"):
        app.reverse_url("nowhere")
    # a router holding applications: None when no application has the name
    router = ReversibleRuleRouter([(PathMatches("/x.*"), web.Application()), (PathMatches("/i.*"), inner)])
    assert router.reverse_url("inner", 1) == "/inner/1"
    assert router.reverse_url("nowhere") is None
    with pytest.raises(NotImplementedError):
        ReversibleRouter().reverse_url("x")


def test_duplicate_names_warn_and_the_last_wins(caplog):
    with caplog.at_level(logging.WARNING, logger="cyclone.application"):
        app = web.Application([("/one", Echo, {}, "n"), ("/two", Echo, {}, "n")])
    assert app.reverse_url("n") == "/two"
    assert any("Multiple handlers named n" in r.getMessage() for r in caplog.records)


# -- dispatch over sockets --------------------------------------------------------------------


@inline
def test_optional_groups_pass_none(listen):
    app = web.Application([
        (r"/optional_path/(.+)?", Echo),
        (r"/named/(?P<rest>.+)?", Echo),
        (r"/mid/(\d+)?/end", Echo),
    ])
    port = listen(app)
    for path, args, kwargs in [
        ("/optional_path/", [None], {}),
        ("/optional_path/foo%20bar", ["foo bar"], {}),
        ("/named/", [], {"rest": None}),
        ("/named/x", [], {"rest": "x"}),
        ("/mid//end", [None], {}),
    ]:
        status, _, body = yield get(port, path)
        assert status == 200, path
        data = json.loads(body)
        assert (data["args"], data["kwargs"]) == (args, kwargs), path


@inline
def test_host_patterns_are_each_tried_until_one_has_the_path(listen):
    app = web.Application([("/c", Echo, {"tag": "wildcard"})])
    app.add_handlers(r"a\.example", [("/a", Echo, {"tag": "a-only"})])
    app.add_handlers(r".*\.example", [("/a", Echo, {"tag": "any-example"}), ("/b", Echo, {"tag": "b"})])
    port = listen(app)
    cases = [
        ("a.example", "/a", "a-only"),
        ("a.example", "/b", "b"),  # a.example's rules have no /b: the next pattern's do
        ("a.example", "/c", "wildcard"),
        ("x.example", "/a", "any-example"),
        ("other.test", "/c", "wildcard"),
    ]
    for host, path, tag in cases:
        status, _, body = yield get(port, path, host=host)
        assert (status, json.loads(body)["tag"]) == (200, tag), (host, path)
    for host, path in [("a.example", "/d"), ("other.test", "/a")]:
        status, _, body = yield get(port, path, host=host)
        assert status == 404 and b"404: Not Found" in body, (host, path)


@inline
def test_default_host(listen):
    app = web.Application([("/", Echo, {"tag": "wildcard"})], default_host="main.test")
    app.add_handlers(r"main\.test", [("/m", Echo, {"tag": "main"})])
    app.add_handlers(r"other\.test", [("/o", Echo, {"tag": "other"})])
    port = listen(app)
    status, _, body = yield get(port, "/m", host="unknown.test")
    assert (status, json.loads(body)["tag"]) == (200, "main")
    status, _, body = yield get(port, "/", host="unknown.test")
    assert (status, json.loads(body)["tag"]) == (200, "wildcard")
    # only default_host's rules stand in for an unknown host
    status, _, _ = yield get(port, "/o", host="unknown.test")
    assert status == 404
    # a proxied request named its host: no default
    status, _, _ = yield get(port, "/m", host="unknown.test", headers={"X-Real-Ip": "10.1.1.1"})
    assert status == 404


@inline
def test_rule_router_of_applications_callables_and_delegates(listen):
    def plain_callable(request, **params):
        body = json.dumps({"body": request.body.decode(), "form": request.body_arguments.get("f", [b""])[0].decode(),
                           "params": {k: [a.decode() for a in v] if k == "path_args" else v
                                      for k, v in params.items()}}).encode()
        request.connection.write_head(200, [("Content-Length", str(len(body)))], body=body, finish=True)

    class DelegateFactory:
        def start_request(self, connection, request):
            return _Canned(connection, b"from a delegate factory")

    first = web.Application([(r"/first/(\w+)", Echo), web.url("/first-named", named("first"), name="first")],
                            app_name="first")
    second = web.Application([(r"/second/x", Echo)], app_name="second")
    router = RuleRouter([
        Rule(PathMatches("/first.*"), first),
        (PathMatches("/second.*"), second),
        Rule(PathMatches(r"/call/(\d+)"), plain_callable, {"extra": 1}),
        ("/delegate", DelegateFactory()),
    ])
    port = listen(HTTPServer(router))
    status, _, body = yield get(port, "/first/abc")
    assert (status, json.loads(body)["args"], json.loads(body)["app"]) == (200, ["abc"], "first")
    status, _, body = yield get(port, "/first-named")
    assert (status, body) == (200, b"first /first-named")
    status, _, body = yield get(port, "/second/x")
    assert (status, json.loads(body)["app"]) == (200, "second")
    # an application always answers: its own 404 for a path it has no rule for
    status, _, body = yield get(port, "/second/y")
    assert status == 404 and b"404: Not Found" in body
    status, _, body = yield threads.deferToThread(
        fetch, port, "/call/12", method="POST", body="f=v",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    assert json.loads(body) == {"body": "f=v", "form": "v",
                                "params": {"path_args": ["12"], "path_kwargs": {}, "target_kwargs": {"extra": 1}}}
    status, _, body = yield get(port, "/delegate")
    assert (status, body) == (200, b"from a delegate factory")
    # nothing matched at the top: a bare 404
    status, headers, body = yield get(port, "/nowhere")
    assert (status, headers["Content-Length"], body) == (404, "0", b"")


class _Canned:
    """A request delegate answering a fixed body once the request is read."""

    def __init__(self, connection, body):
        self.connection, self.body = connection, body

    def headers_received(self):
        return None

    def data_received(self, chunk):
        return None

    def finish(self):
        self.connection.write_head(200, [("Content-Length", str(len(self.body)))], body=self.body, finish=True)

    def on_connection_close(self):
        return None


@inline
def test_application_rules_with_nested_lists_routers_and_applications(listen):
    other = web.Application([(r"/app/(\w+)", Echo)], app_name="other")

    class NoneRouter(Router):
        """Finds nothing: the next rule gets the request."""

        def __init__(self):
            self.asked = []

        def find_handler(self, request, **kwargs):
            self.asked.append(request.path)
            return None

    none_router = NoneRouter()
    app = web.Application([
        Rule(HostMatches(r"a\.example"), [("/h", Echo, {"tag": "host list"})]),
        Rule(PathMatches("/maybe.*"), none_router),
        ("/maybe-here", Echo, {"tag": "after the router"}),
        Rule(PathMatches("/app.*"), other),
        ("/top", Echo, {"tag": "top"}),
    ], app_name="outer")
    port = listen(app)
    status, _, body = yield get(port, "/h", host="a.example")
    assert (status, json.loads(body)["tag"]) == (200, "host list")
    status, _, _ = yield get(port, "/h", host="b.example")
    assert status == 404
    status, _, body = yield get(port, "/maybe-here")
    assert (status, json.loads(body)["tag"], none_router.asked) == (200, "after the router", ["/maybe-here"])
    status, _, body = yield get(port, "/app/z")
    data = json.loads(body)
    assert (status, data["args"], data["app"]) == (200, ["z"], "other")
    status, _, body = yield get(port, "/top")
    assert (status, json.loads(body)["app"]) == (200, "outer")


@inline
def test_custom_router_with_get_handler_delegate(listen):
    app = web.Application(app_name="inner")

    class MethodRouter(Router):
        def find_handler(self, request, **kwargs):
            tag = "reader" if request.method == "GET" else "writer"
            return app.get_handler_delegate(request, Echo, {"tag": tag}, path_args=[request.path])

    port = listen(HTTPServer(MethodRouter()))
    status, _, body = yield get(port, "/res")
    assert (status, json.loads(body)) == (200, {"args": ["/res"], "kwargs": {}, "tag": "reader", "app": "inner"})
    status, _, body = yield threads.deferToThread(fetch, port, "/res", method="POST", body="x")
    assert (status, json.loads(body)["tag"]) == (200, "writer")


@inline
def test_rules_added_after_serving_are_used(listen):
    app = web.Application([("/a", Echo, {"tag": "a"})])
    port = listen(app)
    status, _, _ = yield get(port, "/b")
    assert status == 404
    app.wildcard_router.add_rules([("/b", Echo, {"tag": "b"})])
    status, _, body = yield get(port, "/b")
    assert (status, json.loads(body)["tag"]) == (200, "b")
    app.add_handlers(r"h\.example", [("/a", Echo, {"tag": "host a"})])
    status, _, body = yield get(port, "/a", host="h.example")
    assert (status, json.loads(body)["tag"]) == (200, "host a")
    status, _, body = yield get(port, "/a", host="other.example")
    assert (status, json.loads(body)["tag"]) == (200, "a")


other_application = web.Application([("/dotted/app", Echo, {"tag": "dotted application"})])


@inline
def test_dotted_name_targets(listen):
    app = web.Application([
        ("/dotted/handler", "tests.test_routing.Echo", {"tag": "dotted handler"}),
        (PathMatches("/dotted/app"), "tests.test_routing.other_application"),
        ("/after", Echo, {"tag": "after"}),
    ])
    port = listen(app)
    for path, tag in [("/dotted/handler", "dotted handler"), ("/dotted/app", "dotted application"),
                      ("/after", "after")]:
        status, _, body = yield get(port, path)
        assert (status, json.loads(body)["tag"]) == (200, tag), path
    # a dotted name for something other than a handler in a plain path rule
    # is a router target too
    app = web.Application([("/x", "tests.test_routing.other_application")])
    port = listen(app)
    status, _, body = yield get(port, "/x")
    assert status == 404 and b"404: Not Found" in body  # other_application has no /x


@inline
def test_overridden_find_handler_is_used(listen):
    class Counting(web.Application):
        seen: list = []

        def find_handler(self, request, **kwargs):
            self.seen.append(request.path)
            return super().find_handler(request, **kwargs)

    app = Counting([("/a", Echo)])
    port = listen(app)
    status, _, _ = yield get(port, "/a")
    assert status == 200 and app.seen == ["/a"]


@inline
def test_default_handler_class_and_error_handler_after_every_rule(listen):
    class Missing(web.RequestHandler):
        def initialize(self, status_code=None, word="default"):
            self.word = word

        def prepare(self):
            self.set_status(404)
            self.finish(self.word)

    app = web.Application([Rule(HostMatches("h"), [("/a", Echo)])],
                          default_handler_class=Missing, default_handler_args={"word": "custom"})
    port = listen(app)
    status, _, body = yield get(port, "/a", host="other")
    assert (status, body) == (404, b"custom")
    app = web.Application([Rule(HostMatches("h"), [("/a", Echo)])], error_handler=Missing)
    port = listen(app)
    status, _, body = yield get(port, "/a", host="other")
    assert (status, body) == (404, b"default")


def test_call_interface_serves_nested_targets():
    """Application(request): the original cyclone interface, body already read."""
    sent = []

    class Connection:
        def write_head(self, status, headers, reason=None, body=b"", finish=False):
            sent.append((status, body, finish))

    def target(request):
        request.connection.write_head(200, [], body=b"called " + request.body, finish=True)

    app = web.Application([Rule(PathMatches("/c"), target)])
    req = HTTPServerRequest("POST", "/c", headers=HTTPHeaders({"Host": "h"}), body=b"data",
                            connection=Connection())
    assert app(req) is None
    assert sent == [(200, b"called data", True)]


def test_routing_module_exports():
    assert set(routing.__all__) >= {
        "Router", "ReversibleRouter", "RuleRouter", "ReversibleRuleRouter", "Rule", "Matcher",
        "AnyMatches", "HostMatches", "DefaultHostMatches", "PathMatches", "URLSpec"}
    assert isinstance(web.Application(), ReversibleRouter)


@inline
def test_streaming_handler_behind_nested_rules(listen):
    @web.stream_request_body
    class Streamed(web.RequestHandler):
        def prepare(self):
            self.pieces = []

        def data_received(self, chunk):
            self.pieces.append(chunk)

        def put(self):
            self.write(b"got " + b"".join(self.pieces))

    app = web.Application([Rule(HostMatches("up"), [("/s", Streamed)])])
    port = listen(app)
    status, _, body = yield threads.deferToThread(fetch, port, "/s", method="PUT", host="up", body=b"x" * 70000)
    assert (status, body) == (200, b"got " + b"x" * 70000)


class _TornadoStyleMessageDelegate(httputil.HTTPMessageDelegate):
    """A Tornado-style message delegate: headers_received(start_line, headers)."""

    def __init__(self, request_conn, tag):
        self.request_conn, self.tag = request_conn, tag
        self.chunks = []

    def headers_received(self, start_line, headers):
        self.start_line = start_line
        self.host = headers.get("Host")

    def data_received(self, chunk):
        self.chunks.append(chunk)

    def finish(self):
        body = json.dumps({"tag": self.tag, "method": self.start_line.method, "path": self.start_line.path,
                           "body": b"".join(self.chunks).decode()}).encode()
        self.request_conn.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Length": str(len(body))}))
        self.request_conn.write(body)
        self.request_conn.finish()


@inline
def test_tornado_style_message_delegates_through_routers(listen):
    class ConnectionDelegate(httputil.HTTPServerConnectionDelegate):
        def __init__(self):
            self.args = []

        def start_request(self, server_conn, request_conn):
            self.args.append((server_conn, request_conn))
            return _TornadoStyleMessageDelegate(request_conn, "rule target")

    class FindsTornadoDelegates(Router):
        def find_handler(self, request, **kwargs):
            if request.path == "/found":
                return _TornadoStyleMessageDelegate(request.connection, "found")
            return None

    target = ConnectionDelegate()
    router = RuleRouter([("/x", target), Rule(PathMatches("/found"), FindsTornadoDelegates())])
    for factory, paths in ((router, ("/x", "/found")), (FindsTornadoDelegates(), ("/found",))):
        port = listen(HTTPServer(factory))
        for path in paths:
            status, _, body = yield threads.deferToThread(fetch, port, path, method="POST", body="abc")
            expected = "rule target" if path == "/x" else "found"
            assert (status, json.loads(body)) == (
                200, {"tag": expected, "method": "POST", "path": path, "body": "abc"})
    # both of Tornado's start_request arguments are the request's connection
    server_conn, request_conn = target.args[0]
    assert server_conn is request_conn and request_conn is not None
