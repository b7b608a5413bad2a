"""cyclone.session over real sockets: the standard library's cookie-keeping
client (``urllib.request`` with an ``http.cookiejar.CookieJar``) and
``http.client`` for the exact ``Set-Cookie`` headers; the memory store on a
``task.Clock`` for expiry, the Redis store on a real redis-server (the
``redis_server`` fixture), shared with a second server process.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import socket
import sys
import textwrap
import urllib.error
import urllib.request

import pytest
import pytest_twisted
from twisted.internet import defer, task, threads

import cyclone.util
import cyclone.web
from cyclone.session import MemorySessionStore, RedisSessionStore, SessionNotLoaded
from tests.conftest import poll_until
from tests.test_plugin import ROOT, Server, free_port

inline = pytest_twisted.inlineCallbacks
SECRET = "a secret of the tests, long enough to sign cookies"


class Browser:
    """A client that keeps cookies, as a browser does (urllib's cookie jar)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _open(self, path: str, data: bytes | None) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, data=data, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def get(self, path: str) -> defer.Deferred:
        return threads.deferToThread(self._open, path, None)

    def post(self, path: str, body: bytes = b"") -> defer.Deferred:
        return threads.deferToThread(self._open, path, body)

    def cookie(self, name: str = "session_id") -> str | None:
        for cookie in self.jar:
            if cookie.name == name:
                return cookie.value
        return None

    def set_cookie(self, value: str, name: str = "session_id") -> None:
        self.jar.clear()
        self.jar.set_cookie(http.cookiejar.Cookie(
            0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, True,
            None, None, {}))


def raw_get(port: int, path: str, cookie: str | None = None) -> tuple[int, list[str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": f"session_id={cookie}"} if cookie else {})
        response = conn.getresponse()
        return response.status, response.msg.get_all("Set-Cookie") or [], response.read()
    finally:
        conn.close()


def session_id_of(signed: str) -> str:
    """The id inside a signed cookie value (Tornado's version 2 format)."""
    return cyclone.web.decode_signed_value(SECRET, "session_id", signed.strip('"')).decode()


# -- the application of these tests ------------------------------------------------------------

expired_ids: list[str] = []


class CounterHandler(cyclone.web.RequestHandler):
    async def get(self):
        await self.session.load()  # needed by the Redis store; at once for the memory store
        self.session["visits"] = self.session.get("visits", 0) + 1
        self.write({"visits": self.session["visits"], "user": self.session.get("user"),
                    "new": self.session.is_new})


class PausingCounterHandler(cyclone.web.RequestHandler):
    """Counts, then has Redis hold every write for a while (CLIENT PAUSE WRITE):
    the session's save waits in Redis, reads do not."""

    async def get(self):
        await self.session.load()
        self.session["visits"] = self.session.get("visits", 0) + 1
        await self.redis.execute_command("CLIENT", "PAUSE", 700, "WRITE")
        self.write({"visits": self.session["visits"]})


class PeekHandler(cyclone.web.RequestHandler):
    """Reads the session without changing it."""

    async def get(self):
        await self.session.load()
        self.write({"visits": self.session.get("visits"), "id": self.session.id})


class LoginHandler(cyclone.web.RequestHandler):
    async def post(self):
        await self.session.load()
        self.session.regenerate()
        self.session["user"] = self.get_argument("user")
        self.session.notify_on_expire(expired_ids.append)
        self.write("welcome")


class LogoutHandler(cyclone.web.RequestHandler):
    async def post(self):
        await self.session.load()
        self.session.expire()
        self.write("bye")


class PlainHandler(cyclone.web.RequestHandler):
    def get(self):
        self.write("no session here")


class ReadOnlyHandler(cyclone.web.RequestHandler):
    def get(self):
        self.write({"empty": len(self.session) == 0})


class BrokenHandler(cyclone.web.RequestHandler):
    def get(self):
        self.session["visits"] = 1000
        raise ValueError("the handler failed after changing the session")


class NotJSONHandler(cyclone.web.RequestHandler):
    def get(self):
        self.session["when"] = object()


class SyncRedisHandler(cyclone.web.RequestHandler):
    def get(self):
        try:
            self.session["x"] = 1
        except SessionNotLoaded as exc:
            self.write(str(exc))


HANDLERS = [
    (r"/count", CounterHandler), (r"/count-paused", PausingCounterHandler), (r"/peek", PeekHandler), (r"/login", LoginHandler),
    (r"/logout", LogoutHandler), (r"/plain", PlainHandler), (r"/readonly", ReadOnlyHandler),
    (r"/broken", BrokenHandler), (r"/notjson", NotJSONHandler), (r"/sync", SyncRedisHandler),
]


@pytest.fixture
def serve(listen):
    """``serve(**settings) -> (app, port)``; Redis pools are closed at the end."""
    apps = []

    def start(**settings):
        settings.setdefault("cookie_secret", SECRET)
        app = cyclone.web.Application(HANDLERS, **settings)
        apps.append(app)
        return app, listen(app)

    expired_ids.clear()
    yield start
    for app in apps:
        if "redis" in app.__dict__:
            pytest_twisted.blockon(app.redis.disconnect())
        store = app.__dict__.get("_session_store")
        sweeper = getattr(store, "_sweeper", None)
        if sweeper is not None:
            sweeper.stop()


# -- memory store ------------------------------------------------------------------------------


@inline
def test_a_visit_counter_with_the_default_memory_store(serve):
    app, port = serve()
    browser = Browser(port)
    for expected in (1, 2, 3):
        status, body = yield browser.get("/count")
        assert status == 200 and json.loads(body)["visits"] == expected
    assert json.loads(body)["new"] is False
    assert len(app._session_store) == 1
    other = Browser(port)  # another browser, another session
    status, body = yield other.get("/count")
    assert json.loads(body) == {"visits": 1, "user": None, "new": True}
    assert other.cookie() != browser.cookie()


@inline
def test_the_cookie_is_signed_httponly_samesite_and_holds_only_an_id(serve):
    _, port = serve()
    status, cookies, _ = yield threads.deferToThread(raw_get, port, "/count")
    assert status == 200 and len(cookies) == 1
    name_value, *attributes = [part.strip() for part in cookies[0].split(";")]
    name, value = name_value.split("=", 1)
    assert name == "session_id"
    assert sorted(attributes) == ["HttpOnly", "Path=/", "SameSite=Lax"]  # no Expires: a browser session
    session_id = session_id_of(value)
    assert len(session_id) == 43 and "visits" not in value
    # the same cookie back: the same session, and no new cookie
    status, cookies, body = yield threads.deferToThread(raw_get, port, "/count", value)
    assert json.loads(body)["visits"] == 2 and cookies == []


@inline
def test_a_secure_cookie_over_https_and_cookie_kwargs(serve):
    _, port = serve(session_cookie_name="sid", session_cookie_kwargs={"samesite": "Strict", "max_age": 60})
    status, cookies, _ = yield threads.deferToThread(raw_get, port, "/count")
    attributes = sorted(part.strip() for part in cookies[0].split(";")[1:])
    assert cookies[0].startswith("sid=")
    assert attributes == ["HttpOnly", "Max-Age=60", "Path=/", "SameSite=Strict"]


@inline
def test_no_cookie_and_nothing_stored_for_an_untouched_or_empty_session(serve):
    app, port = serve()
    status, cookies, body = yield threads.deferToThread(raw_get, port, "/plain")
    assert (status, cookies) == (200, [])
    status, cookies, body = yield threads.deferToThread(raw_get, port, "/readonly")
    assert (status, cookies, json.loads(body)) == (200, [], {"empty": True})
    assert len(app._session_store) == 0


def test_handlers_that_never_touch_the_session_pay_nothing():
    handler_class = cyclone.web.RequestHandler
    assert handler_class._before_finish is None
    assert isinstance(handler_class.__dict__["session"], cyclone.util.lazy_attribute)


@inline
def test_an_unknown_or_forged_id_is_never_adopted(serve):
    app, port = serve()
    # a correctly signed cookie naming an id the server never gave: a new id
    chosen = "A" * 43
    forged = cyclone.web.create_signed_value(SECRET, "session_id", chosen).decode()
    status, cookies, body = yield threads.deferToThread(raw_get, port, "/count", forged)
    assert json.loads(body)["new"] is True
    new_id = session_id_of(cookies[0].split(";")[0].split("=", 1)[1])
    assert new_id != chosen
    # a cookie signed with another secret: ignored
    other = cyclone.web.create_signed_value("another secret", "session_id", new_id).decode()
    status, cookies, body = yield threads.deferToThread(raw_get, port, "/count", other)
    assert json.loads(body)["visits"] == 1 and session_id_of(cookies[0].split(";")[0].split("=", 1)[1]) != new_id


@inline
def test_login_regenerates_the_id_and_logout_ends_the_session(serve):
    app, port = serve()
    browser = Browser(port)
    yield browser.get("/count")
    before = browser.cookie()
    status, body = yield browser.post("/login", b"user=alice")
    assert (status, body) == (200, "welcome")
    after = browser.cookie()
    assert session_id_of(after) != session_id_of(before)
    status, body = yield browser.get("/count")
    assert json.loads(body) == {"visits": 2, "user": "alice", "new": False}  # content kept
    # the id from before the login is worthless now (session fixation)
    thief = Browser(port)
    thief.set_cookie(before)
    status, body = yield thief.get("/peek")
    assert json.loads(body) == {"visits": None, "id": None}
    assert expired_ids == []

    status, body = yield browser.post("/logout")
    assert (status, body) == (200, "bye")
    assert browser.cookie() is None  # cleared
    assert expired_ids == [session_id_of(after)]
    assert len(app._session_store) == 0


@inline
def test_idle_expiry_and_absolute_lifetime_on_the_memory_store(serve):
    clock = task.Clock()
    clock.advance(1_000_000)
    store = MemorySessionStore(idle_timeout=10, lifetime=25, sweep_interval=5, clock=clock)
    app, port = serve(session_store=store)
    browser = Browser(port)
    yield browser.post("/login", b"user=bob")
    session_id = session_id_of(browser.cookie())
    for _ in range(2):  # used every 9 s: the idle timeout never runs out...
        clock.advance(9)
        status, body = yield browser.get("/count")
        assert json.loads(body)["user"] == "bob"
    clock.advance(9)  # ...but 27 s after login, the lifetime has
    status, body = yield browser.get("/count")
    assert json.loads(body) == {"visits": 1, "user": None, "new": True}
    assert expired_ids == [session_id]

    expired_ids.clear()
    yield browser.post("/login", b"user=carol")
    session_id = session_id_of(browser.cookie())
    clock.advance(10)  # idle for the whole timeout: the sweeper finds it, without a request
    assert expired_ids == [session_id]
    assert session_id not in store._sessions


@inline
def test_the_memory_store_drops_the_least_recently_used_session_when_full(serve):
    store = MemorySessionStore(max_sessions=2)
    app, port = serve(session_store=store)
    browsers = [Browser(port) for _ in range(3)]
    for browser in browsers[:2]:
        yield browser.post("/login", b"user=u")
    yield browsers[0].get("/count")  # browsers[1] is now the least recently used
    yield browsers[2].post("/login", b"user=u")
    assert len(store) == 2
    assert expired_ids == [session_id_of(browsers[1].cookie())]
    status, body = yield browsers[0].get("/count")
    assert json.loads(body)["user"] == "u"
    status, body = yield browsers[1].get("/count")
    assert json.loads(body)["user"] is None


@inline
def test_an_error_page_saves_nothing(serve):
    app, port = serve()
    browser = Browser(port)
    yield browser.get("/count")
    status, _ = yield browser.get("/broken")
    assert status == 500
    status, body = yield browser.get("/count")
    assert json.loads(body)["visits"] == 2  # not 1001


@inline
def test_values_that_are_not_json_give_a_500_that_says_so(serve, caplog):
    app, port = serve()
    status, _ = yield Browser(port).get("/notjson")
    assert status == 500
    assert "session values must be JSON-serializable" in caplog.text


def test_settings_are_checked(serve):
    from cyclone.session import store_of

    for settings, message in (({"session_store": "disk"}, "session_store must be"),
                              ({"session_idle_timeout": 0}, "session_idle_timeout"),
                              ({"session_lifetime": "1h"}, "session_lifetime")):
        app = cyclone.web.Application([], cookie_secret=SECRET, **settings)
        with pytest.raises(ValueError, match=message):
            store_of(app)


@inline
def test_sessions_need_a_cookie_secret(listen):
    app = cyclone.web.Application(HANDLERS)
    status, _, _ = yield threads.deferToThread(raw_get, listen(app), "/count")
    assert status == 500


# -- Redis store -------------------------------------------------------------------------------


def redis_settings(redis_server, **extra):
    return {"session_store": "redis", "redis_url": redis_server.url, "redis_poolsize": 2, **extra}


@defer.inlineCallbacks
def redis_command(app, *args):
    return (yield app.redis.execute_command(*args))


@inline
def test_redis_store_saves_before_the_response_goes_out(redis_server, serve):
    app, port = serve(**redis_settings(redis_server, session_idle_timeout=600))
    browser = Browser(port)
    status, body = yield browser.post("/login", b"user=dora")
    key = "cyclone:session:" + session_id_of(browser.cookie())
    # no polling: the record is in Redis by the time the client has the answer
    created, data = (yield redis_command(app, "GET", key)).split(":", 1)
    assert float(created) > 1.7e9 and json.loads(data) == {"user": "dora"}
    ttl = yield redis_command(app, "TTL", key)
    assert 590 < ttl <= 600
    status, body = yield browser.get("/count")
    assert json.loads(body)["user"] == "dora"
    assert json.loads((yield redis_command(app, "GET", key)).split(":", 1)[1]) == {"user": "dora", "visits": 1}


def raw_redis_get(address: tuple[str, int], key: str) -> bytes | None:
    """GET over a plain socket in RESP, without any Redis client library."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key.encode()))
        reply = b""
        while not reply.endswith(b"\r\n") or (reply.startswith(b"$") and reply.count(b"\r\n") < 2
                                               and not reply.startswith(b"$-1")):
            reply += sock.recv(65536)
    return None if reply.startswith(b"$-1") else reply.split(b"\r\n")[1]


@inline
def test_the_response_waits_until_redis_has_the_session(redis_server, serve):
    app, port = serve(**redis_settings(redis_server))
    browser = Browser(port)
    yield browser.get("/count")
    key = "cyclone:session:" + session_id_of(browser.cookie())

    def count_then_read_redis() -> tuple[str, bytes | None]:
        # Redis holds the save (CLIENT PAUSE WRITE) but answers reads: had the
        # response gone out before the save was done, this read would see visits 1
        _, body = browser._open("/count-paused", None)
        return body, raw_redis_get(redis_server.address, key)

    body, record = yield threads.deferToThread(count_then_read_redis)
    assert json.loads(body) == {"visits": 2}
    assert json.loads(record.split(b":", 1)[1]) == {"visits": 2}


@inline
def test_redis_store_loading_restarts_the_ttl_and_the_lifetime_caps_it(redis_server, serve):
    app, port = serve(**redis_settings(redis_server, session_idle_timeout=600, session_lifetime=3600))
    browser = Browser(port)
    yield browser.post("/login", b"user=eve")
    key = "cyclone:session:" + session_id_of(browser.cookie())
    yield redis_command(app, "EXPIRE", key, 100)
    yield browser.get("/peek")  # read only: nothing saved, but the idle timeout starts again
    assert (yield redis_command(app, "TTL", key)) > 590
    # a session 3500 s old has 100 s of lifetime left: its TTL is capped to that
    created, data = (yield redis_command(app, "GET", key)).split(":", 1)
    yield redis_command(app, "SET", key, f"{float(created) - 3500!r}:{data}")
    yield browser.get("/peek")
    assert 90 < (yield redis_command(app, "TTL", key)) <= 100
    # past its lifetime: gone, whatever Redis's TTL says
    yield redis_command(app, "SET", key, f"{float(created) - 3700!r}:{data}", "EX", 600)
    status, body = yield browser.get("/peek")
    assert json.loads(body) == {"visits": None, "id": None}
    assert (yield redis_command(app, "EXISTS", key)) == 0


@inline
def test_redis_ttl_expiry_ends_the_session_and_notifies(redis_server, serve):
    app, port = serve(**redis_settings(redis_server, session_idle_timeout=1, session_sweep_interval=0.2))
    browser = Browser(port)
    yield browser.post("/login", b"user=fay")
    session_id = session_id_of(browser.cookie())
    key = "cyclone:session:" + session_id
    assert (yield redis_command(app, "TTL", key)) == 1
    # Redis drops the key by itself; the store's sweeper notices
    yield poll_until(lambda: expired_ids == [session_id], timeout=10)
    assert (yield redis_command(app, "EXISTS", key)) == 0
    status, body = yield browser.get("/count")
    assert json.loads(body) == {"visits": 1, "user": None, "new": True}


@inline
def test_an_unreadable_record_starts_a_new_session(redis_server, serve, caplog):
    app, port = serve(**redis_settings(redis_server))
    browser = Browser(port)
    yield browser.get("/count")
    key = "cyclone:session:" + session_id_of(browser.cookie())
    for bad in ("garbage", "1.5e9:[1, 2]", "1.5e9:{not json"):
        yield redis_command(app, "SET", key, bad.replace("1.5e9", repr(reactor_now())))
        status, body = yield browser.get("/count")
        assert (status, json.loads(body)["new"]) == (200, True)
        key = "cyclone:session:" + session_id_of(browser.cookie())
    assert "starting afresh" in caplog.text


def reactor_now() -> float:
    from twisted.internet import reactor

    return reactor.seconds()


@inline
def test_a_redis_session_must_be_loaded_before_use(redis_server, serve):
    app, port = serve(**redis_settings(redis_server))
    browser = Browser(port)
    yield browser.get("/count")
    status, body = yield browser.get("/sync")
    assert status == 200 and "await self.session.load()" in body


SECOND_SERVER = textwrap.dedent('''
    import sys
    from twisted.internet import reactor
    import cyclone.web
    from tests.test_session import HANDLERS, SECRET

    port, redis_url = int(sys.argv[1]), sys.argv[2]
    app = cyclone.web.Application(HANDLERS, cookie_secret=SECRET, session_store="redis", redis_url=redis_url)
    reactor.listenTCP(port, app, interface="127.0.0.1")
    reactor.run()
''')


@inline
def test_two_processes_share_redis_sessions(redis_server, serve, tmp_path):
    app, port = serve(**redis_settings(redis_server))
    other_port = free_port()
    script = tmp_path / "second_server.py"
    script.write_text(SECOND_SERVER)
    server = Server([sys.executable, str(script), str(other_port), redis_server.url], ROOT,
                    tmp_path / "second_server.log")
    try:
        yield threads.deferToThread(server.wait_tcp, other_port)
        browser = Browser(port)
        yield browser.post("/login", b"user=gus")
        status, body = yield browser.get("/count")
        assert json.loads(body) == {"visits": 1, "user": "gus", "new": False}
        # the same browser on the other process: the same session, at once
        cookie = browser.cookie()
        browser.base = f"http://127.0.0.1:{other_port}"
        for expected in (2, 3):
            status, body = yield browser.get("/count")
            assert (status, json.loads(body)) == (200, {"visits": expected, "user": "gus", "new": False})
        assert browser.cookie() == cookie
        browser.base = f"http://127.0.0.1:{port}"
        status, body = yield browser.get("/count")
        assert json.loads(body)["visits"] == 4
        # logging out on the other process ends it here too
        browser.base = f"http://127.0.0.1:{other_port}"
        yield browser.post("/logout")
        browser.set_cookie(cookie)
        browser.base = f"http://127.0.0.1:{port}"
        status, body = yield browser.get("/peek")
        assert json.loads(body) == {"visits": None, "id": None}
    finally:
        server.stop()
        print(server.output())


@inline
def test_redis_store_against_a_down_server_answers_500_not_a_hang(redis_server, serve):
    app, port = serve(**redis_settings(redis_server, redis_connect_timeout=0.5))
    browser = Browser(port)
    yield browser.get("/count")
    redis_server.stop()
    yield poll_until(lambda: app.redis._factory.size == 0)
    status, _ = yield browser.get("/count")
    assert status == 500


def test_the_store_interface_is_abstract():
    from cyclone.session import SessionStore

    with pytest.raises(NotImplementedError):
        SessionStore().load("x")


@inline
def test_a_custom_store_serves_sessions(serve):
    from cyclone.session import SessionStore

    class DictStore(SessionStore):
        def __init__(self):
            super().__init__(idle_timeout=60, lifetime=600)
            self.saved = {}

        def load(self, session_id):
            return self.saved.get(session_id)

        def save(self, session_id, data_json, created):
            self.saved[session_id] = (data_json, created)

        def delete(self, session_id):
            self.saved.pop(session_id, None)
            self._expired(session_id)

    store = DictStore()
    app, port = serve(session_store=store)
    browser = Browser(port)
    yield browser.get("/count")
    yield browser.get("/count")
    assert [json.loads(data) for data, _ in store.saved.values()] == [{"visits": 2}]


class _Headers:
    def __init__(self, values):
        self.headers = self
        self.values = values

    def get_list(self, name):
        assert name == "Cookie"
        return self.values


@pytest.mark.parametrize("headers, expected", [
    (['a=1; session_id="2|x=y"; b=2'], "2|x=y"),  # signed values come quoted
    (["session_id=plain"], "plain"),
    (["a=1;session_id=v"], "v"),
    # what the fast path leaves to the full parser
    (["xsession_id=1"], None),
    (['session_id="a\\"b"'], None),
    (["a=1", "session_id=2"], None),
    (["session_id=1; session_id=2"], None),
    (["session_id="], None),
    ([], None),
])
def test_the_cookie_fast_path(headers, expected):
    from cyclone.session import _raw_cookie

    assert _raw_cookie(_Headers(headers), "session_id") == expected


@inline
def test_a_cookie_verified_once_is_not_trusted_by_an_app_with_another_secret(serve):
    _, port = serve()
    status, cookies, _ = yield threads.deferToThread(raw_get, port, "/count")
    value = cookies[0].split(";")[0].split("=", 1)[1]
    status, _, body = yield threads.deferToThread(raw_get, port, "/count", value)
    assert json.loads(body)["visits"] == 2  # verified, and now remembered
    _, other_port = serve(cookie_secret="another secret altogether")
    status, cookies, body = yield threads.deferToThread(raw_get, other_port, "/count", value)
    assert json.loads(body) == {"visits": 1, "user": None, "new": True}


@inline
def test_an_asynchronous_store_that_fails_to_save_answers_500(serve, caplog):
    from twisted.internet import reactor

    from cyclone.session import SessionStore

    class FlakyStore(SessionStore):
        """Answers a reactor turn later; refuses to save once told to."""

        def __init__(self):
            super().__init__(idle_timeout=60, lifetime=600)
            self.saved = {}
            self.broken = False

        def later(self, value):
            return task.deferLater(reactor, 0, lambda: value)

        def load(self, session_id):
            return self.later(self.saved.get(session_id))

        def save(self, session_id, data_json, created):
            if self.broken:
                return task.deferLater(reactor, 0, lambda: 1 / 0)
            self.saved[session_id] = (data_json, created)
            return self.later(None)

        def delete(self, session_id):
            self.saved.pop(session_id, None)
            return self.later(None)

    store = FlakyStore()
    app, port = serve(session_store=store)
    browser = Browser(port)
    for expected in (1, 2):
        status, body = yield browser.get("/count")
        assert (status, json.loads(body)["visits"]) == (200, expected)
    store.broken = True
    status, body = yield browser.get("/count")
    assert status == 500 and "visits" not in body
    assert "Could not save the session of GET /count" in caplog.text
    store.broken = False
    status, body = yield browser.get("/count")
    assert json.loads(body)["visits"] == 3  # the failed request's change was not kept
