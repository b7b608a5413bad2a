"""cyclone.bottle: routes on an App, typed URL parameters, what a function
may return, the original's module-level API, errors; over real sockets."""

from __future__ import annotations

import json
import logging

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

import cyclone.bottle
import cyclone.web
from cyclone.bottle import App, compile_path
from tests.conftest import http_request, http_request_in_thread

inline = pytest_twisted.inlineCallbacks


fetch = http_request
get = http_request_in_thread


def typed_app() -> App:
    app = App()

    @app.route("/user/{name}")
    def user(handler, name):
        return {"name": name, "type": type(name).__name__}

    @app.route("/item/{id:int}")
    def item(handler, id):
        return {"id": id, "type": type(id).__name__}

    @app.route("/price/{p:float}")
    def price(handler, p):
        return {"p": p, "type": type(p).__name__}

    @app.route("/files/{path:rest}")
    def files(handler, path):
        return {"path": path}

    @app.route("/code/{code:[A-Z]{3}}/{n:digits}")
    def code(handler, code, n):
        return {"code": code, "n": n}

    @app.route("/pair/{a:int}-{b:int}")
    def pair(handler, a, b):
        return {"sum": a + b}

    return app


@pytest.fixture
def typed_port(listen):
    return listen(typed_app().create_app())


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/user/ann", {"name": "ann", "type": "str"}),
        ("/user/J%C3%BCrgen", {"name": "Jürgen", "type": "str"}),
        ("/item/42", {"id": 42, "type": "int"}),
        ("/item/-7", {"id": -7, "type": "int"}),
        ("/price/9.5", {"p": 9.5, "type": "float"}),
        ("/price/3", {"p": 3.0, "type": "float"}),
        ("/price/-1e3", {"p": -1000.0, "type": "float"}),
        ("/files/a/b/c.txt", {"path": "a/b/c.txt"}),
        ("/files/", {"path": ""}),
        ("/code/ABC/0012", {"code": "ABC", "n": "0012"}),
        ("/pair/2-3", {"sum": 5}),
    ],
)
@inline
def test_typed_parameters_are_converted(typed_port, path, expected):
    status, headers, body = yield get(typed_port, path)
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/item/abc",  # not a number
        "/item/4.5",
        "/item/" + "9" * 5000,  # more digits than int() converts: does not convert
        "/price/1e999",  # not finite
        "/price/abc",
        "/user/a/b",  # {name} is one segment
        "/code/abc/1",
        "/code/ABCD/1",
        "/nowhere",
    ],
)
@inline
def test_a_value_that_does_not_convert_is_a_404(typed_port, path):
    status, _, _ = yield get(typed_port, path)
    assert status == 404


def test_bad_route_definitions_are_refused():
    app = App()
    with pytest.raises(ValueError, match="unknown parameter type 'integr'"):
        app.route("/x/{a:integr}")(lambda h, a: None)
    with pytest.raises(ValueError, match="appears twice"):
        app.route("/x/{a}/{a}")(lambda h, a: None)
    with pytest.raises(ValueError, match="no groups"):
        app.route("/x/{a:(b|c)}")(lambda h, a: None)
    with pytest.raises(ValueError, match="unknown HTTP method"):
        app.route("/x", method="FETCH")
    with pytest.raises(ValueError, match="starts with '/'"):
        app.route("x")(lambda h: None)
    app.route("/dup")(lambda h: None)
    with pytest.raises(ValueError, match="GET is already routed"):
        app.route("/dup")(lambda h: None)


def test_compile_path():
    assert compile_path("/a/{b:int}.json") == (r"/a/(?P<b>[-+]?[0-9]+)\.json", {"b": int})
    assert compile_path(r"/old/(\d+)") == (r"/old/(\d+)", {})  # a regex path stays one
    assert compile_path("/n/{x:[0-9]{2,3}}")[0] == "/n/(?P<x>[0-9]{2,3})"


# -- methods and return values -----------------------------------------------------------------


def methods_app() -> App:
    app = App()

    @app.route("/thing", method=["GET", "POST"])
    def thing(handler):
        return f"{handler.request.method} {handler.get_argument('v', '-')}"

    @app.route("/thing", method="DELETE")
    def delete_thing(handler):
        handler.set_status(204)

    @app.route("/any", method="any")
    def anything(handler):
        return handler.request.method

    @app.route("/bytes")
    def raw(handler):
        handler.set_header("Content-Type", "application/octet-stream")
        return b"\x00\x01"

    @app.route("/list")
    def a_list(handler):
        return ["a", b"b", "c"]

    @app.route("/gen")
    def generator(handler):
        handler.set_header("Content-Type", "text/plain")
        for i in range(3):
            yield f"line {i}\n"

    @app.route("/agen")
    async def async_generator(handler):
        for i in range(3):
            await task.deferLater(reactor, 0, lambda: None)
            yield f"a{i},"

    @app.route("/async/{n:int}")
    async def coroutine(handler, n):
        value = await task.deferLater(reactor, 0, lambda: n * 2)
        return {"double": value}

    @app.route("/inline")
    @defer.inlineCallbacks
    def inline_callbacks(handler):
        value = yield defer.succeed("from a Deferred")
        return value

    @app.route("/writes")
    def writes_itself(handler):
        handler.write("written ")
        handler.write("by hand")

    @app.route("/teapot")
    def teapot(handler):
        raise cyclone.web.HTTPError(418)

    @app.route("/broken")
    def broken(handler):
        return 12345  # not something that can be sent

    @app.route("/fails")
    async def fails(handler):
        raise RuntimeError("a route function that fails")

    @app.get("/shortcut")
    def shortcut(handler):
        return "get"

    @app.post("/shortcut")
    def shortcut_post(handler):
        return "post " + handler.request.body.decode()

    return app


@pytest.fixture
def methods_port(listen):
    return listen(methods_app().create_app())


@inline
def test_several_methods_per_route(methods_port):
    assert (yield get(methods_port, "/thing?v=1"))[::2] == (200, b"GET 1")
    assert (yield get(methods_port, "/thing", method="POST", body="v=2",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}))[::2] == (200, b"POST 2")
    assert (yield get(methods_port, "/thing", method="DELETE"))[0] == 204
    status, headers, _ = yield get(methods_port, "/thing", method="PUT")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD, POST, DELETE"
    status, headers, body = yield get(methods_port, "/thing", method="HEAD")
    assert (status, body, headers["Content-Length"]) == (200, b"", "6")  # "HEAD -", from get
    for method in ("GET", "PUT", "PATCH", "OPTIONS"):
        assert (yield get(methods_port, "/any", method=method))[::2] == (200, method.encode())
    assert (yield get(methods_port, "/shortcut"))[2] == b"get"
    assert (yield get(methods_port, "/shortcut", method="POST", body="x"))[2] == b"post x"


@pytest.mark.parametrize(
    "path, body, streamed",
    [
        ("/bytes", b"\x00\x01", False),
        ("/list", b"abc", True),
        ("/gen", b"line 0\nline 1\nline 2\n", True),
        ("/agen", b"a0,a1,a2,", True),
        ("/async/21", b'{"double": 42}', False),
        ("/inline", b"from a Deferred", False),
        ("/writes", b"written by hand", False),
    ],
)
@inline
def test_what_a_function_returns_is_sent(methods_port, path, body, streamed):
    status, headers, got = yield get(methods_port, path)
    assert (status, got) == (200, body)
    assert (headers["Transfer-Encoding"] == "chunked") is streamed


@inline
def test_errors(methods_port, caplog):
    caplog.set_level(logging.ERROR, "cyclone.application")
    assert (yield get(methods_port, "/teapot"))[0] == 418
    assert (yield get(methods_port, "/broken"))[0] == 500
    assert "not int" in caplog.text
    assert (yield get(methods_port, "/fails"))[0] == 500
    assert "a route function that fails" in caplog.text


# -- the original's API: base_handler, more_handlers, module-level functions -------------------------


class Base(cyclone.web.RequestHandler):
    def get_current_user(self):
        return self.get_argument("user", None)

    def get_login_url(self):
        return "/login"


class Extra(cyclone.web.RequestHandler):
    def get(self):
        self.write("more_handlers")


@inline
def test_base_handler_more_handlers_and_authenticated(listen):
    app = App()

    @app.route("/private")
    @cyclone.web.authenticated
    def private(handler):
        return "hello " + handler.current_user

    @app.route(r"/legacy/(\d+)/(\w+)")  # a Tornado pattern: groups by position, as str
    def legacy(handler, number, word):
        return f"{number!r} {word!r}"

    port = listen(app.create_app(base_handler=Base, more_handlers=[(r"/extra", Extra)]))
    status, headers, _ = yield get(port, "/private")
    assert status == 302 and headers["Location"].startswith("/login?next=")
    assert (yield get(port, "/private?user=ann"))[2] == b"hello ann"
    assert (yield get(port, "/legacy/12/ab"))[2] == b"'12' 'ab'"
    assert (yield get(port, "/extra"))[2] == b"more_handlers"


@inline
def test_module_level_route_keeps_routes_across_create_app(listen, monkeypatch):
    monkeypatch.setattr(cyclone.bottle, "default_app", App())

    @cyclone.bottle.route("/")
    def index(handler):
        return "index"

    @cyclone.bottle.route("/hello/{name}", method="post")
    def hello(handler, name):
        return "hello " + name

    first = listen(cyclone.bottle.create_app())
    second = listen(cyclone.bottle.create_app(debug=False))  # the original emptied its list here
    for port in (first, second):
        assert (yield get(port, "/"))[2] == b"index"
        assert (yield get(port, "/hello/bob", method="POST", body=""))[2] == b"hello bob"


def test_router_is_the_original_handler_factory():
    router = cyclone.bottle.Router()
    router.add("get", lambda handler: "x")
    cls = router.handler_class()
    assert issubclass(cls, cyclone.web.RequestHandler) and callable(cls.get)
    assert router.handler_class() is cls  # made once
