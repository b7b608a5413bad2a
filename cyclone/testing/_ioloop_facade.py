"""``self.io_loop`` of cyclone's test cases: the ``IOLoop`` methods Tornado
tests call, mapped onto the Twisted reactor.

Private to ``cyclone.testing``: it is not an event loop of its own, and it
has no ``start``/``stop`` (use the test case's ``stop()``/``wait()``). Timers
it set that are still pending when the test ends are cancelled, as closing
Tornado's test IOLoop drops them.
"""

from __future__ import annotations

import datetime
import functools
from typing import Any, Callable

from twisted.internet import defer, task
from twisted.python import threadable
from twisted.python.failure import Failure

from cyclone.concurrent import ensure_deferred, is_async_result
from cyclone.log import app_log
from cyclone.testing import _reactor

__all__ = ["ReactorIOLoopFacade"]


def _timed_out(result: Any, timeout: float) -> Failure:
    return Failure(TimeoutError(f"Operation timed out after {timeout:g} seconds"))


def _reactor_module() -> Any:
    from twisted.internet import reactor

    return reactor


class ReactorIOLoopFacade:
    """``add_callback``, ``spawn_callback``, ``call_later``, ``call_at``,
    ``add_timeout``, ``remove_timeout``, ``time`` and ``run_sync`` on the
    reactor. ``time()`` is ``reactor.seconds()``."""

    def __init__(self) -> None:
        self._calls: set[Any] = set()

    def time(self) -> float:
        """The reactor's clock, which ``call_at``/``add_timeout`` deadlines use."""
        return _reactor_module().seconds()

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback`` on the reactor's next turn; safe from any thread.

        An awaitable it returns is run, and its failure logged.
        """
        run = functools.partial(self._run, callback, args, kwargs)
        if threadable.isInIOThread():
            self._track(_reactor_module().callLater(0, run))
        else:
            _reactor_module().callFromThread(run)

    spawn_callback = add_callback

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``callback`` after ``delay`` seconds; returns a handle for ``remove_timeout``."""
        return self._track(
            _reactor_module().callLater(max(0.0, delay), self._run, callback, args, kwargs)
        )

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``callback`` at ``when`` (on the ``time()`` clock)."""
        return self.call_later(when - self.time(), callback, *args, **kwargs)

    def add_timeout(
        self, deadline: float | datetime.timedelta, callback: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        """``call_at(deadline)``; a ``timedelta`` is relative to now."""
        if isinstance(deadline, datetime.timedelta):
            return self.call_later(deadline.total_seconds(), callback, *args, **kwargs)
        if isinstance(deadline, (int, float)):
            return self.call_at(deadline, callback, *args, **kwargs)
        raise TypeError(f"Unsupported deadline {deadline!r}")

    def remove_timeout(self, handle: Any) -> None:
        """Cancel a pending ``call_later``/``call_at``/``add_timeout``; a no-op once it ran."""
        if handle.active():
            handle.cancel()
        self._calls.discard(handle)

    def run_sync(self, func: Callable[[], Any], timeout: float | None = None) -> Any:
        """Call ``func`` on the reactor and block until what it returns is done.

        ``func`` may return a value, a Deferred or an awaitable (an ``async
        def`` function or a ``gen.coroutine``). Raises ``TimeoutError``
        after ``timeout`` seconds, and RuntimeError inside the running
        reactor, where nothing can block.
        """
        if not _reactor.can_block():
            raise RuntimeError("run_sync() cannot block inside the running reactor")

        def start() -> defer.Deferred[Any]:
            return ensure_deferred(func())

        d = task.deferLater(_reactor_module(), 0, start)
        if timeout is not None:
            d.addTimeout(timeout, _reactor_module(), onTimeoutCancel=_timed_out)
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
