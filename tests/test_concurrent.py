"""cyclone.concurrent: one driver for Deferreds, coroutines and asyncio awaitables."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from twisted.internet import defer

from cyclone.concurrent import ensure_deferred, is_async_result


def results(d: defer.Deferred) -> list:
    out: list = []
    d.addBoth(out.append)
    return out


def test_plain_values_and_deferreds():
    assert results(ensure_deferred(5)) == [5]
    d = defer.Deferred()
    assert ensure_deferred(d) is d
    assert is_async_result(d) and not is_async_result(5)


def test_coroutine_awaiting_fired_and_pending_deferreds():
    pending = defer.Deferred()

    async def work():
        a = await defer.succeed("a")
        b = await pending
        try:
            await defer.fail(KeyError("c"))
        except KeyError as exc:
            c = exc.args[0]
        return a + b + c

    coro = work()
    assert is_async_result(coro)
    out = results(ensure_deferred(coro))
    assert out == []
    pending.callback("b")
    assert out == ["abc"]


def test_coroutine_exception_becomes_errback():
    async def fail():
        await defer.succeed(None)
        raise ValueError("nope")

    out = results(ensure_deferred(fail()))
    assert out[0].check(ValueError) and str(out[0].value) == "nope"


def test_long_chain_of_fired_deferreds_uses_no_stack():
    async def many():
        total = 0
        for i in range(20000):
            total += await defer.succeed(1)
        return total

    assert results(ensure_deferred(many())) == [20000]


def test_awaiting_something_else_is_a_type_error():
    class Weird:
        def __await__(self):
            yield "not a deferred"

    async def bad():
        await Weird()

    out = results(ensure_deferred(bad()))
    assert out[0].check(TypeError)


def test_cancel_cancels_the_awaited_deferred():
    cancelled = []
    pending = defer.Deferred(lambda d: cancelled.append(True))

    async def wait():
        await pending

    d = ensure_deferred(wait())
    out = results(d)
    d.cancel()
    assert cancelled == [True]
    assert out[0].check(defer.CancelledError)


def test_coroutine_that_goes_on_after_cancel_fires_nothing_twice():
    """A coroutine may catch CancelledError and await more: its later result
    is dropped (the Deferred already failed), and nothing is raised or logged
    as an unhandled AlreadyCalledError."""
    from twisted.logger import globalLogPublisher

    first = defer.Deferred()
    second = defer.Deferred()
    steps = []

    async def stubborn():
        try:
            await first
        except defer.CancelledError:
            steps.append("cancelled")
        steps.append(await second)
        return "late"

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        d = ensure_deferred(stubborn())
        out = results(d)
        d.cancel()
        assert out[0].check(defer.CancelledError)
        second.callback("went on")
        assert steps == ["cancelled", "went on"]
        assert len(out) == 1
        # the driver's callback on `second` raised nothing into its chain
        assert results(second) == [None]
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert [e for e in events if e.get("log_failure") is not None] == []


ASYNCIO_APP = textwrap.dedent(
    """
    import asyncio, http.client, sys
    from twisted.internet import asyncioreactor
    asyncioreactor.install()
    from twisted.internet import defer, reactor, threads, task
    import cyclone.web

    class Mixed(cyclone.web.RequestHandler):
        async def get(self):
            await asyncio.sleep(0.01)                       # an asyncio awaitable
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            loop.call_soon(future.set_result, "future")
            a = await future                                 # an asyncio Future
            b = await task.deferLater(reactor, 0.01, lambda: "deferred")  # a Deferred
            self.write(f"{a}+{b}")

    port = reactor.listenTCP(0, cyclone.web.Application([(r"/", Mixed)]), interface="127.0.0.1")

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port.getHost().port, timeout=10)
        conn.request("GET", "/")
        r = conn.getresponse()
        return r.status, r.read()

    def done(result):
        print(result)
        reactor.stop()

    def failed(f):
        print("FAILED", f)
        reactor.stop()

    threads.deferToThread(client).addCallbacks(done, failed)
    reactor.callLater(20, reactor.stop)
    reactor.run()
    """
)


def test_handler_awaits_asyncio_and_deferreds_under_asyncio_reactor(tmp_path):
    script = tmp_path / "asyncio_app.py"
    script.write_text(ASYNCIO_APP)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "(200, b'future+deferred')", out.stdout + out.stderr
