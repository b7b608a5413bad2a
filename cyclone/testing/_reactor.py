"""Blocking on Deferreds from test code, under trial or under pytest-twisted.

Twisted has one reactor per process, and the two ways tests run differ in
where it runs:

* plain ``trial`` (or pytest without pytest-twisted): the reactor is stopped
  between tests; trial starts it (``reactor.run()``) only while it waits for a
  Deferred a test returned, and crashes it when that fires.
* pytest with pytest-twisted: the reactor runs for the whole session in a
  greenlet of the main thread. Test code runs in the main greenlet and waits
  with ``pytest_twisted.blockon``, which switches to the reactor greenlet until
  the Deferred fires. Plain pytest-twisted test functions run *inside* the
  reactor greenlet, where nothing may block.

``wait_for(d)`` picks the right way: ``blockon`` in the first case, running
the reactor until ``d`` fires (trial's own technique) in the second, and it
refuses when called from inside the running reactor, where blocking would
deadlock. ``can_block()`` tells callers in advance, so a function can return
a Deferred there instead.

This module also holds the pieces ``AsyncTestCase`` needs to run trial test
cases inside a pytest-twisted session (see ``cyclone.testing.case``).
"""

from __future__ import annotations

import sys
from typing import Any, Iterator, TypeVar

from twisted.internet import defer, task
from twisted.internet.interfaces import IProcessTransport
from twisted.python.failure import Failure
from twisted.trial import util as trial_util

__all__ = ["as_deferred", "can_block", "wait_for", "reactor_greenlet"]

_T = TypeVar("_T")
_MISSING = object()


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def reactor_greenlet() -> Any:
    """The greenlet pytest-twisted runs the reactor in, or None outside pytest-twisted.

    pytest-twisted has no public accessor for it; ``_instances.gr_twisted`` has
    held it since its first release.
    """
    module = sys.modules.get("pytest_twisted")
    if module is None:
        return None
    greenlet = getattr(getattr(module, "_instances", None), "gr_twisted", None)
    if greenlet is None or greenlet.dead:
        return None
    return greenlet


def _in_greenlet(greenlet: Any) -> bool:
    import greenlet as greenlet_module

    return greenlet_module.getcurrent() is greenlet


def can_block() -> bool:
    """True when ``wait_for`` may be called here (not from inside the running reactor)."""
    greenlet = reactor_greenlet()
    if greenlet is not None:
        return not _in_greenlet(greenlet)
    return not _reactor().running


def wait_for(d: Any, timeout: float | None = None) -> Any:
    """Block until ``d`` fires; return its result or raise its failure.

    ``d`` is a Deferred, a coroutine, or an asyncio future or other
    awaitable (made a Deferred with ``cyclone.concurrent.ensure_deferred``).
    ``timeout`` (seconds) cancels ``d`` and raises ``TimeoutError`` when it
    has not fired in time. Raises ``RuntimeError`` inside the running reactor:
    there the caller must ``yield``/``await`` the Deferred instead; and for a
    pending asyncio future whose event loop does not run (any reactor but
    Twisted's asyncio reactor), which could never complete.
    """
    if not can_block():
        raise RuntimeError(
            "cannot block inside the running reactor (in a reactor callback, a gen_test "
            "coroutine, or after a yield/await in an @inlineCallbacks or async def setUp, "
            "test method or tearDown, or in a test method after such a setUp); yield or "
            "await the Deferred instead"
        )
    d = as_deferred(d)
    if timeout is not None:
        d.addTimeout(timeout, _reactor(), onTimeoutCancel=_timeout_error)
    if reactor_greenlet() is not None:
        import pytest_twisted

        return pytest_twisted.blockon(d)
    return _run_reactor_until(d)


def as_deferred(value: Any) -> defer.Deferred[Any]:
    """``value`` (a Deferred, coroutine, asyncio future or other awaitable) as a Deferred.

    A pending asyncio future of an event loop that does not run is refused
    with RuntimeError at once: nothing would ever complete it.
    """
    import asyncio

    from cyclone.concurrent import _asyncio_loop, ensure_deferred

    if isinstance(value, defer.Deferred):
        return value
    if asyncio.isfuture(value):
        if value.done():
            # fromFuture would wait for a callback scheduled on the future's loop.
            if value.cancelled():
                return defer.fail(defer.CancelledError())
            error = value.exception()
            return defer.fail(error) if error is not None else defer.succeed(value.result())
        loop = value.get_loop()
        if loop is not _asyncio_loop() and not loop.is_running():
            raise RuntimeError(
                f"cannot wait for {value!r}: its asyncio event loop does not run, so it would "
                "never complete; run the tests under Twisted's asyncio reactor "
                "(pytest --reactor=asyncio, trial --reactor=asyncio)"
            )
    return ensure_deferred(value)


def _timeout_error(result: Any, timeout: float) -> Failure:
    return Failure(TimeoutError(f"operation did not finish within {timeout:g} s"))


class _ReplacedAttributes:
    """Set attributes on the reactor for a while, restoring what was there.

    trial itself wraps ``crash``/``stop`` in instance attributes during a
    test, so "what was there" may be an instance attribute or nothing.
    """

    def __init__(self, target: Any, **values: Any) -> None:
        self._target = target
        self._values = values
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> None:
        for name, value in self._values.items():
            self._saved[name] = self._target.__dict__.get(name, _MISSING)
            setattr(self._target, name, value)

    def __exit__(self, *exc_info: Any) -> None:
        for name, value in self._saved.items():
            if value is _MISSING:
                self._target.__dict__.pop(name, None)
            else:
                setattr(self._target, name, value)


def _run_reactor_until(d: defer.Deferred[_T]) -> _T:
    """Run the stopped reactor until ``d`` fires, as trial does for a test's Deferred."""
    reactor = _reactor()
    results: list[Any] = []

    def crash(*ignored: Any) -> None:
        # The class method: trial wraps reactor.crash in a warning during tests.
        if reactor.running:
            type(reactor).crash(reactor)

    def collect(result: Any) -> None:
        results.append(result)
        crash()

    d.addBoth(collect)
    if not results:
        # A real stop() (e.g. from SIGINT) would make the reactor unrestartable
        # for the rest of the test run.
        with _ReplacedAttributes(reactor, stop=crash):
            reactor.run()
    if not results:
        raise KeyboardInterrupt("the reactor was stopped while waiting")
    result = results[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result


def wait_in_session(test: Any, d: defer.Deferred[Any]) -> None:
    """trial's ``TestCase._wait`` for a reactor that pytest-twisted already runs.

    ``d`` is the Deferred of setUp/test/tearDown (it only ever calls back).
    Calls to ``reactor.crash``/``reactor.stop`` meanwhile end the wait, as they
    end trial's ``reactor.run()``, instead of stopping the session's reactor.
    """
    import pytest_twisted

    reactor = _reactor()
    finished: defer.Deferred[None] = defer.Deferred()

    def release(*ignored: Any) -> None:
        if not finished.called:
            finished.callback(None)

    d.addBoth(release)
    with _ReplacedAttributes(reactor, crash=release, stop=release):
        pytest_twisted.blockon(finished)
    if not d.called and not getattr(test, "_timedOut", False):
        raise KeyboardInterrupt("the reactor was stopped during the test")


class ReactorSnapshot:
    """The delayed calls and selectables present before a test started."""

    def __init__(self) -> None:
        reactor = _reactor()
        greenlet = reactor_greenlet()
        if greenlet is not None and not greenlet:
            # Not started yet: start it now, so that the readers it adds while
            # starting (signal wakers) are not blamed on the test.
            _turn_reactor()
        self.calls = set(reactor.getDelayedCalls())
        self.selectables = set(reactor.getReaders()) | set(reactor.getWriters())


def _turn_reactor() -> None:
    wait_for(task.deferLater(_reactor(), 0, lambda: None))


class SessionJanitor(trial_util._Janitor):
    """trial's janitor for the reactor of a pytest-twisted session.

    trial's own janitor spins the reactor with ``iterate()`` (re-entrant when
    the reactor greenlet is suspended in the middle of a callback: it re-runs
    queued thread calls), removes every socket in the process and stops the
    thread pool: all of them belong to the whole session here. This one lets
    the reactor turn through its greenlet instead, and reports (and removes)
    only delayed calls and selectables created since the test started.
    """

    def __init__(self, test: Any, result: Any, baseline: ReactorSnapshot) -> None:
        super().__init__(test, result)
        self._baseline = baseline

    def _cleanPending(self) -> list[str]:
        # Two turns let connectionLost and callLater(0) work of the test finish.
        _turn_reactor()
        _turn_reactor()
        leftovers = []
        for call in _reactor().getDelayedCalls():
            if call in self._baseline.calls or not call.active():
                continue
            leftovers.append(str(call))
            call.cancel()
        return leftovers

    def _cleanReactor(self) -> list[str]:
        reactor = _reactor()
        leftovers = []
        for selectable in _new_selectables(reactor, self._baseline.selectables):
            reactor.removeReader(selectable)
            reactor.removeWriter(selectable)
            if IProcessTransport.providedBy(selectable):
                selectable.signalProcess("KILL")
            leftovers.append(repr(selectable))
        return leftovers

    def _cleanThreads(self) -> None:
        """The reactor's thread pool serves the whole session: leave it running."""


def _new_selectables(reactor: Any, known: set[Any]) -> Iterator[Any]:
    current = set(reactor.getReaders()) | set(reactor.getWriters())
    # The reactor's own wakers, which trial's janitor skips as well.
    internal = set(getattr(reactor, "_internalReaders", ())) | {getattr(reactor, "waker", None)}
    for selectable in current - known - internal:
        yield selectable
