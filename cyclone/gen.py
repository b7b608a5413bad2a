"""Tornado's ``tornado.gen`` on Twisted: generator coroutines that yield Deferreds.

::

    from cyclone import gen, web

    class Main(web.RequestHandler):
        @gen.coroutine
        def get(self):
            yield gen.sleep(0.1)
            user, posts = yield [load_user(), load_posts()]  # both at once
            self.write(render(user, posts))

Where Tornado returns a ``Future``, cyclone returns a ``Deferred``: a handler
may return it, another ``gen.coroutine`` may ``yield`` it, an ``async def``
may ``await`` it, and plain Twisted code may ``addCallback`` to it.

Inside a ``gen.coroutine`` generator, ``yield`` takes a Deferred, a coroutine
or other awaitable, an ``asyncio`` future (under Twisted's asyncio reactor), a
``concurrent.futures.Future``, ``gen.moment`` or ``None`` (resume on the next
reactor turn), or a list or dict of these (waited on together, as ``multi``).
``convert_yielded.register`` teaches it more types. Anything else raises
``BadYieldError`` at the ``yield``.

A Deferred keeps its result after a ``yield`` (or ``multi``, ``with_timeout``,
``WaitIterator``) has taken it, so it may be yielded again, as a Tornado
Future may; a failure is taken by whichever raised it, so that Twisted does
not also log it as an unhandled error.

Differences from Tornado, all deliberate:

* cancelling the Deferred of a ``gen.coroutine`` cancels what it is waiting
  on (Twisted's rule; a Tornado Future's cancel() does not reach the
  generator);
* a number given to ``with_timeout`` is a delay in seconds, not an absolute
  ``IOLoop.time()`` deadline; a ``timedelta`` means the same in both, and so
  does a number of at least 10**9 (a clock time: ``IOLoop.current().time() +
  5`` is a deadline, as in Tornado);
* ``TimeoutError`` is the builtin ``TimeoutError`` (which is what
  ``asyncio.TimeoutError`` and Tornado's ``gen.TimeoutError`` are on Python
  3.11+), not ``twisted.internet.defer.TimeoutError``.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import collections.abc
import concurrent.futures
import contextvars
import datetime
import functools
import inspect
from typing import Any, Callable, Generator, ParamSpec

from twisted.internet import defer
from twisted.python import failure

from cyclone.concurrent import ensure_deferred
from cyclone.log import app_log

__all__ = [
    "BadYieldError",
    "Multi",
    "Return",
    "TimeoutError",
    "WaitIterator",
    "convert_yielded",
    "coroutine",
    "is_coroutine_function",
    "maybe_future",
    "moment",
    "multi",
    "multi_future",
    "sleep",
    "with_timeout",
]

_P = ParamSpec("_P")

#: Raised by ``with_timeout``. The builtin class, so ``except gen.TimeoutError``
#: also catches ``asyncio.wait_for``'s timeouts, as it does under Tornado.
TimeoutError = builtins.TimeoutError


class BadYieldError(Exception):
    """A ``gen.coroutine`` yielded something it cannot wait on."""


class Return(Exception):
    """``raise gen.Return(value)`` ends a ``gen.coroutine`` with ``value``.

    The spelling from before generators could ``return value``; both work.
    """

    def __init__(self, value: Any = None) -> None:
        super().__init__(value)
        self.value = value


def _reactor() -> Any:
    # Looked up on each use, not at import: importing cyclone.gen must not
    # install the default reactor before an application picks asyncio's.
    # Tests replace this with a twisted.internet.task.Clock.
    from twisted.internet import reactor

    return reactor


class _Moment:
    """The type of ``gen.moment``."""

    __slots__ = ()

    def __await__(self) -> Generator[None, Any, None]:
        # A bare yield: cyclone's coroutine driver (like asyncio) resumes the
        # coroutine on the next reactor turn, so ``await gen.moment`` works too.
        yield None

    def __repr__(self) -> str:
        return "cyclone.gen.moment"


#: ``yield gen.moment`` lets the reactor run once (other requests, I/O,
#: timers) before the coroutine goes on; for long loops over results that are
#: ready at once. ``yield None`` means the same.
moment = _Moment()


def _later(seconds: float) -> defer.Deferred:
    from twisted.internet import task

    return task.deferLater(_reactor(), seconds, _nothing)


def _nothing() -> None:
    return None


def sleep(duration: float) -> defer.Deferred:
    """A Deferred that fires with None after ``duration`` seconds.

    ``yield gen.sleep(0.5)`` pauses the coroutine without blocking the reactor.
    Cancelling the Deferred cancels the timer.
    """
    return _later(duration)


def _from_thread_future(future: concurrent.futures.Future) -> defer.Deferred:
    """A Deferred for a ``concurrent.futures.Future`` (an executor's result)."""
    d: defer.Deferred = defer.Deferred(lambda _: future.cancel())

    def settle(done: concurrent.futures.Future) -> None:
        if d.called:  # cancelled meanwhile
            return
        if done.cancelled():
            d.errback(failure.Failure(defer.CancelledError()))
            return
        exc = done.exception()
        if exc is not None:
            d.errback(failure.Failure(exc))
        else:
            d.callback(done.result())

    if future.done():
        settle(future)
    else:
        # the future completes in a worker thread: Deferreds are fired in the
        # reactor thread only
        future.add_done_callback(lambda done: _reactor().callFromThread(settle, done))
    return d


def _is_convertible(value: Any) -> bool:
    return (
        asyncio.isfuture(value)
        or isinstance(value, concurrent.futures.Future)
        or inspect.isawaitable(value)
    )


def _awaitable_to_deferred(value: Any) -> defer.Deferred:
    if isinstance(value, concurrent.futures.Future):
        return _from_thread_future(value)
    # Deferreds, asyncio futures and coroutines/awaitables
    return ensure_deferred(value)


@functools.singledispatch
def convert_yielded(yielded: Any) -> defer.Deferred:
    """The Deferred a ``gen.coroutine`` waits on when it yields ``yielded``.

    Handles Deferreds (returned as they are), ``None`` and ``moment`` (fire on
    the next reactor turn), lists and dicts (``multi``), asyncio and
    ``concurrent.futures`` futures, coroutines and other awaitables (started
    now, like ``asyncio.ensure_future``). Raises ``BadYieldError`` for
    anything else.

    A ``functools.singledispatch`` function, as in Tornado: add a type with
    ``@gen.convert_yielded.register(MyType)`` on a function returning a
    Deferred (or a future or awaitable).
    """
    if isinstance(yielded, defer.Deferred):
        return yielded
    if yielded is None or yielded is moment:
        return _later(0)
    if isinstance(yielded, (list, dict)):
        return multi(yielded)
    if _is_convertible(yielded):
        return _awaitable_to_deferred(yielded)
    raise BadYieldError(f"yielded unknown object {yielded!r}")


def _to_deferred(yielded: Any) -> defer.Deferred:
    """``convert_yielded``, also accepting what a registered converter
    returns if that is a future or awaitable rather than a Deferred."""
    if type(yielded) is defer.Deferred:  # the common case skips the dispatch
        return yielded
    converted = convert_yielded(yielded)
    if isinstance(converted, defer.Deferred):
        return converted
    if _is_convertible(converted):
        return _awaitable_to_deferred(converted)
    raise BadYieldError(
        f"convert_yielded turned {yielded!r} into {converted!r}, not a Deferred"
    )


def maybe_future(x: Any) -> defer.Deferred:
    """``x`` as a Deferred: Deferreds as they are, futures and coroutines
    waited on, any other value as an already-fired Deferred.

    Deprecated in Tornado (yield the value, or check for the plain results
    you expect, instead); kept for code that uses it. Unlike Tornado's, a
    coroutine object is run rather than returned as the result.
    """
    if isinstance(x, defer.Deferred):
        return x
    if _is_convertible(x):
        return _awaitable_to_deferred(x)
    return defer.succeed(x)


def _as_exception_types(quiet_exceptions: Any) -> tuple:
    if isinstance(quiet_exceptions, type):
        return (quiet_exceptions,)
    return tuple(quiet_exceptions)


def _exc_info(reason: failure.Failure) -> tuple:
    return (reason.type, reason.value, reason.getTracebackObject())


def multi(
    children: list | dict, quiet_exceptions: type | tuple[type, ...] = ()
) -> defer.Deferred:
    """Wait for every yieldable in a list or dict; fire with their results
    in the same shape (a list in order, or a dict with the same keys).

    As in Tornado, it waits for all the children, even after one failed, and
    then fails with the first failure in the order of ``children``; the other
    failures are logged on ``cyclone.application`` unless they are instances
    of ``quiet_exceptions`` (a type or tuple of types). ``yield [a, b]`` in a
    ``gen.coroutine`` is ``yield gen.multi([a, b])``.

    A child Deferred's success stays in it (it can still be yielded); its
    failure is taken here. Cancelling the result cancels unfinished children.
    """
    quiet = _as_exception_types(quiet_exceptions)
    keys: list | None
    if isinstance(children, dict):
        keys = list(children)
        values = list(children.values())
    else:
        keys = None
        values = list(children)
    # Each distinct child is converted and listened to once: a Deferred listed
    # twice would otherwise hand its failure to the first listener only.
    slot_of: dict[int, int] = {}
    unique: list[defer.Deferred] = []
    slots: list[int] = []
    for child in values:
        slot = slot_of.get(id(child))
        if slot is None:
            slot = slot_of[id(child)] = len(unique)
            unique.append(_to_deferred(child))
        slots.append(slot)

    outcomes: list[Any] = [None] * len(unique)
    remaining = [len(unique)]
    cancelled = [False]

    def cancel(_: defer.Deferred) -> None:
        cancelled[0] = True
        for d in unique:
            if not d.called:
                d.cancel()

    result: defer.Deferred = defer.Deferred(cancel)
    if not unique:
        result.callback({} if keys is not None else [])
        return result

    def finish() -> None:
        first_failure = None
        for slot in slots:
            outcome = outcomes[slot]
            if isinstance(outcome, failure.Failure) and first_failure is None:
                first_failure = outcome
        if first_failure is not None:
            for outcome in outcomes:  # one per distinct child
                if not isinstance(outcome, failure.Failure) or outcome is first_failure:
                    continue
                if cancelled[0] and outcome.check(defer.CancelledError):
                    continue  # the multi itself was cancelled: expected
                if not isinstance(outcome.value, quiet):
                    app_log.error("Multiple exceptions in yield list", exc_info=_exc_info(outcome))
            if not result.called:
                result.errback(first_failure)
            return
        values_out = [outcomes[slot] for slot in slots]
        if not result.called:
            result.callback(dict(zip(keys, values_out)) if keys is not None else values_out)

    def child_done(outcome: Any, slot: int) -> Any:
        outcomes[slot] = outcome
        remaining[0] -= 1
        if remaining[0] == 0:
            finish()
        return None if isinstance(outcome, failure.Failure) else outcome

    for slot, d in enumerate(unique):
        d.addBoth(child_done, slot)
    return result


#: Tornado's older name for ``multi``; the same function.
multi_future = multi

#: Tornado's other name for ``multi`` (in Tornado 6 also the function itself).
Multi = multi

#: A number at least this big given to ``with_timeout`` is a point on the
#: reactor's clock (an ``IOLoop.time()`` deadline, as Tornado reads every
#: number), not a delay: 10**9 seconds is over 31 years.
_ABSOLUTE_DEADLINE = 1e9


def with_timeout(
    timeout: float | datetime.timedelta,
    future: Any,
    quiet_exceptions: type | tuple[type, ...] = (),
    *,
    message: str | Callable[[], str] | None = None,
) -> defer.Deferred:
    """``future`` (any yieldable), failing with ``TimeoutError`` if it has
    not finished after ``timeout`` (seconds, or a ``datetime.timedelta``).

    ``message`` is the ``TimeoutError``'s message (default ``"Timeout"``),
    or a function called for it only when the timeout happens.

    As in Tornado, the timeout does not cancel ``future``: it may be waited on
    again. If ``future`` fails after the timeout, the error is logged on
    ``cyclone.application`` unless it is a ``CancelledError`` or an instance
    of ``quiet_exceptions``. Unlike Tornado, a number is a delay, not an
    absolute deadline, except that a number of at least 10**9 (a
    ``time.time()``-like value, such as ``IOLoop.current().time()`` or a sum
    with it) is taken as Tornado takes it, a deadline on the reactor's clock.
    Cancelling the returned Deferred cancels ``future``.

    ``future``'s success stays in it; a failure is taken here (raised from
    ``with_timeout``, or logged).
    """
    quiet = _as_exception_types(quiet_exceptions) + (defer.CancelledError, asyncio.CancelledError)
    if isinstance(timeout, datetime.timedelta):
        seconds = timeout.total_seconds()
    else:
        seconds = float(timeout)
        if seconds >= _ABSOLUTE_DEADLINE:
            now = _reactor().seconds()
            if now >= _ABSOLUTE_DEADLINE:  # not a test clock started at 0
                seconds -= now
    inner = _to_deferred(future)
    timer: list[Any] = []

    def cancel(_: defer.Deferred) -> None:
        if timer and timer[0].active():
            timer[0].cancel()
        inner.cancel()

    outer: defer.Deferred = defer.Deferred(cancel)

    def inner_done(result: Any) -> Any:
        if timer and timer[0].active():
            timer[0].cancel()
        if not outer.called:
            if isinstance(result, failure.Failure):
                outer.errback(result)
                return None
            outer.callback(result)
            return result
        # finished after the timeout: nobody is waiting on this failure
        if isinstance(result, failure.Failure):
            if not isinstance(result.value, quiet):
                app_log.error("Exception in %r after timeout", inner, exc_info=_exc_info(result))
            return None
        return result

    def time_out() -> None:
        if not outer.called:
            if message is None:
                text = "Timeout"
            elif callable(message):
                try:
                    text = message()
                except BaseException:
                    outer.errback(failure.Failure())
                    return
            else:
                text = message
            outer.errback(failure.Failure(TimeoutError(text)))

    inner.addBoth(inner_done)
    if not outer.called:
        timer.append(_reactor().callLater(max(seconds, 0.0), time_out))
    return outer


def is_coroutine_function(func: Any) -> bool:
    """True if ``func`` is decorated with ``gen.coroutine``.

    As in Tornado this is False for ``async def`` functions: ask
    ``inspect.iscoroutinefunction`` for those.
    """
    return getattr(func, "__cyclone_coroutine__", False) is True


class _Runner:
    """Steps a generator, waiting on the Deferred for each value it yields.

    Results that are ready at once are fed back in a loop, never by
    recursion, so a long run of them uses no stack.
    """

    __slots__ = ("generator", "context", "deferred", "_waiting")

    def __init__(self, generator: collections.abc.Generator, context: contextvars.Context) -> None:
        self.generator = generator
        self.context = context
        self.deferred: defer.Deferred = defer.Deferred(self._cancel)
        self._waiting: defer.Deferred | None = None

    def _cancel(self, _: defer.Deferred) -> None:
        waiting = self._waiting
        if waiting is not None:
            # the CancelledError is raised at the generator's yield: it may
            # catch it and return a value, which becomes the result
            waiting.cancel()
        # else the generator is running now (it cancelled its own Deferred):
        # Deferred.cancel() fails the Deferred and the generator's eventual
        # result is dropped

    def run(self, value: Any, error: failure.Failure | None) -> None:
        generator = self.generator
        run_in_context = self.context.run
        while True:
            try:
                if error is None:
                    yielded = run_in_context(generator.send, value)
                else:
                    yielded = run_in_context(error.throwExceptionIntoGenerator, generator)
            except (StopIteration, Return) as stop:
                self._settle(stop.value)
                return
            except BaseException:
                self._fail(failure.Failure())
                return
            error = None
            try:
                if type(yielded) is defer.Deferred:
                    waiting = yielded
                else:
                    # a coroutine yielded starts in the generator's context:
                    # it sees the context variables the generator set
                    waiting = run_in_context(_to_deferred, yielded)
            except Exception:
                # BadYieldError (or a converter's error) goes back in at the
                # yield, where the generator may catch it
                value, error = None, failure.Failure()
                continue
            outcome: list = []
            waiting.addBoth(self._resume, outcome)
            if outcome:  # fired already: go round again
                result = outcome[0]
                if isinstance(result, failure.Failure):
                    value, error = None, result
                else:
                    value = result
                continue
            outcome.append(_PENDING)
            self._waiting = waiting
            return

    def _resume(self, result: Any, outcome: list) -> None:
        if not outcome:  # fired while run() is still looping: hand it back
            outcome.append(result)
            return None if isinstance(result, failure.Failure) else result
        self._waiting = None
        if isinstance(result, failure.Failure):
            self.run(None, result)
            return None  # raised in the generator: handled
        self.run(result, None)
        return result  # stays in the Deferred: it may be yielded again

    def _settle(self, value: Any) -> None:
        if isinstance(value, defer.Deferred) or inspect.iscoroutine(value):
            # ``return some_deferred``: its result is the coroutine's result
            waiting = ensure_deferred(value)
            self._waiting = waiting
            waiting.addBoth(self._settled)
            return
        self._waiting = None
        if not self.deferred.called:
            self.deferred.callback(value)

    def _settled(self, result: Any) -> None:
        self._waiting = None
        if isinstance(result, failure.Failure):
            self._fail(result)
        elif not self.deferred.called:
            self.deferred.callback(result)
        return None

    def _fail(self, reason: failure.Failure) -> None:
        self._waiting = None
        if not self.deferred.called:
            self.deferred.errback(reason)
        elif not reason.check(defer.CancelledError):
            app_log.error(
                "Exception in %r after its Deferred was cancelled",
                self.generator,
                exc_info=_exc_info(reason),
            )


_PENDING = object()


def _settled_deferred(value: Any) -> defer.Deferred:
    if isinstance(value, defer.Deferred) or inspect.iscoroutine(value):
        return ensure_deferred(value)
    return defer.succeed(value)


def coroutine(func: Callable[_P, Any]) -> Callable[_P, defer.Deferred]:
    """Decorator: the generator ``func`` runs as a coroutine; calling it
    returns a Deferred of its result.

    Each ``yield x`` waits for ``x`` (see ``convert_yielded``) and evaluates
    to its result; a failure is raised at the ``yield``, so ``try``/``except``
    works. ``return value`` or ``raise gen.Return(value)`` sets the result;
    an uncaught exception fails the Deferred. The generator runs until its
    first ``yield`` before the call returns, and in a copy of the caller's
    ``contextvars`` context, as in Tornado.

    Tornado's decorator returns a Future; this one returns a Deferred, which
    ``yield`` and ``await`` both accept. Cancelling it cancels what the
    generator waits on (the ``CancelledError`` is raised at the ``yield``).

    ``func`` may also be a plain function (its result, or exception, comes
    back as a fired Deferred) or an ``async def`` (run to completion). A
    Deferred or coroutine it returns is waited on.
    """

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> defer.Deferred:
        context = contextvars.copy_context()
        try:
            result = context.run(func, *args, **kwargs)
        except (Return, StopIteration) as stop:
            return _settled_deferred(stop.value)
        except BaseException:
            return defer.fail(failure.Failure())
        if isinstance(result, collections.abc.Generator):
            runner = _Runner(result, context)
            runner.run(None, None)
            return runner.deferred
        return _settled_deferred(result)

    wrapper.__cyclone_coroutine__ = True  # type: ignore[attr-defined]
    return wrapper


class WaitIterator:
    """The results of several yieldables, in the order they finish.

    ::

        waiter = gen.WaitIterator(fetch(a), fetch(b))     # or keywords
        while not waiter.done():
            try:
                result = yield waiter.next()
            except Exception as exc:
                log(exc, waiter.current_index)
            else:
                use(result, waiter.current_index)

    ``current_index`` is the position (or keyword) of the one that produced
    the latest result, ``current_future`` the object given for it. In an
    ``async def``, ``async for result in gen.WaitIterator(...)`` works too, and
    stops at the first failure (it is raised).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError("You must provide args or kwargs, not both")
        items = list(kwargs.items()) if kwargs else list(enumerate(args))
        self.current_index: Any = None
        self.current_future: Any = None
        self._finished: collections.deque = collections.deque()
        self._waiters: collections.deque = collections.deque()
        self._unfinished = len(items)
        converted = [(key, child, _to_deferred(child)) for key, child in items]
        for key, child, d in converted:
            d.addBoth(self._child_done, key, child)

    def done(self) -> bool:
        """True when every result has been handed out by ``next()``."""
        if self._finished or self._unfinished:
            return False
        self.current_index = self.current_future = None
        return True

    def next(self) -> defer.Deferred:
        """A Deferred of the next result to finish (not one of the inputs).

        Raises ``RuntimeError`` if every result is already taken or promised
        to an earlier ``next()``.
        """
        pending = sum(1 for w in self._waiters if not w.called)
        if self._unfinished + len(self._finished) - pending <= 0:
            raise RuntimeError("WaitIterator has no more results: check done() first")
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append(waiter)
        self._deliver()
        return waiter

    def __aiter__(self) -> WaitIterator:
        return self

    def __anext__(self) -> defer.Deferred:
        if self.done():
            raise StopAsyncIteration
        return self.next()

    def _child_done(self, outcome: Any, key: Any, child: Any) -> Any:
        self._unfinished -= 1
        self._finished.append((key, child, outcome))
        self._deliver()
        return None if isinstance(outcome, failure.Failure) else outcome

    def _deliver(self) -> None:
        waiters, finished = self._waiters, self._finished
        while waiters and finished:
            waiter = waiters.popleft()
            if waiter.called:  # cancelled: its result goes to the next one
                continue
            key, child, outcome = finished.popleft()
            self.current_index, self.current_future = key, child
            if isinstance(outcome, failure.Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)
