"""Redis for cyclone applications: txredisapi, and what a web app needs on top.

The client is `txredisapi <https://github.com/IlyaSkriblovsky/txredisapi>`_, a
dependency (the original cyclone carried a stale copy that fails on its first
command under Python 3). Its names are re-exported here with the original's
spelling: ``Connection``, ``lazyConnection``, ``ConnectionPool``,
``lazyConnectionPool``, the ``Sharded*`` and ``Unix*`` variants,
``SubscriberFactory``, ``SubscriberProtocol``, the error classes, ...

On top of it, for applications:

* one shared, lazy connection pool per application, made from its settings
  on first use: ``self.application.redis`` (or ``self.redis`` in a handler).
  It reconnects by itself after the server restarts, and a command that finds
  no connection waits at most ``redis_connect_timeout`` seconds, then fails
  with ``ConnectionError`` (txredisapi alone would wait forever, holding the
  request);
* ``RedisPubSub``, ``self.application.redis_pubsub``: one subscriber
  connection per process that fans messages out to any number of local
  subscribers (WebSocket, SSE or long-poll handlers), re-subscribing after a
  reconnection. Publish from any process with ``redis.publish(channel,
  message)``: every process's subscribers get it.

Settings (read on first use of ``application.redis``): ``redis_url``
(``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS,
``unix:///path/redis.sock?db=0&password=...``) *or* ``redis_host``
("localhost"), ``redis_port`` (6379), ``redis_db`` (0), ``redis_password``,
``redis_username``, ``redis_unix_socket``; and with either:
``redis_poolsize`` (10 connections), ``redis_connect_timeout`` (5 s: to
connect, and how long a command waits for a connection), ``redis_reply_timeout``
(None: txredisapi's ``replyTimeout``, after which it drops the connection),
``redis_ca_certs`` (a PEM file to check a TLS server against; default the
system's roots), ``redis_tls_validate`` (True), ``redis_pubsub_max_queue``
(1000 messages kept for a subscription read with ``get()``).

Workarounds for txredisapi (1.6), kept here rather than patched into it:

* the bounded wait for a connection, above;
* a fast path for commands (``_PoolHandler``): txredisapi's pool spends as
  much per command as cyclone spends on a small request;
* the pool's own protocol (``_Protocol``): replies parsed by
  ``cyclone.resp`` (txredisapi without hiredis parses them line by line and
  waits a reactor turn after a bulk reply followed by more data), plain
  commands encoded directly and answered through one Deferred; replies are
  converted exactly as txredisapi converts them. These two reach into
  txredisapi's internals, in one section of this module
  (``TXREDISAPI_INTERNALS`` lists what they use; a test checks it is there);
* ``rediss://`` checks the server's certificate and host name
  (``cyclone.netutil.tls_client_creator``); txredisapi's
  ``ssl_context_factory=True`` accepts any certificate;
* txredisapi turns replies that look like numbers into ints; messages
  delivered by ``RedisPubSub`` are left as published (``"2"`` stays a str);
* ``SubscriberProtocol`` matches (un)subscribe confirmations to requests by
  position and drops the ones nobody waits for, so a command naming several
  channels confirms early: ``RedisPubSub`` sends one channel per command.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import urllib.parse
from typing import Any, Callable

import txredisapi
from twisted.internet import defer, protocol
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.application.internet import ClientService, backoffPolicy
from twisted.python import failure

from cyclone import resp
from cyclone.log import app_log

# the original cyclone.redis's names (a vendored txredisapi 1.1), now txredisapi's own
from txredisapi import (  # noqa: F401  (re-exported)
    Connection,
    ConnectionError,
    ConnectionHandler,
    ConnectionPool,
    HashRing,
    HiredisProtocol,
    InvalidData,
    InvalidResponse,
    MonitorFactory,
    MonitorProtocol,
    NoScriptRunning,
    RedisError,
    RedisFactory,
    RedisProtocol,
    ResponseError,
    ScriptDoesNotExist,
    ShardedConnection,
    ShardedConnectionPool,
    ShardedUnixConnection,
    ShardedUnixConnectionPool,
    SubscriberFactory,
    SubscriberProtocol,
    UnixConnection,
    UnixConnectionPool,
    WatchError,
    lazyConnection,
    lazyConnectionPool,
    lazyShardedConnection,
    lazyShardedConnectionPool,
    lazyShardedUnixConnection,
    lazyShardedUnixConnectionPool,
    lazyUnixConnection,
    lazyUnixConnectionPool,
    makeConnection,
    makeShardedConnection,
)

__all__ = [
    # txredisapi, as the original cyclone.redis named it
    "Connection", "lazyConnection", "ConnectionPool", "lazyConnectionPool",
    "ShardedConnection", "lazyShardedConnection", "ShardedConnectionPool", "lazyShardedConnectionPool",
    "UnixConnection", "lazyUnixConnection", "UnixConnectionPool", "lazyUnixConnectionPool",
    "ShardedUnixConnection", "lazyShardedUnixConnection", "ShardedUnixConnectionPool",
    "lazyShardedUnixConnectionPool", "makeConnection", "makeShardedConnection",
    "RedisFactory", "SubscriberFactory", "MonitorFactory", "RedisProtocol", "SubscriberProtocol",
    "MonitorProtocol", "HiredisProtocol", "ConnectionHandler", "HashRing",
    "RedisError", "ConnectionError", "ResponseError", "ScriptDoesNotExist", "NoScriptRunning",
    "InvalidResponse", "InvalidData", "WatchError",
    # the web application layer
    "RedisConfig", "connect_pool", "shared_pool", "RedisPubSub", "Subscription", "shared_pubsub",
]

#: the version of txredisapi in use (the original module's ``__version__`` was its copy's)
txredisapi_version: str = getattr(txredisapi, "__version__", "unknown")

_SETTINGS = ("host", "port", "db", "password", "username", "unix_socket")


@dataclasses.dataclass(frozen=True)
class RedisConfig:
    """Where the Redis server is and how to talk to it (see the module's docstring
    for the settings each field comes from)."""

    host: str = "localhost"
    port: int = 6379
    db: int = 0
    password: str | None = None
    username: str | None = None
    unix_socket: str | None = None
    tls: bool = False
    tls_validate: bool = True
    ca_certs: str | None = None
    poolsize: int = 10
    connect_timeout: float = 5.0
    reply_timeout: float | None = None
    pubsub_max_queue: int = 1000

    def __post_init__(self) -> None:
        for name in ("port", "db", "poolsize", "pubsub_max_queue"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"redis {name} must be a non-negative integer, not {value!r}")
        if self.poolsize < 1:
            raise ValueError("redis poolsize must be at least 1")
        if not (0 < self.connect_timeout):
            raise ValueError(f"redis connect_timeout must be positive, not {self.connect_timeout!r}")
        if self.tls and self.unix_socket:
            raise ValueError("redis over TLS on a UNIX socket is not supported")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "RedisConfig":
        """``redis://[[user]:password@]host[:port][/db]``, ``rediss://…`` (TLS) or
        ``unix:///path?db=N&password=P``; ``options`` set the other fields."""
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        unquote = urllib.parse.unquote

        def query_value(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        fields: dict[str, Any] = {}
        try:
            if parts.scheme in ("redis", "rediss"):
                if not parts.hostname:
                    raise ValueError("no host")
                fields["host"] = parts.hostname
                if parts.port is not None:
                    fields["port"] = parts.port
                path = parts.path.strip("/")
                db = path or query_value("db")
                if db:
                    fields["db"] = int(db)
                fields["tls"] = parts.scheme == "rediss"
            elif parts.scheme == "unix":
                if not parts.path:
                    raise ValueError("no socket path")
                fields["unix_socket"] = unquote(parts.path)
                if query_value("db"):
                    fields["db"] = int(query_value("db"))
            else:
                raise ValueError("the scheme must be redis, rediss or unix")
        except ValueError as exc:
            raise ValueError(f"invalid redis_url {url!r}: {exc}") from None
        if parts.password is not None:
            fields["password"] = unquote(parts.password)
            if parts.username:
                fields["username"] = unquote(parts.username)
        elif parts.username:
            fields["password"] = unquote(parts.username)  # redis://secret@host, as redis-cli reads it
        if query_value("password") is not None:
            fields["password"] = query_value("password")
        fields.update(options)
        return cls(**fields)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> "RedisConfig":
        """The configuration an application's settings describe."""
        options: dict[str, Any] = {}
        for name, field in (
            ("redis_poolsize", "poolsize"),
            ("redis_connect_timeout", "connect_timeout"),
            ("redis_reply_timeout", "reply_timeout"),
            ("redis_ca_certs", "ca_certs"),
            ("redis_tls_validate", "tls_validate"),
            ("redis_pubsub_max_queue", "pubsub_max_queue"),
        ):
            if settings.get(name) is not None:
                options[field] = settings[name]
        given = [f"redis_{name}" for name in _SETTINGS if settings.get(f"redis_{name}") is not None]
        url = settings.get("redis_url")
        if url:
            if given:
                raise ValueError(f"give redis_url or {', '.join(given)}, not both")
            return cls.from_url(url, **options)
        for name in _SETTINGS:
            if settings.get(f"redis_{name}") is not None:
                options[name] = settings[f"redis_{name}"]
        return cls(**options)

    def describe(self) -> str:
        """Where the server is, for messages (never the password)."""
        if self.unix_socket:
            return f"unix:{self.unix_socket} db {self.db}"
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/{self.db}"

    def endpoint(self) -> Any:
        """A Twisted client endpoint to the server (TLS-wrapped for ``rediss``)."""
        from twisted.internet import reactor

        if self.unix_socket:
            return UNIXClientEndpoint(reactor, self.unix_socket, timeout=self.connect_timeout)
        endpoint = HostnameEndpoint(reactor, self.host, self.port, timeout=self.connect_timeout)
        if self.tls:
            from twisted.internet.endpoints import wrapClientTLS

            endpoint = wrapClientTLS(self._tls_creator(), endpoint)
        return endpoint

    def _tls_creator(self) -> Any:
        from cyclone.netutil import tls_client_creator

        return tls_client_creator(self.host, validate_cert=self.tls_validate, ca_certs=self.ca_certs)


# -- txredisapi's internals ---------------------------------------------------------------------
#
# Everything below, up to connect_pool(), reaches into txredisapi (1.6) beyond its
# documented API, for speed: nowhere else in cyclone does. What it relies on is
# listed in TXREDISAPI_INTERNALS and checked by tests/test_redis.py
# (test_the_txredisapi_internals_we_rely_on_are_there), which fails loudly if an
# upgrade moves them.

#: the txredisapi attributes _Protocol and _PoolHandler use, by object
TXREDISAPI_INTERNALS: dict[str, tuple[str, ...]] = {
    "BaseRedisProtocol": ("execute_command", "replyReceived", "handleTransactionData",
                          "tryConvertData", "connectionLost", "_encode_value"),
    "BaseRedisProtocol()": ("replyQueue", "pipelining", "inMulti", "replyTimeout", "transactions",
                            "charset", "errors", "convertNumbers", "connected", "transport"),
    "ReplyQueue": ("waiting", "pending", "_cancelGet", "put"),
    "RedisFactory": ("protocol", "connectionQueue", "getConnection", "buildProtocol"),
    "ConnectionHandler": ("__getattr__", "_factory"),
}

_NUMBER_START = frozenset(b"0123456789+-.")


class _Reply(defer.Deferred):
    """The one Deferred of a command sent by ``_Protocol``: txredisapi's reply
    queue passes error replies (and its timeouts) as values; they fail it."""

    __slots__ = ()

    def callback(self, result: Any) -> None:
        if isinstance(result, Exception):
            self.errback(result)
        else:
            super().callback(result)


class _Protocol(txredisapi.BaseRedisProtocol):
    """txredisapi's protocol with a lean command path and cyclone's RESP parser.

    txredisapi (without hiredis, as ``pip install cyclone`` has it) parses
    replies line by line in Python and waits a reactor turn after each bulk
    reply followed by more data; it builds each command with an ``isinstance``
    chain per argument and answers it through three Deferreds. Here replies
    come from ``cyclone.resp.ReplyParser`` (all the replies of a read at
    once), converted as txredisapi converts them (numbers to int and float,
    the rest decoded with the connection's charset, errors as
    ``ResponseError``), and a plain command (not in MULTI, not pipelined, no
    ``replyTimeout``, no keyword arguments) is encoded directly and answered
    through one Deferred. Every other case takes txredisapi's own path.
    The pool uses it with or without hiredis installed, so that one parser is
    tested everywhere.
    """

    def connectionMade(self) -> Any:
        self._parser = resp.ReplyParser(error_class=ResponseError)
        return super().connectionMade()

    # -- replies --

    def dataReceived(self, data: bytes, unpause: bool = False) -> None:
        try:
            replies = self._parser.feed(data)
        except resp.ProtocolError as error:
            app_log.error("Redis sent an invalid reply (%s): closing the connection", error)
            self.transport.abortConnection()
            return
        convert = self._convert_bulk
        waiting = self.replyQueue.waiting
        for reply in replies:
            kind = type(reply)
            if kind is bytes:
                reply = convert(reply)
            elif kind is list:
                reply = self.handleTransactionData(self._convert_list(reply))
            elif kind is str and reply == "QUEUED":  # a status, not a bulk "QUEUED"
                self.transactions += 1
            if waiting and type(waiting[0]) is _Reply:
                # what replyReceived -> ReplyQueue.put -> _Reply.callback does, in one step
                if isinstance(reply, Exception):
                    defer.Deferred.errback(waiting.pop(0), reply)
                else:
                    defer.Deferred.callback(waiting.pop(0), reply)
            else:
                self.replyReceived(reply)

    def _convert_list(self, items: list) -> list:
        convert = self._convert_bulk
        return [convert(item) if type(item) is bytes else
                self._convert_list(item) if type(item) is list else item for item in items]

    def _convert_bulk(self, data: bytes) -> Any:
        """What txredisapi's ``tryConvertData`` makes of a bulk string."""
        if data and data[0] in _NUMBER_START and self.convertNumbers:
            try:
                text = data.decode()
                return float(text) if "." in text else int(text)
            except ValueError:  # UnicodeDecodeError too
                pass
        charset = self.charset
        if charset is not None:
            try:
                return data.decode(charset)
            except UnicodeDecodeError:
                pass
        return data

    # -- commands --

    def execute_command(self, *args: Any, **kwargs: Any) -> defer.Deferred:
        queue = self.replyQueue
        if (kwargs or self.pipelining or self.inMulti or self.replyTimeout
                or queue.pending or not self.connected):
            return super().execute_command(*args, **kwargs)
        charset, errors = self.charset, self.errors
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            kind = type(arg)
            if kind is str and charset is not None:
                try:
                    arg = arg.encode(charset, errors)
                except UnicodeEncodeError:
                    arg = self._encode_value(arg)  # raises txredisapi's InvalidData
            elif kind is int:
                arg = b"%d" % arg
            elif kind is not bytes:
                arg = self._encode_value(arg)
            parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        self.transport.write(b"".join(parts))
        result = _Reply(queue._cancelGet)
        queue.waiting.append(result)
        return result


class _PoolHandler(ConnectionHandler):
    """txredisapi's pool handler, with a fast path: a command that does not
    hold its connection (GET, SET, PUBLISH, ...; not MULTI or BLPOP) goes
    straight to a connected protocol of the pool. txredisapi's own path makes
    a closure and an ``inlineCallbacks`` generator for every command, which
    costs about as much as the rest of a small request; it is still taken
    while no connection is up (it waits, bounded by ``connect_timeout``) and
    for the commands that hold their connection. Each method is looked up
    once and kept on the handler."""

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)
        protocol_method = getattr(self._factory.protocol, method)  # AttributeError if unknown
        slow = ConnectionHandler.__getattr__(self, method)
        if getattr(protocol_method, "_blocking", False):
            self.__dict__[method] = slow
            return slow
        pending = self._factory.connectionQueue.pending
        choice = random.choice

        def command(*args: Any, **kwargs: Any) -> defer.Deferred:
            if pending:
                connection = choice(pending)  # as txredisapi's peek() picks one
                if connection.connected:
                    try:
                        return protocol_method(connection, *args, **kwargs)
                    except Exception:
                        return defer.fail()
            return slow(*args, **kwargs)

        command.__name__ = method
        self.__dict__[method] = command
        return command


def connect_pool(config: RedisConfig) -> Any:
    """A lazy, reconnecting txredisapi connection pool for ``config``: commands
    can be sent at once (they wait for a connection, at most
    ``config.connect_timeout`` seconds, then fail with ``ConnectionError``)."""
    where = config.unix_socket or f"{config.host}:{config.port}"
    factory = RedisFactory(where, config.db, config.poolsize, isLazy=True, handler=_PoolHandler,
                           password=config.password, replyTimeout=config.reply_timeout,
                           username=config.username)
    factory.protocol = _Protocol
    factory.reconnect = True
    factory.startConnecting(config.endpoint())
    pool = factory.handler
    _bound_connection_wait(pool, config)
    # a lazy pool's "connected" Deferred is nobody's: txredisapi fails it when
    # AUTH or SELECT is refused, which would end as "Unhandled error in Deferred"
    factory.deferred.addErrback(
        lambda f: app_log.error("Redis at %s: %s", config.describe(), f.getErrorMessage()))
    return pool


def _bound_connection_wait(pool: Any, config: RedisConfig) -> None:
    """Make the pool's commands give up waiting for a connection after
    ``config.connect_timeout`` seconds. Only the wait for a connection is
    bounded: cancelling a command already sent would leave its reply to the
    next command on that connection."""
    from twisted.internet import reactor

    factory = pool._factory
    get_connection = factory.getConnection
    timeout = config.connect_timeout
    where = config.describe()

    def no_connection(result: Any, _timeout: float) -> Any:
        raise ConnectionError(f"Redis at {where}: no connection within {timeout} s")

    def bounded_get_connection(peek: bool = False) -> defer.Deferred:
        d = get_connection(peek)
        if not d.called:
            d.addTimeout(timeout, reactor, onTimeoutCancel=no_connection)
        return d

    factory.getConnection = bounded_get_connection


def shared_pool(application: Any) -> Any:
    """``application.redis``: the application's pool, made from its settings on
    first use (one per application object and process)."""
    return connect_pool(RedisConfig.from_settings(application.settings))


def handler_pool(handler: Any) -> Any:
    """``handler.redis``: the pool of the handler's application."""
    return handler.application.redis


def shared_pubsub(application: Any) -> "RedisPubSub":
    """``application.redis_pubsub``: the application's subscriber connection,
    publishing through ``application.redis``."""
    return RedisPubSub(RedisConfig.from_settings(application.settings), publisher=lambda: application.redis)


# -- pub/sub -----------------------------------------------------------------------------------


class Subscription:
    """One local subscriber to a channel (or a pattern) of a ``RedisPubSub``.

    With a ``callback``, each message is passed to ``callback(channel,
    message)`` as it arrives. Without, messages wait in the subscription
    (``max_queue`` of them; then the oldest are dropped, counted in
    ``dropped``) for ``get()``. ``stop()`` ends it (in ``on_connection_close``
    or ``on_close``); stopping twice is harmless.
    """

    def __init__(self, hub: "RedisPubSub", name: str, is_pattern: bool,
                 callback: Callable[[str, Any], Any] | None, max_queue: int) -> None:
        self.hub = hub
        self.name = name
        self.is_pattern = is_pattern
        self.callback = callback
        self.active = True
        self.dropped = 0
        #: fires (with this subscription) once Redis has confirmed the subscription
        self.ready: defer.Deferred = defer.Deferred()
        self._queue: collections.deque = collections.deque(maxlen=max_queue or None)
        self._getters: collections.deque[defer.Deferred] = collections.deque()

    def __repr__(self) -> str:
        kind = "pattern" if self.is_pattern else "channel"
        return f"<Subscription {kind} {self.name!r}{'' if self.active else ' (stopped)'}>"

    def get(self) -> defer.Deferred:
        """A Deferred of the next ``(channel, message)``; it fails with
        ``CancelledError`` if the subscription is stopped first."""
        if self.callback is not None:
            raise RuntimeError("this subscription passes its messages to a callback")
        if self._queue:
            return defer.succeed(self._queue.popleft())
        if not self.active:
            return defer.fail(defer.CancelledError("subscription stopped"))
        d = defer.Deferred(lambda d: self._getters.remove(d) if d in self._getters else None)
        self._getters.append(d)
        return d

    def stop(self) -> None:
        """Stop receiving: unsubscribes from Redis when no one else in this
        process listens to the same channel."""
        if not self.active:
            return
        self.active = False
        self.hub._remove(self)
        getters, self._getters = self._getters, collections.deque()
        for d in getters:
            d.errback(defer.CancelledError("subscription stopped"))
        if not self.ready.called:
            self.ready.errback(defer.CancelledError("subscription stopped"))
            self.ready.addErrback(lambda f: f.trap(defer.CancelledError))

    def _deliver(self, channel: str, message: Any) -> None:
        if self.callback is not None:
            try:
                result = self.callback(channel, message)
            except Exception:
                app_log.error("Exception in the callback of %r", self, exc_info=True)
                return
            if isinstance(result, defer.Deferred):
                result.addErrback(lambda f: app_log.error(
                    "Exception in the callback of %r", self,
                    exc_info=(f.type, f.value, f.getTracebackObject())))
            return
        if self._getters:
            self._getters.popleft().callback((channel, message))
            return
        if self._queue.maxlen is not None and len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((channel, message))


class _HubProtocol(SubscriberProtocol):
    hub: "RedisPubSub"

    def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
        self.hub._message(pattern, channel, message)

    def connectionLost(self, why: failure.Failure) -> None:
        super().connectionLost(why)
        self.hub._lost(self)


class _HubFactory(protocol.Factory):
    """Builds the subscriber protocol; also what txredisapi's protocol calls
    when AUTH fails (``stopTrying``, ``connectionError``, ``isLazy``)."""

    isLazy = True
    noisy = False

    def __init__(self, hub: "RedisPubSub") -> None:
        self.hub = hub

    def buildProtocol(self, addr: Any) -> _HubProtocol:
        config = self.hub.config
        # convertNumbers=False: a message is what was published ("2" stays a str)
        proto = _HubProtocol(password=config.password, username=config.username,
                             replyTimeout=config.reply_timeout, convertNumbers=False)
        proto.factory = self
        proto.hub = self.hub
        return proto

    def stopTrying(self) -> None:
        self.hub._auth_failed = True

    def connectionError(self, why: str) -> None:
        app_log.error("Redis pub/sub at %s: %s", self.hub.config.describe(), why)


class RedisPubSub:
    """One Redis subscriber connection shared by every subscriber in the process.

    ``subscribe(channel, callback=None)`` and ``psubscribe(pattern,
    callback=None)`` return a ``Subscription`` at once; the connection is made
    on first use, kept up (reconnecting with a backoff, then subscribing again
    to every channel in use), and Redis is told to (un)subscribe a channel
    only when its first local subscriber comes or its last one leaves. This is
    the fan-out that WebSocket and SSE broadcasts across processes build on:
    one Redis message, delivered to every local connection.
    """

    def __init__(self, config: RedisConfig, publisher: Callable[[], Any] | None = None) -> None:
        self.config = config
        self._publisher = publisher
        self._channels: dict[str, list[Subscription]] = {}
        self._patterns: dict[str, list[Subscription]] = {}
        self._protocol: _HubProtocol | None = None
        self._service: ClientService | None = None
        self._auth_failed = False
        self.reconnects = 0  # how many times the connection was made again (for tests and stats)

    # -- public API --

    def subscribe(self, channel: str, callback: Callable[[str, Any], Any] | None = None) -> Subscription:
        """Receive the messages published on ``channel``."""
        return self._add(channel, False, callback)

    def psubscribe(self, pattern: str, callback: Callable[[str, Any], Any] | None = None) -> Subscription:
        """Receive the messages of every channel matching the glob ``pattern``."""
        return self._add(pattern, True, callback)

    def publish(self, channel: str, message: str | bytes) -> defer.Deferred:
        """Publish through the application's pool: a Deferred of the number of
        subscribers (in every process) that got it."""
        if self._publisher is None:
            raise RuntimeError("this RedisPubSub has no pool to publish with")
        return self._publisher().publish(channel, message)

    def subscriber_count(self) -> int:
        """Local subscriptions, all channels and patterns together."""
        return sum(len(subs) for subs in self._channels.values()) + sum(
            len(subs) for subs in self._patterns.values())

    def close(self) -> defer.Deferred:
        """Stop every subscription and close the connection."""
        for table in (self._channels, self._patterns):
            for subs in list(table.values()):
                for sub in list(subs):
                    sub.stop()
        service, self._service = self._service, None
        if service is None:
            return defer.succeed(None)
        return service.stopService()

    # -- internals --

    def _table(self, is_pattern: bool) -> dict[str, list[Subscription]]:
        return self._patterns if is_pattern else self._channels

    def _add(self, name: str, is_pattern: bool, callback: Callable | None) -> Subscription:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a channel or pattern must be a non-empty str, not {name!r}")
        sub = Subscription(self, name, is_pattern, callback, self.config.pubsub_max_queue)
        subs = self._table(is_pattern).setdefault(name, [])
        subs.append(sub)
        if len(subs) > 1:
            # the channel is already subscribed for others, or will be (then the
            # confirmation readies every subscription of the channel)
            if subs[0].ready.called:
                sub.ready.callback(sub)
            return sub
        if self._service is None:
            self._start()
        elif self._protocol is not None:
            self._send_subscribe(self._protocol, name, is_pattern)
        return sub

    def _remove(self, sub: Subscription) -> None:
        table = self._table(sub.is_pattern)
        subs = table.get(sub.name)
        if not subs or sub not in subs:
            return
        subs.remove(sub)
        if subs:
            return
        del table[sub.name]
        proto = self._protocol
        if proto is not None:
            command = proto.punsubscribe if sub.is_pattern else proto.unsubscribe
            command(sub.name).addErrback(self._log_failure, "unsubscribe")

    def _start(self) -> None:
        def retry(attempt: int) -> float:
            return backoffPolicy(initialDelay=0.1, maxDelay=min(10.0, 2 * self.config.connect_timeout))(attempt)

        self._service = ClientService(self.config.endpoint(), _HubFactory(self), retryPolicy=retry,
                                      prepareConnection=self._connected)
        self._service.startService()

    def _connected(self, proto: _HubProtocol) -> defer.Deferred:
        d = proto.whenConnected()  # after AUTH, if any
        d.addCallback(self._subscribe_all)
        return d

    def _subscribe_all(self, proto: _HubProtocol) -> None:
        if self._protocol is not None or self._service is None:
            return
        self._protocol = proto
        for is_pattern in (False, True):
            for name in list(self._table(is_pattern)):
                self._send_subscribe(proto, name, is_pattern)

    def _send_subscribe(self, proto: _HubProtocol, name: str, is_pattern: bool) -> None:
        # one channel per command: txredisapi pairs confirmations with commands by position
        command = proto.psubscribe if is_pattern else proto.subscribe
        d = command(name)

        def confirmed(_: Any) -> None:
            for sub in list(self._table(is_pattern).get(name, ())):
                if not sub.ready.called:
                    sub.ready.callback(sub)

        d.addCallbacks(confirmed, self._log_failure, errbackArgs=("subscribe",))

    def _lost(self, proto: _HubProtocol) -> None:
        if self._protocol is proto:
            self._protocol = None
            if self._service is not None:
                self.reconnects += 1

    def _message(self, pattern: Any, channel: Any, message: Any) -> None:
        if pattern is None:
            subs = self._channels.get(_text(channel), ())
        else:
            subs = self._patterns.get(_text(pattern), ())
        channel = _text(channel)
        for sub in list(subs):
            if sub.active:
                sub._deliver(channel, message)

    def _log_failure(self, reason: failure.Failure, what: str) -> None:
        if reason.check(ConnectionError):
            return  # the connection dropped: everything is subscribed again on reconnection
        app_log.error("Redis pub/sub %s failed: %s", what, reason.getErrorMessage())


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
