"""Testing cyclone applications over real sockets.

Tornado's names, on Twisted's trial::

    from twisted.internet import defer
    from cyclone.testing import AsyncHTTPTestCase, ExpectLog

    class HelloTest(AsyncHTTPTestCase):
        def get_app(self):
            return make_app()

        def test_hello(self):                   # Tornado style: fetch blocks
            response = self.fetch("/")
            self.assertEqual(response.body, b"Hello")

        @defer.inlineCallbacks
        def test_hello_async(self):             # Twisted style
            response = yield self.fetch("/")
            with ExpectLog("cyclone.application", "Uncaught exception"):
                response = yield self.fetch("/broken")
            self.assertEqual(response.code, 500)

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
A blocking ``fetch`` (and ``AsyncTestCase.wait_for``) therefore either runs
the stopped reactor until the response arrives (what trial does for a
test's Deferred) or switches to pytest-twisted's reactor greenlet until it
does (``pytest_twisted.blockon``). Inside the running reactor -- in callbacks,
after a ``yield`` of an ``@inlineCallbacks`` test, in pytest-twisted test
functions -- nothing can block; there ``AsyncHTTPTestCase.fetch`` returns a
Deferred, which the test yields. Client and server run in the same thread,
so there are no threads and no sleeps, and every wait is bounded by
``get_async_timeout()`` (``$ASYNC_TEST_TIMEOUT``, default 5 s).

The HTTP client is Twisted's ``Agent``, so requests are parsed by cyclone's
server exactly as real ones are. Unlike Tornado there is no ``gen_test``
(use ``@defer.inlineCallbacks`` or ``async def`` test methods) and no
``stop()``/``wait()``. ``AsyncHTTPSTestCase`` serves the app over TLS with a
self-signed certificate made for the test run.
"""

from cyclone.testing.case import (
    AsyncHTTPSTestCase,
    AsyncHTTPTestCase,
    AsyncTestCase,
    ExpectLog,
    bind_unused_port,
    get_async_test_timeout,
)
from cyclone.testing.httpclient import (
    AsyncHTTPClient,
    ClientRequest,
    HTTPClientError,
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
    "HTTPResponse",
    "HTTPStreamClosedError",
    "HTTPTimeoutError",
    "LiveServer",
    "bind_unused_port",
    "get_async_test_timeout",
]
