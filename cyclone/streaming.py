"""Long-lived responses: streaming chunks with backpressure, and long polling.

``RequestHandler.write_stream(chunks)`` and ``RequestHandler.cancel_on_close(
awaitable)`` call the functions here.

Streaming. A handler method that *returns* a bare generator is still taken
as an ``@inlineCallbacks`` generator (the original cyclone's way), so a
stream is always asked for by name::

    def get(self):
        return self.write_stream(rows_as_csv())      # a generator of str/bytes

    async def get(self):
        await self.write_stream(ticks())             # an async generator
        self.write("done\\n")                        # finish() follows as usual

Each chunk (str, bytes or dict, as ``write()`` takes) is written and
flushed, and the next one is asked for only once the client has taken it,
so a fast producer never runs ahead of a slow client. When the client goes
away the generator is closed (``close()`` / ``aclose()``: its ``finally``
blocks run, an async generator is cancelled where it waits) and the
Deferred fails with ``StreamClosedError``, which ends the request quietly.

Long polling. A handler waits on a Deferred (or coroutine, or asyncio
future) for as long as it takes: cyclone has no timeout on a response being
made, only on reading requests and on idle connections between them. Wrap
the wait in ``cancel_on_close`` so that it is cancelled when the client goes
away (the ``Deferred.cancel()`` reaches whoever will fire it, who can forget
the waiter); ``timeout=`` cancels it after that many seconds, if the
application wants one::

    async def get(self):
        try:
            messages = await self.cancel_on_close(room.wait_for_messages(cursor), timeout=60)
        except TimeoutError:
            messages = []                            # an empty answer; the client asks again
        self.write({"messages": messages})
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, AsyncIterable, Iterable

from twisted.internet import defer
from twisted.python import failure

from cyclone.concurrent import ensure_deferred
from cyclone.httpserver import StreamClosedError

if TYPE_CHECKING:  # pragma: no cover
    from cyclone.web import RequestHandler

__all__ = ["cancel_on_close", "write_stream"]


def write_stream(handler: "RequestHandler", chunks: Iterable[Any] | AsyncIterable[Any]) -> defer.Deferred:
    """Write and flush each chunk of ``chunks`` (an iterable, generator, async
    iterable or async generator), waiting for the client to take each one;
    the Deferred fires with None after the last. See the module's docstring."""
    if hasattr(chunks, "__aiter__"):
        writing = ensure_deferred(_write_async(handler, chunks))
    elif hasattr(chunks, "__iter__") and not isinstance(chunks, (str, bytes, dict)):
        writing = ensure_deferred(_write_sync(handler, chunks))
    else:
        raise TypeError(f"write_stream() takes an iterable or async iterable of chunks, not {type(chunks).__name__}")
    return cancel_on_close(handler, writing)


async def _write_sync(handler: "RequestHandler", chunks: Iterable[Any]) -> None:
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            handler.write(chunk)
            await handler.flush()  # fails with StreamClosedError once the client is gone
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


async def _write_async(handler: "RequestHandler", chunks: AsyncIterable[Any]) -> None:
    iterator = chunks.__aiter__()
    try:
        async for chunk in iterator:
            handler.write(chunk)
            await handler.flush()
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def cancel_on_close(handler: "RequestHandler", awaitable: Any, timeout: float | None = None) -> defer.Deferred:
    """A Deferred of ``awaitable``'s result, unless the client goes away
    first: then ``awaitable`` is cancelled and the Deferred fails with
    ``StreamClosedError`` (the request ends without an error page or a
    traceback). With ``timeout`` (seconds), ``awaitable`` is cancelled after
    that long and the Deferred fails with ``TimeoutError``."""
    inner = ensure_deferred(awaitable)
    if inner.called:
        return inner
    request = handler.request
    outcome: list[BaseException] = []  # why inner was cancelled, if it was

    def stop(error: BaseException) -> None:
        if not outcome and not inner.called:
            outcome.append(error)
            inner.cancel()

    result: defer.Deferred = defer.Deferred(lambda _: inner.cancel())

    def settle(value: Any) -> None:
        if timer is not None and timer.active():
            timer.cancel()
        if result.called:
            return None
        if outcome:
            if isinstance(value, failure.Failure):
                result.errback(outcome[0])  # the cancellation we caused, told as its reason
                return None
            # the awaitable caught the cancellation and returned anyway
        if isinstance(value, failure.Failure):
            result.errback(value)
        else:
            result.callback(value)
        return None

    timer = None
    if timeout is not None:
        from twisted.internet import reactor

        timer = reactor.callLater(
            timeout, stop, builtins.TimeoutError(f"no result within {timeout} seconds")
        )
    if request._finished or handler._finished:
        stop(StreamClosedError("the client has gone away"))  # already: nothing is waiting for it
    else:
        request.notifyFinish().addCallback(
            lambda reason: stop(StreamClosedError(f"the client has gone away: {reason}"))
            if reason is not None
            else None
        )
    inner.addBoth(settle)
    return result
