"""pytest fixtures for cyclone applications (needs pytest-twisted).

Enable them with ``-p cyclone.testing.pytest_plugin``, ``pytest_plugins =
["cyclone.testing.pytest_plugin"]`` in the top-level ``conftest.py``, or by
importing the fixtures into a test module or conftest.

``cyclone_server``
    ``server = cyclone_server(app)`` serves ``app`` (any Twisted server
    factory) on a free port of 127.0.0.1 and returns a ``LiveServer``:
    ``server.port``, ``server.url("/path")``. Every server started is
    stopped, with its connections closed, when the test ends.
``cyclone_client``
    an ``AsyncHTTPClient``: ``yield cyclone_client.fetch(url, **kwargs)``
    (fails for non-2xx responses unless ``raise_error=False``); closed when
    the test ends.
``fetch``
    ``yield fetch("/path", **kwargs)`` fetches from the server started last
    (absolute URLs are fetched as they are) and, like
    ``AsyncHTTPTestCase.fetch``, returns non-2xx responses instead of failing.

The fixtures return Deferreds, so tests are ``@pytest_twisted.inlineCallbacks``
or ``@pytest_twisted.ensureDeferred`` functions::

    import pytest_twisted

    @pytest_twisted.inlineCallbacks
    def test_hello(cyclone_server, fetch):
        cyclone_server(make_app())
        response = yield fetch("/hello?name=x")
        assert response.code == 200
        assert response.body == b"Hello, x"
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from twisted.internet import defer

from cyclone.testing._reactor import wait_for
from cyclone.testing.case import get_async_test_timeout
from cyclone.testing.httpclient import AsyncHTTPClient, HTTPResponse, LiveServer

__all__ = ["ServerStarter", "cyclone_client", "cyclone_server", "fetch"]


class ServerStarter:
    """What the ``cyclone_server`` fixture returns: call it with an app to serve it."""

    def __init__(self) -> None:
        self.servers: list[LiveServer] = []

    def __call__(self, app: Any, interface: str = "127.0.0.1") -> LiveServer:
        server = LiveServer(app, interface=interface)
        self.servers.append(server)
        return server

    @property
    def latest(self) -> LiveServer:
        """The server started last."""
        if not self.servers:
            raise LookupError("no server started: call cyclone_server(app) first")
        return self.servers[-1]

    def stop_all(self) -> None:
        """Stop every server, waiting until its sockets are closed."""
        servers, self.servers = self.servers, []
        for server in reversed(servers):
            wait_for(server.stop(), get_async_test_timeout())


@pytest.fixture
def cyclone_server() -> Iterator[ServerStarter]:
    """``cyclone_server(app) -> LiveServer``; all are stopped after the test."""
    starter = ServerStarter()
    yield starter
    starter.stop_all()


@pytest.fixture
def cyclone_client() -> Iterator[AsyncHTTPClient]:
    """An ``AsyncHTTPClient``, closed after the test."""
    client = AsyncHTTPClient()
    yield client
    wait_for(client.close(), get_async_test_timeout())


@pytest.fixture
def fetch(cyclone_server: ServerStarter, cyclone_client: AsyncHTTPClient) -> Any:
    """``fetch(path_or_url, **kwargs) -> Deferred[HTTPResponse]`` against the latest server."""

    def fetch(path: str, raise_error: bool = False, **kwargs: Any) -> defer.Deferred[HTTPResponse]:
        if not path.lower().startswith(("http://", "https://")):
            path = cyclone_server.latest.url(path)
        return cyclone_client.fetch(path, raise_error=raise_error, **kwargs)

    return fetch
