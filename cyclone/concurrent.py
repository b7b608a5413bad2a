"""One driver for everything a handler may return: Deferreds, ``async def``
coroutines (awaiting Deferreds, and asyncio awaitables under Twisted's asyncio
reactor), and generators decorated with ``@defer.inlineCallbacks``.

``ensure_deferred(value)`` turns any of these into a ``Deferred``. Inside a
coroutine, ``await deferred`` works on every reactor; ``await
asyncio.sleep(0.1)`` or awaiting an ``asyncio.Future`` works when the reactor
is ``twisted.internet.asyncioreactor`` (install it before importing the
reactor), because the asyncio loop must be the one running.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import sys
from typing import Any, Coroutine

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import failure

__all__ = ["ensure_deferred", "is_async_result"]

log = Logger()


def is_async_result(value: Any) -> bool:
    """True for a Deferred, a coroutine or an asyncio future/awaitable."""
    return (
        isinstance(value, defer.Deferred)
        or inspect.iscoroutine(value)
        or asyncio.isfuture(value)
        or inspect.isawaitable(value)
    )


def ensure_deferred(value: Any) -> defer.Deferred:
    """A Deferred for ``value``: Deferreds pass through, coroutines and
    awaitables are driven, anything else becomes an already-fired Deferred."""
    if isinstance(value, defer.Deferred):
        return value
    if inspect.iscoroutine(value):
        loop = _asyncio_loop()
        if loop is not None:
            return defer.Deferred.fromFuture(loop.create_task(_in_task(value, loop)))
        return _CoroutineDriver(value).deferred
    if asyncio.isfuture(value):
        return defer.Deferred.fromFuture(value)
    if inspect.isawaitable(value):
        return _CoroutineDriver(_await(value)).deferred
    return defer.succeed(value)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop of Twisted's asyncio reactor, when that is the reactor."""
    reactor = sys.modules.get("twisted.internet.reactor")
    return getattr(reactor, "_asyncioEventloop", None)


async def _in_task(coroutine: Coroutine, loop: asyncio.AbstractEventLoop) -> Any:
    return await _DeferredAware(coroutine, loop)


class _DeferredAware:
    """Runs ``coroutine`` inside an asyncio Task, waiting on the Deferreds it
    awaits through asyncio futures; asyncio futures and bare yields pass
    through to the Task as they are. A Deferred that already fired is taken
    without a loop turn."""

    __slots__ = ("_coroutine", "_loop")

    def __init__(self, coroutine: Coroutine, loop: asyncio.AbstractEventLoop) -> None:
        self._coroutine = coroutine
        self._loop = loop

    def __await__(self) -> Any:
        coroutine = self._coroutine
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                yielded = coroutine.throw(error) if error is not None else coroutine.send(value)
            except StopIteration as stop:
                return stop.value
            value = error = None
            try:
                if isinstance(yielded, defer.Deferred):
                    value = yield from _future_of(yielded, self._loop)
                else:
                    value = yield yielded
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as caught:  # the Deferred's failure, or the Task's cancellation
                error = caught


def _future_of(d: defer.Deferred, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
    """An asyncio future for ``d``; cancelling the future cancels ``d``.

    A result stays in ``d``: ``await d`` (Deferred.__iter__) reads it from
    there once resumed. A failure is taken, since it reaches the coroutine
    through the future, so that it is not also logged as unhandled.
    """
    future = loop.create_future()

    def settle(result: Any) -> Any:
        if isinstance(result, failure.Failure):
            if not future.cancelled():
                future.set_exception(result.value)
            return None
        if not future.cancelled():
            future.set_result(result)
        return result

    def cancelled(done: asyncio.Future) -> None:
        if done.cancelled():
            d.cancel()

    d.addBoth(settle)
    future.add_done_callback(cancelled)
    return future


class _CoroutineDriver:
    """Steps a coroutine, waiting on whatever it yields.

    ``await deferred`` yields the Deferred; awaiting an asyncio future yields
    the future; ``asyncio.sleep(0)`` yields None (a plain scheduling point).

    Every step runs in a copy of the ``contextvars`` context current when it
    was started, as an asyncio Task's does: the coroutine sees what its
    starter had set, and what it sets stays its own.
    """

    __slots__ = ("coroutine", "context", "deferred", "_waiting")

    def __init__(self, coroutine: Coroutine) -> None:
        self.coroutine = coroutine
        self.context = contextvars.copy_context()
        self.deferred: defer.Deferred = defer.Deferred(self._cancel)
        self._waiting: defer.Deferred | None = None
        self._step(None, None)

    def _cancel(self, _: defer.Deferred) -> None:
        waiting = self._waiting
        if waiting is not None:
            waiting.cancel()
        else:
            self.coroutine.close()

    def _step(self, value: Any, error: failure.Failure | None) -> None:
        coroutine = self.coroutine
        run_in_context = self.context.run
        while True:
            try:
                if error is not None:
                    yielded = run_in_context(error.throwExceptionIntoGenerator, coroutine)
                else:
                    yielded = run_in_context(coroutine.send, value)
            except StopIteration as stop:
                self._waiting = None
                if not self.deferred.called:  # cancelled, then caught and went on
                    self.deferred.callback(stop.value)
                return
            except BaseException:
                self._waiting = None
                if not self.deferred.called:
                    self.deferred.errback(failure.Failure())
                elif not isinstance(sys.exc_info()[1], defer.CancelledError):
                    log.failure("coroutine failed after it was cancelled")
                return
            error = None
            if isinstance(yielded, defer.Deferred):
                waiting = yielded
            elif asyncio.isfuture(yielded):
                waiting = defer.Deferred.fromFuture(yielded)
            elif yielded is None:
                # asyncio's bare yield (sleep(0)): resume on the next reactor turn
                from twisted.internet import reactor

                waiting = defer.Deferred()
                reactor.callLater(0, waiting.callback, None)
            else:
                value = None
                error = failure.Failure(
                    TypeError(f"cannot await {yielded!r} from a cyclone coroutine")
                )
                continue
            # A Deferred that already fired is consumed in this loop, not by
            # recursion, so long chains of ready Deferreds use no stack.
            outcome: list = []
            waiting.addBoth(self._on_outcome, outcome)
            if outcome:
                result = outcome[0]
                if isinstance(result, failure.Failure):
                    value, error = None, result
                else:
                    value = result
                continue
            outcome.append(_LATER)
            self._waiting = waiting
            return

    def _on_outcome(self, result: Any, outcome: list) -> None:
        if not outcome:  # fired while _step is still looping: hand it back
            outcome.append(result)
            return None
        self._waiting = None
        if isinstance(result, failure.Failure):
            self._step(None, result)
        else:
            self._step(result, None)
        return None


_LATER = object()
