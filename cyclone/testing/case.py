"""Tornado's ``tornado.testing`` test cases on trial: ``AsyncTestCase``,
``AsyncHTTPTestCase``, ``AsyncHTTPSTestCase``, ``gen_test``, ``ExpectLog``,
``bind_unused_port``."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import re
import socket
import sys
from typing import Any, Callable, Iterator, TypeVar

from twisted.internet import defer
from twisted.trial import unittest as trial_unittest
from twisted.trial import util as trial_util

from cyclone.testing import _reactor
from cyclone.testing._ioloop_facade import ReactorIOLoopFacade
from cyclone.testing.httpclient import AsyncHTTPClient, HTTPResponse, LiveServer

__all__ = [
    "AsyncHTTPSTestCase",
    "AsyncHTTPTestCase",
    "AsyncTestCase",
    "ExpectLog",
    "bind_unused_port",
    "gen_test",
    "get_async_test_timeout",
]

_T = TypeVar("_T")


def get_async_test_timeout() -> float:
    """Seconds a test may wait for asynchronous work: ``$ASYNC_TEST_TIMEOUT`` or 5."""
    return float(os.environ.get("ASYNC_TEST_TIMEOUT", 5))


def bind_unused_port(reuse_port: bool = False, address: str = "127.0.0.1") -> tuple[socket.socket, int]:
    """A listening, non-blocking socket on a free port of ``address``: (socket, port).

    Serve it with ``reactor.adoptStreamPort(sock.fileno(), sock.family, factory)``.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address, 0))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock, sock.getsockname()[1]


def gen_test(func: Callable[..., Any] | None = None, timeout: float | None = None) -> Any:
    """Tornado's ``gen_test``: run a coroutine test method to the end.

    Decorates an ``async def`` method or a generator method (run as a
    ``cyclone.gen.coroutine``) of an ``AsyncTestCase``; use it bare or as
    ``@gen_test(timeout=30)``. The test waits at most ``timeout`` seconds
    (default: ``$ASYNC_TEST_TIMEOUT``, else 5, read when the test runs), then
    cancels the coroutine and fails with ``TimeoutError``. The coroutine
    starts inside the running reactor, so ``self.fetch`` there returns a
    Deferred to ``yield``/``await``, as ``self.http_client.fetch`` does.
    """

    def wrap(method: Callable[..., Any]) -> Callable[..., None]:
        if inspect.isgeneratorfunction(method):
            from cyclone import gen

            method = gen.coroutine(method)

        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> None:
            limit = timeout if timeout is not None else get_async_test_timeout()
            result = self.io_loop.run_sync(functools.partial(method, self, *args, **kwargs), timeout=limit)
            if result is not None:
                raise TypeError(f"a gen_test method returned {result!r}; test methods return None")

        # trial and pytest look for coroutine functions through __wrapped__ in places:
        # this one is a plain function that blocks.
        del run.__wrapped__
        return run

    if func is not None:
        return wrap(func)
    return wrap


class ExpectLog(logging.Filter):
    """Context manager that swallows expected records of a stdlib logger.

    Records of ``logger`` (a name such as ``"cyclone.application"`` or a
    ``Logger``) whose message matches ``regex`` (``re.match``, so anchored at
    the start) are dropped; other records pass through. With ``required``
    (the default) leaving the block without a match raises AssertionError
    (not when the block itself raised). ``level`` restricts matches to
    records of exactly that level and lowers the logger's level for the
    duration, so that e.g. ``cyclone.access`` INFO records are emitted at all.

    ``matched`` is True once a record matched; ``logged_stack`` once any
    record of the logger carried exception info.
    """

    def __init__(
        self, logger: logging.Logger | str, regex: str | re.Pattern[str], required: bool = True,
        level: int | None = None,
    ) -> None:
        super().__init__()
        self.logger = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        self.regex = re.compile(regex)
        self.required = required
        self.level = level
        self.matched = False
        self.logged_stack = False
        self._saved_level: int | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            self.logged_stack = True
        if self.level is not None and record.levelno != self.level:
            return True
        if self.regex.match(record.getMessage()):
            self.matched = True
            return False
        return True

    def __enter__(self) -> ExpectLog:
        if self.level is not None and self.logger.getEffectiveLevel() > self.level:
            self._saved_level = self.logger.level
            self.logger.setLevel(self.level)
        self.logger.addFilter(self)
        return self

    def __exit__(self, typ: Any, value: Any, tb: Any) -> None:
        self.logger.removeFilter(self)
        if self._saved_level is not None:
            self.logger.setLevel(self._saved_level)
            self._saved_level = None
        if typ is None and self.required and not self.matched:
            raise AssertionError(
                f"did not get expected log message matching {self.regex.pattern!r} "
                f"on logger {self.logger.name!r}"
            )


class _CollectSubclasses:
    """pytest collects every unittest.TestCase subclass a test module imports,
    and ``__test__ = False`` is inherited. Bases say ``__test__ = False`` in
    their own body; every subclass that does not say otherwise is a test."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = True


class AsyncTestCase(_CollectSubclasses, trial_unittest.TestCase):
    """A trial TestCase that also runs inside a pytest-twisted session.

    Test methods may return Deferreds (``@defer.inlineCallbacks``, ``async
    def``); trial waits for them, at most ``get_async_timeout()`` seconds
    unless a ``timeout`` attribute says otherwise. ``wait_for(d)`` blocks a
    synchronous test until ``d`` fires.

    Under pytest with pytest-twisted, the reactor already runs in a greenlet,
    where trial cannot start it again: this class waits through that greenlet
    instead, and its end-of-test check for leftover timers and sockets only
    looks at those created during the test (see ``cyclone.testing._reactor``).
    """

    __test__ = False

    def get_async_timeout(self) -> float:
        """Seconds to wait for asynchronous work (``get_async_test_timeout()``)."""
        return get_async_test_timeout()

    def wait_for(self, d: Any, timeout: float | None = None) -> Any:
        """Block until ``d`` fires and return its result (or raise its failure).

        ``d`` is a Deferred, a coroutine, or an asyncio future or other
        awaitable. A pending asyncio future raises RuntimeError at once
        unless the reactor is Twisted's asyncio reactor: no event loop of
        its would run, so it would never complete.

        Raises TimeoutError after ``timeout`` (default ``get_async_timeout()``)
        seconds, and RuntimeError when called inside the running reactor,
        e.g. after a ``yield`` in an ``@inlineCallbacks`` test: yield ``d``
        there instead.
        """
        return _reactor.wait_for(d, self.get_async_timeout() if timeout is None else timeout)

    # -- Tornado's stop()/wait() and io_loop ---------------------------------------------

    @property
    def io_loop(self) -> ReactorIOLoopFacade:
        """The ``IOLoop`` methods Tornado tests use (``add_callback``,
        ``call_later``, ``add_timeout``, ``time``, ``run_sync``...), on the
        reactor. Its pending timers are cancelled when the test ends."""
        facade = self.__dict__.get("_cyclone_io_loop")
        if facade is None:
            facade = self._cyclone_io_loop = self.get_new_ioloop()
            self.addCleanup(facade.close)
        return facade

    def get_new_ioloop(self) -> ReactorIOLoopFacade:
        """What ``self.io_loop`` is: override to give another facade."""
        return ReactorIOLoopFacade()

    def stop(self, _arg: Any = None, **kwargs: Any) -> None:
        """End the current (or next) ``wait()``, which returns ``_arg`` or
        the keyword arguments as a dict. Callable from reactor callbacks."""
        if _arg is not None and kwargs:
            raise ValueError("stop() takes one positional argument or keyword arguments, not both")
        self._cyclone_stop_args = kwargs or _arg
        self._cyclone_stopped = True
        waiter = self.__dict__.pop("_cyclone_stop_waiter", None)
        if waiter is not None:
            waiter.callback(None)

    def wait(self, condition: Callable[[], bool] | None = None, timeout: float | None = None) -> Any:
        """Run the reactor until ``stop()`` is called (at once if it already
        was) and return what was passed to it.

        With ``condition``, keep waiting through ``stop()`` calls until it is
        true. After ``timeout`` seconds (default ``get_async_timeout()``)
        fails the test with "Async operation timed out after N seconds".
        """
        if timeout is None:
            timeout = self.get_async_timeout()
        from twisted.internet import reactor

        deadline = reactor.seconds() + timeout
        while True:
            if not self.__dict__.get("_cyclone_stopped", False):
                waiter: defer.Deferred[None] = defer.Deferred()
                self._cyclone_stop_waiter = waiter
                try:
                    _reactor.wait_for(waiter, max(0.0, deadline - reactor.seconds()))
                except TimeoutError:
                    raise self.failureException(f"Async operation timed out after {timeout:g} seconds") from None
                finally:
                    self.__dict__.pop("_cyclone_stop_waiter", None)
            if condition is None or condition():
                break
            self._cyclone_stopped = False
        result = self.__dict__.pop("_cyclone_stop_args", None)
        self._cyclone_stopped = False
        return result

    def getTimeout(self) -> float:
        if self._explicit_timeout() is None:
            return self.get_async_timeout()
        return super().getTimeout()

    def _explicit_timeout(self) -> Any:
        method = getattr(self, self._testMethodName, None)
        module = sys.modules.get(type(self).__module__)
        return trial_util.acquireAttribute([method, self, module], "timeout", None)

    # -- running inside pytest-twisted --------------------------------------------------
    # trial's private hooks, overridden only while pytest-twisted runs the reactor.

    def run(self, result: Any) -> None:
        if _reactor.reactor_greenlet() is not None:
            self._cyclone_baseline = _reactor.ReactorSnapshot()
        else:
            self._cyclone_baseline = None
        return super().run(result)

    def _runFixturesAndTest(self, result: Any) -> None:
        """trial runs setUp, the test, cleanups and tearDown as one chain, so
        whatever follows a step that waited asynchronously runs inside the
        reactor, where ``fetch``/``wait`` cannot block. Here each phase starts
        from the test runner -- setUp and the test method, then tearDown,
        then the cleanups (unittest's and Tornado's order: ``tearDown`` can
        still fetch before calling ``super().tearDown()``)."""
        from twisted.internet import reactor

        self._deprecateReactor(reactor)
        self._timedOut = False
        try:
            try:
                for phase in (self._deferSetUpAndRun, self._cyclone_tear_down, self._deferRunCleanups):
                    d = defer.ensureDeferred(phase(result))
                    d.addErrback(lambda failure: None)  # already reported to the result
                    self._wait(d)
            finally:
                self._cleanUp(result)
                self._classCleanUp(result)
        finally:
            self._undeprecateReactor(reactor)

    async def _cyclone_tear_down(self, result: Any) -> None:
        if self._twistedPrivateNeedsTearDown:
            await self._deferTearDown(result)

    def _wait(self, d: defer.Deferred[Any], *args: Any, **kwargs: Any) -> None:
        greenlet = _reactor.reactor_greenlet()
        if greenlet is None or not _reactor.can_block():
            return super()._wait(d, *args, **kwargs)
        _reactor.wait_in_session(self, d)

    def _cleanUp(self, result: Any) -> None:
        with self._session_janitor():
            super()._cleanUp(result)

    def _classCleanUp(self, result: Any) -> None:
        with self._session_janitor():
            super()._classCleanUp(result)

    @contextlib.contextmanager
    def _session_janitor(self) -> Iterator[None]:
        baseline = getattr(self, "_cyclone_baseline", None)
        if baseline is None or _reactor.reactor_greenlet() is None:
            yield
            return
        original = trial_util._Janitor
        trial_util._Janitor = functools.partial(_reactor.SessionJanitor, baseline=baseline)
        try:
            yield
        finally:
            trial_util._Janitor = original


class AsyncHTTPTestCase(AsyncTestCase):
    """Tornado's ``AsyncHTTPTestCase``: ``get_app()`` is served on 127.0.0.1 during each test.

    ``setUp`` starts it on a free port (``get_http_port()``, ``get_url(path)``)
    and creates ``self.http_client`` (an ``AsyncHTTPClient`` whose ``fetch``
    takes a URL or a path and returns a Deferred). Both are
    closed by a cleanup registered in ``setUp``; cyclone's test cases run
    cleanups after ``tearDown`` (as unittest and Tornado do, unlike trial),
    so ``tearDown`` may still fetch. ``get_app()`` may also return a
    ``cyclone.routing.Router``, an ``httputil.HTTPServerConnectionDelegate``
    or a callable: it is then served through ``cyclone.httpserver.HTTPServer``.
    ``fetch(path, **kwargs)`` fetches from the app:

    * in a plain test method it blocks until the response is there and
      returns it, as Tornado's does (limit: ``get_async_timeout()``);
    * inside the running reactor -- after the first ``yield`` of an
      ``@defer.inlineCallbacks`` test -- it cannot block and returns a
      Deferred. ``response = yield self.fetch(...)`` therefore works
      everywhere in such a test.

    A ``get_http_client()`` whose ``fetch`` returns asyncio futures (such
    as Tornado's own ``SimpleAsyncHTTPClient``) needs Twisted's asyncio
    reactor; under another one waiting for such a future raises
    RuntimeError at once.
    """

    __test__ = False

    def setUp(self) -> Any:
        result = super().setUp()
        self._app = self.get_app()
        self.http_client = self.get_http_client()
        self.http_server = LiveServer(self.get_http_server(), tls=self._server_tls())
        self.addCleanup(self._stop_serving)
        return result

    @defer.inlineCallbacks
    def _stop_serving(self) -> Any:
        yield self.http_client.close()
        yield self.http_server.stop()
        # Connections the app's handlers kept alive through cyclone.httpclient's
        # shared client (and its idle timer) would leave the reactor unclean.
        from cyclone.httpclient import AsyncHTTPClient as SharedClient

        if SharedClient._shared is not None:
            yield SharedClient._shared.close()

    def get_app(self) -> Any:
        """What to serve: a ``cyclone.web.Application`` (or any Twisted server
        factory), or what ``cyclone.httpserver.HTTPServer`` takes -- a
        ``cyclone.routing.Router``, an ``httputil.HTTPServerConnectionDelegate``,
        a callable taking the request."""
        raise NotImplementedError(f"{type(self).__name__} must define get_app()")

    def get_http_client(self) -> AsyncHTTPClient:
        """The client; its ``fetch`` also takes paths on the test server."""
        return AsyncHTTPClient(base_url=lambda: self.get_url(""))

    def get_httpserver_options(self) -> dict[str, Any]:
        """Settings for a ``cyclone.httpserver.HTTPServer`` wrapped around the app
        (limits, timeouts, ``xheaders``...); empty means serve the app itself."""
        return {}

    def get_http_server(self) -> Any:
        """The factory to listen with: a server factory ``get_app()`` returned
        as it is (when there are no ``get_httpserver_options()``), anything
        else in an ``HTTPServer(app, **self.get_httpserver_options())``."""
        from twisted.internet.interfaces import IProtocolFactory

        options = self.get_httpserver_options()
        if not options and IProtocolFactory.providedBy(self._app):
            return self._app
        from cyclone.httpserver import HTTPServer

        return HTTPServer(self._app, **options)

    def get_http_port(self) -> int:
        return self.http_server.port

    def _server_tls(self) -> Any:
        """The server's TLS context factory; None serves plain HTTP."""
        return None

    def get_protocol(self) -> str:
        return "http"

    def get_url(self, path: str) -> str:
        """An absolute URL for ``path`` on the test server."""
        return f"{self.get_protocol()}://127.0.0.1:{self.get_http_port()}{path}"

    def fetch(
        self,
        path: str,
        method: str = "GET",
        body: str | bytes | None = None,
        headers: Any = None,
        follow_redirects: bool = True,
        raise_error: bool = False,
        **kwargs: Any,
    ) -> HTTPResponse | defer.Deferred[HTTPResponse]:
        """Fetch ``path`` (or an absolute http:// URL) from the test server.

        Other keyword arguments are ``ClientRequest``'s. With ``raise_error``
        a non-2xx response raises ``HTTPClientError``; otherwise it is
        returned with ``response.error`` set.
        """
        if not path.lower().startswith(("http://", "https://")):
            path = self.get_url(path)
        d = self.http_client.fetch(
            path,
            raise_error=raise_error,
            method=method,
            body=body,
            headers=headers,
            follow_redirects=follow_redirects,
            **kwargs,
        )
        if not _reactor.can_block():
            return d
        return self.wait_for(d)



class AsyncHTTPSTestCase(AsyncHTTPTestCase):
    """Tornado's ``AsyncHTTPSTestCase``: ``AsyncHTTPTestCase`` over TLS.

    The app is served with ``get_ssl_options()``: by default a self-signed
    certificate for ``localhost``, ``127.0.0.1`` and ``::1``, made once per
    process. ``get_url()`` gives ``https://`` URLs, and ``fetch`` does not
    check the certificate unless given ``validate_cert=True`` (with
    ``ca_certs=self.get_ssl_options()["certfile"]`` it then passes).
    """

    __test__ = False

    def get_ssl_options(self) -> Any:
        """``{"certfile": ..., "keyfile": ...}`` (PEM files), or a Twisted
        server context factory such as ``twisted.internet.ssl.CertificateOptions``;
        by default ``default_ssl_options()``."""
        return self.default_ssl_options()

    @staticmethod
    def default_ssl_options() -> dict[str, Any]:
        """``{"certfile": ..., "keyfile": ...}`` of the test's self-signed
        certificate (for ``localhost``, ``127.0.0.1`` and ``::1``)."""
        return dict(zip(("certfile", "keyfile"), _self_signed_files()))

    def get_protocol(self) -> str:
        return "https"

    def _server_tls(self) -> Any:
        options = self.get_ssl_options()
        if not isinstance(options, dict):
            return options
        from twisted.internet import ssl

        return ssl.DefaultOpenSSLContextFactory(options["keyfile"], options["certfile"])

    def fetch(self, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("validate_cert", False)
        return super().fetch(path, **kwargs)


_SELF_SIGNED: tuple[str, str] | None = None


def _self_signed_files() -> tuple[str, str]:
    """(certificate, key) PEM file paths of a self-signed certificate for the
    loopback names, made on first use and removed when the process exits."""
    global _SELF_SIGNED
    if _SELF_SIGNED is None:
        import atexit
        import datetime
        import ipaddress
        import shutil
        import tempfile

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.IPAddress(ipaddress.ip_address("::1"))]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        directory = tempfile.mkdtemp(prefix="cyclone-testing-tls-")
        atexit.register(shutil.rmtree, directory, True)
        cert_path = os.path.join(directory, "localhost.crt")
        key_path = os.path.join(directory, "localhost.key")
        with open(cert_path, "wb") as out:
            out.write(certificate.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        _SELF_SIGNED = (cert_path, key_path)
    return _SELF_SIGNED
