"""The original cyclone's ``Client`` and ``CycloneTestCase``, over real sockets.

The original ``Client`` built ``HTTPRequest`` objects by hand and ran the
handler against a fake transport. This one serves the app on 127.0.0.1
(started on the first request) and sends real requests, so what a test sees
is what a browser would. Differences from the original, all deliberate:

* ``params`` go into the request once: in the query string for GET, HEAD,
  DELETE and OPTIONS, urlencoded into the body for POST, PUT and PATCH (the
  original added GET params twice).
* ``options()`` and ``patch()`` exist.
* The default ``version`` is HTTP/1.1; ``version="HTTP/1.0"`` sends a real
  HTTP/1.0 request.
* ``remote_ip`` and ``protocol`` are sent as ``X-Real-Ip``/``X-Scheme``,
  which the app honours only with ``xheaders=True``; ``host`` sets the Host
  header.
* The response is an ``HTTPResponse`` (``content``, ``headers``, ``code``,
  ``get_status()``), not the handler object.
"""

from __future__ import annotations

import datetime
import email.utils
import http.cookies
import urllib.parse
import uuid
from typing import Any, Callable, Iterable, Mapping

from twisted.internet import defer

from cyclone.httputil import HTTPHeaders
from cyclone.testing.case import AsyncTestCase
from cyclone.testing.httpclient import AsyncHTTPClient, HTTPResponse, LiveServer, _to_headers

__all__ = ["Client", "ClientCookies", "CycloneTestCase"]

# Methods whose params travel in the body; all others put them in the query string.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Params = Mapping[str, Any] | Iterable[tuple[str, Any]]


class ClientCookies(http.cookies.SimpleCookie):
    """The cookies a ``Client`` keeps between requests.

    ``get_secure_cookie(name)`` decodes a signed cookie with the app's
    ``cookie_secret``, as ``RequestHandler.get_secure_cookie`` would.
    """

    def __init__(self, app: Any = None) -> None:
        super().__init__()
        self._app = app

    def get_secure_cookie(
        self, name: str, value: str | None = None, max_age_days: float = 31,
        min_version: int | None = None,
    ) -> bytes | None:
        if value is None:
            morsel = self.get(name)
            if morsel is None:
                return None
            value = morsel.value
        from cyclone.web import decode_signed_value

        secret = self._app.settings["cookie_secret"]
        return decode_signed_value(secret, name, value, max_age_days=max_age_days, min_version=min_version)

    get_signed_cookie = get_secure_cookie

    def update_from(self, headers: HTTPHeaders) -> None:
        """Apply a response's ``Set-Cookie`` headers: store, replace or delete."""
        for line in headers.get_list("Set-Cookie"):
            received = http.cookies.SimpleCookie()
            received.load(line)
            for name, morsel in received.items():
                if _expired(morsel):
                    self.pop(name, None)
                else:
                    self[name] = morsel

    def header_value(self) -> str:
        """The ``Cookie`` request header for the stored cookies ("" when none)."""
        return "; ".join(f"{name}={morsel.coded_value}" for name, morsel in self.items())


def _expired(morsel: http.cookies.Morsel) -> bool:
    max_age = morsel["max-age"]
    if max_age:
        try:
            return int(max_age) <= 0
        except ValueError:
            return False
    expires = morsel["expires"]
    if expires:
        try:
            when = email.utils.parsedate_to_datetime(expires)
        except (TypeError, ValueError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return when <= datetime.datetime.now(datetime.timezone.utc)
    return False


def _pairs(params: Params) -> list[tuple[str, Any]]:
    items = params.items() if isinstance(params, Mapping) else params
    pairs = []
    for name, value in items:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append((name, item))
    return pairs


def _multipart(
    fields: list[tuple[str, Any]], files: Mapping[str, Any]
) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data form.

    ``files`` maps a field name to a list of files (or one file), each a dict
    or ``HTTPFile`` with ``filename``, ``body`` and optionally
    ``content_type`` -- the shape of ``request.files``.
    """
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []

    def as_bytes(value: Any) -> bytes:
        return value if isinstance(value, bytes) else str(value).encode("utf-8")

    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode("utf-8")
            + as_bytes(value) + b"\r\n"
        )
    for name, entries in files.items():
        for entry in entries if isinstance(entries, (list, tuple)) else [entries]:
            content_type = entry.get("content_type") or "application/octet-stream"
            head = (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"; filename="{entry["filename"]}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            )
            parts.append(head.encode("utf-8") + as_bytes(entry["body"]) + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode("ascii"))
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


class Client:
    """Requests to ``app`` over a real socket; every method returns a Deferred
    firing with an ``HTTPResponse`` (whatever its status code).

    The app starts listening on 127.0.0.1 at the first request; ``close()``
    stops it (``CycloneTestCase`` does that after each test), and a later
    request starts it again. Cookies the app sets are kept in ``cookies`` and
    sent back. Redirects are not followed and bodies are returned as sent.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cookies = ClientCookies(app)
        self._server: LiveServer | None = None
        self._http: AsyncHTTPClient | None = None

    @property
    def port(self) -> int | None:
        """The port the app listens on, or None before the first request."""
        return self._server.port if self._server is not None else None

    def get(self, uri: str, params: Params | None = None, **kwargs: Any) -> defer.Deferred[HTTPResponse]:
        return self.request("GET", uri, params=params, **kwargs)

    def head(self, uri: str, params: Params | None = None, **kwargs: Any) -> defer.Deferred[HTTPResponse]:
        return self.request("HEAD", uri, params=params, **kwargs)

    def delete(self, uri: str, params: Params | None = None, **kwargs: Any) -> defer.Deferred[HTTPResponse]:
        return self.request("DELETE", uri, params=params, **kwargs)

    def options(self, uri: str, params: Params | None = None, **kwargs: Any) -> defer.Deferred[HTTPResponse]:
        return self.request("OPTIONS", uri, params=params, **kwargs)

    def post(self, uri: str, params: Params | None = None, **kwargs: Any) -> defer.Deferred[HTTPResponse]:
        return self.request("POST", uri, params=params, **kwargs)

    def put(self, uri: str, params: Params | None = None, **kwargs: Any) -> defer.Deferred[HTTPResponse]:
        return self.request("PUT", uri, params=params, **kwargs)

    def patch(self, uri: str, params: Params | None = None, **kwargs: Any) -> defer.Deferred[HTTPResponse]:
        return self.request("PATCH", uri, params=params, **kwargs)

    def request(
        self,
        method: str,
        uri: str,
        params: Params | None = None,
        version: str = "HTTP/1.1",
        headers: Mapping[str, Any] | HTTPHeaders | None = None,
        body: str | bytes | None = None,
        remote_ip: str | None = None,
        protocol: str | None = None,
        host: str | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> defer.Deferred[HTTPResponse]:
        """Send ``method uri`` to the app.

        ``params`` (a dict, values may be lists, or (name, value) pairs) go
        into the query string, or for POST/PUT/PATCH into a urlencoded body
        -- or, with ``files``, into a multipart/form-data body. When ``body``
        is given as well, params go into the query string.
        """
        method = method.upper()
        request_headers = _to_headers(headers)
        pairs = _pairs(params) if params else []
        if files:
            if body is not None:
                raise ValueError("pass either files or body, not both")
            request_headers["Content-Type"], body = _multipart(pairs, files)
            pairs = []
        elif pairs and method in _BODY_METHODS and body is None:
            body = urllib.parse.urlencode(pairs)
            request_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            pairs = []
        if pairs:
            uri += ("&" if "?" in uri else "?") + urllib.parse.urlencode(pairs)
        stored = self.cookies.header_value()
        if stored:
            given = request_headers.get("Cookie")
            request_headers["Cookie"] = f"{given}; {stored}" if given else stored
        if host is not None:
            request_headers["Host"] = host
        if remote_ip is not None:
            request_headers["X-Real-Ip"] = remote_ip
        if protocol is not None:
            request_headers["X-Scheme"] = protocol
        if self._server is None:
            self._server = LiveServer(self.app)
        if self._http is None:
            self._http = AsyncHTTPClient()
        d = self._http.fetch(
            self._server.url(uri),
            raise_error=False,
            method=method,
            headers=request_headers,
            body=body,
            follow_redirects=False,
            decompress_response=False,
            http_version=version,
            # The original Client sent any method, with or without a body.
            allow_nonstandard_methods=True,
        )

        def remember_cookies(response: HTTPResponse) -> HTTPResponse:
            self.cookies.update_from(response.headers)
            return response

        return d.addCallback(remember_cookies)

    def close(self) -> defer.Deferred[None]:
        """Close the client's connections and stop the app listening."""
        http, self._http = self._http, None
        server, self._server = self._server, None
        return defer.Deferred.fromCoroutine(_close(http, server))


async def _close(http: AsyncHTTPClient | None, server: LiveServer | None) -> None:
    if http is not None:
        await http.close()
    if server is not None:
        await server.stop()


class CycloneTestCase(AsyncTestCase):
    """The original cyclone's test case: ``self.client`` talks to ``self._app``.

    The app comes from ``app_builder``: the constructor argument (any
    callable) or the class attribute (an Application class, a staticmethod,
    or a method taking self), called with no further arguments.
    ``client_impl`` is the client class. The client is closed after each test.
    """

    __test__ = False

    client_impl: Callable[[Any], Any] = Client
    app_builder: Callable[[], Any] | None = None

    def __init__(self, methodName: str = "runTest", app_builder: Callable[[], Any] | None = None) -> None:
        super().__init__(methodName)
        # Looked up on the instance, as the original did: an Application class,
        # a staticmethod or a method taking self all work.
        builder = app_builder if app_builder is not None else self.app_builder
        if builder is None:
            raise ValueError(
                f"{type(self).__name__} needs an app: pass app_builder= or set the app_builder class attribute"
            )
        self._app = builder()
        self.client = self.client_impl(self._app)

    def run(self, result: Any) -> None:
        # Here rather than in setUp: subclasses override setUp without calling ours.
        close = getattr(self.client, "close", None)
        if close is not None:
            self.addCleanup(close)
        return super().run(result)
