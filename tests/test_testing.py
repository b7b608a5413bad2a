"""cyclone.testing: AsyncHTTPTestCase (blocking and yielded fetch), ExpectLog,
the original Client/CycloneTestCase, the pytest fixtures, and how the trial
test cases behave under pytest-twisted, plain pytest and trial."""

from __future__ import annotations

import gzip
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

import cyclone.web
from cyclone.testing import (
    AsyncHTTPClient,
    AsyncHTTPSTestCase,
    AsyncHTTPTestCase,
    AsyncTestCase,
    Client,
    ClientCookies,
    CycloneTestCase,
    ExpectLog,
    HTTPClientError,
    HTTPResponse,
    HTTPStreamClosedError,
    HTTPTimeoutError,
    LiveServer,
    bind_unused_port,
    gen_test,
    get_async_test_timeout,
)
from cyclone.testing.pytest_plugin import ServerStarter, cyclone_client, cyclone_server, fetch  # noqa: F401

app_log = logging.getLogger("cyclone.application")


def _text(value: object) -> object:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class EchoHandler(cyclone.web.RequestHandler):
    """Describes the request it got as JSON."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def _describe(self) -> None:
        request = self.request
        self.write({
            "method": request.method,
            "version": request.version,
            "query": request.query,
            "body": request.body.decode("latin-1"),
            "arguments": {k: [_text(v) for v in vs] for k, vs in request.arguments.items()},
            "files": {
                k: [{"filename": f["filename"], "body": _text(f["body"]), "content_type": f["content_type"]}
                    for f in fs]
                for k, fs in request.files.items()
            },
            "headers": {k: request.headers.get(k) for k in (
                "X-Test", "Content-Type", "Cookie", "Host", "X-Real-Ip", "Connection", "Authorization",
            )},
            "remote_ip": request.remote_ip,
        })

    get = post = delete = patch = put = options = _describe

    def head(self) -> None:
        self.set_header("X-Method", "HEAD")


class HelloHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello")


class RedirectHandler(cyclone.web.RequestHandler):
    def _redirect(self, status: str) -> None:
        self.redirect("/echo?from=redirect", status=int(status))

    get = post = _redirect


class ErrorHandler(cyclone.web.RequestHandler):
    def get(self, status: str) -> None:
        raise cyclone.web.HTTPError(int(status))


class BrokenHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        raise ValueError("broken handler")


class WarnHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        app_log.warning("expected warning %d", 1)
        app_log.warning("unrelated warning")
        self.write("warned")


class CookieHandler(cyclone.web.RequestHandler):
    def get(self, action: str) -> None:
        if action == "set":
            self.set_cookie("plain", "1")
            self.set_secure_cookie("signed", "secret value")
        elif action == "clear":
            self.clear_cookie("plain")
        self.write({"plain": self.get_cookie("plain"), "header": self.request.headers.get("Cookie")})


class HeadersHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.add_header("X-Multi", "one")
        self.add_header("X-Multi", "two")
        self.write(self.request.headers.get("X-Test", ""))


class BigHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.write("x" * 5000)


class StreamHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.write("first,")
        self.flush()
        self.write("second")


class HangHandler(cyclone.web.RequestHandler):
    #: Deferreds fired when a request reaches the handler
    arrivals: list[defer.Deferred] = []

    @cyclone.web.asynchronous
    def get(self) -> None:
        while self.arrivals:
            self.arrivals.pop().callback(None)
        # never finishes: the client gives up


def make_app(**settings: object) -> cyclone.web.Application:
    settings.setdefault("cookie_secret", "not so secret")
    return cyclone.web.Application(
        [
            ("/echo", EchoHandler),
            ("/hello", HelloHandler),
            (r"/redirect/(\d+)", RedirectHandler),
            (r"/error/(\d+)", ErrorHandler),
            ("/broken", BrokenHandler),
            ("/warn", WarnHandler),
            ("/cookies/(set|clear|show)", CookieHandler),
            ("/headers", HeadersHandler),
            ("/big", BigHandler),
            ("/stream", StreamHandler),
            ("/hang", HangHandler),
        ],
        **settings,
    )


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# -- AsyncHTTPTestCase, Tornado style -------------------------------------------------------


class TornadoStyleTest(AsyncHTTPTestCase):
    def get_app(self) -> cyclone.web.Application:
        return make_app(compress_response=True)

    def test_blocking_fetch(self) -> None:
        response = self.fetch("/hello")
        self.assertIsInstance(response, HTTPResponse)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.reason, "OK")
        self.assertEqual(response.body, b"Hello")
        self.assertTrue(response.headers["Content-Type"].startswith("text/html"))
        self.assertIsNone(response.error)
        self.assertEqual(response.effective_url, self.get_url("/hello"))
        self.assertGreaterEqual(response.request_time, 0)
        response.rethrow()  # no error: nothing raised

    def test_urls(self) -> None:
        port = self.get_http_port()
        self.assertEqual(self.get_protocol(), "http")
        self.assertEqual(self.get_url("/a?b=c"), f"http://127.0.0.1:{port}/a?b=c")
        response = self.fetch(f"http://127.0.0.1:{port}/hello")  # absolute URLs as they are
        self.assertEqual(response.body, b"Hello")

    @defer.inlineCallbacks
    def test_yielded_fetch(self):
        response = yield self.fetch("/hello")
        self.assertEqual(response.body, b"Hello")
        yield task.deferLater(reactor, 0, lambda: None)
        # Now inside the running reactor: fetch cannot block and hands back a Deferred.
        d = self.fetch("/echo", method="POST", body=b"after")
        self.assertIsInstance(d, defer.Deferred)
        response = yield d
        self.assertEqual(json.loads(response.body)["body"], "after")

    async def test_awaited_http_client(self) -> None:
        response = await self.http_client.fetch(self.get_url("/hello"))
        self.assertEqual(response.body, b"Hello")
        response = await self.http_client.fetch("/echo?path=1")  # paths work too
        self.assertEqual(json.loads(response.body)["query"], "path=1")

    def test_client_without_base_url_needs_urls(self) -> None:
        with self.assertRaises(ValueError):
            AsyncHTTPClient().fetch("/hello")

    def test_post_body_and_headers(self) -> None:
        response = self.fetch(
            "/echo?q=1",
            method="POST",
            body="a=1&a=2&b=%C3%A9",
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Test": "yes"},
        )
        echoed = json.loads(response.body)
        self.assertEqual(echoed["method"], "POST")
        self.assertEqual(echoed["body"], "a=1&a=2&b=%C3%A9")
        self.assertEqual(echoed["arguments"], {"q": ["1"], "a": ["1", "2"], "b": ["é"]})
        self.assertEqual(echoed["headers"]["X-Test"], "yes")
        self.assertEqual(echoed["headers"]["Connection"], "close")  # like Tornado's client

    def test_other_methods(self) -> None:
        for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
            body = b"data" if method in ("PUT", "PATCH") else None
            echoed = json.loads(self.fetch("/echo", method=method, body=body).body)
            self.assertEqual(echoed["method"], method)
            self.assertEqual(echoed["body"], "data" if body else "")
        response = self.fetch("/echo", method="HEAD")
        self.assertEqual((response.code, response.body), (200, b""))
        self.assertEqual(response.headers["X-Method"], "HEAD")

    def test_multi_valued_response_header(self) -> None:
        response = self.fetch("/headers", headers={"X-Test": "sent"})
        self.assertEqual(response.headers.get_list("X-Multi"), ["one", "two"])
        self.assertEqual(response.body, b"sent")

    def test_basic_auth_and_user_agent(self) -> None:
        response = self.fetch("/echo", auth_username="user", auth_password="pass", user_agent="agent/1")
        self.assertEqual(json.loads(response.body)["headers"]["Authorization"], "Basic dXNlcjpwYXNz")
        self.assertEqual(response.request.headers["User-Agent"], "agent/1")

    def test_redirect_followed(self) -> None:
        response = self.fetch("/redirect/302")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.effective_url, self.get_url("/echo?from=redirect"))
        self.assertEqual(response.request.url, self.get_url("/redirect/302"))
        self.assertEqual(json.loads(response.body)["arguments"], {"from": ["redirect"]})

    def test_redirect_not_followed(self) -> None:
        response = self.fetch("/redirect/302", follow_redirects=False)
        self.assertEqual(response.code, 302)
        self.assertEqual(response.headers["Location"], "/echo?from=redirect")
        # As in Tornado, a redirect that is not followed is an error.
        self.assertIsInstance(response.error, HTTPClientError)
        with self.assertRaises(HTTPClientError) as caught:
            self.fetch("/redirect/302", follow_redirects=False, raise_error=True)
        self.assertEqual(caught.exception.code, 302)

    def test_redirect_changes_post_to_get_only_when_http_says_so(self) -> None:
        for status, method, body in (("303", "GET", ""), ("302", "GET", ""), ("307", "POST", "payload")):
            response = self.fetch(f"/redirect/{status}", method="POST", body="payload")
            echoed = json.loads(response.body)
            self.assertEqual((echoed["method"], echoed["body"]), (method, body), status)

    def test_max_redirects(self) -> None:
        response = self.fetch("/redirect/302", max_redirects=0)
        self.assertEqual(response.code, 302)

    def test_error_codes(self) -> None:
        response = self.fetch("/error/404")
        self.assertEqual(response.code, 404)
        self.assertIsInstance(response.error, HTTPClientError)
        self.assertEqual(response.error.code, 404)
        self.assertIs(response.error.response, response)
        self.assertEqual(str(response.error), "HTTP 404: Not Found")
        with self.assertRaises(HTTPClientError):
            response.rethrow()

    def test_raise_error(self) -> None:
        with self.assertRaises(HTTPClientError) as caught:
            self.fetch("/error/403", raise_error=True)
        self.assertEqual(caught.exception.code, 403)
        self.assertEqual(caught.exception.response.code, 403)
        self.assertEqual(self.fetch("/hello", raise_error=True).code, 200)

    def test_http_client_raises_by_default(self) -> None:
        d = self.http_client.fetch(self.get_url("/error/500"))
        self.assertIsInstance(d, defer.Deferred)
        with self.assertRaises(HTTPClientError):
            self.wait_for(d)
        response = self.wait_for(self.http_client.fetch(self.get_url("/error/500"), raise_error=False))
        self.assertEqual(response.code, 500)

    def test_gzip_is_decompressed_unless_asked_not_to(self) -> None:
        response = self.fetch("/big")
        self.assertEqual(response.body, b"x" * 5000)
        self.assertNotIn("Content-Encoding", response.headers)
        self.assertEqual(response.headers["X-Consumed-Content-Encoding"], "gzip")
        raw = self.fetch("/big", decompress_response=False)
        self.assertNotIn("Accept-Encoding", raw.request.headers)
        self.assertNotIn("Content-Encoding", raw.headers)  # nothing asked, nothing compressed
        raw = self.fetch("/big", decompress_response=False, headers={"Accept-Encoding": "gzip"})
        self.assertEqual(raw.headers["Content-Encoding"], "gzip")
        self.assertEqual(gzip.decompress(raw.body), b"x" * 5000)

    def test_streaming_callback(self) -> None:
        chunks: list[bytes] = []
        response = self.fetch("/stream", streaming_callback=chunks.append)
        self.assertEqual(response.body, b"")
        self.assertEqual(b"".join(chunks), b"first,second")

    def test_http10(self) -> None:
        response = self.fetch("/echo?x=1", method="POST", body=b"y=2", http_version="HTTP/1.0",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        echoed = json.loads(response.body)
        self.assertEqual(echoed["version"], "HTTP/1.0")
        self.assertEqual(echoed["arguments"], {"x": ["1"], "y": ["2"]})

    def test_blocking_fetch_times_out(self) -> None:
        self.get_async_timeout = lambda: 0.2
        with self.assertRaises(TimeoutError):
            self.fetch("/hang")

    def test_request_timeout_is_an_error_even_without_raise_error(self) -> None:
        with self.assertRaises(HTTPTimeoutError) as caught:
            self.fetch("/hang", request_timeout=0.2)
        self.assertEqual(caught.exception.code, 599)

    def test_https_to_a_plain_port_fails(self) -> None:
        for version in ("HTTP/1.1", "HTTP/1.0"):
            with self.assertRaises(HTTPStreamClosedError):  # the TLS handshake fails
                self.fetch(f"https://127.0.0.1:{self.get_http_port()}/hello", validate_cert=False,
                           http_version=version)
        with self.assertRaises(ValueError):
            self.fetch(f"ftp://127.0.0.1:{self.get_http_port()}/hello")

    def test_http10_socket_timeout(self) -> None:
        with self.assertRaises(HTTPTimeoutError):
            self.fetch("/hang", http_version="HTTP/1.0", request_timeout=0.2)

    def test_closed_client_refuses(self) -> None:
        client = AsyncHTTPClient()
        self.wait_for(client.close())
        with self.assertRaises(RuntimeError):
            client.fetch(self.get_url("/hello"))

    def test_timeout_of_yielding_tests_comes_from_get_async_timeout(self) -> None:
        self.assertEqual(self.getTimeout(), get_async_test_timeout())

    def test_wait_for_refuses_inside_the_reactor(self) -> None:
        outcome: list[BaseException] = []

        def inside() -> None:
            try:
                self.wait_for(defer.Deferred())
            except RuntimeError as e:
                outcome.append(e)

        self.wait_for(task.deferLater(reactor, 0, inside))
        self.assertEqual(len(outcome), 1)


# -- AsyncHTTPSTestCase ---------------------------------------------------------------------------


class ProtocolHandler(cyclone.web.RequestHandler):
    def get(self):
        self.write(self.request.protocol)


class HTTPSTest(AsyncHTTPSTestCase):
    def get_app(self):
        return cyclone.web.Application([(r"/proto", ProtocolHandler)])

    def test_fetch_over_tls(self):
        self.assertTrue(self.get_url("/proto").startswith("https://127.0.0.1:"))
        response = self.fetch("/proto")
        self.assertEqual((response.code, response.body), (200, b"https"))

    @defer.inlineCallbacks
    def test_fetch_yielded_over_tls(self):
        yield task.deferLater(reactor, 0, lambda: None)
        response = yield self.fetch("/proto")
        self.assertEqual(response.body, b"https")

    def test_certificate_is_checked_when_asked(self):
        with self.assertRaises(HTTPStreamClosedError) as caught:
            self.fetch("/proto", validate_cert=True)  # self-signed: not trusted
        self.assertIn("certificate verify failed", str(caught.exception))
        certfile = self.get_ssl_options()["certfile"]
        response = self.fetch("/proto", validate_cert=True, ca_certs=certfile)  # names 127.0.0.1
        self.assertEqual(response.body, b"https")

    def test_the_port_speaks_only_tls(self):
        import ssl

        def plain_and_tls():
            with socket.create_connection(("127.0.0.1", self.get_http_port()), timeout=5) as sock:
                sock.sendall(b"GET /proto HTTP/1.1\r\nHost: x\r\n\r\n")
                plain = sock.recv(100)
            context = ssl.create_default_context(cafile=self.get_ssl_options()["certfile"])
            with socket.create_connection(("127.0.0.1", self.get_http_port()), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as sock:
                    sock.sendall(b"GET /proto HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    reply = b""
                    while chunk := sock.recv(65536):
                        reply += chunk
            return plain, reply

        from twisted.internet import threads

        plain, reply = self.wait_for(threads.deferToThread(plain_and_tls))
        self.assertFalse(plain.startswith(b"HTTP/"))
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"https"))


class HTTPSOptionsTest(AsyncHTTPSTestCase):
    """get_ssl_options() may return a Twisted context factory."""

    def get_app(self):
        return cyclone.web.Application([(r"/proto", ProtocolHandler)])

    def get_ssl_options(self):
        from twisted.internet import ssl

        certfile, keyfile = AsyncHTTPSTestCase.get_ssl_options(self).values()
        self.used = True
        return ssl.DefaultOpenSSLContextFactory(keyfile, certfile)

    def test_fetch(self):
        self.assertTrue(self.used)
        self.assertEqual(self.fetch("/proto").body, b"https")


class DefaultSSLOptionsTest(AsyncHTTPSTestCase):
    def get_app(self):
        return cyclone.web.Application([(r"/proto", ProtocolHandler)])

    def test_default_ssl_options(self):
        options = AsyncHTTPSTestCase.default_ssl_options()  # Tornado's static method
        self.assertEqual(options, self.get_ssl_options())
        self.assertEqual(set(options), {"certfile", "keyfile"})
        response = self.fetch("/proto", validate_cert=True, ca_certs=options["certfile"])
        self.assertEqual(response.body, b"https")


class RouterAppTest(AsyncHTTPTestCase):
    """get_app() may return what HTTPServer takes, not only a server factory."""

    def get_app(self):
        from cyclone.routing import RuleRouter

        return RuleRouter([(r"/proto.*", cyclone.web.Application([(r"/proto", ProtocolHandler)]))])

    def test_router_is_served(self):
        from cyclone.httpserver import HTTPServer

        self.assertIsInstance(self.http_server.factory, HTTPServer)
        self.assertEqual(self.fetch("/proto").body, b"http")


class BlockingFixturesTest(AsyncHTTPTestCase):
    """fetch/wait block in setUp and in tearDown too, also after asynchronous
    steps; tearDown runs before the cleanups that close the client."""

    def get_app(self):
        return cyclone.web.Application([(r"/proto", ProtocolHandler)])

    def setUp(self):
        super().setUp()
        self.in_setup = self.fetch("/proto").body

    def tearDown(self):
        self.io_loop.call_later(0.01, self.stop, "stopped")
        self.assertEqual(self.wait(), "stopped")
        self.assertEqual(self.fetch("/proto").body, b"http")
        super().tearDown()

    def test_fetch_in_setup(self):
        self.assertEqual(self.in_setup, b"http")

    @defer.inlineCallbacks
    def test_asynchronous_test_then_blocking_teardown(self):
        yield task.deferLater(reactor, 0.01, lambda: None)
        response = yield self.fetch("/proto")
        self.assertEqual(response.body, b"http")


class AwaitablesTest(AsyncTestCase):
    def test_wait_for_takes_coroutines_and_done_futures(self):
        import asyncio

        async def answer():
            return await task.deferLater(reactor, 0, lambda: 42)

        self.assertEqual(self.wait_for(answer()), 42)
        loop = asyncio.new_event_loop()
        try:
            future = loop.create_future()
            future.set_result("done")
            self.assertEqual(self.wait_for(future), "done")
            failed = loop.create_future()
            failed.set_exception(ValueError("boom"))
            with self.assertRaises(ValueError):
                self.wait_for(failed)
        finally:
            loop.close()

    def test_pending_asyncio_future_without_its_loop_raises_at_once(self):
        import asyncio

        loop = asyncio.new_event_loop()
        try:
            started = reactor.seconds()
            with self.assertRaises(RuntimeError) as caught:
                self.wait_for(loop.create_future(), timeout=30)
            self.assertLess(reactor.seconds() - started, 1)
            self.assertIn("asyncio reactor", str(caught.exception))
            with self.assertRaises(RuntimeError):
                self.io_loop.run_sync(loop.create_future)
        finally:
            loop.close()

    def test_run_sync_has_a_default_timeout(self):
        from cyclone.testing import case

        self.patch(case, "get_async_test_timeout", lambda: 0.05)
        with self.assertRaises(TimeoutError) as caught:
            self.io_loop.run_sync(defer.Deferred)
        self.assertIn("0.05 seconds", str(caught.exception))


class ExplicitTimeoutTest(AsyncTestCase):
    timeout = 42

    def test_timeout_attribute_wins(self) -> None:
        self.assertEqual(self.getTimeout(), 42)


class HTTPServerOptionsTest(AsyncHTTPTestCase):
    def get_app(self) -> cyclone.web.Application:
        return make_app()

    def get_httpserver_options(self) -> dict:
        return {"xheaders": True}

    def test_options_reach_the_server(self) -> None:
        echoed = json.loads(self.fetch("/echo", headers={"X-Real-Ip": "10.1.2.3"}).body)
        self.assertEqual(echoed["remote_ip"], "10.1.2.3")


class AbsentAppTest(AsyncHTTPTestCase):
    def test_get_app_is_required(self) -> None:
        with self.assertRaises(NotImplementedError):
            self.get_app()

    def setUp(self) -> None:  # not served: there is no app
        pass


# -- Tornado's style: headers as received, gen_test, stop/wait, io_loop, fetch's keywords --------


class EtagHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.write("tagged body")


class UploadHandler(cyclone.web.RequestHandler):
    SUPPORTED_METHODS = cyclone.web.RequestHandler.SUPPORTED_METHODS + ("PROPFIND",)

    def put(self) -> None:
        self.write({"body": self.request.body.decode(), "expect": self.request.headers.get("Expect")})

    def post(self) -> None:
        self.write({"a": self.get_argument("a"), "type": self.request.headers.get("Content-Type")})

    def propfind(self) -> None:
        self.write("propfound")


class CoroutineHandler(cyclone.web.RequestHandler):
    async def get(self) -> None:
        await task.deferLater(reactor, 0, lambda: None)
        self.write("from a coroutine")


def tornado_style_app() -> cyclone.web.Application:
    return cyclone.web.Application([
        ("/tagged", EtagHandler),
        ("/upload", UploadHandler),
        ("/coroutine", CoroutineHandler),
        ("/stream", StreamHandler),
        ("/hang", HangHandler),
        ("/big", BigHandler),
    ], compress_response=True)


class ResponseHeadersAsReceivedTest(AsyncHTTPTestCase):
    """The GET-versus-HEAD and 304 checks Tornado's own tests make."""

    def get_app(self) -> cyclone.web.Application:
        return tornado_style_app()

    def test_get_and_head_carry_the_same_content_length(self) -> None:
        get = self.fetch("/tagged")
        head = self.fetch("/tagged", method="HEAD")
        self.assertEqual(get.headers["Content-Length"], str(len(b"tagged body")))
        self.assertEqual(head.headers["Content-Length"], get.headers["Content-Length"])
        self.assertEqual(head.body, b"")
        self.assertEqual(get.headers["Connection"], "close")  # the server's answer to ours

    def test_304_has_no_body(self) -> None:
        etag = self.fetch("/tagged").headers["Etag"]
        response = self.fetch("/tagged", headers={"If-None-Match": etag})
        self.assertEqual(response.code, 304)
        self.assertEqual(response.body, b"")
        self.assertNotIn("Content-Length", response.headers)
        self.assertEqual(response.headers["Etag"], etag)

    def test_flushed_response_is_chunked(self) -> None:
        response = self.fetch("/stream")
        self.assertEqual(response.headers["Transfer-Encoding"], "chunked")
        self.assertNotIn("Content-Length", response.headers)
        self.assertEqual(response.body, b"first,second")

    def test_the_same_headers_as_http_client_reads(self) -> None:
        import http.client

        def read() -> list[tuple[str, str]]:
            conn = http.client.HTTPConnection("127.0.0.1", self.get_http_port(), timeout=5)
            try:
                conn.request("GET", "/tagged", headers={"Connection": "close"})
                return conn.getresponse().getheaders()
            finally:
                conn.close()

        from twisted.internet import threads

        theirs = self.wait_for(threads.deferToThread(read))
        ours = self.fetch("/tagged", decompress_response=False).headers
        skip = {"Date"}
        self.assertEqual(sorted((k, v) for k, v in theirs if k not in skip),
                         sorted((k, v) for k, v in ours.get_all() if k not in skip))


class TornadoKeywordsTest(AsyncHTTPTestCase):
    def get_app(self) -> cyclone.web.Application:
        return tornado_style_app()

    def test_body_producer(self) -> None:
        async def produce(write):
            await write(b"streamed ")
            await write(b"upload")

        response = self.fetch("/upload", method="PUT", body_producer=produce)
        self.assertEqual(json.loads(response.body)["body"], "streamed upload")

    def test_gen_coroutine_body_producer_with_length(self) -> None:
        from cyclone import gen

        @gen.coroutine
        def produce(write):
            yield write(b"12")
            yield write(b"345")

        response = self.fetch("/upload", method="PUT", body_producer=produce, headers={"Content-Length": "5"})
        self.assertEqual(json.loads(response.body)["body"], "12345")

    def test_expect_100_continue(self) -> None:
        response = self.fetch("/upload", method="PUT", body=b"after continue", expect_100_continue=True)
        self.assertEqual(json.loads(response.body), {"body": "after continue", "expect": "100-continue"})

    def test_post_body_is_a_form_unless_typed(self) -> None:
        response = self.fetch("/upload", method="POST", body="a=1")
        self.assertEqual(json.loads(response.body), {"a": "1", "type": "application/x-www-form-urlencoded"})

    def test_use_gzip(self) -> None:
        response = self.fetch("/big", use_gzip=True)
        self.assertEqual((response.body, response.headers["X-Consumed-Content-Encoding"]), (b"x" * 5000, "gzip"))
        raw = self.fetch("/big", use_gzip=False)
        self.assertNotIn("Content-Encoding", raw.headers)  # nothing asked, nothing compressed
        self.assertEqual(raw.body, b"x" * 5000)

    def test_allow_nonstandard_methods(self) -> None:
        with self.assertRaises(KeyError):
            self.fetch("/upload", method="PROPFIND")
        with self.assertRaises(ValueError):
            self.fetch("/upload", method="POST")
        response = self.fetch("/upload", method="PROPFIND", allow_nonstandard_methods=True)
        self.assertEqual(response.body, b"propfound")

    def test_fetch_an_http_request(self) -> None:
        from cyclone.testing import HTTPRequest

        request = HTTPRequest(self.get_url("/tagged"), method="HEAD")
        response = self.wait_for(self.http_client.fetch(request))
        self.assertIs(response.request, request)
        self.assertEqual((response.code, response.body), (200, b""))
        self.assertEqual(response.effective_url, self.get_url("/tagged"))
        self.assertGreaterEqual(response.request_time, 0)

    def test_response_shape(self) -> None:
        response = self.fetch("/missing")
        self.assertEqual((response.code, response.reason), (404, "Not Found"))
        self.assertIsInstance(response.error, HTTPClientError)
        with self.assertRaises(HTTPClientError) as caught:
            response.rethrow()
        self.assertEqual(caught.exception.code, 404)
        self.assertIs(caught.exception.response, response)


class GenTestTest(AsyncHTTPTestCase):
    def get_app(self) -> cyclone.web.Application:
        return tornado_style_app()

    @gen_test
    async def test_async_def(self) -> None:
        response = await self.http_client.fetch(self.get_url("/coroutine"))
        self.assertEqual(response.body, b"from a coroutine")
        d = self.fetch("/tagged")  # inside the reactor: a Deferred
        self.assertIsInstance(d, defer.Deferred)
        self.assertEqual((await d).body, b"tagged body")

    @gen_test(timeout=3)
    def test_generator(self):
        response = yield self.http_client.fetch(self.get_url("/tagged"))
        self.assertEqual(response.body, b"tagged body")
        responses = yield [self.http_client.fetch(self.get_url("/tagged")),
                           self.http_client.fetch(self.get_url("/coroutine"))]
        self.assertEqual([r.body for r in responses], [b"tagged body", b"from a coroutine"])

    def test_failure_inside_fails_the_test(self) -> None:
        @gen_test
        async def failing(self) -> None:
            await task.deferLater(reactor, 0, lambda: None)
            raise LookupError("inside")

        with self.assertRaises(LookupError):
            failing(self)

    def test_timeout_cancels_the_coroutine(self) -> None:
        cancelled: list[BaseException] = []

        @gen_test(timeout=0.1)
        async def hanging(self) -> None:
            try:
                await defer.Deferred()
            except defer.CancelledError as e:
                cancelled.append(e)
                raise

        with self.assertRaises(TimeoutError) as caught:
            hanging(self)
        self.assertEqual(str(caught.exception), "Operation timed out after 0.1 seconds")
        self.assertEqual(len(cancelled), 1)

    def test_timeout_from_the_environment(self) -> None:
        self.patch(os, "environ", {**os.environ, "ASYNC_TEST_TIMEOUT": "0.15"})

        @gen_test
        async def hanging(self) -> None:
            await defer.Deferred()

        with self.assertRaises(TimeoutError) as caught:
            hanging(self)
        self.assertIn("0.15 seconds", str(caught.exception))

    def test_a_returned_value_is_refused(self) -> None:
        @gen_test
        async def returns(self) -> int:
            return 1

        with self.assertRaises(TypeError):
            returns(self)


class StopWaitTest(AsyncTestCase):
    def test_stop_from_a_callback(self) -> None:
        self.io_loop.call_later(0.01, self.stop, "done")
        self.assertEqual(self.wait(), "done")
        self.io_loop.add_callback(self.stop, a=1, b=2)
        self.assertEqual(self.wait(), {"a": 1, "b": 2})

    def test_stop_before_wait(self) -> None:
        self.stop("early")
        self.assertEqual(self.wait(), "early")
        self.io_loop.add_callback(self.stop)
        self.assertIsNone(self.wait())

    def test_condition(self) -> None:
        calls: list[int] = []

        def step() -> None:
            calls.append(1)
            self.stop()
            if len(calls) < 3:
                self.io_loop.add_callback(step)

        self.io_loop.add_callback(step)
        self.wait(condition=lambda: len(calls) == 3)
        self.assertEqual(len(calls), 3)

    def test_timeout_fails_the_test(self) -> None:
        with self.assertRaises(self.failureException) as caught:
            self.wait(timeout=0.05)
        self.assertEqual(str(caught.exception), "Async operation timed out after 0.05 seconds")

    def test_stop_from_a_thread(self) -> None:
        thread = threading.Thread(target=self.io_loop.add_callback, args=(self.stop, "threaded"))
        thread.start()
        self.assertEqual(self.wait(), "threaded")
        thread.join(5)


class IOLoopFacadeTest(AsyncTestCase):
    def test_time_is_the_reactors(self) -> None:
        before = reactor.seconds()
        self.assertGreaterEqual(self.io_loop.time(), before)

    def test_timeouts(self) -> None:
        import datetime

        fired: list[str] = []
        self.io_loop.add_timeout(datetime.timedelta(seconds=0.01), fired.append, "delta")
        self.io_loop.call_at(self.io_loop.time() + 0.01, fired.append, "at")
        removed = self.io_loop.add_timeout(self.io_loop.time() + 0.01, fired.append, "removed")
        self.io_loop.remove_timeout(removed)
        self.io_loop.call_later(0.05, self.stop)
        self.wait()
        self.assertEqual(sorted(fired), ["at", "delta"])
        self.io_loop.remove_timeout(removed)  # twice: no error
        with self.assertRaises(TypeError):
            self.io_loop.add_timeout("soon", fired.append)

    def test_run_sync(self) -> None:
        async def value() -> str:
            await task.deferLater(reactor, 0, lambda: None)
            return "result"

        self.assertEqual(self.io_loop.run_sync(value), "result")
        self.assertEqual(self.io_loop.run_sync(lambda: 7), 7)
        with self.assertRaises(TimeoutError):
            self.io_loop.run_sync(defer.Deferred, timeout=0.05)

    def test_add_callback_runs_a_coroutine(self) -> None:
        async def later(value: str) -> None:
            await task.deferLater(reactor, 0, lambda: None)
            self.stop(value)

        self.io_loop.add_callback(later, "ran")
        self.assertEqual(self.wait(), "ran")

    def test_pending_timers_are_dropped_at_the_end(self) -> None:
        # trial's janitor would fail this test for a leftover timer.
        handle = self.io_loop.call_later(60, self.fail, "never")
        self.assertTrue(handle.active())


# -- ExpectLog ------------------------------------------------------------------------------


class ExpectLogTest(AsyncHTTPTestCase):
    def get_app(self) -> cyclone.web.Application:
        return make_app()

    def setUp(self):
        result = super().setUp()
        self.recorded = RecordingHandler()
        app_log.addHandler(self.recorded)
        self.addCleanup(app_log.removeHandler, self.recorded)
        return result

    def test_matching_records_are_swallowed_others_pass(self) -> None:
        with ExpectLog("cyclone.application", r"expected warning \d") as expected:
            self.assertEqual(self.fetch("/warn").body, b"warned")
        self.assertTrue(expected.matched)
        self.assertFalse(expected.logged_stack)
        self.assertEqual(self.recorded.messages, ["unrelated warning"])

    def test_logger_object_and_stack(self) -> None:
        with ExpectLog(app_log, "Uncaught exception") as expected:
            self.assertEqual(self.fetch("/broken").code, 500)
        self.assertTrue(expected.logged_stack)
        self.assertEqual(self.recorded.messages, [])

    def test_required_and_missing_fails(self) -> None:
        with self.assertRaises(AssertionError) as caught:
            with ExpectLog("cyclone.application", "never logged"):
                self.fetch("/hello")
        self.assertIn("never logged", str(caught.exception))
        self.assertIn("cyclone.application", str(caught.exception))

    def test_not_required(self) -> None:
        with ExpectLog("cyclone.application", "never logged", required=False) as expected:
            self.fetch("/hello")
        self.assertFalse(expected.matched)

    def test_exception_in_block_is_not_masked(self) -> None:
        with self.assertRaises(KeyError):
            with ExpectLog("cyclone.application", "never logged"):
                raise KeyError("inner")

    def test_level_enables_and_restricts(self) -> None:
        access = logging.getLogger("cyclone.access")
        before = access.level
        with ExpectLog("cyclone.access", r"200 GET /hello", level=logging.INFO) as expected:
            self.fetch("/hello")
        self.assertTrue(expected.matched)
        self.assertEqual(access.level, before)
        # The warning is at WARNING, not INFO: it does not match and passes through.
        with self.assertRaises(AssertionError):
            with ExpectLog("cyclone.application", "unrelated warning", level=logging.INFO):
                self.fetch("/warn")
        self.assertIn("unrelated warning", self.recorded.messages)

    @defer.inlineCallbacks
    def test_across_yields(self):
        with ExpectLog("cyclone.application", "expected warning"):
            yield task.deferLater(reactor, 0, lambda: None)
            response = yield self.fetch("/warn")
        self.assertEqual(response.code, 200)


# -- the original Client and CycloneTestCase ------------------------------------------------


class ClientTest(CycloneTestCase):
    app_builder = staticmethod(make_app)

    @defer.inlineCallbacks
    def test_get_params_are_not_duplicated(self):
        response = yield self.client.get("/echo", params={"q": "x", "multi": ["1", "2"]})
        self.assertEqual(response.code, 200)
        echoed = json.loads(response.content)
        self.assertEqual(echoed["arguments"], {"q": ["x"], "multi": ["1", "2"]})
        self.assertEqual(echoed["body"], "")
        self.assertEqual(echoed["version"], "HTTP/1.1")

    @defer.inlineCallbacks
    def test_params_join_an_existing_query(self):
        response = yield self.client.get("/echo?a=1", params=[("b", "2")])
        self.assertEqual(json.loads(response.content)["query"], "a=1&b=2")

    @defer.inlineCallbacks
    def test_query_methods(self):
        for method in ("delete", "options"):
            response = yield getattr(self.client, method)("/echo", params={"q": "x"})
            echoed = json.loads(response.content)
            self.assertEqual(echoed["method"], method.upper())
            self.assertEqual((echoed["query"], echoed["body"]), ("q=x", ""))
        response = yield self.client.head("/echo", params={"q": "x"})
        self.assertEqual((response.code, response.content), (200, b""))
        self.assertEqual(response.headers["X-Method"], "HEAD")

    @defer.inlineCallbacks
    def test_body_methods_urlencode_params_into_the_body(self):
        for method in ("post", "put", "patch"):
            response = yield getattr(self.client, method)("/echo", params={"q": "x y", "n": ["1", "2"]})
            echoed = json.loads(response.content)
            self.assertEqual(echoed["method"], method.upper())
            self.assertEqual(echoed["query"], "")
            self.assertEqual(echoed["body"], "q=x+y&n=1&n=2")
            self.assertEqual(echoed["arguments"], {"q": ["x y"], "n": ["1", "2"]})
            self.assertEqual(echoed["headers"]["Content-Type"], "application/x-www-form-urlencoded")

    @defer.inlineCallbacks
    def test_body_given_sends_params_in_query(self):
        response = yield self.client.post("/echo", params={"q": "x"}, body=b"raw",
                                          headers={"Content-Type": "text/plain"})
        echoed = json.loads(response.content)
        self.assertEqual((echoed["query"], echoed["body"]), ("q=x", "raw"))

    @defer.inlineCallbacks
    def test_files_make_a_multipart_body(self):
        response = yield self.client.post(
            "/echo", params={"field": "v"},
            files={"upload": [{"filename": "a.txt", "body": b"content", "content_type": "text/plain"}]},
        )
        echoed = json.loads(response.content)
        self.assertTrue(echoed["headers"]["Content-Type"].startswith("multipart/form-data; boundary="))
        self.assertEqual(echoed["arguments"], {"field": ["v"]})
        self.assertEqual(echoed["files"],
                         {"upload": [{"filename": "a.txt", "body": "content", "content_type": "text/plain"}]})

    @defer.inlineCallbacks
    def test_cookies_persist_across_requests(self):
        self.assertIsInstance(self.client.cookies, ClientCookies)
        yield self.client.get("/cookies/set")
        self.assertEqual(self.client.cookies["plain"].value, "1")
        self.assertEqual(self.client.cookies.get_secure_cookie("signed"), b"secret value")
        response = yield self.client.get("/cookies/show")
        self.assertEqual(json.loads(response.content)["plain"], "1")
        yield self.client.get("/cookies/clear")
        self.assertNotIn("plain", self.client.cookies)
        response = yield self.client.get("/cookies/show", headers={"Cookie": "extra=2"})
        header = json.loads(response.content)["header"]
        self.assertIn("extra=2", header)
        self.assertIn("signed=", header)
        self.assertNotIn("plain=", header)

    @defer.inlineCallbacks
    def test_headers_host_remote_ip_and_version(self):
        response = yield self.client.get("/echo", headers={"X-Test": "t"}, host="example.test",
                                         remote_ip="10.9.8.7", version="HTTP/1.0")
        echoed = json.loads(response.content)
        self.assertEqual(echoed["headers"]["X-Test"], "t")
        self.assertEqual(echoed["headers"]["Host"], "example.test")
        self.assertEqual(echoed["headers"]["X-Real-Ip"], "10.9.8.7")
        self.assertEqual(echoed["remote_ip"], "127.0.0.1")  # the app does not trust xheaders
        self.assertEqual(echoed["version"], "HTTP/1.0")

    @defer.inlineCallbacks
    def test_host_over_http11(self):
        response = yield self.client.get("/echo", host="example.test", headers={"X-Test": b"bytes"})
        echoed = json.loads(response.content)
        self.assertEqual((echoed["headers"]["Host"], echoed["headers"]["X-Test"]), ("example.test", "bytes"))

    @defer.inlineCallbacks
    def test_no_redirect_following_and_status(self):
        response = yield self.client.get("/redirect/302")
        self.assertEqual(response.code, 302)
        self.assertEqual(response.get_status(), 302)
        response = yield self.client.get("/error/404")
        self.assertEqual(response.code, 404)

    @defer.inlineCallbacks
    def test_close_stops_listening_and_a_new_request_listens_again(self):
        yield self.client.get("/hello")
        port = self.client.port
        yield self.client.close()
        self.assertIsNone(self.client.port)
        with self.assertRaises(ConnectionRefusedError):
            yield AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/hello")
        response = yield self.client.get("/hello")
        self.assertEqual(response.content, b"Hello")

    def test_blocking_use(self) -> None:
        response = self.wait_for(self.client.get("/hello"))
        self.assertEqual(response.content, b"Hello")


class AppBuilderMethodTest(CycloneTestCase):
    def app_builder(self) -> cyclone.web.Application:
        return make_app(marker="method")

    def test_method_builder(self) -> None:
        self.assertEqual(self._app.settings["marker"], "method")
        self.assertIsInstance(self.client, Client)
        self.assertIs(self.client.app, self._app)


class CycloneTestCaseConstructionTest(AsyncTestCase):
    def test_without_builder(self) -> None:
        with self.assertRaises(ValueError):
            CycloneTestCase("runTest")

        class NoBuilder(CycloneTestCase):
            def test_nothing(self) -> None:
                pass

        with self.assertRaises(ValueError):
            NoBuilder("test_nothing")

    def test_builder_argument_and_client_impl(self) -> None:
        class RecordingClient(Client):
            pass

        class Custom(CycloneTestCase):
            client_impl = RecordingClient

        case = Custom("runTest", app_builder=lambda: make_app(marker="arg"))
        self.assertEqual(case._app.settings["marker"], "arg")
        self.assertIsInstance(case.client, RecordingClient)

    def test_pytest_collects_subclasses_only(self) -> None:
        self.assertIs(CycloneTestCase.__dict__["__test__"], False)
        self.assertIs(AsyncHTTPTestCase.__dict__["__test__"], False)
        self.assertIs(AsyncTestCase.__dict__["__test__"], False)
        self.assertIs(ClientTest.__test__, True)
        self.assertIs(TornadoStyleTest.__test__, True)


# -- helpers --------------------------------------------------------------------------------


class HelpersTest(AsyncTestCase):
    def test_bind_unused_port(self) -> None:
        sock, port = bind_unused_port()
        self.assertEqual(sock.getsockname(), ("127.0.0.1", port))
        listening = reactor.adoptStreamPort(sock.fileno(), socket.AF_INET, make_app())
        sock.close()  # the reactor has its own copy
        self.addCleanup(listening.stopListening)
        client = AsyncHTTPClient()
        self.addCleanup(client.close)
        response = self.wait_for(client.fetch(f"http://127.0.0.1:{port}/hello"))
        self.assertEqual(response.body, b"Hello")

    def test_async_test_timeout_from_environment(self) -> None:
        self.patch(os, "environ", {**os.environ, "ASYNC_TEST_TIMEOUT": "2.5"})
        self.assertEqual(get_async_test_timeout(), 2.5)
        self.assertEqual(self.get_async_timeout(), 2.5)
        self.patch(os, "environ", {k: v for k, v in os.environ.items() if k != "ASYNC_TEST_TIMEOUT"})
        self.assertEqual(get_async_test_timeout(), 5)


# -- pytest fixtures ------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_fixture_fetch(cyclone_server, fetch):
    server = cyclone_server(make_app())
    assert server.url("/x") == f"http://127.0.0.1:{server.port}/x"
    response = yield fetch("/echo?q=1")
    assert response.code == 200
    assert json.loads(response.body)["arguments"] == {"q": ["1"]}
    missing = yield fetch("/error/404")
    assert missing.code == 404  # returned, not raised


@pytest_twisted.inlineCallbacks
def test_fixture_client_raises_and_servers_stop(cyclone_server, cyclone_client):
    first = cyclone_server(make_app())
    second = cyclone_server(make_app())
    assert cyclone_server.latest is second
    with pytest.raises(HTTPClientError):
        yield cyclone_client.fetch(first.url("/error/404"))
    yield first.stop()
    with pytest.raises(ConnectionRefusedError):
        yield cyclone_client.fetch(first.url("/hello"))
    response = yield cyclone_client.fetch(second.url("/hello"))
    assert response.body == b"Hello"


@pytest_twisted.inlineCallbacks
def test_wildcard_interface_is_reached_through_loopback(cyclone_server, fetch):
    server = cyclone_server(make_app(), interface="0.0.0.0")
    assert server.url("/a") == f"http://127.0.0.1:{server.port}/a"
    response = yield fetch("/hello")
    assert response.body == b"Hello"


def test_fixture_fetch_needs_a_server(fetch):
    with pytest.raises(LookupError):
        fetch("/hello")


@pytest_twisted.inlineCallbacks
def test_server_stop_closes_open_connections():
    server = LiveServer(make_app())
    client = AsyncHTTPClient()
    arrived = defer.Deferred()
    HangHandler.arrivals.append(arrived)
    pending = client.fetch(server.url("/hang"), request_timeout=None)
    yield arrived
    assert server.connections == 1
    yield server.stop()
    assert server.connections == 0
    with pytest.raises(HTTPStreamClosedError):
        yield pending
    yield client.close()


def test_starter_is_not_collected():
    assert not ServerStarter.__name__.startswith("Test")


# -- the same test cases under other runners ------------------------------------------------


SAMPLE_IMPORTS = textwrap.dedent('''
    import pytest_twisted
    import pytest
    from twisted.internet import defer, reactor, task, threads
    import cyclone.web
    from cyclone.testing import AsyncHTTPTestCase, AsyncTestCase, CycloneTestCase, gen_test
''')

SAMPLE = SAMPLE_IMPORTS + textwrap.dedent('''
    class Hello(cyclone.web.RequestHandler):
        def get(self):
            self.write("Hello")

    def make_app():
        return cyclone.web.Application([("/", Hello)])

    class Sample(AsyncHTTPTestCase):
        def get_app(self):
            return make_app()

        def test_blocking(self):
            self.assertEqual(self.fetch("/").body, b"Hello")

        @defer.inlineCallbacks
        def test_yielded(self):
            response = yield self.fetch("/")
            yield task.deferLater(reactor, 0, lambda: None)
            response = yield self.fetch("/")
            self.assertEqual(response.body, b"Hello")

        @gen_test
        async def test_tornado_ways(self):
            response = await self.http_client.fetch(self.get_url("/"))
            self.assertEqual(response.headers["Content-Length"], "5")
            self.io_loop.call_later(0.01, self.stop, "stopped")

        def test_wait(self):
            self.io_loop.add_callback(self.stop, "stopped")
            self.assertEqual(self.wait(), "stopped")

    class Legacy(CycloneTestCase):
        app_builder = staticmethod(make_app)

        @defer.inlineCallbacks
        def test_client(self):
            response = yield self.client.get("/")
            self.assertEqual(response.content, b"Hello")
''')

SESSION_EXTRAS = textwrap.dedent('''
    leaked = []

    @pytest.fixture
    def thread_result():
        # leaves the reactor greenlet suspended inside a queued thread call
        pytest_twisted.blockon(threads.deferToThread(lambda: 1))
        yield
        pytest_twisted.blockon(threads.deferToThread(lambda: 1))

    def test_a_first(thread_result):
        leaked.append(reactor.callLater(60, lambda: None))  # someone else's timer

    class Leaky(AsyncTestCase):
        def test_leaks_a_timer(self):
            reactor.callLater(60, lambda: None)

    def test_z_last():
        leaked.pop().cancel()
''')


def _run(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_collection_skips_the_base_classes(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    done = _run(["-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "test_sample.py"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    collected = sorted(line for line in done.stdout.splitlines() if "::" in line)
    assert collected == [
        "test_sample.py::Legacy::test_client",
        "test_sample.py::Sample::test_blocking",
        "test_sample.py::Sample::test_tornado_ways",
        "test_sample.py::Sample::test_wait",
        "test_sample.py::Sample::test_yielded",
    ]


def test_plain_pytest_without_pytest_twisted(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    done = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:twisted", "test_sample.py"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout


def test_trial(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    done = _run(["-m", "twisted.trial", "test_sample"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED (successes=5)" in done.stdout


def test_pytest_twisted_session_leftovers(tmp_path):
    """Timers of other tests and a reactor greenlet parked inside a thread call do
    not fail a cyclone test case; a timer the test case itself leaks does."""
    # The leftovers come first: pytest runs a module's tests in order.
    (tmp_path / "test_sample.py").write_text(SAMPLE_IMPORTS + SESSION_EXTRAS + SAMPLE)
    done = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "test_sample.py"], tmp_path)
    output = done.stdout + done.stderr
    assert "1 failed, 7 passed" in output, output
    assert "FAILED test_sample.py::Leaky::test_leaks_a_timer" in output
    assert "DirtyReactorAggregateError" in output


ASYNCIO_SAMPLE = textwrap.dedent('''
    import asyncio
    from twisted.internet import defer, reactor, task
    import cyclone.web
    from cyclone.testing import AsyncHTTPTestCase, gen_test

    class TaskHandler(cyclone.web.RequestHandler):
        async def get(self):
            current = asyncio.current_task()
            async with asyncio.timeout(5):               # needs a current task
                slept = await asyncio.wait_for(asyncio.sleep(0, "slept"), 5)
            deferred = await task.deferLater(reactor, 0, lambda: "deferred")
            self.write(f"{current is not None}+{slept}+{deferred}")

    class Sample(AsyncHTTPTestCase):
        def get_app(self):
            return cyclone.web.Application([("/", TaskHandler)])

        def test_blocking(self):
            self.assertEqual(self.fetch("/").body, b"True+slept+deferred")

        @gen_test
        async def test_gen_test_is_a_task(self):
            self.assertIsNotNone(asyncio.current_task())
            await asyncio.sleep(0.01)
            response = await self.http_client.fetch(self.get_url("/"))
            self.assertEqual(response.body, b"True+slept+deferred")

        @gen_test(timeout=0.2)
        async def test_timeout_cancels_the_task(self):
            await asyncio.sleep(30)
''')


@pytest.mark.parametrize("runner", ["pytest", "trial"])
def test_coroutines_are_asyncio_tasks_under_the_asyncio_reactor(tmp_path, runner):
    (tmp_path / "test_asyncio_sample.py").write_text(ASYNCIO_SAMPLE)
    if runner == "pytest":
        args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--reactor=asyncio", "test_asyncio_sample.py"]
    else:
        args = ["-m", "twisted.trial", "--reactor=asyncio", "test_asyncio_sample"]
    done = _run(args, tmp_path)
    output = done.stdout + done.stderr
    assert "Operation timed out after 0.2 seconds" in output, output
    if runner == "pytest":
        assert "1 failed, 2 passed" in output, output
        assert "FAILED test_asyncio_sample.py::Sample::test_timeout_cancels_the_task" in output
    else:
        assert "FAILED (errors=1, successes=2)" in output, output


TORNADO_CLIENT_SAMPLE = textwrap.dedent('''
    import asyncio
    import cyclone.web
    from cyclone.testing import AsyncHTTPTestCase, gen_test

    class Hello(cyclone.web.RequestHandler):
        def get(self):
            self.write("hello")

    class Sample(AsyncHTTPTestCase):
        def get_app(self):
            return cyclone.web.Application([("/", Hello)])

        def get_http_client(self):
            from tornado.simple_httpclient import SimpleAsyncHTTPClient
            return SimpleAsyncHTTPClient(force_instance=True)

        def test_blocking_fetch(self):
            self.assertEqual(self.fetch("/").body, b"hello")

        @gen_test
        async def test_awaited_fetch(self):
            response = await self.http_client.fetch(self.get_url("/"))
            self.assertEqual(response.body, b"hello")

        def test_wait_for_a_future(self):
            future = asyncio.get_event_loop().create_future()
            self.io_loop.call_later(0.01, future.set_result, "set")
            self.assertEqual(self.wait_for(future), "set")
''')


@pytest.mark.parametrize("runner", ["pytest", "trial"])
def test_asyncio_futures_under_the_asyncio_reactor(tmp_path, runner):
    """Tornado's own client returns asyncio futures: fetch waits for them."""
    pytest.importorskip("tornado.simple_httpclient")
    (tmp_path / "test_tornado_client.py").write_text(TORNADO_CLIENT_SAMPLE)
    if runner == "pytest":
        args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--reactor=asyncio", "test_tornado_client.py"]
    else:
        args = ["-m", "twisted.trial", "--reactor=asyncio", "test_tornado_client"]
    done = _run(args, tmp_path)
    output = done.stdout + done.stderr
    assert ("3 passed" if runner == "pytest" else "PASSED (successes=3)") in output, output
