"""Tornado's ``IOLoop``, as a thin facade over the Twisted reactor; and the
reactor for code that starts with ``asyncio.run()``.

cyclone runs on Twisted's reactor, not on an IOLoop of its own. Two ways of
starting a Tornado application work unchanged:

* ``IOLoop.current().start()`` after ``app.listen(port)``: ``start()`` is
  ``reactor.run()`` and ``stop()`` is ``reactor.stop()``;
* ``asyncio.run(main())`` where ``main`` calls ``app.listen(port)`` and then
  ``await asyncio.Event().wait()``: ``ensure_reactor()`` (which
  ``Application.listen`` and ``HTTPServer`` call) finds asyncio's loop running
  and no reactor installed, installs Twisted's asyncio reactor on that loop and
  starts it without blocking. When ``asyncio.run`` ends (``main`` returns, or
  Ctrl-C), the reactor is shut down in the loop's last turns: ports close, the
  ``"shutdown"`` triggers run and the reactor's thread pool stops.

``IOLoop`` maps each method onto the reactor (``call_later`` is ``callLater``,
``add_callback`` is ``callFromThread``...) and returns Deferreds where Tornado
returns Futures; it has no file-descriptor handlers (``add_handler``): use
Twisted's ``IReadDescriptor``/``addReader``. The reactor cannot be restarted
once stopped, so ``start()`` and ``run_sync()`` run once per process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import sys
from typing import Any, Callable

from twisted.internet import defer, error
from twisted.python import failure

__all__ = ["IOLoop", "ensure_reactor"]

app_log = logging.getLogger("cyclone.application")


# -- the reactor on a running asyncio loop ------------------------------------------------
#
# Everything below that depends on Twisted's internals is in this section, and
# tests/test_ioloop.py::test_asyncio_reactor_adoption_assumptions checks each
# assumption by name, so a Twisted upgrade that breaks one fails that test.
#
# 1. ``AsyncioSelectorReactor(loop)`` wraps a given loop; ``startRunning()``
#    (public, documented "don't call directly": reactor.run() calls it before
#    its blocking ``loop.run_forever()``) fires the "startup" triggers and
#    marks the reactor running. On a loop that already runs, that is all
#    ``run()`` does besides blocking, so the reactor then serves.
# 2. ``AsyncioSelectorReactor.crash()``, run by the "shutdown" event, is the
#    base ``crash()`` plus ``loop.stop()``. The loop belongs to asyncio.run
#    here, so _LoopReactor.crash skips the ``loop.stop()``: asyncio.run would
#    otherwise fail with "Event loop stopped before Future completed".
# 3. The reactor's loop is its ``_asyncioEventloop`` attribute (no public
#    accessor exists), read to tell whether an installed asyncio reactor
#    runs on the current loop.


def _loop_reactor_class() -> type:
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor
    from twisted.internet.posixbase import PosixReactorBase

    class _LoopReactor(AsyncioSelectorReactor):
        """Twisted's asyncio reactor on a loop that ``asyncio.run`` runs."""

        def run(self, installSignalHandlers: bool = True) -> None:
            raise RuntimeError(
                "the reactor already runs on the loop of asyncio.run(): "
                "await something (e.g. asyncio.Event().wait()) instead of starting it"
            )

        def crash(self) -> None:
            PosixReactorBase.crash(self)  # without stopping a loop it does not own

    return _LoopReactor


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _reactor_loop(reactor: Any) -> Any:
    return getattr(reactor, "_asyncioEventloop", None)


def ensure_reactor() -> Any:
    """The global reactor, ready to serve from the calling context.

    Outside a running asyncio loop this is ``twisted.internet.reactor`` (the
    default one if none was installed). Called while asyncio's loop runs (from
    a coroutine under ``asyncio.run``) with no reactor installed yet, it
    installs Twisted's asyncio reactor on that loop and starts it. Raises
    ``RuntimeError`` if another reactor was installed but is not running, as
    it could not serve while asyncio's loop has the thread.
    """
    loop = _running_loop()
    installed = sys.modules.get("twisted.internet.reactor")
    if installed is not None:
        if loop is None or installed.running:
            return installed
        if _reactor_loop(installed) is loop:
            _start_on_loop(installed, loop)
            return installed
        raise RuntimeError(
            f"{type(installed).__name__} was installed before asyncio.run() started, and it "
            "cannot serve on asyncio's loop: do not import twisted.internet.reactor before "
            "asyncio.run(), or install twisted.internet.asyncioreactor on the loop"
        )
    if loop is None:
        from twisted.internet import reactor

        return reactor
    from twisted.internet.main import installReactor

    reactor = _loop_reactor_class()(loop)
    installReactor(reactor)
    _start_on_loop(reactor, loop)
    return reactor


def _start_on_loop(reactor: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Start ``reactor`` (an asyncio reactor on ``loop``, which runs) without
    blocking, and shut it down when ``asyncio.run`` cancels its tasks."""
    if reactor.running or getattr(reactor, "_cyclone_keeper", None) is not None:
        return
    shut_down = loop.create_future()

    def _done() -> None:
        if not shut_down.done():
            shut_down.set_result(None)

    reactor.addSystemEventTrigger("after", "shutdown", _done)
    # asyncio owns the signals; Twisted's SIGINT handler would fight it
    reactor.startRunning(installSignalHandlers=False)
    # a strong reference: the loop keeps only weak ones to its tasks
    reactor._cyclone_keeper = loop.create_task(_stop_when_cancelled(reactor, shut_down))


async def _stop_when_cancelled(reactor: Any, shut_down: asyncio.Future) -> None:
    """Wait forever; when ``asyncio.run`` cancels every task at its end, stop
    the reactor and wait, inside the loop, until its shutdown has run."""
    try:
        await asyncio.shield(shut_down)
    except asyncio.CancelledError:
        try:
            reactor.stop()
        except error.ReactorNotRunning:
            pass  # stopped already: its shutdown is under way or done
        await shut_down


# -- the IOLoop facade --------------------------------------------------------------------


class IOLoop:
    """Tornado's ``IOLoop`` API on the Twisted reactor (see the module docs).

    There is one, for the one reactor: ``IOLoop.current()``.
    """

    _current: "IOLoop | None" = None

    def __init__(self, reactor: Any = None) -> None:
        self._reactor = reactor

    @property
    def reactor(self) -> Any:
        """The Twisted reactor this facade drives."""
        if self._reactor is None:
            self._reactor = ensure_reactor()
        return self._reactor

    @classmethod
    def current(cls, instance: bool = True) -> "IOLoop":
        """The IOLoop of the reactor (made on first use)."""
        if cls._current is None:
            cls._current = cls()
        loop = cls._current
        if _running_loop() is not None:
            loop._reactor = ensure_reactor()  # under asyncio.run: serve on its loop
        return loop

    instance = current

    # -- running ----------------------------------------------------------------------

    def start(self) -> None:
        """Run the reactor until ``stop()`` (``reactor.run()``)."""
        self.reactor.run()

    def stop(self) -> None:
        """Stop the reactor (at once if running, else as soon as it starts)."""
        reactor = self.reactor
        if reactor.running:
            try:
                reactor.stop()
            except error.ReactorNotRunning:
                pass  # already stopping
        else:
            reactor.callWhenRunning(self.stop)

    def run_sync(self, func: Callable[[], Any], timeout: float | None = None) -> Any:
        """Start the reactor, run ``func`` (a function, coroutine function or
        one returning a Deferred), stop the reactor when its result is ready,
        and return that result or raise its exception.

        ``TimeoutError`` after ``timeout`` seconds. The reactor cannot run
        again afterwards: call it once, as ``main()`` does.
        """
        from cyclone.concurrent import ensure_deferred

        reactor = self.reactor
        if reactor.running:
            raise RuntimeError("run_sync() while the reactor is running")
        outcome: list[Any] = []

        def _run() -> None:
            try:
                d = ensure_deferred(func())
            except Exception:
                d = defer.fail()
            if timeout is not None:
                d.addTimeout(timeout, reactor)
            d.addBoth(_finished)

        def _finished(result: Any) -> None:
            outcome.append(result)
            self.stop()

        reactor.callWhenRunning(_run)
        reactor.run()
        if not outcome:
            raise RuntimeError("the reactor stopped before run_sync's function finished")
        result = outcome[0]
        if isinstance(result, failure.Failure):
            if result.check(defer.TimeoutError):
                raise TimeoutError(f"Operation timed out after {timeout} seconds")
            result.raiseException()
        return result

    # -- time and callbacks --------------------------------------------------------------

    def time(self) -> float:
        """The reactor's clock (``reactor.seconds()``), which ``call_at`` uses."""
        return self.reactor.seconds()

    def add_callback(self, callback: Callable, *args: Any, **kwargs: Any) -> None:
        """Call ``callback`` on the next turn of the reactor; safe from any thread.

        A coroutine (or Deferred) it returns is run; its failure is logged.
        """
        self.reactor.callFromThread(_run_callback, callback, args, kwargs)

    add_callback_from_signal = add_callback
    spawn_callback = add_callback

    def call_later(self, delay: float, callback: Callable, *args: Any, **kwargs: Any) -> Any:
        """Call ``callback`` in ``delay`` seconds; returns a handle for ``remove_timeout``."""
        return self.reactor.callLater(max(0.0, delay), _run_callback, callback, args, kwargs)

    def call_at(self, when: float, callback: Callable, *args: Any, **kwargs: Any) -> Any:
        """Call ``callback`` at ``when`` on the clock of ``time()``."""
        return self.call_later(when - self.time(), callback, *args, **kwargs)

    def add_timeout(
        self, deadline: float | datetime.timedelta, callback: Callable, *args: Any, **kwargs: Any
    ) -> Any:
        """``call_at(deadline)``, or ``call_later`` for a ``timedelta``."""
        if isinstance(deadline, datetime.timedelta):
            return self.call_later(deadline.total_seconds(), callback, *args, **kwargs)
        if isinstance(deadline, (int, float)):
            return self.call_at(deadline, callback, *args, **kwargs)
        raise TypeError(f"unsupported deadline {deadline!r}")

    def remove_timeout(self, timeout: Any) -> None:
        """Cancel a pending ``call_later``/``call_at``/``add_timeout``; a call
        that already ran or was cancelled is ignored."""
        if timeout.active():
            timeout.cancel()

    def add_future(self, future: Any, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(future)`` once ``future`` (a Deferred, or an asyncio
        or concurrent future) is done."""
        if isinstance(future, defer.Deferred):
            future.addBoth(lambda result: self.add_callback(callback, future) or result)
        elif isinstance(future, concurrent.futures.Future):
            future.add_done_callback(lambda f: self.add_callback(callback, f))
        else:
            asyncio.ensure_future(future).add_done_callback(lambda f: self.add_callback(callback, f))

    def run_in_executor(
        self, executor: concurrent.futures.Executor | None, func: Callable, *args: Any
    ) -> defer.Deferred:
        """Run ``func(*args)`` in ``executor`` (None: the reactor's thread pool);
        a Deferred of its result."""
        reactor = self.reactor
        if executor is None:
            from twisted.internet import threads

            return threads.deferToThreadPool(reactor, reactor.getThreadPool(), func, *args)
        d: defer.Deferred = defer.Deferred()
        future = executor.submit(func, *args)

        def _done(f: concurrent.futures.Future) -> None:
            exc = f.exception()
            if exc is not None:
                reactor.callFromThread(d.errback, failure.Failure(exc))
            else:
                reactor.callFromThread(d.callback, f.result())

        future.add_done_callback(_done)
        return d


def _run_callback(callback: Callable, args: tuple, kwargs: dict) -> None:
    from cyclone.concurrent import ensure_deferred, is_async_result

    try:
        result = callback(*args, **kwargs)
    except Exception:
        app_log.error("Exception in callback %r", callback, exc_info=True)
        return
    if result is not None and is_async_result(result):
        ensure_deferred(result).addErrback(_log_failure, callback)


def _log_failure(reason: failure.Failure, callback: Callable) -> None:
    app_log.error(
        "Exception in callback %r",
        callback,
        exc_info=(reason.type, reason.value, reason.getTracebackObject()),
    )

