"""cyclone.gen: Tornado's generator coroutines on Deferreds, alone and in handlers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime
import http.client
import logging
import subprocess
import sys
import textwrap

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task, threads

import cyclone.web as web
from cyclone import gen
from cyclone.concurrent import ensure_deferred

from .conftest import parse_responses, raw_exchange

inline = pytest_twisted.inlineCallbacks


def results(d: defer.Deferred) -> list:
    out: list = []
    d.addBoth(out.append)
    return out


def later(value, delay=0.0):
    """A Deferred that fires with ``value`` on a later reactor turn."""
    return task.deferLater(reactor, delay, lambda: value)


@pytest.fixture
def clock(monkeypatch):
    """Replace the reactor's clock in cyclone.gen by one the test advances."""
    fake = task.Clock()
    monkeypatch.setattr(gen, "_reactor", lambda: fake)
    return fake


# -- coroutine ----------------------------------------------------------------------------


def test_generator_yields_deferreds_and_returns():
    pending = defer.Deferred()

    @gen.coroutine
    def work(x):
        a = yield defer.succeed(x)
        b = yield pending
        return a + b

    assert gen.is_coroutine_function(work)
    out = results(work(1))
    assert out == []
    pending.callback(2)
    assert out == [3]


def test_body_runs_until_the_first_yield_at_call_time():
    seen = []

    @gen.coroutine
    def work():
        seen.append("started")
        yield defer.Deferred()

    work()
    assert seen == ["started"]


def test_return_exception_sets_the_result():
    @gen.coroutine
    def old_style():
        yield defer.succeed(None)
        raise gen.Return("old")

    @gen.coroutine
    def no_value():
        yield defer.succeed(None)
        raise gen.Return()

    assert results(old_style()) == ["old"]
    assert results(no_value()) == [None]
    assert gen.Return(5).value == 5 and gen.Return(5).args == (5,)


def test_plain_and_async_functions():
    @gen.coroutine
    def plain(x):
        return x * 2

    @gen.coroutine
    def plain_raises():
        raise KeyError("k")

    @gen.coroutine
    def plain_return():
        raise gen.Return("r")

    @gen.coroutine
    async def native(x):
        return await defer.succeed(x) + 1

    @gen.coroutine
    def returns_deferred():
        return defer.succeed("chained")

    assert results(plain(4)) == [8]
    out = results(plain_raises())
    assert out[0].check(KeyError)
    assert results(plain_return()) == ["r"]
    assert results(native(1)) == [2]
    assert results(returns_deferred()) == ["chained"]
    assert not gen.is_coroutine_function(lambda: None)

    async def undecorated():
        pass

    assert not gen.is_coroutine_function(undecorated)


def test_nested_coroutines():
    pending = defer.Deferred()

    @gen.coroutine
    def inner(x):
        y = yield pending
        raise gen.Return(x + y)

    @gen.coroutine
    def outer():
        first = yield inner(1)
        second = yield inner(10)  # pending has fired: ready at once
        return [first, second]

    out = results(outer())
    pending.callback(100)
    assert out == [[101, 110]]


def test_exception_is_raised_at_the_yield_and_can_be_caught():
    pending = defer.Deferred()

    @gen.coroutine
    def work():
        caught = []
        try:
            yield defer.fail(ValueError("ready"))
        except ValueError as exc:
            caught.append(str(exc))
        try:
            yield pending
        except KeyError as exc:
            caught.append(exc.args[0])
        return caught

    out = results(work())
    pending.errback(KeyError("later"))
    assert out == [["ready", "later"]]


def test_exception_escaping_fails_the_deferred_with_its_traceback():
    pending = defer.Deferred()

    @gen.coroutine
    def work():
        yield pending
        raise ZeroDivisionError("escaped")

    out = results(work())
    pending.callback(None)
    assert out[0].check(ZeroDivisionError)
    assert "in work" in out[0].getTraceback()


@inline
def test_exception_escaping_across_a_reactor_turn():
    @gen.coroutine
    def work():
        yield later(None)
        raise ZeroDivisionError("escaped")

    with pytest.raises(ZeroDivisionError, match="escaped"):
        yield work()


def test_ten_thousand_ready_yields_use_no_stack():
    @gen.coroutine
    def many():
        total = 0
        for _ in range(10_000):
            total += yield defer.succeed(1)
        for _ in range(10_000):
            total += yield gen.maybe_future(1)
        for _ in range(1000):
            total += sum((yield [defer.succeed(1), defer.succeed(1)]))
        return total

    assert results(many()) == [22_000]


def test_ten_thousand_ready_nested_coroutines():
    @gen.coroutine
    def one():
        yield defer.succeed(None)
        return 1

    @gen.coroutine
    def many():
        total = 0
        for _ in range(10_000):
            total += yield one()
        return total

    assert results(many()) == [10_000]


def test_yielding_an_unsupported_object_raises_bad_yield_error_there():
    @gen.coroutine
    def work():
        try:
            yield object()
        except gen.BadYieldError as exc:
            caught = str(exc)
        try:
            yield [defer.succeed(1), "not yieldable"]
        except gen.BadYieldError:
            return caught
        return "list was accepted"

    out = results(work())
    assert out[0].startswith("yielded unknown object <object")

    @gen.coroutine
    def uncaught():
        yield 42

    out = results(uncaught())
    assert out[0].check(gen.BadYieldError)


def test_cancelling_cancels_what_the_generator_waits_on():
    cancelled = []
    pending = defer.Deferred(lambda d: cancelled.append(d))

    @gen.coroutine
    def work():
        yield pending

    d = work()
    out = results(d)
    d.cancel()
    assert cancelled == [pending]
    assert out[0].check(defer.CancelledError)


def test_cancelled_generator_may_catch_and_return():
    @gen.coroutine
    def work():
        try:
            yield defer.Deferred()
        except defer.CancelledError:
            return "cleaned up"

    d = work()
    out = results(d)
    d.cancel()
    assert out == ["cleaned up"]


def test_cancelled_generator_that_goes_on_waiting_has_its_result_dropped(caplog):
    resume = defer.Deferred()

    @gen.coroutine
    def work():
        try:
            yield defer.Deferred()
        except defer.CancelledError:
            pass
        value = yield resume
        if value == "fail":
            raise RuntimeError("after cancel")
        return value

    d = work()
    out = results(d)
    d.cancel()
    assert out[0].check(defer.CancelledError)
    with caplog.at_level(logging.ERROR, logger="cyclone.application"):
        resume.callback("fail")  # no AlreadyCalledError: logged instead
    assert "after its Deferred was cancelled" in caplog.text
    assert "RuntimeError: after cancel" in caplog.text


@inline
def test_cancelling_a_sleep_inside_a_coroutine():
    @gen.coroutine
    def work():
        yield gen.sleep(30)

    before = len(reactor.getDelayedCalls())
    d = work()
    assert len(reactor.getDelayedCalls()) == before + 1
    d.cancel()
    assert len(reactor.getDelayedCalls()) == before
    with pytest.raises(defer.CancelledError):
        yield d


def test_return_of_a_deferred_from_a_generator_is_waited_on():
    pending = defer.Deferred()

    @gen.coroutine
    def work():
        yield defer.succeed(None)
        return pending

    d = work()
    out = results(d)
    assert out == []
    pending.callback("late")
    assert out == ["late"]


def test_contextvars_are_kept_per_coroutine():
    var: contextvars.ContextVar = contextvars.ContextVar("var", default="outside")
    pending = defer.Deferred()

    @gen.coroutine
    def work():
        var.set("inside")
        yield pending
        return var.get()

    out = results(work())
    assert var.get() == "outside"
    pending.callback(None)  # resumed from a callback: still its own context
    assert out == ["inside"]


# -- what a generator may yield -------------------------------------------------------------


@inline
def test_yield_list_and_dict():
    @gen.coroutine
    def helper(x):
        yield later(None)
        return x

    async def native():
        return await later(2)

    @gen.coroutine
    def work():
        as_list = yield [later(0), helper(1), native(), defer.succeed(3)]
        as_dict = yield {"x": helper("x"), "y": defer.succeed("y"), "none": None}
        nested = yield [[], {}, [defer.succeed("n")]]
        return as_list, as_dict, nested

    as_list, as_dict, nested = yield work()
    assert as_list == [0, 1, 2, 3]
    assert as_dict == {"x": "x", "y": "y", "none": None}
    assert nested == [[], {}, ["n"]]


@inline
def test_yield_moment_and_none_resume_on_a_later_turn():
    order = []

    @gen.coroutine
    def work(name):
        order.append(name + "1")
        yield gen.moment
        order.append(name + "2")
        yield None
        order.append(name + "3")

    d1, d2 = work("a"), work("b")
    assert order == ["a1", "b1"]
    yield gen.multi([d1, d2])
    assert order == ["a1", "b1", "a2", "b2", "a3", "b3"]


@inline
def test_await_moment_in_a_native_coroutine():
    steps = []

    async def native():
        steps.append(1)
        await gen.moment
        steps.append(2)

    d = ensure_deferred(native())
    assert steps == [1]
    yield d
    assert steps == [1, 2]
    assert repr(gen.moment) == "cyclone.gen.moment"


@inline
def test_yield_concurrent_futures_future():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:

        @gen.coroutine
        def work():
            ok = yield pool.submit(lambda: "from a thread")
            try:
                yield pool.submit(lambda: 1 / 0)
            except ZeroDivisionError:
                return ok

        assert (yield work()) == "from a thread"
        done = concurrent.futures.Future()
        done.set_result("ready")
        assert results(gen.convert_yielded(done)) == ["ready"]


def test_convert_yielded_is_extensible():
    class Token:
        def __init__(self, value):
            self.value = value

    @gen.convert_yielded.register(Token)
    def _(token):
        return defer.succeed(token.value * 2)

    @gen.coroutine
    def work():
        one = yield Token(2)
        many = yield [Token(1), Token(3)]
        return one, many

    assert results(work()) == [(4, [2, 6])]
    d = defer.Deferred()
    assert gen.convert_yielded(d) is d
    with pytest.raises(gen.BadYieldError):
        gen.convert_yielded(3.5)


def test_maybe_future():
    d = defer.Deferred()
    assert gen.maybe_future(d) is d
    assert results(gen.maybe_future(7)) == [7]
    assert results(gen.maybe_future(None)) == [None]

    async def native():
        return "ran"

    assert results(gen.maybe_future(native())) == ["ran"]


# -- sleep ---------------------------------------------------------------------------------


def test_sleep_fires_after_the_delay(clock):
    d = gen.sleep(0.5)
    out = results(d)
    clock.advance(0.4)
    assert out == []
    clock.advance(0.1)
    assert out == [None]


@inline
def test_sleep_on_the_real_reactor():
    start = reactor.seconds()
    assert (yield gen.sleep(0.02)) is None
    assert reactor.seconds() - start >= 0.015


# -- multi ---------------------------------------------------------------------------------


def test_multi_list_and_dict_keep_their_shape():
    a = defer.Deferred()
    out = results(gen.multi([a, defer.succeed(2)]))
    assert out == []
    a.callback(1)
    assert out == [[1, 2]]
    assert results(gen.multi({"b": defer.succeed("B"), "a": defer.succeed("A")})) == [{"b": "B", "a": "A"}]
    assert results(gen.multi([])) == [[]]
    assert results(gen.multi({})) == [{}]
    assert gen.multi_future is gen.multi


def test_multi_with_a_deferred_listed_twice():
    a = defer.Deferred()
    out = results(gen.multi([a, a, defer.succeed(3)]))
    a.callback("same")
    assert out == [["same", "same", 3]]
    # its success stays in it: it can still be yielded
    assert results(a) == ["same"]


def test_multi_fails_with_the_first_error_and_logs_the_others(caplog):
    a, b, c = defer.Deferred(), defer.Deferred(), defer.Deferred()
    with caplog.at_level(logging.ERROR, logger="cyclone.application"):
        out = results(gen.multi([a, b, c]))
        c.errback(KeyError("third"))
        b.errback(ValueError("second"))
        assert out == []  # waits for every child, as Tornado's does
        a.callback("ok")
    assert out[0].check(ValueError)  # first in list order
    records = [r for r in caplog.records if r.name == "cyclone.application"]
    assert [r.getMessage() for r in records] == ["Multiple exceptions in yield list"]
    assert records[0].exc_info[0] is KeyError


def test_multi_quiet_exceptions_are_not_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="cyclone.application"):
        out = results(gen.multi(
            [defer.fail(ValueError("a")), defer.fail(KeyError("b")), defer.fail(KeyError("c"))],
            quiet_exceptions=KeyError,
        ))
        out2 = results(gen.multi(
            {"x": defer.fail(ValueError("x")), "y": defer.fail(OSError("y"))},
            quiet_exceptions=(KeyError, OSError),
        ))
    assert out[0].check(ValueError) and out2[0].check(ValueError)
    assert not [r for r in caplog.records if r.name == "cyclone.application"]


def test_cancelling_multi_cancels_the_unfinished_children(caplog):
    cancelled = []
    a = defer.Deferred(lambda d: cancelled.append("a"))
    b = defer.Deferred(lambda d: cancelled.append("b"))
    d = gen.multi([defer.succeed(0), a, b])
    out = results(d)
    with caplog.at_level(logging.ERROR, logger="cyclone.application"):
        d.cancel()
    assert cancelled == ["a", "b"]
    assert out[0].check(defer.CancelledError)
    assert not caplog.records  # the children's CancelledErrors were expected


# -- with_timeout --------------------------------------------------------------------------


@inline
def test_with_timeout_fires():
    pending = defer.Deferred()

    @gen.coroutine
    def work():
        try:
            yield gen.with_timeout(0.01, pending)
        except gen.TimeoutError:
            return "timed out"

    assert (yield work()) == "timed out"
    assert not pending.called  # the wrapped Deferred is not cancelled
    assert gen.TimeoutError is TimeoutError is asyncio.TimeoutError


def test_with_timeout_does_not_fire_when_the_result_comes_first(clock):
    pending = defer.Deferred()
    out = results(gen.with_timeout(datetime.timedelta(seconds=5), pending))
    clock.advance(4)
    pending.callback("in time")
    assert out == ["in time"]
    assert clock.getDelayedCalls() == []  # the timer is gone
    clock.advance(10)
    assert out == ["in time"]


def test_with_timeout_of_a_fired_deferred_schedules_nothing(clock):
    assert results(gen.with_timeout(1, defer.succeed(1))) == [1]
    out = results(gen.with_timeout(1, defer.fail(KeyError("k"))))
    assert out[0].check(KeyError)
    assert clock.getDelayedCalls() == []


def test_with_timeout_lets_the_wrapped_deferred_be_waited_on_again(clock):
    pending = defer.Deferred()
    first = results(gen.with_timeout(1, pending))
    clock.advance(1)
    assert first[0].check(gen.TimeoutError)
    second = results(gen.with_timeout(1, pending))
    pending.callback("finally")
    assert second == ["finally"]


def test_with_timeout_logs_a_late_failure_unless_quiet(clock, caplog):
    loud, quiet, cancelled = defer.Deferred(), defer.Deferred(), defer.Deferred()
    with caplog.at_level(logging.ERROR, logger="cyclone.application"):
        results(gen.with_timeout(1, loud))
        results(gen.with_timeout(1, quiet, quiet_exceptions=(KeyError,)))
        results(gen.with_timeout(1, cancelled))
        clock.advance(1)
        loud.errback(ValueError("late"))
        quiet.errback(KeyError("late"))
        cancelled.cancel()
    messages = [r for r in caplog.records if r.name == "cyclone.application"]
    assert len(messages) == 1 and "after timeout" in messages[0].getMessage()
    assert messages[0].exc_info[0] is ValueError


def test_cancelling_with_timeout_cancels_the_wrapped_one(clock):
    pending = defer.Deferred()
    d = gen.with_timeout(10, pending)
    out = results(d)
    d.cancel()
    assert pending.called and out[0].check(defer.CancelledError)
    assert clock.getDelayedCalls() == []


def test_with_timeout_message_string_or_lazy_function(clock):
    calls = []

    def lazy():
        calls.append(1)
        return "lazy"

    as_text = results(gen.with_timeout(1, defer.Deferred(), message="custom"))
    as_function = results(gen.with_timeout(1, defer.Deferred(), message=lazy))
    in_time = results(gen.with_timeout(1, defer.succeed("ok"), message=lazy))
    default = results(gen.with_timeout(1, defer.Deferred()))
    assert calls == [] and in_time == ["ok"]  # called only when the timeout happens
    clock.advance(1)
    assert calls == [1]
    assert [str(out[0].value) for out in (as_text, as_function, default)] == ["custom", "lazy", "Timeout"]
    assert all(isinstance(out[0].value, TimeoutError) for out in (as_text, as_function, default))
    with pytest.raises(TypeError):
        gen.with_timeout(1, defer.Deferred(), (), "positional message")  # keyword-only, as Tornado


def test_with_timeout_reads_a_clock_time_as_a_deadline(monkeypatch):
    fake = task.Clock()
    fake.advance(1_700_000_000.0)  # a time.time()-like clock, as the reactor's
    monkeypatch.setattr(gen, "_reactor", lambda: fake)
    out = results(gen.with_timeout(fake.seconds() + 5, defer.Deferred()))
    fake.advance(4.9)
    assert out == []
    fake.advance(0.2)
    assert out[0].check(gen.TimeoutError)
    past = results(gen.with_timeout(fake.seconds() - 1, defer.Deferred()))
    fake.advance(0)
    assert past[0].check(gen.TimeoutError)


@inline
def test_with_timeout_of_a_concurrent_future():
    from cyclone.ioloop import IOLoop

    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        import time

        slow = executor.submit(time.sleep, 0.3)
        with pytest.raises(gen.TimeoutError):
            yield gen.with_timeout(0.01, slow)
        # an IOLoop.time() deadline, as Tornado code writes it: already passed
        slow = executor.submit(time.sleep, 0.3)
        with pytest.raises(gen.TimeoutError):
            yield gen.with_timeout(IOLoop.current().time(), slow)
        done = executor.submit(lambda: "done")
        done.result()
        assert (yield gen.with_timeout(datetime.timedelta(seconds=3600), done)) == "done"
        quick = executor.submit(lambda: "quick")
        assert (yield gen.with_timeout(10, quick)) == "quick"


@inline
def test_multi_is_tornados_other_name():
    assert gen.Multi is gen.multi and "Multi" in gen.__all__
    assert (yield gen.Multi([defer.succeed(1), later(2)])) == [1, 2]
    assert (yield gen.Multi({"a": later("x")})) == {"a": "x"}


@inline
def test_yielded_native_coroutines_see_the_generators_context_variables():
    var: contextvars.ContextVar = contextvars.ContextVar("var", default="missing")

    async def inner():
        before = var.get()
        await later(None)
        after = var.get()
        var.set("set by inner")  # its own: the generator does not see it
        return before, after

    @gen.coroutine
    def root(value):
        var.set(value)
        seen = yield inner()
        listed = yield [inner(), inner()]
        return seen, listed, var.get()

    results_ = yield gen.multi([root(1), root(2)])
    assert results_ == [((1, 1), [(1, 1), (1, 1)], 1), ((2, 2), [(2, 2), (2, 2)], 2)]
    assert var.get() == "missing"


# -- WaitIterator --------------------------------------------------------------------------


def test_wait_iterator_in_completion_order():
    a, b, c = defer.Deferred(), defer.Deferred(), defer.Deferred()
    seen = []

    @gen.coroutine
    def work():
        waiter = gen.WaitIterator(a, b, c)
        while not waiter.done():
            try:
                result = yield waiter.next()
            except KeyError as exc:
                seen.append(("error", exc.args[0], waiter.current_index))
            else:
                seen.append((result, waiter.current_index, waiter.current_future))
        assert waiter.current_index is None
        return len(seen)

    out = results(work())
    b.callback("B")
    c.errback(KeyError("C"))
    a.callback("A")
    assert out == [3]
    assert seen == [("B", 1, b), ("error", "C", 2), ("A", 0, a)]


def test_wait_iterator_keywords_and_misuse():
    waiter = gen.WaitIterator(x=defer.succeed(1), y=defer.succeed(2))
    first = results(waiter.next())
    assert (first, waiter.current_index) == ([1], "x")
    assert results(waiter.next()) == [2] and waiter.current_index == "y"
    assert waiter.done()
    with pytest.raises(RuntimeError):
        waiter.next()
    with pytest.raises(ValueError):
        gen.WaitIterator(defer.succeed(1), x=defer.succeed(2))
    assert gen.WaitIterator().done()


@inline
def test_wait_iterator_async_for():
    a, b = later("slow", 0.02), later("fast", 0.0)

    async def collect():
        waiter = gen.WaitIterator(a, b)
        got = []
        async for result in waiter:
            got.append((result, waiter.current_index))
        return got

    assert (yield ensure_deferred(collect())) == [("fast", 1), ("slow", 0)]


# -- asyncio -------------------------------------------------------------------------------


ASYNCIO_SCRIPT = textwrap.dedent(
    """
    import asyncio
    from twisted.internet import asyncioreactor
    asyncioreactor.install()
    from twisted.internet import reactor
    from cyclone import gen

    async def native():
        await asyncio.sleep(0.01)
        return "coroutine"

    @gen.coroutine
    def work():
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop.call_later(0.01, future.set_result, "future")
        a = yield future
        b = yield native()
        c = yield {"sleep": asyncio.sleep(0, "sleep"), "d": gen.sleep(0.01)}
        try:
            yield gen.with_timeout(0.01, asyncio.Event().wait())
        except gen.TimeoutError:
            d = "timeout"
        return [a, b, c, d]

    def main():
        work().addBoth(print).addBoth(lambda _: reactor.stop())

    reactor.callLater(0, main)  # inside the running asyncio loop
    reactor.callLater(20, reactor.stop)
    reactor.run()
    """
)


def test_yield_asyncio_futures_and_coroutines_under_the_asyncio_reactor(tmp_path):
    script = tmp_path / "gen_asyncio.py"
    script.write_text(ASYNCIO_SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    expected = "['future', 'coroutine', {'sleep': 'sleep', 'd': None}, 'timeout']"
    assert out.stdout.strip() == expected, out.stdout + out.stderr


# -- handlers over a real socket -----------------------------------------------------------


flush_events: list = []


class SleepThenDeferred(web.RequestHandler):
    @gen.coroutine
    def get(self):
        yield gen.sleep(0.01)
        value = yield later("deferred", 0.01)
        self.write(f"slept then {value}")


class FlushInBetween(web.RequestHandler):
    @gen.coroutine
    def get(self):
        self.write(b"a" * 1_000_000)
        yield self.flush()  # fires when the client has taken the first part
        flush_events.append("flushed")
        self.write(b"end")


class ForbiddenAfterYield(web.RequestHandler):
    @gen.coroutine
    def get(self):
        yield later(None)
        raise web.HTTPError(403)


class OldStyleReturn(web.RequestHandler):
    @gen.coroutine
    def prepare(self):
        self.prefix = yield later("prepared")

    @gen.coroutine
    def helper(self):
        yield later(None)
        raise gen.Return("helper")

    @gen.coroutine
    def get(self):
        value = yield self.helper()
        self.write(f"{self.prefix} {value}")
        raise gen.Return()


class Parallel(web.RequestHandler):
    @gen.coroutine
    def get(self):
        parts = yield {"a": later("A", 0.01), "b": gen.with_timeout(5, later("B"))}
        self.write(parts)


class Fails(web.RequestHandler):
    @gen.coroutine
    def get(self):
        yield gen.moment
        raise ZeroDivisionError("handler boom")


@pytest.fixture
def port(listen):
    flush_events.clear()
    app = web.Application([
        (r"/sleep", SleepThenDeferred),
        (r"/flush", FlushInBetween),
        (r"/forbidden", ForbiddenAfterYield),
        (r"/return", OldStyleReturn),
        (r"/parallel", Parallel),
        (r"/fails", Fails),
    ])
    return listen(app)


def fetch(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get(port: int, path: str) -> defer.Deferred:
    return threads.deferToThread(fetch, port, path)


def test_decorated_methods_are_coroutine_functions():
    assert gen.is_coroutine_function(OldStyleReturn.get)
    assert gen.is_coroutine_function(OldStyleReturn.__new__(OldStyleReturn).helper)
    assert OldStyleReturn.get.__name__ == "get"


@inline
def test_handler_yields_sleep_then_a_deferred(port):
    assert (yield get(port, "/sleep")) == (200, b"slept then deferred")


@inline
def test_handler_flushes_between_writes(port):
    status, body = yield get(port, "/flush")
    assert status == 200
    assert body == b"a" * 1_000_000 + b"end"
    assert flush_events == ["flushed"]


@inline
def test_handler_http_error_after_a_yield(port):
    status, _ = yield get(port, "/forbidden")
    assert status == 403


@inline
def test_handler_raises_return(port):
    assert (yield get(port, "/return")) == (200, b"prepared helper")


@inline
def test_handler_yields_a_dict(port):
    status, body = yield get(port, "/parallel")
    assert (status, body) == (200, b'{"a": "A", "b": "B"}')


@inline
def test_handler_exception_after_a_yield_is_500(port, caplog):
    with caplog.at_level(logging.ERROR, logger="cyclone.application"):
        request = b"GET /fails HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        data = yield threads.deferToThread(raw_exchange, port, request)
    [(status, _, body)] = parse_responses(data)
    assert status == 500 and b"handler boom" not in body
    assert "handler boom" in caplog.text
