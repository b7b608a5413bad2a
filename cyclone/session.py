"""Server-side sessions: ``self.session`` in any handler.

.. code-block:: python

    class Visits(cyclone.web.RequestHandler):
        def get(self):
            self.session["visits"] = self.session.get("visits", 0) + 1
            self.write(f"visit number {self.session['visits']}")

``self.session`` is a dict-like ``Session`` made on first use (a handler that
never touches it pays nothing). Its values must be JSON-serializable. When
the request finishes, a session whose content changed is saved *before* the
response goes out, so the client's next request finds it, in this process or
another. Nothing is stored, and no cookie is sent, for a new session that
stays empty. A response with a 5xx status saves nothing.

The browser holds only the session id (256 random bits), in a cookie signed
with ``cookie_secret``, ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over HTTPS,
and lasting as long as the browser session unless ``session_cookie_kwargs``
says otherwise. A cookie naming an unknown or expired id is never adopted:
such a session starts afresh under a new id (against session fixation). Call
``self.session.regenerate()`` on login, so that the id seen before logging in
is worthless after.

A session expires after ``session_idle_timeout`` seconds without a request
loading it, and ``session_lifetime`` seconds after it was made, whatever its
use. ``self.session.expire()`` ends it now (log out).
``self.session.notify_on_expire(callback)`` has ``callback(session_id)``
called, in this process, when the session is found expired or is ended.

Stores (the ``session_store`` setting):

``"memory"`` (default), ``MemorySessionStore``
    a dict in this process, swept by a timer; sessions are loaded at once, so
    ``self.session`` works in plain ``def`` handlers.
``"redis"``, ``RedisSessionStore``
    one Redis key per session with a TTL (the idle timeout, capped by the
    lifetime), through ``self.application.redis`` (see ``cyclone.redis``):
    every process and machine on that Redis shares the sessions. Loading
    takes a round trip: ``await self.session.load()`` (or ``yield`` it) before
    reading the session; its use before that raises ``SessionNotLoaded``.
any ``SessionStore`` instance
    subclass it to keep sessions elsewhere (``load``, ``save``, ``delete``).

Settings: ``cookie_secret`` (required), ``session_store``,
``session_cookie_name`` ("session_id"), ``session_cookie_kwargs`` (added to,
or replacing, ``httponly=True, samesite="Lax", path="/"``, ``secure`` when the
request came over HTTPS, ``expires_days=None``), ``session_idle_timeout``
(1800 s), ``session_lifetime`` (43200 s: 12 hours), and for the memory store
``session_sweep_interval`` (60 s) and ``session_max_sessions`` (100000: past
it, the least recently used session is dropped, so a flood of new visitors
cannot exhaust memory), for the Redis store ``session_redis_prefix``
("cyclone:session:").

Two requests of the same session running at once each save what they saw:
the last one to finish wins.
"""

from __future__ import annotations

import collections
import json
import math
import re
import secrets
import time
from collections.abc import MutableMapping
from typing import Any, Callable, Iterator

from twisted.internet import defer, task
from twisted.python import failure

from cyclone.log import app_log

__all__ = [
    "Session",
    "SessionNotLoaded",
    "SessionStore",
    "MemorySessionStore",
    "RedisSessionStore",
    "session_of",
    "store_of",
]

DEFAULT_COOKIE_NAME = "session_id"
DEFAULT_IDLE_TIMEOUT = 1800.0
DEFAULT_LIFETIME = 12 * 3600.0
DEFAULT_SWEEP_INTERVAL = 60.0
DEFAULT_MAX_SESSIONS = 100_000
DEFAULT_REDIS_PREFIX = "cyclone:session:"

_ID_BYTES = 32  # 256 bits, URL-safe base64: 43 characters
_VALID_ID = re.compile(r"[A-Za-z0-9_-]{43}\Z")

#: what a store gives back for a live session: its data (JSON text) and when it was made
Stored = tuple[str, float]


# Signed cookies already verified: (name, raw value) -> (session id, secret, when).
# Checking the HMAC and parsing the value cost as much as a small request;
# a repeat visitor's cookie is verified again after _VERIFIED_FOR seconds (so
# its signature's age is still enforced, to within that), and a value enters
# only once it has passed the check with that very secret object.
_verified: dict[tuple[str, str], tuple[str, Any, float]] = {}
_VERIFIED_MAX = 10_000
_VERIFIED_FOR = 60.0


def _raw_cookie(request: Any, name: str) -> str | None:
    """The value of cookie ``name`` in the request's one ``Cookie`` header,
    without parsing the others; None when absent or not plain (escapes,
    repeated, several headers): then the full parser decides."""
    try:
        headers = request.headers.get_list("Cookie")
    except AttributeError:
        return None
    if len(headers) != 1:
        return None
    header = headers[0]
    prefix = name + "="
    start = header.find(prefix)
    if start < 0 or header.find(prefix, start + 1) >= 0:
        return None
    if start > 0 and header[start - 1] not in "; ":
        return None  # the end of another cookie's name ("xsession_id=")
    end = header.find(";", start)
    value = header[start + len(prefix):end if end >= 0 else len(header)].strip()
    if value[:1] == '"':
        # a signed value is sent quoted (it holds "="); without a backslash
        # there is no escape to undo
        if len(value) < 2 or value[-1] != '"' or "\\" in value:
            return None
        value = value[1:-1]
    return value or None


class SessionNotLoaded(RuntimeError):
    """The session was used before its (asynchronous) store loaded it."""


def _new_id() -> str:
    return secrets.token_urlsafe(_ID_BYTES)


def _positive(settings: dict[str, Any], name: str, default: float) -> float:
    value = settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"the {name} setting must be a positive number, not {value!r}")
    return value


# -- stores ------------------------------------------------------------------------------------


class SessionStore:
    """Where sessions live. Subclasses implement ``load``, ``save`` and
    ``delete``; each may return its result or a Deferred of it.

    ``idle_timeout`` and ``lifetime`` are in seconds; ``clock`` (the reactor by
    default) gives the time. The base class keeps the ``notify_on_expire``
    callbacks (they live in this process) and calls them through
    ``_expired(session_id)``, which subclasses call when they find a session
    expired.
    """

    #: True when ``load`` returns its result at once (no Deferred still waiting)
    synchronous = False

    def __init__(self, idle_timeout: float = DEFAULT_IDLE_TIMEOUT, lifetime: float = DEFAULT_LIFETIME,
                 clock: Any = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.idle_timeout = float(idle_timeout)
        self.lifetime = float(lifetime)
        self.clock = clock
        self._callbacks: dict[str, list[Callable[[str], Any]]] = {}

    def load(self, session_id: str) -> Stored | None | defer.Deferred:
        """The live session ``session_id`` as ``(data_json, created)``, or None;
        loading counts as use (it restarts the idle timeout)."""
        raise NotImplementedError

    def save(self, session_id: str, data_json: str, created: float) -> Any:
        """Store the session (its data as JSON text, its creation time)."""
        raise NotImplementedError

    def delete(self, session_id: str) -> Any:
        """Remove the session; its expiry callbacks are called."""
        raise NotImplementedError

    def remaining(self, created: float) -> float:
        """Seconds the session made at ``created`` may live: the idle timeout,
        capped by what is left of its lifetime (0 or less: it is over)."""
        return min(self.idle_timeout, created + self.lifetime - self.clock.seconds())

    def notify_on_expire(self, session_id: str, callback: Callable[[str], Any]) -> None:
        """Call ``callback(session_id)`` when this process finds the session
        expired, or when it is ended."""
        self._callbacks.setdefault(session_id, []).append(callback)

    def _moved(self, old_id: str, new_id: str) -> None:
        callbacks = self._callbacks.pop(old_id, None)
        if callbacks:
            self._callbacks.setdefault(new_id, []).extend(callbacks)

    def _expired(self, session_id: str) -> None:
        for callback in self._callbacks.pop(session_id, ()):
            try:
                result = callback(session_id)
            except Exception:
                app_log.error("Exception in a notify_on_expire callback", exc_info=True)
                continue
            if isinstance(result, defer.Deferred):
                result.addErrback(lambda f: app_log.error(
                    "Exception in a notify_on_expire callback",
                    exc_info=(f.type, f.value, f.getTracebackObject())))


class MemorySessionStore(SessionStore):
    """Sessions in a dict of this process (``session_store="memory"``, the default).

    A timer sweeps out the expired sessions every ``sweep_interval`` seconds
    while there are any; past ``max_sessions``, saving a new session drops the
    least recently used one.
    """

    synchronous = True

    def __init__(self, idle_timeout: float = DEFAULT_IDLE_TIMEOUT, lifetime: float = DEFAULT_LIFETIME,
                 sweep_interval: float = DEFAULT_SWEEP_INTERVAL, max_sessions: int = DEFAULT_MAX_SESSIONS,
                 clock: Any = None) -> None:
        super().__init__(idle_timeout, lifetime, clock)
        if not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"max_sessions must be a positive integer, not {max_sessions!r}")
        self.sweep_interval = float(sweep_interval)
        self.max_sessions = max_sessions
        # id -> [data_json, created, last_used], least recently used first
        self._sessions: collections.OrderedDict[str, list] = collections.OrderedDict()
        self._sweeper: task.LoopingCall | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def _is_expired(self, entry: list, now: float) -> bool:
        return now - entry[2] >= self.idle_timeout or now - entry[1] >= self.lifetime

    def load(self, session_id: str) -> Stored | None:
        entry = self._sessions.get(session_id)
        if entry is None:
            return None
        now = self.clock.seconds()
        if self._is_expired(entry, now):
            del self._sessions[session_id]
            self._expired(session_id)
            return None
        entry[2] = now
        self._sessions.move_to_end(session_id)
        return entry[0], entry[1]

    def save(self, session_id: str, data_json: str, created: float) -> None:
        sessions = self._sessions
        sessions[session_id] = [data_json, created, self.clock.seconds()]
        sessions.move_to_end(session_id)
        while len(sessions) > self.max_sessions:
            dropped, _ = sessions.popitem(last=False)
            app_log.warning("session store full (session_max_sessions=%d): dropped the least "
                            "recently used session", self.max_sessions)
            self._expired(dropped)
        if self._sweeper is None:
            self._sweeper = task.LoopingCall(self.sweep)
            self._sweeper.clock = self.clock
            self._sweeper.start(self.sweep_interval, now=False)

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._expired(session_id)

    def sweep(self) -> int:
        """Remove the expired sessions now; how many there were."""
        now = self.clock.seconds()
        expired = [sid for sid, entry in self._sessions.items() if self._is_expired(entry, now)]
        for sid in expired:
            del self._sessions[sid]
            self._expired(sid)
        if not self._sessions and self._sweeper is not None:
            # nothing left to watch: no timer in an idle process (save starts it again)
            sweeper, self._sweeper = self._sweeper, None
            sweeper.stop()
        return len(expired)


class RedisSessionStore(SessionStore):
    """One Redis key per session (``session_store="redis"``), its TTL the idle
    timeout (capped by the lifetime) and restarted by each load (``GETEX``,
    Redis 6.2+); its value ``<created>:<data as JSON>``. ``redis`` is a
    txredisapi connection or pool, e.g. ``application.redis``.

    Expiry callbacks: Redis drops expired keys by itself, so the store checks
    the sessions that have callbacks every ``sweep_interval`` seconds (while
    there are any) and calls the callbacks of those that are gone.
    """

    def __init__(self, redis: Any, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 lifetime: float = DEFAULT_LIFETIME, prefix: str = DEFAULT_REDIS_PREFIX,
                 sweep_interval: float = DEFAULT_SWEEP_INTERVAL, clock: Any = None) -> None:
        super().__init__(idle_timeout, lifetime, clock)
        self.redis = redis
        self.prefix = prefix
        self._idle_ttl = max(1, math.ceil(self.idle_timeout))
        self.sweep_interval = float(sweep_interval)
        self._sweeper: task.LoopingCall | None = None

    def key(self, session_id: str) -> str:
        return self.prefix + session_id

    def load(self, session_id: str) -> defer.Deferred:
        d = self.redis.execute_command("GETEX", self.key(session_id), "EX", self._idle_ttl)
        return d.addCallback(self._loaded_record, session_id)

    def _loaded_record(self, raw: Any, session_id: str) -> Any:
        if raw is None:
            if session_id in self._callbacks:
                self._expired(session_id)
            return None
        # the record is "<created>:<data as JSON>": the data is parsed once, by the session
        created_text, _, data_json = str(raw).partition(":")
        try:
            created = float(created_text)
        except ValueError:
            app_log.warning("session %s…: unreadable record in Redis: starting afresh", session_id[:6])
            return None
        left = self.remaining(created)
        if left <= 0:
            return self.delete(session_id).addCallback(lambda _: None)
        if left < self.idle_timeout:
            d = self.redis.execute_command("EXPIRE", self.key(session_id), max(1, math.ceil(left)))
            return d.addCallback(lambda _: (data_json, created))
        return data_json, created

    def save(self, session_id: str, data_json: str, created: float) -> defer.Deferred:
        left = self.remaining(created)
        if left <= 0:
            return self.delete(session_id)
        record = f"{created!r}:{data_json}"
        return self.redis.execute_command("SET", self.key(session_id), record, "EX", max(1, math.ceil(left)))

    def delete(self, session_id: str) -> defer.Deferred:
        d = self.redis.delete(self.key(session_id))
        d.addCallback(lambda _: self._expired(session_id))
        return d

    def notify_on_expire(self, session_id: str, callback: Callable[[str], Any]) -> None:
        super().notify_on_expire(session_id, callback)
        if self._sweeper is None:
            self._sweeper = task.LoopingCall(self.sweep)
            self._sweeper.clock = self.clock
            self._sweeper.start(self.sweep_interval, now=False).addErrback(
                lambda f: app_log.error("session sweeper stopped: %s", f.getErrorMessage()))

    @defer.inlineCallbacks
    def sweep(self):
        """Call the callbacks of the watched sessions that Redis no longer has."""
        for session_id in list(self._callbacks):
            try:
                exists = yield self.redis.exists(self.key(session_id))
            except Exception as exc:  # Redis down: try again at the next sweep
                app_log.warning("session sweep: %s", exc)
                return
            if not exists:
                self._expired(session_id)
        if not self._callbacks and self._sweeper is not None:
            sweeper, self._sweeper = self._sweeper, None
            sweeper.stop()


def store_of(application: Any) -> SessionStore:
    """The application's session store, made from its settings on first use."""
    store = application.__dict__.get("_session_store")
    if store is not None:
        return store
    settings = application.settings
    choice = settings.get("session_store", "memory")
    if isinstance(choice, SessionStore):
        store = choice
    else:
        idle = _positive(settings, "session_idle_timeout", DEFAULT_IDLE_TIMEOUT)
        lifetime = _positive(settings, "session_lifetime", DEFAULT_LIFETIME)
        sweep = _positive(settings, "session_sweep_interval", DEFAULT_SWEEP_INTERVAL)
        if choice == "memory":
            store = MemorySessionStore(idle, lifetime, sweep,
                                       settings.get("session_max_sessions", DEFAULT_MAX_SESSIONS))
        elif choice == "redis":
            store = RedisSessionStore(application.redis, idle, lifetime,
                                      settings.get("session_redis_prefix", DEFAULT_REDIS_PREFIX), sweep)
        else:
            raise ValueError(f"session_store must be 'memory', 'redis' or a SessionStore, not {choice!r}")
    application._session_store = store
    return store


def session_of(handler: Any) -> "Session":
    """``handler.session``: the request's session (see the module's docstring)."""
    return Session(handler, store_of(handler.application))


# -- the session -------------------------------------------------------------------------------


class Session(MutableMapping):
    """A request's session: a dict of JSON-serializable values, plus

    ``id`` (None until a new session is saved), ``is_new``, ``load()``,
    ``save()``, ``regenerate()``, ``expire()`` and ``notify_on_expire()``.
    """

    def __init__(self, handler: Any, store: SessionStore) -> None:
        settings = handler.application.settings
        handler.require_setting("cookie_secret", "sessions")
        self.handler = handler
        self.store = store
        self.cookie_name: str = settings.get("session_cookie_name", DEFAULT_COOKIE_NAME)
        self._data: dict | None = None  # None: not loaded yet
        self._loaded_json: str | None = None  # what the store had: to see a change
        self._waiters: list[defer.Deferred] = []  # load()s waiting for the store
        self._created = 0.0
        self._cookie_id: str | None = self._id_from_cookie()
        self._id: str | None = None  # the live id, once loaded
        self._old_id: str | None = None  # regenerate(): deleted when saved
        self._expire = False
        self._pending_callbacks: list[Callable[[str], Any]] = []
        # finish() saves the session first
        handler._before_finish = self._before_finish

    def __repr__(self) -> str:
        state = "not loaded" if self._data is None else f"{len(self._data)} keys"
        return f"<Session {self._id[:6] + '…' if self._id else 'new'} {state}>"

    # -- loading --

    def _id_from_cookie(self) -> str | None:
        handler = self.handler
        name = self.cookie_name
        raw = _raw_cookie(handler.request, name)
        if raw is None:
            raw = handler.get_cookie(name)  # the full parser, for what the fast path leaves
            if raw is None:
                return None
        secret = handler.application.settings["cookie_secret"]
        key = (name, raw)
        now = time.monotonic()
        known = _verified.get(key)
        if known is not None and known[1] is secret and now - known[2] < _VERIFIED_FOR:
            return known[0]
        value = handler.get_signed_cookie(name, raw, max_age_days=self.store.lifetime / 86400 + 1)
        if value is None:
            return None
        session_id = value.decode("ascii", "replace")
        if not _VALID_ID.match(session_id):
            return None
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[key] = (session_id, secret, now)
        return session_id

    def load(self) -> defer.Deferred:
        """Load the session from its store (once): a Deferred of this session.
        If the store fails (Redis down), the Deferred fails and a later
        ``load()`` tries again."""
        if self._data is not None:
            return defer.succeed(self)
        if self._cookie_id is None:
            return defer.succeed(self._loaded(None))
        if self.store.synchronous:
            # no Deferred to wait for (a failure of the store raises here)
            return defer.succeed(self._loaded(self.store.load(self._cookie_id)))
        d = defer.Deferred()
        self._waiters.append(d)
        if len(self._waiters) == 1:
            loading = defer.maybeDeferred(self.store.load, self._cookie_id)
            loading.addCallbacks(self._load_done, self._load_failed)
        return d

    def _load_done(self, stored: Stored | None) -> None:
        self._loaded(stored)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(self)

    def _load_failed(self, reason: Any) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.errback(reason)

    def _loaded(self, stored: Stored | None) -> "Session":
        if self._data is not None:
            return self
        if stored is None:
            self._id = None  # a new session: it gets a new id when saved
            self._data = {}
            self._loaded_json = None
            self._created = self.store.clock.seconds()
        else:
            data_json, created = stored
            try:
                data = json.loads(data_json)
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                app_log.warning("session %s…: unreadable data (%s): starting afresh", self._cookie_id[:6], exc)
                return self._loaded(None)
            self._id = self._cookie_id
            self._loaded_json, self._created, self._data = data_json, created, data
            for callback in self._pending_callbacks:
                self.store.notify_on_expire(self._id, callback)
            self._pending_callbacks = []
        return self

    def _ready(self) -> dict:
        data = self._data
        if data is not None:
            return data
        d = self.load()
        if self._data is None:
            d.addErrback(lambda f: None)  # whoever awaits load() sees the failure
            raise SessionNotLoaded(
                "this session's store loads asynchronously: 'await self.session.load()' "
                "(or yield it) before using the session")
        return self._data

    # -- dict API --

    def __getitem__(self, key: str) -> Any:
        return self._ready()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._ready()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._ready()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ready())

    def __len__(self) -> int:
        return len(self._ready())

    def __contains__(self, key: object) -> bool:
        return key in self._ready()

    # -- identity and expiry --

    @property
    def id(self) -> str | None:
        """The session id, or None for a new session not saved yet."""
        self._ready()
        return self._id

    @property
    def is_new(self) -> bool:
        """True when the request brought no live session."""
        self._ready()
        return self._id is None and self._old_id is None

    @property
    def created(self) -> float:
        """When the session was made (seconds since the epoch, the store's clock)."""
        self._ready()
        return self._created

    def regenerate(self) -> None:
        """Give the session a new id (keeping its content) when it is saved, and
        end the old one: call it on login, against session fixation."""
        self._ready()
        if self._id is not None:
            self._old_id = self._id
        self._id = None

    def expire(self) -> None:
        """End the session (log out): its content is dropped, it is deleted
        from the store and the cookie cleared when the request finishes.
        Values set after this go to a new session."""
        self._ready()
        self._data.clear()
        self._expire = True

    invalidate = expire

    def notify_on_expire(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(session_id)`` when this process finds the session
        expired or ends it (registered once the session has an id)."""
        self._ready()
        if self._id is not None and self._old_id is None:
            self.store.notify_on_expire(self._id, callback)
        else:
            self._pending_callbacks.append(callback)

    # -- saving --

    def save(self) -> defer.Deferred:
        """Save now if the session changed (finish() does it anyway): for a
        handler that streams or stays open (WebSocket). The cookie of a new id
        can only be sent while the response head is not."""
        try:
            return self._commit() or defer.succeed(None)
        except Exception:
            return defer.fail()

    def _commit(self) -> defer.Deferred | None:
        """Start what the store must do: a Deferred to wait for, or None when
        it is done (a synchronous store) or there was nothing to do. A
        synchronous store's exception is raised here."""
        data = self._data
        if data is None:
            return None  # never loaded: untouched
        store, handler = self.store, self.handler
        steps: list[Any] = []
        if self._expire:
            self._expire = False
            for session_id in (self._id, self._old_id):
                if session_id is not None:
                    steps.append(store.delete(session_id))
            self._id = self._old_id = None
            self._loaded_json = None
            self._pending_callbacks = []
            if self._cookie_id is not None:
                handler.clear_cookie(self.cookie_name, **self._cookie_path_and_domain())
                self._cookie_id = None
            if not data:
                return _all(steps)
            # values set after expire(): a new session, under a new id
        try:
            data_json = json.dumps(data, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"session values must be JSON-serializable: {exc}") from None
        if self._id is None:
            if not data and self._old_id is None:
                return _all(steps)  # a new, empty session: nothing to keep
            new_id = _new_id()
            self._set_cookie(new_id)
            self._id = new_id
            if self._old_id is not None:
                old_id, self._old_id = self._old_id, None
                store._moved(old_id, new_id)
                # its callbacks moved to the new id: deleting it calls none
                steps.append(store.delete(old_id))
            for callback in self._pending_callbacks:
                store.notify_on_expire(new_id, callback)
            self._pending_callbacks = []
        elif data_json == self._loaded_json:
            return _all(steps)
        steps.append(store.save(self._id, data_json, self._created))
        self._loaded_json = data_json
        return _all(steps)

    def _cookie_path_and_domain(self) -> dict[str, Any]:
        kwargs = self.handler.application.settings.get("session_cookie_kwargs") or {}
        return {name: kwargs[name] for name in ("path", "domain") if name in kwargs}

    def _set_cookie(self, session_id: str) -> None:
        handler = self.handler
        if handler._headers_written:
            raise RuntimeError("a new session id cannot be sent: the response head is already out "
                               "(save the session before flush())")
        kwargs: dict[str, Any] = {
            "httponly": True,
            "samesite": "Lax",
            "path": "/",
            "secure": handler.request.protocol == "https",
            "expires_days": None,
        }
        kwargs.update(handler.application.settings.get("session_cookie_kwargs") or {})
        if not kwargs["secure"]:
            del kwargs["secure"]
        handler.set_signed_cookie(self.cookie_name, session_id, **kwargs)

    def _before_finish(self, chunk: Any) -> bool:
        """RequestHandler.finish()'s hook: save, then let finish() run; True
        when finishing waits for the store."""
        handler = self.handler
        handler._before_finish = None  # once
        if handler.get_status() >= 500:
            return False  # an error page: what the request changed is not kept
        saving = self._commit()
        if saving is None:
            return False
        settled: list = []

        def note(result: Any) -> Any:
            settled.append(result)
            return result

        saving.addBoth(note)
        if settled:
            # a synchronous store: done (a failure is raised here, answered as a 500)
            if isinstance(settled[0], failure.Failure):
                saving.addErrback(lambda f: None)
                settled[0].raiseException()
            return False
        if chunk is not None:
            handler.write(chunk)
        # the handler is done; finish() really runs once the session is stored
        handler._finished = True
        saving.addCallbacks(self._finish_after_save, self._save_failed)
        saving.addErrback(lambda f: app_log.error(
            "Exception while finishing after a session save", exc_info=(f.type, f.value, f.getTracebackObject())))
        return True

    def _finish_after_save(self, _: Any) -> None:
        handler = self.handler
        handler._finished = False
        handler.finish()

    def _save_failed(self, reason: Any) -> None:
        handler = self.handler
        handler._finished = False
        app_log.error("Could not save the session of %s: %s", handler._request_summary(),
                      reason.getErrorMessage())
        handler._handle_request_exception(reason.value)


def _all(results: list[Any]) -> defer.Deferred | None:
    """What a store's methods returned: None when none is a Deferred."""
    steps = [result for result in results if isinstance(result, defer.Deferred)]
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    d = defer.gatherResults(steps, consumeErrors=True)
    d.addErrback(lambda f: f.value.subFailure if isinstance(f.value, defer.FirstError) else f)
    return d
