"""cyclone.wsgi: WSGI applications (PEP 3333) served over real sockets.

Apps from PyPI run unchanged (Flask, a minimal Django project, the standard
library's wsgiref demo app), ``wsgiref.validate.validator`` checks the
server side of PEP 3333, and small apps written here check each rule:
environ, wsgi.input (streamed, chunked), start_response and exc_info, the
write() callable, close(), errors, the thread pool, and a 100 MB response
read slowly by a client while the server's memory stays flat.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import sys
import threading
import warnings
import wsgiref.simple_server
import wsgiref.validate

import pytest
import pytest_twisted
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

from cyclone import web, websocket
from cyclone.httpserver import HTTPServer
from cyclone.routing import PathMatches, Rule, RuleRouter
from cyclone.wsgi import ClientDisconnected, FileWrapper, WSGIContainer
from tests.conftest import http_request, http_request_in_thread, poll_until, raw_exchange
from tests.test_plugin import Server, free_port

inline = pytest_twisted.inlineCallbacks


fetch = http_request
get = http_request_in_thread


def environ_app(environ, start_response):
    """Answers with the environ's str values as JSON, and what wsgi.input held."""
    body = environ["wsgi.input"].read()
    seen = {k: v for k, v in environ.items() if isinstance(v, (str, bool, tuple))}
    seen["body"] = body.decode("latin-1")
    seen["errors_has_write"] = callable(getattr(environ["wsgi.errors"], "write", None))
    seen["file_wrapper"] = environ["wsgi.file_wrapper"] is FileWrapper
    seen["thread"] = threading.current_thread().name
    data = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


# -- environ ---------------------------------------------------------------------------------------


@inline
def test_environ_has_every_pep3333_key(listen):
    port = listen(web.Application([(r"/app(/.*)?", WSGIContainer(environ_app))]))
    status, _, body = yield get(
        port,
        "/app/a%20b/%FF?x=1&y=%20",
        method="POST",
        body=b"name=value",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Custom": "one",
                 "Cookie": "a=1"},
    )
    assert status == 200
    env = json.loads(body)
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == "/a b/\xff"  # percent-decoded bytes, as Latin-1
    assert env["QUERY_STRING"] == "x=1&y=%20"  # as sent
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "10"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_X_CUSTOM"] == "one"
    assert env["HTTP_COOKIE"] == "a=1"
    assert env["HTTP_HOST"] == f"127.0.0.1:{port}"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(port))
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert (env["wsgi.multithread"], env["wsgi.multiprocess"], env["wsgi.run_once"]) == (True, False, False)
    assert env["wsgi.input_terminated"] is True
    assert env["errors_has_write"] and env["file_wrapper"]
    assert env["body"] == "name=value"
    assert env["thread"].startswith("cyclone.wsgi-")  # the container's own threads


@inline
def test_repeated_headers_are_joined_and_underscored_names_dropped(listen):
    port = listen(web.Application([(r"/.*", WSGIContainer(environ_app))]))
    raw = yield threads.deferToThread(
        raw_exchange,
        port,
        b"GET /x HTTP/1.1\r\nHost: h.example\r\nX-Tag: a\r\nX-Tag: b\r\nCookie: a=1\r\nCookie: b=2\r\n"
        b"X-User: real\r\nX_User: forged\r\nConnection: close\r\n\r\n",
    )
    env = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert env["HTTP_X_TAG"] == "a, b"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_X_USER"] == "real"  # X_User would have overwritten it
    assert env["SERVER_NAME"] == "h.example"
    assert env["SCRIPT_NAME"] == "" and env["PATH_INFO"] == "/x"  # no group: all of it is PATH_INFO


@pytest.mark.parametrize(
    "pattern, path, script_name, path_info",
    [
        (r"/app(/.*)?", "/app", "/app", ""),
        (r"/app(/.*)?", "/app/", "/app", "/"),
        (r"/app/(.*)", "/app/x/y", "/app", "/x/y"),  # the slash goes to PATH_INFO
        (r"/(?P<path_info>.*)", "/q", "", "/q"),
        (r"/v1/(\w+)(/.*)", "/v1/users/7", "/v1/users", "/7"),  # the last group
    ],
)
@inline
def test_script_name_and_path_info_follow_the_route(listen, pattern, path, script_name, path_info):
    port = listen(web.Application([(pattern, WSGIContainer(environ_app))]))
    status, _, body = yield get(port, path)
    env = json.loads(body)
    assert (status, env["SCRIPT_NAME"], env["PATH_INFO"]) == (200, script_name, path_info)


@inline
def test_fallback_handler_serves_a_container_with_the_route_split(listen):
    port = listen(web.Application([
        (r"/fb(/.*)", web.FallbackHandler, {"fallback": WSGIContainer(environ_app)}),
        (r"/all.*", web.FallbackHandler, {"fallback": WSGIContainer(environ_app)}),
    ]))
    status, _, body = yield get(port, "/fb/%FF?z=1", method="PUT", body=b"payload")
    env = json.loads(body)
    assert status == 200
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == ("/fb", "/\xff", "z=1")
    assert env["body"] == "payload"
    status, _, body = yield get(port, "/all/x")
    env = json.loads(body)
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/all/x")


@inline
def test_container_served_directly_and_in_a_rule_router(listen):
    container = WSGIContainer(environ_app)
    port = listen(HTTPServer(container))
    status, _, body = yield get(port, "/whole/path")
    assert (status, json.loads(body)["PATH_INFO"]) == (200, "/whole/path")
    port = listen(HTTPServer(RuleRouter([Rule(PathMatches(r"/mnt(/.*)"), container)])))
    status, _, body = yield get(port, "/mnt/in")
    env = json.loads(body)
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/mnt", "/in")
    status, _, _ = yield get(port, "/elsewhere")
    assert status == 404


# -- wsgiref: the validator and the demo app ------------------------------------------------------


def checked_app(environ, start_response):
    """Uses every part of the server's side of PEP 3333 that validator wraps."""
    stream = environ["wsgi.input"]
    first = stream.readline()
    rest = stream.readlines()
    errors = environ["wsgi.errors"]
    errors.write("checked_app ran\n")
    errors.writelines(["two ", "lines\n"])
    errors.flush()
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"first line: " + first)
    return iter([b"then %d lines" % len(rest), b"", b" and the end"])


@pytest.fixture
def validator_warnings_fail():
    with warnings.catch_warnings():
        warnings.simplefilter("error", wsgiref.validate.WSGIWarning)
        yield


@inline
def test_wsgiref_validator_finds_nothing_wrong(listen, validator_warnings_fail, caplog):
    caplog.set_level(logging.ERROR, "cyclone.application")
    port = listen(web.Application([
        (r"/checked", WSGIContainer(wsgiref.validate.validator(checked_app))),
        (r"/demo", WSGIContainer(wsgiref.validate.validator(wsgiref.simple_server.demo_app))),
    ]))
    status, _, body = yield get(port, "/checked", method="POST", body=b"a\nb\nc\n")
    assert (status, body) == (200, b"first line: a\nthen 2 lines and the end")
    status, _, body = yield get(port, "/checked", method="POST", body=iter([b"x\ny", b"\nz"]),
                                encode_chunked=True)
    assert (status, body) == (200, b"first line: x\nthen 2 lines and the end")
    status, _, body = yield get(port, "/demo?q=1")
    assert status == 200
    assert body.startswith(b"Hello world!")
    assert b"QUERY_STRING = 'q=1'" in body
    assert b"PATH_INFO = '/demo'" in body
    messages = [r.getMessage() for r in caplog.records]
    assert "wsgi.errors: checked_app ran" in messages
    assert "wsgi.errors: two lines" in messages
    assert not [m for m in messages if "raised" in m]  # validator found no violation


# -- wsgi.input ---------------------------------------------------------------------------------


def pieces_app(environ, start_response):
    """Reads the body 1000 bytes at a time; answers with the piece sizes."""
    stream = environ["wsgi.input"]
    sizes = []
    digest = 0
    while True:
        piece = stream.read(1000)
        if not piece:
            break
        sizes.append(len(piece))
        digest = (digest * 31 + sum(piece)) % 1000003
    after_eof = [stream.read(10), stream.read(), stream.readline()]
    data = json.dumps({"sizes": sizes, "digest": digest, "after_eof": [x.decode() for x in after_eof]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


@inline
def test_chunked_upload_is_read_in_pieces(listen):
    port = listen(web.Application([(r"/up", WSGIContainer(pieces_app))]))
    payload = bytes(range(256)) * 4000  # 1,024,000 bytes
    pieces = [payload[i : i + 77777] for i in range(0, len(payload), 77777)]
    status, _, body = yield get(port, "/up", method="POST", body=iter(pieces), encode_chunked=True)
    result = json.loads(body)
    assert status == 200
    assert result["sizes"] == [1000] * 1024
    expected = 0
    for i in range(0, len(payload), 1000):
        expected = (expected * 31 + sum(payload[i : i + 1000])) % 1000003
    assert result["digest"] == expected
    assert result["after_eof"] == ["", "", ""]


def early_reader(environ, start_response):
    """Answers with the body's first line before the client has sent the rest."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    stream = environ["wsgi.input"]
    write(b"got " + stream.readline())
    rest = stream.read()
    return [b"rest " + rest]


@inline
def test_the_app_reads_the_body_while_it_arrives(listen):
    port = listen(web.Application([(r"/early", WSGIContainer(early_reader))]))

    def client():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"6\r\nhello\n\r\n")
            seen = b""
            while b"got hello\n" not in seen:  # answered before the body ended
                chunk = sock.recv(4096)
                assert chunk, seen
                seen += chunk
            sock.sendall(b"5\r\nworld\r\n0\r\n\r\n")
            while not seen.endswith(b"0\r\n\r\n"):
                chunk = sock.recv(4096)
                assert chunk, seen
                seen += chunk
            return seen

    seen = yield threads.deferToThread(client)
    assert b"Transfer-Encoding: chunked" in seen
    assert b"rest world" in seen


# -- start_response, write(), close() and errors ---------------------------------------------------


class Closing:
    """An iterable that records its close()."""

    closed: list[str] = []

    def __init__(self, name, chunks, fail_at=None):
        self.name, self.chunks, self.fail_at = name, chunks, fail_at

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError(f"{self.name} fails at {i}")
            yield chunk

    def close(self):
        Closing.closed.append(self.name)


def make_app(kind):
    def app(environ, start_response):
        if kind == "raise-first":
            raise ValueError("broken before start_response")
        if kind == "exc-info-before-head":
            try:
                raise KeyError("inner")
            except KeyError:
                start_response("200 OK", [("Content-Type", "text/plain")])
                start_response("503 Busy", [("Content-Type", "text/plain"), ("Retry-After", "3")],
                               sys.exc_info())
            return [b"busy"]
        if kind == "exc-info-after-head":
            write = start_response("200 OK", [])
            write(b"started")
            try:
                raise KeyError("late")
            except KeyError:
                start_response("500 Oops", [], sys.exc_info())  # re-raises: the head is out
            return [b"never"]
        if kind == "twice":
            start_response("200 OK", [])
            start_response("200 OK", [])
            return [b"never"]
        if kind == "hop-by-hop":
            start_response("200 OK", [("Connection", "close")])
            return [b"never"]
        if kind == "bad-status":
            start_response("200", [])
            return [b"never"]
        if kind == "headers-not-list":
            start_response("200 OK", (("A", "b"),))
            return [b"never"]
        if kind == "str-body":
            start_response("200 OK", [])
            return ["text is not bytes"]
        if kind == "too-long":
            start_response("200 OK", [("Content-Length", "3")])
            return [b"more than three"]
        if kind == "no-start-response":
            return [b"body"]
        if kind == "fail-midway":
            start_response("200 OK", [])
            return Closing(kind, [b"one", b"two", b"three"], fail_at=2)
        if kind == "empty":
            start_response("204 No Content", [])
            return Closing(kind, [])
        if kind == "empty-200":
            start_response("200 OK", [("X-A", "b")])
            return Closing(kind, [b"", b""])
        if kind == "system-exit":
            raise SystemExit(3)
        if kind == "file":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return environ["wsgi.file_wrapper"](open(__file__, "rb"), 1000)
        raise AssertionError(kind)

    return app


@pytest.fixture
def errors_app(listen):
    Closing.closed = []
    kinds = ["raise-first", "exc-info-before-head", "exc-info-after-head", "twice", "hop-by-hop", "bad-status",
             "headers-not-list", "str-body", "too-long", "no-start-response", "fail-midway", "empty", "empty-200",
             "system-exit", "file"]
    return listen(web.Application([(f"/{kind}", WSGIContainer(make_app(kind))) for kind in kinds]
                                  + [(r"/ok", WSGIContainer(environ_app))]))


@pytest.mark.parametrize(
    "kind, logged",
    [
        ("raise-first", "broken before start_response"),
        ("twice", "second time without exc_info"),
        ("hop-by-hop", "Connection is a hop-by-hop header"),
        ("bad-status", "'NNN reason'"),
        ("headers-not-list", "list of (name, value) pairs"),
        ("str-body", "yields bytes, not str"),
        ("too-long", "cannot be sent"),
        ("no-start-response", "before calling start_response"),
        ("system-exit", "SystemExit"),
    ],
)
@inline
def test_an_app_error_before_the_head_is_a_500_with_a_log_line(errors_app, caplog, kind, logged):
    caplog.set_level(logging.ERROR, "cyclone.application")
    status, _, body = yield get(errors_app, f"/{kind}")
    assert (status, body) == (500, b"500 Internal Server Error")
    text = "\n".join(r.getMessage() + "\n" + (r.exc_text or "") for r in caplog.records)
    assert f"serving GET /{kind}" in text or f"for GET /{kind}" in text
    assert logged in text or any(logged in str(r.exc_info[1]) or logged == r.exc_info[0].__name__
                                 for r in caplog.records if r.exc_info)
    # the server carries on
    status, _, _ = yield get(errors_app, "/ok")
    assert status == 200


@inline
def test_exc_info_before_the_head_replaces_the_response(errors_app):
    status, headers, body = yield get(errors_app, "/exc-info-before-head")
    assert (status, headers["Retry-After"], body) == (503, "3", b"busy")


@pytest.mark.parametrize("kind", ["exc-info-after-head", "fail-midway"])
@inline
def test_an_error_after_the_head_cuts_the_response(errors_app, caplog, kind):
    caplog.set_level(logging.ERROR, "cyclone.application")
    with pytest.raises(http.client.IncompleteRead) as info:
        yield get(errors_app, f"/{kind}")
    assert info.value.partial in (b"started", b"onetwo")
    assert any(r.exc_info for r in caplog.records)
    if kind == "fail-midway":  # close() runs after the response is handed over
        yield poll_until(lambda: Closing.closed == ["fail-midway"], timeout=10)


@inline
def test_empty_bodies_and_close(errors_app):
    status, headers, body = yield get(errors_app, "/empty")
    assert (status, body, headers["Content-Length"]) == (204, b"", None)
    status, headers, body = yield get(errors_app, "/empty-200")
    assert (status, body, headers["Content-Length"], headers["X-A"]) == (200, b"", "0", "b")
    yield poll_until(lambda: sorted(Closing.closed) == ["empty", "empty-200"], timeout=10)


@inline
def test_file_wrapper_streams_a_file(errors_app):
    status, _, body = yield get(errors_app, "/file")
    with open(__file__, "rb") as f:
        assert (status, body) == (200, f.read())


@inline
def test_head_request_gets_the_head_of_get(listen):
    port = listen(web.Application([(r"/.*", WSGIContainer(environ_app))]))
    status, headers, body = yield get(port, "/h", method="HEAD")
    assert status == 200 and body == b""
    assert int(headers["Content-Length"]) > 100


def endless(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Closing("endless", iter(lambda: b"z" * 65536, None))


@inline
def test_a_client_that_leaves_stops_the_app_and_close_is_called(listen):
    Closing.closed = []
    port = listen(web.Application([(r"/endless", WSGIContainer(endless))]))

    def client():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
            got = 0
            while got < 1_000_000:
                got += len(sock.recv(65536))

    yield threads.deferToThread(client)
    yield poll_until(lambda: Closing.closed == ["endless"], timeout=10)


@inline
def test_the_app_runs_in_the_given_pool(listen):
    pool = ThreadPool(1, 1, name="given-pool")
    pool.start()
    try:
        port = listen(web.Application([(r"/", WSGIContainer(environ_app, pool))]))
        results = yield threads.deferToThread(lambda: [fetch(port, "/") for _ in range(3)])
        names = {json.loads(body)["thread"] for _, _, body in results}
        assert names == {"PoolThread-given-pool-0"}
    finally:
        pool.stop()


def test_settings_are_checked():
    with pytest.raises(TypeError):
        WSGIContainer("not an app")
    with pytest.raises(ValueError):
        WSGIContainer(environ_app, max_threads=0)
    with pytest.raises(ValueError):
        WSGIContainer(environ_app, write_buffer_size=0)


# -- Flask, Django, and a WebSocket next to Flask ---------------------------------------------


def flask_app():
    import flask

    app = flask.Flask("flask_under_cyclone")

    @app.route("/")
    def index():
        return "Hello from Flask"

    @app.route("/user/<int:uid>")
    def user(uid):
        return flask.jsonify(uid=uid, url=flask.url_for("user", uid=uid), root=flask.request.script_root)

    @app.route("/form", methods=["POST"])
    def form():
        return flask.jsonify(form=flask.request.form.to_dict(), files={
            name: f.read().decode() for name, f in flask.request.files.items()})

    @app.route("/upload", methods=["POST"])
    def upload():
        total = 0
        while True:
            piece = flask.request.stream.read(4096)
            if not piece:
                break
            total += len(piece)
        return flask.jsonify(total=total)

    @app.route("/stream")
    def stream():
        return flask.Response((f"line {i}\n" for i in range(5)), mimetype="text/plain")

    @app.route("/boom")
    def boom():
        raise RuntimeError("a Flask view that fails")

    return app


@pytest.fixture
def flask_port(listen):
    return listen(web.Application([(r"/flask(/.*)?", WSGIContainer(flask_app()))]))


@inline
def test_flask_app_runs_unchanged(flask_port, caplog):
    status, _, body = yield get(flask_port, "/flask/")
    assert (status, body) == (200, b"Hello from Flask")
    status, _, body = yield get(flask_port, "/flask/user/42")
    assert (status, json.loads(body)) == (200, {"uid": 42, "url": "/flask/user/42", "root": "/flask"})
    status, _, _ = yield get(flask_port, "/flask/user/abc")
    assert status == 404
    boundary = "XyZ"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
                 f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\n"
                 f"Content-Type: text/plain\r\n\r\nfile body\r\n--{boundary}--\r\n").encode()
    status, _, body = yield get(flask_port, "/flask/form", method="POST", body=multipart,
                                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (status, json.loads(body)) == (200, {"form": {"a": "1"}, "files": {"f": "file body"}})
    status, _, body = yield get(flask_port, "/flask/upload", method="POST",
                                body=iter([b"x" * 100_000, b"y" * 50_000]), encode_chunked=True)
    assert (status, json.loads(body)) == (200, {"total": 150_000})
    status, _, body = yield get(flask_port, "/flask/stream")
    # (chunked, or one write with a Content-Length if all of it was ready at once)
    assert (status, body) == (200, b"".join(b"line %d\n" % i for i in range(5)))
    caplog.set_level(logging.ERROR)
    status, _, _ = yield get(flask_port, "/flask/boom")
    assert status == 500  # Flask's own error page
    status, _, body = yield get(flask_port, "/flask/")
    assert status == 200


@pytest.fixture(scope="module")
def django_application():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.wsgi_django.settings")
    from tests.wsgi_django.wsgi import application

    return application


@inline
def test_django_project_runs_unchanged(listen, django_application, caplog):
    port = listen(web.Application([(r"/dj(/.*)", WSGIContainer(django_application))]))
    status, _, body = yield get(port, "/dj/hello/ann?q=1", headers={"Host": "localhost"})
    assert status == 200
    assert json.loads(body) == {
        "name": "ann", "path": "/dj/hello/ann", "path_info": "/hello/ann", "url": "/dj/hello/x",
        "absolute": "http://localhost/dj/hello/ann?q=1", "query": {"q": "1"},
    }
    status, _, body = yield get(port, "/dj/echo", method="POST", body=b"a=1&b=%C3%A9",
                                headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": "c=v"})
    assert (status, json.loads(body)) == (200, {"method": "POST", "form": {"a": "1", "b": "é"},
                                                "body": "a=1&b=%C3%A9", "cookie": "v"})
    status, _, body = yield get(port, "/dj/stream")
    assert (status, body) == (200, b"part0,part1,part2,part3,part4,")
    caplog.set_level(logging.CRITICAL)  # Django logs its 403 and 500 itself
    status, _, _ = yield get(port, "/dj/csrf", method="POST", body=b"x=1",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    status, _, _ = yield get(port, "/dj/boom")
    assert status == 500
    status, _, _ = yield get(port, "/dj/missing")
    assert status == 404
    status, _, _ = yield get(port, "/dj/hello/bob", headers={"Host": "evil.example"})
    assert status == 400  # ALLOWED_HOSTS: Django sees the Host header


class Echo(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message("echo: " + message)


@inline
def test_a_websocket_route_and_a_flask_app_share_a_port(listen):
    from websockets.sync.client import connect

    port = listen(web.Application([
        (r"/ws", Echo),
        (r"/(.*)", web.FallbackHandler, {"fallback": WSGIContainer(flask_app())}),
    ]))

    def client():
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send("hi")
            first = ws.recv(timeout=10)
            page = fetch(port, "/")
            user = fetch(port, "/user/7")
            ws.send("again")
            second = ws.recv(timeout=10)
        return first, page, user, second

    first, page, user, second = yield threads.deferToThread(client)
    assert (first, second) == ("echo: hi", "echo: again")
    assert page[0] == 200 and page[2] == b"Hello from Flask"
    assert json.loads(user[2])["url"] == "/user/7"


# -- a 100 MB response to a slow client: bounded memory -----------------------------------------

BIG_SERVER = """
import sys
from twisted.internet import reactor
import cyclone.web
from cyclone.wsgi import WSGIContainer

PIECE = b"0123456789abcdef" * 4096  # 64 KiB

def big(environ, start_response):
    count = int(environ["QUERY_STRING"] or "1600")
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(count * len(PIECE)))])
    try:
        for _ in range(count):
            yield PIECE
    finally:
        if len(sys.argv) > 2:  # tells the test that close() ran
            open(sys.argv[2], "w").write("closed")

app = cyclone.web.Application([(r"/big", WSGIContainer(big))])
reactor.listenTCP(int(sys.argv[1]), app, interface="127.0.0.1")
reactor.run()
"""


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc to read the server's memory")
def test_100_mb_response_to_a_slow_reader_keeps_server_memory_flat(tmp_path):
    script = tmp_path / "big_server.py"
    script.write_text(BIG_SERVER)
    port = free_port()
    with Server([sys.executable, str(script), str(port)], tmp_path, tmp_path / "out.log") as server:
        server.wait_tcp(port)
        pid = server.proc.pid
        # warm up (thread pool, imports), then take the baseline
        status, _, body = fetch(port, "/big?16")
        assert status == 200 and len(body) == 16 * 65536
        baseline = rss_kib(pid)
        total = 1600 * 65536
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # a small window: a slow client
            sock.settimeout(30)
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            assert head.startswith(b"HTTP/1.1 200 ")
            received = 0
            while received < total:
                chunk = sock.recv(min(4096, total - received))  # small reads: slower than the server
                assert chunk, f"connection closed after {received} bytes"
                received += len(chunk)
        assert received == total
        peak = rss_kib(pid, "VmHWM")  # the most the server ever held
        # buffering what the client has not taken would hold most of the 100 MB
    assert peak - baseline < 24 * 1024, (baseline, peak)


# -- a fast client and an app that reads slowly: the client waits -------------------------------


@inline
def test_a_client_sending_faster_than_the_app_reads_is_made_to_wait(listen):
    gate = threading.Event()

    def slow_reader(environ, start_response):
        stream = environ["wsgi.input"]
        first = stream.read(1)
        assert gate.wait(30), "the test never opened the gate"
        total = len(first) + len(stream.read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % total]

    port = listen(web.Application([(r"/slow", WSGIContainer(slow_reader))]))
    size = 64 * 1024 * 1024

    def client():
        import select

        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
            piece = b"u" * 65536
            sent = 0
            sock.setblocking(False)
            # send until the socket stays full: the server stopped reading
            while sent < size:
                _, writable, _ = select.select([], [sock], [], 2.0)
                if not writable:
                    break
                try:
                    sent += sock.send(piece[: size - sent])
                except BlockingIOError:
                    continue
            accepted = sent
            gate.set()
            sock.setblocking(True)
            while sent < size:  # read(), which wants it all, lets the client go on
                sent += sock.send(piece[: size - sent])
            answer = b""
            while not answer.endswith(b"%d" % size):
                chunk = sock.recv(65536)
                assert chunk, answer
                answer += chunk
            return accepted, answer

    accepted, answer = yield threads.deferToThread(client)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    # the kernel's buffers and input_buffer_size (256 KiB) hold what was
    # accepted (about 1 MiB): far from the 64 MiB a server that kept reading takes
    assert accepted < 16 * 1024 * 1024, accepted


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="runs the server of the 100 MB test")
def test_the_server_stops_while_a_slow_client_holds_an_app_thread(tmp_path):
    import subprocess

    script = tmp_path / "big_server.py"
    script.write_text(BIG_SERVER)
    port = free_port()
    closed = tmp_path / "closed"
    with Server([sys.executable, str(script), str(port), str(closed)], tmp_path, tmp_path / "out.log") as server:
        server.wait_tcp(port)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")  # then reads no more
            server.proc.terminate()  # SIGTERM: twistd's way to stop
            try:
                code = server.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                raise AssertionError("the server did not stop: " + server.output()) from None
        assert code == 0, server.output()
        # the thread waiting on the client was let go: the app's close() ran
        assert closed.read_text() == "closed"


def lines_app(environ, start_response):
    stream = environ["wsgi.input"]
    head = stream.readline(3)
    rest_of_first = stream.readline()
    others = [line for line in stream]
    data = json.dumps([head.decode(), rest_of_first.decode(), [x.decode() for x in others]]).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


@inline
def test_readline_with_a_size_and_iteration_over_a_chunked_body(listen):
    port = listen(web.Application([(r"/lines", WSGIContainer(lines_app))]))
    status, _, body = yield get(port, "/lines", method="POST", body=iter([b"abcdef\ng", b"h\n", b"", b"ij"]),
                                encode_chunked=True)
    assert (status, json.loads(body)) == (200, ["abc", "def\n", ["gh\n", "ij"]])


@inline
def test_an_http_10_client_gets_a_close_delimited_stream(listen):
    def streamed(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"one "
        yield b"two"

    port = listen(web.Application([(r"/s", WSGIContainer(streamed))]))
    raw = yield threads.deferToThread(raw_exchange, port, b"GET /s HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"chunked" not in head.lower()
    assert body == b"one two"


@inline
def test_write_to_a_client_that_left_raises_client_disconnected(listen, caplog):
    raised = []

    def writer(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        try:
            while True:
                write(b"w" * 65536)
        except ClientDisconnected as exc:
            raised.append(exc)
            raise

    caplog.set_level(logging.INFO)
    port = listen(web.Application([(r"/w", WSGIContainer(writer))]))

    def client():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /w HTTP/1.1\r\nHost: x\r\n\r\n")
            got = 0
            while got < 500_000:
                got += len(sock.recv(65536))

    yield threads.deferToThread(client)
    yield poll_until(lambda: raised, timeout=10)
    yield poll_until(lambda: "Client went away during GET /w" in caplog.text, timeout=10)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "cyclone.application"]


@inline
def test_fallback_handler_calls_a_plain_callable_with_the_request_only(listen):
    seen = []

    def plain(request):  # takes no path_args: called as before, groups or not
        seen.append(request.path)
        request.connection.write_head(200, [("Content-Length", "5")], body=b"plain", finish=True)

    port = listen(web.Application([(r"/p/(\w+)", web.FallbackHandler, {"fallback": plain})]))
    status, _, body = yield get(port, "/p/abc")
    assert (status, body, seen) == (200, b"plain", ["/p/abc"])
