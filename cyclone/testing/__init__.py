"""Testing cyclone applications over real sockets.

Tornado's names, on Twisted's trial::

    from cyclone.testing import AsyncHTTPTestCase, ExpectLog, gen_test

    class HelloTest(AsyncHTTPTestCase):
        def get_app(self):
            return make_app()

        def test_hello(self):                   # Tornado style: fetch blocks
            response = self.fetch("/")
            self.assertEqual(response.body, b"Hello")
            self.assertEqual(response.headers["Content-Length"], "5")

        @gen_test
        async def test_hello_async(self):       # coroutine tests, as Tornado's
            response = await self.http_client.fetch(self.get_url("/"))
            with ExpectLog("cyclone.application", "Uncaught exception"):
                response = await self.http_client.fetch(self.get_url("/broken"), raise_error=False)
            self.assertEqual(response.code, 500)

        def test_callbacks(self):               # stop() / wait()
            self.io_loop.call_later(0.01, self.stop, "done")
            self.assertEqual(self.wait(), "done")

``@defer.inlineCallbacks`` and ``async def`` test methods (without
``gen_test``) work too: trial waits for the Deferred they return.

The original cyclone's ``CycloneTestCase`` and ``Client``::

    class HelloTest(CycloneTestCase):
        app_builder = MyApplication

        @defer.inlineCallbacks
        def test_hello(self):
            response = yield self.client.get("/", params={"q": "x"})
            self.assertEqual(response.content, b"Hello")

pytest fixtures live in ``cyclone.testing.pytest_plugin``.

How waiting works
-----------------
Twisted has one reactor per process. Under ``trial`` it is stopped between
tests and trial runs it only while waiting for a Deferred a test returned;
under pytest with pytest-twisted it runs the whole session in a greenlet.
A blocking ``fetch`` (and ``wait()``, ``gen_test``, ``io_loop.run_sync``,
``AsyncTestCase.wait_for``) therefore either runs the stopped reactor until
the result arrives (what trial does for a test's Deferred) or switches to
pytest-twisted's reactor greenlet until it does (``pytest_twisted.blockon``).
Inside the running reactor -- in callbacks, inside a ``gen_test``
coroutine, after a ``yield`` of an ``@inlineCallbacks`` test, in
pytest-twisted test functions -- nothing can block; there
``AsyncHTTPTestCase.fetch`` returns a Deferred, which the test yields or
awaits. ``setUp``, the test method, ``tearDown`` and the cleanups each
start from the test runner, in that order (unittest's and Tornado's; trial
runs cleanups before ``tearDown``), so a synchronous ``setUp`` or
``tearDown`` may block, also after an asynchronous test method; only code
that runs after a ``yield``/``await`` (in an ``@inlineCallbacks`` or
``async def`` setUp or tearDown, and a test method following such a
setUp) is inside the reactor, and gets the
"cannot block inside the running reactor" error if it calls a blocking
``fetch``/``wait``/``wait_for``: yield or await the Deferred there instead.
``wait_for``, ``run_sync`` and ``gen_test`` take Deferreds, coroutines and
asyncio futures; a pending asyncio future can only complete under Twisted's
asyncio reactor (``--reactor=asyncio``), and waiting for one under another
reactor raises RuntimeError at once. Client and server run in the same thread, so there are no threads
and no sleeps, and every wait is bounded by ``get_async_timeout()``
(``$ASYNC_TEST_TIMEOUT``, default 5 s).

The HTTP client writes requests and reads responses itself, so a response's
headers are the ones on the wire (``Content-Length``, ``Connection``,
``Transfer-Encoding`` included). ``self.io_loop`` is not an event loop: it
maps the ``IOLoop`` methods tests use onto the reactor.
``AsyncHTTPSTestCase`` serves the app over TLS with a self-signed
certificate made for the test run.
"""

from cyclone.testing.case import (
    AsyncHTTPSTestCase,
    AsyncHTTPTestCase,
    AsyncTestCase,
    ExpectLog,
    bind_unused_port,
    gen_test,
    get_async_test_timeout,
)
from cyclone.testing.httpclient import (
    AsyncHTTPClient,
    ClientRequest,
    HTTPClientError,
    HTTPRequest,
    HTTPResponse,
    HTTPStreamClosedError,
    HTTPTimeoutError,
    LiveServer,
)
from cyclone.testing.legacy import Client, ClientCookies, CycloneTestCase

__all__ = [
    "AsyncHTTPClient",
    "AsyncHTTPSTestCase",
    "AsyncHTTPTestCase",
    "AsyncTestCase",
    "Client",
    "ClientCookies",
    "ClientRequest",
    "CycloneTestCase",
    "ExpectLog",
    "HTTPClientError",
    "HTTPRequest",
    "HTTPResponse",
    "HTTPStreamClosedError",
    "HTTPTimeoutError",
    "LiveServer",
    "bind_unused_port",
    "gen_test",
    "get_async_test_timeout",
]
