"""cyclone.redis against a real redis-server (the ``redis_server`` fixture of
conftest.py): txredisapi under the original's names, the application's shared
pool, reconnection after a restart, and pub/sub fanned out to handlers.

HTTP clients are the standard library's (``http.client``, raw sockets), run in
a thread so the reactor keeps serving.
"""

from __future__ import annotations

import http.client
import socket

import pytest
import pytest_twisted
import txredisapi
from twisted.internet import defer, reactor, task, threads

import cyclone.redis
import cyclone.web
from cyclone.redis import RedisConfig, RedisPubSub
from tests.conftest import poll_until

inline = pytest_twisted.inlineCallbacks

ORIGINAL_NAMES = [
    "Connection", "lazyConnection", "ConnectionPool", "lazyConnectionPool",
    "ShardedConnection", "lazyShardedConnection", "ShardedConnectionPool", "lazyShardedConnectionPool",
    "UnixConnection", "lazyUnixConnection", "UnixConnectionPool", "lazyUnixConnectionPool",
    "ShardedUnixConnection", "lazyShardedUnixConnection", "ShardedUnixConnectionPool",
    "lazyShardedUnixConnectionPool", "makeConnection", "RedisFactory", "SubscriberFactory",
    "MonitorFactory", "SubscriberProtocol", "MonitorProtocol", "ConnectionHandler", "HashRing",
    "HiredisProtocol", "RedisError", "ConnectionError", "ResponseError", "ScriptDoesNotExist",
    "NoScriptRunning", "InvalidResponse", "InvalidData", "WatchError",
]


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def fetch(port: int, path: str) -> defer.Deferred:
    return threads.deferToThread(get, port, path)


@pytest.fixture
def apps():
    """Applications made by a test, their Redis connections closed at its end."""
    made: list[cyclone.web.Application] = []

    def make(handlers=(), **settings) -> cyclone.web.Application:
        app = cyclone.web.Application(list(handlers), **settings)
        made.append(app)
        return app

    yield make
    for app in made:
        if "redis_pubsub" in app.__dict__:
            pytest_twisted.blockon(app.redis_pubsub.close())
        if "redis" in app.__dict__:
            pytest_twisted.blockon(app.redis.disconnect())


def settings_for(server, **extra) -> dict:
    return {"redis_host": server.host, "redis_port": server.port, **extra}


# -- the original's names ----------------------------------------------------------------------


def test_original_names_are_txredisapi_s():
    for name in ORIGINAL_NAMES:
        assert getattr(cyclone.redis, name) is getattr(txredisapi, name), name
        assert name in cyclone.redis.__all__


def test_star_import_works():
    # the original's __all__ held objects, so this raised TypeError
    namespace: dict = {}
    exec("from cyclone.redis import *", namespace)
    assert namespace["lazyConnectionPool"] is txredisapi.lazyConnectionPool
    assert namespace["RedisPubSub"] is RedisPubSub
    assert all(isinstance(name, str) for name in cyclone.redis.__all__)


@inline
def test_original_connection_api_works_on_this_python(redis_server):
    # what failed in the original's vendored copy: dbid=None, bytes vs str, dict commands
    conn = yield cyclone.redis.Connection(redis_server.host, redis_server.port, reconnect=False)
    try:
        assert (yield conn.set("greeting", "olá")) == "OK"
        assert (yield conn.get("greeting")) == "olá"
        yield conn.mset({"a": 1, "b": "two"})
        assert (yield conn.mget(["a", "b"])) == [1, "two"]
        yield conn.hmset("h", {"k": "v"})
        assert (yield conn.hgetall("h")) == {"k": "v"}
        yield conn.set("raw", b"\xff\x00")
        assert (yield conn.get("raw")) == b"\xff\x00"
        with pytest.raises(cyclone.redis.ResponseError):
            yield conn.incr("greeting")
    finally:
        yield conn.disconnect()


# -- configuration -----------------------------------------------------------------------------


def test_config_from_url():
    config = RedisConfig.from_url("redis://user:p%40ss@cache.example:6380/3")
    assert (config.host, config.port, config.db) == ("cache.example", 6380, 3)
    assert (config.username, config.password, config.tls) == ("user", "p@ss", False)
    assert RedisConfig.from_url("redis://:secret@h").password == "secret"
    assert RedisConfig.from_url("redis://secret@h").password == "secret"
    assert RedisConfig.from_url("redis://h?db=2").db == 2
    assert RedisConfig.from_url("rediss://h").tls is True
    unix = RedisConfig.from_url("unix:///run/redis/redis.sock?db=5&password=pw9")
    assert (unix.unix_socket, unix.db, unix.password) == ("/run/redis/redis.sock", 5, "pw9")
    assert "pw9" not in unix.describe() and "secret" not in RedisConfig.from_url("redis://:secret@h").describe()


@pytest.mark.parametrize("url", ["http://h/", "redis:///0", "redis://h/zero", "redis://h:99999/", "unix://"])
def test_config_refuses_a_bad_url(url):
    with pytest.raises(ValueError, match="redis"):
        RedisConfig.from_url(url)


def test_config_from_settings():
    config = RedisConfig.from_settings({"redis_host": "h", "redis_port": 7000, "redis_db": 1,
                                        "redis_password": "pw", "redis_poolsize": 3,
                                        "redis_connect_timeout": 0.5})
    assert (config.host, config.port, config.db, config.password, config.poolsize,
            config.connect_timeout) == ("h", 7000, 1, "pw", 3, 0.5)
    assert RedisConfig.from_settings({}) == RedisConfig()
    assert RedisConfig.from_settings({"redis_url": "redis://h:1/2", "redis_poolsize": 4}).poolsize == 4
    with pytest.raises(ValueError, match="not both"):
        RedisConfig.from_settings({"redis_url": "redis://h", "redis_port": 1})
    for bad in ({"redis_db": -1}, {"redis_poolsize": 0}, {"redis_port": "6379"},
                {"redis_connect_timeout": 0}):
        with pytest.raises(ValueError):
            RedisConfig.from_settings(bad)


# -- the shared pool ---------------------------------------------------------------------------


class CounterHandler(cyclone.web.RequestHandler):
    async def get(self, name):
        count = await self.redis.incr(f"counter:{name}")
        self.write({"name": name, "count": count})


class ValueHandler(cyclone.web.RequestHandler):
    async def get(self, key):
        try:
            value = await self.application.redis.get(key)
        except cyclone.redis.ConnectionError as exc:
            raise cyclone.web.HTTPError(503, reason="Redis unavailable") from exc
        self.write({"value": value})


def test_the_pool_is_made_once_on_first_use(apps):
    app = apps(redis_port=1)  # nothing listens there: a lazy pool does not care yet
    assert "redis" not in app.__dict__
    pool = app.redis
    assert app.redis is pool and isinstance(pool, txredisapi.ConnectionHandler)
    assert apps(redis_port=1).redis is not pool  # one per application


def test_an_application_may_bring_its_own_redis():
    class MyApp(cyclone.web.Application):
        def __init__(self):
            self.redis = "mine"
            super().__init__([])

    assert MyApp().redis == "mine"


@inline
def test_handlers_share_the_application_pool(redis_server, apps, listen):
    app = apps([(r"/count/(\w+)", CounterHandler)], **settings_for(redis_server))
    port = listen(app)
    for expected in (1, 2, 3):
        status, body = yield fetch(port, "/count/visits")
        assert status == 200 and b'"count": %d' % expected in body
    assert (yield app.redis.get("counter:visits")) == 3
    factory = app.redis._factory
    assert factory.size == 10  # redis_poolsize's default, all connected once
    assert factory.dbid == 0


@inline
def test_redis_db_and_url_settings_are_used(redis_server, apps):
    app = apps(redis_url=f"redis://{redis_server.host}:{redis_server.port}/4", redis_poolsize=2)
    yield app.redis.set("where", "db4")
    other = yield cyclone.redis.Connection(redis_server.host, redis_server.port, dbid=0, reconnect=False)
    try:
        assert (yield other.get("where")) is None
        yield other.select(4)
        assert (yield other.get("where")) == "db4"
    finally:
        yield other.disconnect()


@inline
def test_password_from_the_url(redis_server, apps):
    admin = yield cyclone.redis.Connection(redis_server.host, redis_server.port, reconnect=False)
    try:
        yield admin.execute_command("CONFIG", "SET", "requirepass", "s3cr:et")
    finally:
        yield admin.disconnect()
    url = f"redis://:s3cr%3Aet@{redis_server.host}:{redis_server.port}/0"
    app = apps(redis_url=url, redis_poolsize=1)
    assert (yield app.redis.set("k", "v")) == "OK"
    # a wrong password never gets a connection: the command gives up, it does not hang
    wrong = apps(redis_url=url.replace("s3cr%3Aet", "nope"), redis_poolsize=1, redis_connect_timeout=0.5)
    with pytest.raises(cyclone.redis.ConnectionError, match="no connection within 0.5 s"):
        yield wrong.redis.get("k")


@inline
def test_commands_fail_fast_while_redis_is_down(apps):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = apps(redis_host="127.0.0.1", redis_port=port, redis_connect_timeout=0.3, redis_poolsize=1)
    started = reactor.seconds()
    with pytest.raises(cyclone.redis.ConnectionError, match=f"127.0.0.1:{port}/0: no connection within 0.3 s"):
        yield app.redis.get("anything")
    assert reactor.seconds() - started < 5


@inline
def test_the_pool_reconnects_after_redis_restarts(redis_server, apps, listen):
    app = apps([(r"/value/(\w+)", ValueHandler)],
               **settings_for(redis_server, redis_poolsize=2, redis_connect_timeout=0.5))
    port = listen(app)
    yield app.redis.set("k", "before")
    status, body = yield fetch(port, "/value/k")
    assert (status, body) == (200, b'{"value": "before"}')

    redis_server.stop()
    yield poll_until(lambda: app.redis._factory.size == 0)
    # down: an answer that says so, in about redis_connect_timeout
    status, body = yield fetch(port, "/value/k")
    assert status == 503 and b"Redis unavailable" in body

    redis_server.start()  # same port, empty (nothing is persisted)
    yield poll_until(lambda: app.redis._factory.size == 2, timeout=15)
    status, body = yield fetch(port, "/value/k")
    assert (status, body) == (200, b'{"value": null}')
    yield app.redis.set("k", "after")
    status, body = yield fetch(port, "/value/k")
    assert (status, body) == (200, b'{"value": "after"}')


# -- pub/sub -----------------------------------------------------------------------------------


@inline
def numsub(pool, channel: str):
    reply = yield pool.execute_command("PUBSUB", "NUMSUB", channel)
    return reply[1]


@inline
def test_pubsub_fans_one_message_out_to_local_subscribers(redis_server, apps):
    app = apps(**settings_for(redis_server, redis_poolsize=1))
    hub = app.redis_pubsub
    assert app.redis_pubsub is hub
    got: list = []
    first = hub.subscribe("news", lambda channel, message: got.append(("first", channel, message)))
    second = hub.subscribe("news", lambda channel, message: got.append(("second", channel, message)))
    pattern = hub.psubscribe("ne*", lambda channel, message: got.append(("pattern", channel, message)))
    queued = hub.subscribe("other")
    yield defer.gatherResults([first.ready, second.ready, pattern.ready, queued.ready])
    # one Redis subscription per channel, however many local subscribers
    assert (yield numsub(app.redis, "news")) == 1

    receivers = yield hub.publish("news", "hello")
    assert receivers == 2  # the channel and the pattern subscription of this one connection
    yield poll_until(lambda: len(got) == 3)
    assert sorted(got) == [("first", "news", "hello"), ("pattern", "news", "hello"),
                           ("second", "news", "hello")]

    yield app.redis.publish("other", "one")
    yield app.redis.publish("other", "two")
    assert (yield queued.get()) == ("other", "one")
    assert (yield queued.get()) == ("other", "two")
    waiting = queued.get()
    assert not waiting.called
    yield app.redis.publish("other", "three")
    assert (yield waiting) == ("other", "three")

    first.stop()
    first.stop()  # harmless
    assert (yield numsub(app.redis, "news")) == 1  # second still listens
    second.stop()
    yield poll_until_deferred(lambda: numsub(app.redis, "news"), 0)
    queued.stop()
    with pytest.raises(defer.CancelledError):
        yield queued.get()
    pattern.stop()
    assert hub.subscriber_count() == 0


@inline
def poll_until_deferred(make, expected, timeout: float = 5.0):
    """Poll ``make()`` (a Deferred) until it gives ``expected``."""
    deadline = reactor.seconds() + timeout
    while True:
        value = yield make()
        if value == expected:
            return value
        assert reactor.seconds() < deadline, f"still {value!r}, not {expected!r}, after {timeout}s"
        yield task.deferLater(reactor, 0.02, lambda: None)


@inline
def test_a_slow_reader_loses_the_oldest_messages_not_memory(redis_server, apps):
    app = apps(**settings_for(redis_server, redis_poolsize=1, redis_pubsub_max_queue=3))
    sub = app.redis_pubsub.subscribe("busy")
    yield sub.ready
    for i in range(5):
        yield app.redis.publish("busy", str(i))
    yield poll_until(lambda: sub.dropped == 2)
    left = []
    for _ in range(3):
        left.append((yield sub.get())[1])
    assert left == ["2", "3", "4"]
    sub.stop()


@inline
def test_a_failing_callback_is_logged_and_others_still_get_the_message(redis_server, apps, caplog):
    app = apps(**settings_for(redis_server, redis_poolsize=1))
    got: list = []

    def broken(channel, message):
        raise ValueError("boom")

    bad = app.redis_pubsub.subscribe("c", broken)
    good = app.redis_pubsub.subscribe("c", lambda channel, message: got.append(message))
    yield defer.gatherResults([bad.ready, good.ready])
    yield app.redis.publish("c", "m")
    yield poll_until(lambda: got == ["m"])
    assert "Exception in the callback of <Subscription channel 'c'>" in caplog.text
    bad.stop()
    good.stop()


@inline
def test_pubsub_subscribes_again_after_redis_restarts(redis_server, apps):
    app = apps(**settings_for(redis_server, redis_poolsize=1, redis_connect_timeout=0.5))
    hub = app.redis_pubsub
    got: list = []
    sub = hub.subscribe("feed", lambda channel, message: got.append(message))
    psub = hub.psubscribe("feed.*", lambda channel, message: got.append((channel, message)))
    yield defer.gatherResults([sub.ready, psub.ready])

    redis_server.restart()
    yield poll_until(lambda: hub.reconnects == 1, timeout=10)
    # subscribed again without anyone asking: a publish reaches the old subscriptions
    yield poll_until_deferred(lambda: numsub(app.redis, "feed"), 1, timeout=15)
    yield poll_until_deferred(lambda: app.redis.execute_command("PUBSUB", "NUMPAT"), 1)
    yield app.redis.publish("feed", "after the restart")
    yield app.redis.publish("feed.sport", "goal")
    yield poll_until(lambda: len(got) == 2)
    assert got == ["after the restart", ("feed.sport", "goal")]
    sub.stop()
    psub.stop()


class LongPollHandler(cyclone.web.RequestHandler):
    """Waits for one message on a channel; stops listening if the client leaves."""

    stopped: list = []

    async def get(self, channel):
        self.subscription = self.application.redis_pubsub.subscribe(channel)
        try:
            _, message = await self.subscription.get()
        except defer.CancelledError:
            return  # the client went away (on_connection_close stopped the subscription)
        self.subscription.stop()
        self.write({"message": message})

    def on_connection_close(self):
        self.subscription.stop()
        LongPollHandler.stopped.append(self.subscription)


@inline
def test_long_poll_handler_gets_a_message_from_another_process_s_publish(redis_server, apps, listen):
    app = apps([(r"/wait/(\w+)", LongPollHandler)], **settings_for(redis_server, redis_poolsize=1))
    port = listen(app)
    answer = fetch(port, "/wait/room1")
    yield poll_until_deferred(lambda: numsub(app.redis, "room1"), 1)
    # published by another client altogether: redis-cli's protocol on a raw socket
    receivers = yield threads.deferToThread(raw_publish, redis_server.address, "room1", "hi")
    assert receivers == 1
    status, body = yield answer
    assert (status, body) == (200, b'{"message": "hi"}')
    yield poll_until_deferred(lambda: numsub(app.redis, "room1"), 0)


@inline
def test_long_poll_handler_unsubscribes_when_the_client_leaves(redis_server, apps, listen):
    LongPollHandler.stopped = []
    app = apps([(r"/wait/(\w+)", LongPollHandler)], **settings_for(redis_server, redis_poolsize=1))
    port = listen(app)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /wait/room2 HTTP/1.1\r\nHost: x\r\n\r\n")
    yield poll_until_deferred(lambda: numsub(app.redis, "room2"), 1)
    sock.close()
    yield poll_until(lambda: len(LongPollHandler.stopped) == 1)
    yield poll_until_deferred(lambda: numsub(app.redis, "room2"), 0)
    assert app.redis_pubsub.subscriber_count() == 0


def raw_publish(address: tuple[str, int], channel: str, message: str) -> int:
    """PUBLISH over a plain socket in RESP, without any Redis client library."""
    parts = [b"PUBLISH", channel.encode(), message.encode()]
    command = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(command)
        reply = sock.recv(64)
    assert reply.startswith(b":"), reply
    return int(reply[1:].split(b"\r\n")[0])


def test_pubsub_refuses_an_empty_channel():
    hub = RedisPubSub(RedisConfig())
    with pytest.raises(ValueError, match="non-empty str"):
        hub.subscribe("")
    with pytest.raises(RuntimeError, match="no pool"):
        hub.publish("c", "m")


@inline
def test_commands_that_hold_their_connection_still_work(redis_server, apps):
    app = apps(**settings_for(redis_server, redis_poolsize=2))
    pool = app.redis
    yield pool.set("n", 1)
    transaction = yield pool.multi()
    yield transaction.incr("n")
    yield transaction.incr("n")
    assert (yield transaction.commit()) == [2, 3]
    waiting = pool.blpop(["queue"], timeout=5)  # holds one connection...
    assert (yield pool.get("n")) == 3  # ...while the other serves
    yield pool.rpush("queue", "item")
    assert (yield waiting) == ["queue", "item"]
    with pytest.raises(AttributeError):
        pool.no_such_command


# -- cyclone.redis's own protocol for the pool (_Protocol), and the txredisapi internals it uses --


def test_the_txredisapi_internals_we_rely_on_are_there():
    """If this fails, a txredisapi upgrade moved what cyclone.redis's _Protocol
    and _PoolHandler reach into (see TXREDISAPI_INTERNALS): fix them there."""
    protocol = txredisapi.BaseRedisProtocol()
    factory = txredisapi.RedisFactory("localhost:1", 0, 1, isLazy=True)
    owners = {
        "BaseRedisProtocol": txredisapi.BaseRedisProtocol,
        "BaseRedisProtocol()": protocol,
        "ReplyQueue": protocol.replyQueue,
        "RedisFactory": factory,
        "ConnectionHandler": factory.handler,
    }
    missing = [f"{owner}.{name}" for owner, names in cyclone.redis.TXREDISAPI_INTERNALS.items()
               for name in names if name != "transport" and not hasattr(owners[owner], name)]
    assert not missing, f"txredisapi {cyclone.redis.txredisapi_version} lacks {missing}"
    assert isinstance(protocol.replyQueue, txredisapi.ReplyQueue)
    assert protocol.replyQueue.waiting == [] and protocol.replyQueue.pending == []
    assert isinstance(factory.handler, txredisapi.ConnectionHandler)
    assert issubclass(cyclone.redis._Protocol, txredisapi.BaseRedisProtocol)


@pytest.mark.parametrize("data", [b"12", b"-3", b"1.5", b"+7", b".5", b"1e5", b"12a", b"abc", b"",
                                  b"\xff\xfe", "é".encode(), b"nan", b"-", b"0x10", b"\xd9\xa1"])
def test_bulk_replies_convert_as_txredisapi_s_own_parser_does(data):
    ours = cyclone.redis._Protocol()
    theirs = txredisapi.BaseRedisProtocol()
    converted, expected = ours._convert_bulk(data), theirs.tryConvertData(data)
    assert converted == expected and type(converted) is type(expected)


@inline
def test_the_pool_s_protocol_gives_what_txredisapi_s_gives(redis_server, apps):
    """The same commands through the pool (cyclone's _Protocol) and through a
    plain txredisapi connection (its own protocol): the same replies."""
    app = apps(**settings_for(redis_server, redis_poolsize=1))
    pool = app.redis
    host, port = redis_server.address
    plain = yield txredisapi.Connection(host, port, reconnect=False)
    try:
        big = "x" * 200_000
        yield plain.delete(["l", "h", "s"])
        yield plain.set("big", big)
        yield plain.rpush("l", ["1", "two", "3.5", "QUEUED"])
        yield plain.hset("h", "f", "v")
        for client in (pool, plain):
            results = yield defer.gatherResults([
                client.get("big"), client.get("nothing"), client.lrange("l", 0, -1),
                client.hgetall("h"), client.incr("n"), client.ping(), client.get(b"big"),
                client.execute_command("ECHO", "QUEUED"), client.set("k", 12),
                client.get("k"), client.mget(["k", "nothing", "big"]),
            ])
            client.results = results
        assert pool.results[0] == big and pool.results[2] == [1, "two", 3.5, "QUEUED"]
        assert (pool.results[4], plain.results[4]) == (1, 2)  # incr ran twice
        plain.results[4] = 1
        assert pool.results == plain.results
        for client in (pool, plain):
            with pytest.raises(txredisapi.ResponseError, match="WRONGTYPE"):
                yield client.get("l")
            with pytest.raises(txredisapi.ResponseError, match="ERR unknown command"):
                yield client.execute_command("NO-SUCH-COMMAND")
        protocol = pool._factory.pool[0]
        assert type(protocol) is cyclone.redis._Protocol
        assert protocol.transactions == 0  # a bulk "QUEUED" is not a MULTI's status
    finally:
        yield plain.disconnect()


@inline
def test_transactions_and_pipelines_through_the_pool_s_protocol(redis_server, apps):
    app = apps(**settings_for(redis_server, redis_poolsize=1))
    pool = app.redis
    yield pool.set("n", 1)
    transaction = yield pool.multi()
    yield transaction.incr("n")
    yield transaction.get("n")
    assert (yield transaction.commit()) == [2, 2]
    pipeline = yield pool.pipeline()
    pipeline.incr("n")
    pipeline.get("n")
    assert (yield pipeline.execute_pipeline()) == [3, 3]
    # the connection went back to the pool: plain commands go on
    assert (yield pool.get("n")) == 3
    assert pool._factory.pool[0].transactions == 0


@inline
def test_a_cancelled_command_leaves_its_reply_to_no_one_else(redis_server, apps):
    app = apps(**settings_for(redis_server, redis_poolsize=1))
    pool = app.redis
    yield pool.set("a", "A")
    yield pool.set("b", "B")
    first = pool.get("a")
    second = pool.get("b")
    first.cancel()
    with pytest.raises(defer.CancelledError):
        yield first
    assert (yield second) == "B"
    assert (yield pool.get("a")) == "A"


@inline
def test_an_invalid_reply_closes_the_connection_and_fails_its_commands(apps, caplog):
    """A server that answers garbage: the command fails with ConnectionError
    (not a hang, not a traceback in the reactor) and the error is logged."""
    from twisted.internet import protocol as tprotocol

    class Garbage(tprotocol.Protocol):
        answered = 0

        def dataReceived(self, data):
            # the pool's SELECT on connecting is answered; the next command is not
            self.transport.write(b"+OK\r\n" if not self.answered else b"?not resp\r\n")
            self.answered += 1

    factory = tprotocol.Factory.forProtocol(Garbage)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        app = apps(redis_url=f"redis://127.0.0.1:{port.getHost().port}/", redis_poolsize=1,
                   redis_connect_timeout=2)
        pool = app.redis
        yield poll_until_deferred(lambda: defer.succeed(bool(pool._factory.pool)), True)
        with pytest.raises(txredisapi.ConnectionError):
            yield pool.get("k")
        assert "invalid reply" in caplog.text and "unknown reply type" in caplog.text
    finally:
        yield port.stopListening()
