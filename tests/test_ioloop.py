"""cyclone.ioloop: the asyncio reactor on asyncio.run's loop (in child
processes, as a process has one reactor), and the IOLoop facade (in the test
reactor, and with start/stop/run_sync in child processes)."""

from __future__ import annotations

import concurrent.futures
import datetime
import http.client
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

from cyclone.ioloop import IOLoop

from .conftest import poll_until

inline = pytest_twisted.inlineCallbacks
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# every child kills itself after this many seconds, so a hung child fails a
# test instead of hanging it
PREAMBLE = "import signal; signal.alarm(60)\n"


def start_child(tmp_path, source: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(PREAMBLE + textwrap.dedent(source))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def run_child(tmp_path, source: str) -> subprocess.CompletedProcess:
    proc = start_child(tmp_path, source)
    out, err = proc.communicate(timeout=90)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def read_port(proc: subprocess.Popen) -> int:
    line = proc.stdout.readline()
    assert line.startswith("port "), (line, proc.stderr.read() if not line else "")
    return int(line.split()[1])


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


ASYNCIO_MAIN = """
    import asyncio
    import cyclone.web

    class Main(cyclone.web.RequestHandler):
        async def get(self):
            await asyncio.sleep(0.001)  # an asyncio awaitable: asyncio's loop serves
            self.write("hello from asyncio")

    class Quit(cyclone.web.RequestHandler):
        def get(self):
            self.application.settings["quit"].set()
            self.write("bye")

    async def main():
        quit = asyncio.Event()
        app = cyclone.web.Application([("/", Main), ("/quit", Quit)], quit=quit)
        server = app.listen(0, "127.0.0.1")
        from twisted.internet import reactor, threads
        reactor.addSystemEventTrigger("after", "shutdown", print, "reactor shut down", flush=True)
        # the reactor's thread pool works, and is stopped at the end (no hang at exit)
        assert await threads.deferToThread(lambda: 42).asFuture(asyncio.get_running_loop()) == 42
        print("port", server.getHost().port, type(reactor).__name__, flush=True)
        await quit.wait()

    asyncio.run(main())
    print("exited", flush=True)
"""


def test_asyncio_run_main_serves_then_shuts_the_reactor_down(tmp_path):
    """Tornado's documented main(): asyncio.run(main()), app.listen(), await an
    Event. The app serves; when main returns the reactor shuts down."""
    proc = start_child(tmp_path, ASYNCIO_MAIN)
    try:
        port = read_port(proc)
        assert get(port, "/") == (200, b"hello from asyncio")
        assert get(port, "/quit") == (200, b"bye")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["reactor shut down", "exited"]


def test_asyncio_run_main_stops_on_ctrl_c(tmp_path):
    proc = start_child(tmp_path, ASYNCIO_MAIN)
    try:
        port = read_port(proc)
        assert get(port, "/")[0] == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert "reactor shut down" in out.splitlines()
    assert err.rstrip().endswith("KeyboardInterrupt")  # what asyncio.run does with Ctrl-C


def test_asyncio_reactor_adoption_assumptions(tmp_path):
    """Each assumption cyclone.ioloop makes about Twisted's asyncio reactor
    (see the comment there), checked by name: a Twisted upgrade that breaks
    one fails here with its number."""
    result = run_child(tmp_path, """
        import asyncio
        from twisted.internet.asyncioreactor import AsyncioSelectorReactor
        from twisted.internet.posixbase import PosixReactorBase
        from cyclone import ioloop

        async def main():
            loop = asyncio.get_running_loop()
            reactor = ioloop.ensure_reactor()
            # 1: startRunning() on a running loop makes the reactor serve
            assert reactor.running, "1: startRunning() did not mark the reactor running"
            fired = asyncio.Event()
            reactor.callLater(0, fired.set)
            await asyncio.wait_for(fired.wait(), 10)
            # 3: the reactor's loop is _asyncioEventloop
            assert getattr(reactor, "_asyncioEventloop", None) is loop, "3: no _asyncioEventloop"
            # 2: AsyncioSelectorReactor.crash is the base crash plus loop.stop;
            # ours keeps the loop running through the reactor's shutdown
            assert "crash" in AsyncioSelectorReactor.__dict__, "2: crash() no longer overridden"
            assert hasattr(PosixReactorBase, "crash"), "2: no base crash()"
            down = asyncio.Event()
            reactor.addSystemEventTrigger("after", "shutdown", down.set)
            reactor.stop()
            await asyncio.wait_for(down.wait(), 10)
            await asyncio.sleep(0)  # the loop still runs
            assert not reactor.running
            print("ok", flush=True)

        asyncio.run(main())
    """)
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_a_reactor_installed_before_asyncio_run_is_a_clear_error(tmp_path):
    result = run_child(tmp_path, """
        import asyncio
        from twisted.internet import reactor  # the default reactor, not on asyncio's loop
        import cyclone.web

        async def main():
            try:
                cyclone.web.Application([]).listen(0, "127.0.0.1")
            except RuntimeError as exc:
                print(exc, flush=True)

        asyncio.run(main())
    """)
    assert result.returncode == 0, result.stderr
    assert "installed before asyncio.run() started" in result.stdout


def test_ioloop_start_and_stop_run_the_reactor(tmp_path):
    """Tornado's classic main(): app.listen(); IOLoop.current().start()."""
    proc = start_child(tmp_path, """
        import cyclone.web
        from cyclone.ioloop import IOLoop

        class Quit(cyclone.web.RequestHandler):
            def get(self):
                self.write("bye")
                IOLoop.current().add_callback(IOLoop.current().stop)

        server = cyclone.web.Application([("/quit", Quit)]).listen(0, "127.0.0.1")
        print("port", server.getHost().port, flush=True)
        IOLoop.current().start()
        print("stopped", flush=True)
    """)
    try:
        port = read_port(proc)
        assert get(port, "/quit") == (200, b"bye")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, out) == (0, "stopped\n"), err


def test_ioloop_run_sync_returns_the_result_or_raises(tmp_path):
    result = run_child(tmp_path, """
        from twisted.internet import task, reactor
        from cyclone.ioloop import IOLoop

        async def compute():
            await task.deferLater(reactor, 0.01, lambda: None)
            return 42

        print(IOLoop.current().run_sync(compute), flush=True)
        try:
            IOLoop.current().run_sync(compute)
        except RuntimeError as exc:  # the reactor does not restart
            print(type(exc).__name__, flush=True)
    """)
    assert result.stdout.splitlines()[0] == "42", result.stderr
    assert result.returncode == 0, result.stderr

    failing = run_child(tmp_path, """
        from cyclone.ioloop import IOLoop

        async def fail():
            raise KeyError("the reason")

        try:
            IOLoop.current().run_sync(fail)
        except KeyError as exc:
            print("raised", exc, flush=True)
    """)
    assert failing.stdout == "raised 'the reason'\n", failing.stderr

    timing_out = run_child(tmp_path, """
        from twisted.internet import defer
        from cyclone.ioloop import IOLoop

        try:
            IOLoop.current().run_sync(defer.Deferred, timeout=0.05)  # never fires
        except TimeoutError as exc:
            print("timeout:", exc, flush=True)
    """)
    assert timing_out.stdout == "timeout: Operation timed out after 0.05 seconds\n", timing_out.stderr


# -- the facade in the test reactor ------------------------------------------------------


@inline
def test_call_later_call_at_add_timeout_and_remove_timeout_order():
    loop = IOLoop.current()
    assert loop.reactor is reactor
    calls = []
    done = defer.Deferred()
    removed = loop.call_later(0.01, calls.append, "removed")
    loop.call_later(0.02, calls.append, "later")
    loop.call_at(loop.time() + 0.03, calls.append, "at")
    loop.add_timeout(datetime.timedelta(seconds=0.04), calls.append, "timedelta")
    loop.add_timeout(loop.time() + 0.05, lambda: done.callback(None))
    loop.remove_timeout(removed)
    yield done
    assert calls == ["later", "at", "timedelta"]
    loop.remove_timeout(removed)  # twice, or after it ran: ignored
    with pytest.raises(TypeError):
        loop.add_timeout("soon", calls.append)


@inline
def test_add_callback_from_another_thread_and_coroutine_callbacks():
    loop = IOLoop.current()
    seen = []

    async def coroutine(value):
        await threads.deferToThread(lambda: None)
        seen.append(("coroutine", value, threading.current_thread() is threading.main_thread()))

    def plain(value):
        seen.append(("plain", value, threading.current_thread() is threading.main_thread()))

    thread = threading.Thread(target=lambda: (loop.add_callback(plain, 1),
                                              loop.spawn_callback(coroutine, 2)))
    thread.start()
    thread.join()
    yield poll_until(lambda: len(seen) == 2)
    assert sorted(seen) == [("coroutine", 2, True), ("plain", 1, True)]


@inline
def test_a_failing_callback_is_logged(caplog):
    loop = IOLoop.current()

    async def failing():
        raise ValueError("in a coroutine callback")

    loop.add_callback(failing)
    yield poll_until(lambda: "in a coroutine callback" in caplog.text)
    assert "Exception in callback" in caplog.text


@inline
def test_run_in_executor_and_add_future():
    loop = IOLoop.current()
    assert (yield loop.run_in_executor(None, lambda a, b: a + b, 2, 3)) == 5
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        assert (yield loop.run_in_executor(executor, threading.current_thread)) is not threading.main_thread()
        with pytest.raises(ZeroDivisionError):
            yield loop.run_in_executor(executor, lambda: 1 / 0)
    done = []
    d = defer.Deferred()
    loop.add_future(d, done.append)
    d.callback("value")
    yield poll_until(lambda: done)
    assert done == [d]
