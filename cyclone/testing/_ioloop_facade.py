"""``self.io_loop`` of cyclone's test cases: ``cyclone.ioloop.IOLoop``
with a test's lifetime.

Private to ``cyclone.testing``: it has no ``start``/``stop`` (use the test
case's ``stop()``/``wait()``). Timers it set that are still pending when the
test ends are cancelled, as closing Tornado's test IOLoop drops them.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from twisted.internet import defer, task
from twisted.python import threadable
from twisted.python.failure import Failure

from cyclone.concurrent import ensure_deferred, is_async_result
from cyclone.ioloop import IOLoop
from cyclone.log import app_log
from cyclone.testing import _reactor

__all__ = ["ReactorIOLoopFacade"]


def _timed_out(result: Any, timeout: float) -> Failure:
    return Failure(TimeoutError(f"Operation timed out after {timeout:g} seconds"))


class ReactorIOLoopFacade(IOLoop):
    """``cyclone.ioloop.IOLoop`` for one test: the timers and callbacks it
    set are cancelled when the test ends (``close()``), an exception in one
    of them fails the test instead of being only logged, ``run_sync`` blocks
    only where the harness can, and ``start``/``stop`` are refused (use the
    test case's ``stop()``/``wait()``)."""

    def __init__(self) -> None:
        super().__init__()
        self._calls: set[Any] = set()

    def start(self) -> None:
        raise RuntimeError("a test's io_loop cannot start: use self.wait()")

    def stop(self) -> None:
        raise RuntimeError("a test's io_loop cannot stop: use self.stop()")

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback`` on the reactor's next turn; safe from any thread.

        An awaitable it returns is run, and its failure logged.
        """
        run = functools.partial(self._run, callback, args, kwargs)
        if threadable.isInIOThread():
            self._track(self.reactor.callLater(0, run))
        else:
            self.reactor.callFromThread(run)

    add_callback_from_signal = add_callback
    spawn_callback = add_callback

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``callback`` after ``delay`` seconds; returns a handle for ``remove_timeout``."""
        return self._track(self.reactor.callLater(max(0.0, delay), self._run, callback, args, kwargs))

    def remove_timeout(self, handle: Any) -> None:
        """Cancel a pending ``call_later``/``call_at``/``add_timeout``; a no-op once it ran."""
        super().remove_timeout(handle)
        self._calls.discard(handle)

    def run_sync(self, func: Callable[[], Any], timeout: float | None = None) -> Any:
        """Call ``func`` on the reactor and block until what it returns is done.

        ``func`` may return a value, a Deferred or an awaitable (an ``async
        def`` function or a ``gen.coroutine``), or an asyncio future under
        Twisted's asyncio reactor. Raises ``TimeoutError`` after ``timeout``
        seconds (default: ``$ASYNC_TEST_TIMEOUT`` or 5, so that nothing hangs
        a test run), and RuntimeError inside the running reactor, where
        nothing can block.
        """
        if not _reactor.can_block():
            raise RuntimeError("run_sync() cannot block inside the running reactor")

        if timeout is None:
            from cyclone.testing.case import get_async_test_timeout

            timeout = get_async_test_timeout()

        def start() -> defer.Deferred[Any]:
            return _reactor.as_deferred(func())

        d = task.deferLater(self.reactor, 0, start)
        d.addTimeout(timeout, self.reactor, onTimeoutCancel=_timed_out)
        return _reactor.wait_for(d)

    def close(self) -> None:
        """Cancel the timers still pending (the test is over)."""
        calls, self._calls = self._calls, set()
        for call in calls:
            if call.active():
                call.cancel()

    def _track(self, call: Any) -> Any:
        self._calls.add(call)
        return call

    def _run(self, callback: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._calls = {call for call in self._calls if call.active()}
        result = callback(*args, **kwargs)
        if is_async_result(result):
            ensure_deferred(result).addErrback(
                lambda f: app_log.error("Exception in callback %r", callback,
                                        exc_info=(f.type, f.value, f.getTracebackObject()))
            )
