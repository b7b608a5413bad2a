"""cyclone.web: Tornado's ``RequestHandler`` and ``Application`` on Twisted.

A minimal application::

    import cyclone.web
    from twisted.internet import reactor

    class MainHandler(cyclone.web.RequestHandler):
        def get(self):
            self.write("Hello, world")

    app = cyclone.web.Application([(r"/", MainHandler)])
    reactor.listenTCP(8888, app, interface="127.0.0.1")
    reactor.run()

Handler methods may be plain methods, return a ``Deferred``, be
``@defer.inlineCallbacks`` generators or ``async def`` coroutines (which may
``await`` Deferreds, and asyncio awaitables under the asyncio reactor; see
``cyclone.concurrent``). ``@asynchronous`` keeps the request open until the
handler calls ``self.finish()``.

``Application`` is a Twisted ``ServerFactory``: every socket gets a
``cyclone.httpserver.HTTPConnection``; the settings it reads (limits,
timeouts, ``xheaders``) are documented in ``cyclone.httpserver``. The
settings read by this module are documented where they are read, and listed
in ``Application``'s docstring.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import gzip
import hashlib
import http.cookies
import inspect
import io
import numbers
import os
import re
import sys
import threading
import time
import traceback
import types
import urllib.parse
from typing import Any, AsyncIterable, Callable, Iterable

from twisted.internet import defer, protocol
from twisted.python import failure

import cyclone
from cyclone import escape, httputil, locale, origin, signing, streaming, template
from cyclone.concurrent import ensure_deferred
from cyclone.cookies import format_set_cookie
from cyclone.escape import _unicode, json_encode, utf8
from cyclone.httpserver import HTTPConnection, HTTPRequest, StreamClosedError, date_header
from cyclone.log import access_log, app_log, bridge_to_twisted, gen_log
from cyclone.routing import (
    AnyMatches,
    DefaultHostMatches,
    HostMatches,
    PathMatches,
    ReversibleRouter,
    ReversibleRuleRouter,
    Rule,
    URLReverseError,
    URLSpec,
    _unquote_path,
)
from cyclone.signing import (  # the first four are re-exported names of tornado/cyclone 1.x web
    DEFAULT_SIGNED_VALUE_MIN_VERSION,  # noqa: F401
    DEFAULT_SIGNED_VALUE_VERSION,  # noqa: F401
    _create_signature,  # noqa: F401
    _time_independent_equals,  # noqa: F401
    create_signed_value as _create_signed_value,
    decode_signed_value as _decode_signed_value,
    get_signature_key_version,
)
from cyclone.util import ObjectDict, lazy_attribute

__all__ = [
    "RequestHandler",
    "Application",
    "HTTPError",
    "HTTPAuthenticationRequired",
    "Finish",
    "MissingArgumentError",
    "ErrorHandler",
    "RedirectHandler",
    "FallbackHandler",
    "StaticFileHandler",
    "URLSpec",
    "url",
    "URLReverseError",
    "UIModule",
    "TemplateModule",
    "OutputTransform",
    "GZipContentEncoding",
    "asynchronous",
    "authenticated",
    "addslash",
    "removeslash",
    "stream_request_body",
    "create_signed_value",
    "decode_signed_value",
    "get_signature_key_version",
]

_SERVER_HEADER = f"cyclone/{cyclone.__version__}"
_BODYLESS = frozenset((204, 304))
_ARG_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f]")
_HEADER_VALUE_BAD_RE = re.compile(r"[\x00-\x1f\x7f]")
# reserved and unreserved URL characters, and "%" (already-encoded URLs stay as they are)
_LOCATION_SAFE = "!#$%&'()*+,/:;=?@[]~"
_ETAG_LIST_RE = re.compile(r'\*|(?:W/)?"[^"]*"')
try:
    # CPython's own SHA-1 for ETags: the same digest as hashlib.sha1, without
    # the OpenSSL digest lookup that costs more than hashing a small body
    from _sha1 import sha1 as _etag_sha1
except ImportError:  # pragma: no cover - a Python built without it
    _etag_sha1 = hashlib.sha1
# an empty HTTPHeaders without a call to its __init__ (clear() fills it at once)
_new_headers = object.__new__


# ----------------------------------------------------------------------------
# Exceptions
# ----------------------------------------------------------------------------


class HTTPError(Exception):
    """An exception that answers with an HTTP status.

    ``HTTPError(404)``, or with a message for the log:
    ``HTTPError(403, "user %s may not", name)``; ``reason`` overrides the
    standard reason phrase.
    """

    def __init__(
        self,
        status_code: int = 500,
        log_message: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.status_code = status_code
        self.log_message = log_message
        self.args = args
        self.reason = kwargs.get("reason")
        if log_message and not args:
            self.log_message = log_message.replace("%", "%%")

    def __str__(self) -> str:
        message = f"HTTP {self.status_code}: {self.reason or _reason_for(self.status_code)}"
        if self.log_message:
            return f"{message} ({self.log_message % self.args})"
        return message


class Finish(Exception):
    """Raise to end the request: ``raise Finish()`` or ``raise Finish(chunk)``.

    Unlike ``HTTPError`` the response is whatever the handler set up so far
    (status, headers, buffered output), not an error page.
    """


class MissingArgumentError(HTTPError):
    """A required argument is missing: answered with 400."""

    def __init__(self, arg_name: str) -> None:
        # formatted now, as Tornado does: log_message is the finished text
        super().__init__(400, f"Missing argument {arg_name}")
        self.arg_name = arg_name


class HTTPAuthenticationRequired(HTTPError):
    """401 with a ``WWW-Authenticate`` header (cyclone).

    ``HTTPAuthenticationRequired(auth_type="Basic", realm="Restricted Access")``;
    extra keyword arguments become further parameters of the challenge.
    """

    def __init__(
        self,
        log_message: str | None = None,
        *args: Any,
        auth_type: str = "Basic",
        realm: str = "Restricted Access",
        **kwargs: Any,
    ) -> None:
        reason = kwargs.pop("reason", None)
        super().__init__(401, log_message, *args, reason=reason)
        self.auth_type = auth_type
        self.kwargs = dict(kwargs, realm=realm)

    def challenge(self) -> str:
        params = ", ".join(
            f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
            for k, v in self.kwargs.items()
        )
        return f"{self.auth_type} {params}"

    def challenges(self) -> list[str]:
        """Every ``WWW-Authenticate`` value to send, one header each, most
        preferred first (``cyclone.httpauth`` sends several)."""
        return [self.challenge()]


def _reason_for(status: int) -> str:
    from cyclone.http1 import REASONS

    return REASONS.get(status, "Unknown")


def _unwrap_failure(value: Any) -> BaseException:
    """The exception behind a Failure, unwrapping ``defer.FirstError``."""
    if isinstance(value, failure.Failure):
        value = value.value
    while isinstance(value, defer.FirstError):
        value = value.subFailure.value
    return value


def _exc_info(exc: BaseException) -> tuple:
    return (type(exc), exc, exc.__traceback__)


# ----------------------------------------------------------------------------
# Handler
# ----------------------------------------------------------------------------

# header names set_header() has validated -> their Http-Header-Case; bounded,
# as names could come from requests
_checked_header_names: dict[str, str] = {}


def _check_header_name(name: str) -> str:
    """``name`` in Http-Header-Case (``ValueError`` if it is not a token)."""
    normalized = httputil._normalize_header(RequestHandler._checked_name(name))
    if len(_checked_header_names) < 512:
        _checked_header_names[name] = normalized
    return normalized


class _Overrides:
    """Which of ``RequestHandler``'s methods a handler class replaces.

    The per-request path skips a default that does nothing (or inlines a
    simple one) unless the class overrides it; looking that up on the class
    costs about as much as a call, so it is found once per class and kept on
    the class (``_overrides``, with ``owner`` telling a subclass from the
    class that computed it).

    Hooks a handler may replace on the instance (``self.prepare = f`` in
    ``initialize()``, as Tornado allows) are always called: ``prepare``,
    ``on_finish``, ``set_default_headers``, ``get_status`` (skipping their
    no-op defaults saved nothing measurable, and looking in the instance's
    ``__dict__`` costs ~10,000 instructions a request: it turns CPython's
    inline attribute values into a dict). The ETag hooks (``compute_etag``,
    ``set_etag_header``, ``check_etag_header``) are called when the class
    replaces them, or, for a class with an ``initialize()`` (where Tornado
    code assigns hooks), when the methods found through the instance are not
    the defaults (``_etag_hooks_on_instance``, ~3,600 instructions, so not
    for every class); calling them on every request would cost ~4% of a
    small response. The helpers of ``set_header`` are looked up on the class
    only.
    """

    __slots__ = ("etag", "header_checks", "initialize", "owner")

    def __init__(self, cls: type) -> None:
        def replaced(name: str) -> bool:
            # against the definitions below, so a patched RequestHandler counts too
            return getattr(cls, name) is not _DEFAULT_METHODS[name]

        self.owner = cls
        self.initialize = replaced("initialize")
        # the automatic ETag of finish()
        self.etag = replaced("compute_etag") or replaced("set_etag_header") or replaced("check_etag_header")
        # set_header's validation and conversion, and its HTTPHeaders (made by clear())
        self.header_checks = (
            replaced("_checked_name") or replaced("_convert_header_value") or replaced("clear")
        )


class RequestHandler:
    """Base class for HTTP request handlers: subclass and define ``get()``,
    ``post()`` and friends.
    """

    SUPPORTED_METHODS: tuple[str, ...] = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    #: write(list) sends JSON only when True (a JSON array can be hijacked by old browsers)
    serialize_lists = False
    #: close the connection after this handler's response
    no_keep_alive = False
    #: skip the XSRF check for this handler (API endpoints used by non-browsers)
    no_xsrf = False
    #: the XSRF cookie's name when the ``xsrf_cookie_name`` setting is not given
    xsrf_cookie_name = "_xsrf"

    _template_loaders: dict[str, template.BaseLoader] = {}
    _template_loader_lock = threading.Lock()
    _stream_request_body = False
    _overrides: _Overrides | None = None  # each handler class gets its own on first use
    _new_cookies: dict[str, str] | None = None  # set_cookie(): name -> Set-Cookie value
    # finish() hands over to it when set (cyclone.session: save the session, then finish)
    _before_finish: Callable[[Any], bool] | None = None

    #: this request's session (``cyclone.session``), made on first use
    session = lazy_attribute("cyclone.session.session_of")
    #: the application's Redis pool (``cyclone.redis``), made on first use
    redis = lazy_attribute("cyclone.redis.handler_pool")

    def __init__(self, application: "Application", request: HTTPRequest, **kwargs: Any) -> None:
        cls = type(self)
        overrides = cls._overrides
        if overrides is None or overrides.owner is not cls:
            overrides = cls._overrides = _Overrides(cls)
        self._overrides = overrides
        self.application = application
        self.request = request
        self._headers_written = False
        self._finished = False
        self._auto_finish = True
        self._transforms: list[OutputTransform] | None = None
        self._prepared = False
        self._ui: ObjectDict | None = None
        self.path_args: list[str] = []
        self.path_kwargs: dict[str, str] = {}
        self._reason: str | None = None
        self._status_code = 200
        self.clear()
        if self.no_keep_alive:
            connection = request.connection
            if connection is not None:
                connection.no_keep_alive = True
        if kwargs or overrides.initialize:
            self.initialize(**kwargs)

    # -- hooks -------------------------------------------------------------------

    def initialize(self, **kwargs: Any) -> None:
        """Hook for subclasses: receives the third element of the URL spec."""

    def prepare(self) -> Any:
        """Called before the verb method; may return a Deferred or be a coroutine."""

    def on_finish(self) -> None:
        """Called after the response was sent (return value ignored)."""

    def on_connection_close(self, *args: Any, **kwargs: Any) -> None:
        """Called once if the client goes away before the response is finished."""

    def set_default_headers(self) -> None:
        """Hook to set headers at the start of every response (and error page)."""

    def data_received(self, chunk: bytes) -> Any:
        """With ``@stream_request_body``: a piece of the body. Return a Deferred
        to make the client wait until it fires."""
        raise NotImplementedError()

    @property
    def settings(self) -> dict[str, Any]:
        """``self.application.settings``."""
        return self.application.settings

    def default(self, *args: Any, **kwargs: Any) -> Any:
        """Called for a method the handler does not implement: 405."""
        raise HTTPError(405)

    def head(self, *args: Any, **kwargs: Any) -> Any:
        """HEAD answers like GET, without the body, when ``get`` exists
        (RFC 9110 §9.1: servers must support HEAD wherever they support GET;
        Tornado answers 405 unless ``head`` is defined)."""
        get = getattr(self, "get", None)
        if get is None:
            raise HTTPError(405)
        return get(*args, **kwargs)

    # OPTIONS, like any method the handler does not define, is 405 (as in
    # Tornado); the 405 carries the Allow header RFC 9110 §15.5.6 requires.

    def _allowed_methods(self) -> list[str]:
        """The methods of ``SUPPORTED_METHODS`` this handler answers."""
        allowed = []
        for method in self.SUPPORTED_METHODS:
            name = method.lower()
            if name == "head":
                if hasattr(self, "get") or type(self).head is not RequestHandler.head:
                    allowed.append(method)
            elif hasattr(self, name):
                allowed.append(method)
        return allowed

    # -- status and headers ------------------------------------------------------------

    def clear(self) -> None:
        """Reset headers, buffered output and status for this response."""
        headers = self._headers = _new_headers(httputil.HTTPHeaders)
        headers._as_list = {
            "Server": [_SERVER_HEADER],
            "Content-Type": ["text/html; charset=UTF-8"],
            "Date": [date_header()],
        }
        self.set_default_headers()
        self._write_buffer: list[bytes] = []
        self._status_code = 200
        self._reason = None

    def set_status(self, status_code: int, reason: str | None = None) -> None:
        """Set the status; ``reason`` must be printable (no CR/LF)."""
        if not isinstance(status_code, int) or not 100 <= status_code <= 999:
            raise ValueError(f"invalid status code {status_code!r}")
        if reason is not None:
            if _HEADER_VALUE_BAD_RE.search(reason.replace("\t", " ")):
                raise ValueError(f"invalid reason phrase {reason!r}")
            try:
                reason.encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(f"reason phrase not encodable as latin-1: {reason!r}") from None
        self._status_code = status_code
        self._reason = reason if reason is not None else _reason_for(status_code)

    def get_status(self) -> int:
        return self._status_code

    def set_header(self, name: str, value: Any) -> None:
        """Set a response header, replacing earlier values; the value may be
        str, bytes, int or a datetime (sent in HTTP date format)."""
        if self._overrides.header_checks:
            self._headers[self._checked_name(name)] = self._convert_header_value(value)
            return
        normalized = _checked_header_names.get(name)
        if normalized is None:
            normalized = _check_header_name(name)
        # printable ASCII is what _convert_header_value would return unchanged
        if type(value) is not str or not (value.isascii() and value.isprintable()):
            value = RequestHandler._convert_header_value(value)
        self._headers._as_list[normalized] = [value]

    def add_header(self, name: str, value: Any) -> None:
        """Add a response header, keeping earlier values (e.g. ``Set-Cookie``)."""
        self._headers._add(
            httputil._normalize_header(self._checked_name(name)),
            self._convert_header_value(value),
        )

    def clear_header(self, name: str) -> None:
        """Remove a response header (no error if it was not set)."""
        if name in self._headers:
            del self._headers[name]

    @staticmethod
    def _checked_name(name: str) -> str:
        if not httputil._TOKEN_RE.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        return name

    @staticmethod
    def _convert_header_value(value: Any) -> str:
        if isinstance(value, str):
            text = value
        elif isinstance(value, bytes):
            text = value.decode("latin-1")
        elif isinstance(value, numbers.Integral):
            return str(value)
        elif isinstance(value, datetime.datetime):
            return httputil.format_timestamp(value)
        else:
            raise TypeError(f"unsupported header value {value!r}")
        # Header injection: no CR, LF or other controls (HTAB is allowed).
        if _HEADER_VALUE_BAD_RE.search(text.replace("\t", " ")):
            raise ValueError(f"Unsafe header value {text!r}")
        if not text.isascii():
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(f"header value not encodable as latin-1: {text!r}") from None
        return text

    # -- arguments ---------------------------------------------------------------------

    _ARG_DEFAULT: Any = object()

    def get_argument(self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True) -> Any:
        """The last value of argument ``name`` (query or body); 400 when missing
        and no default is given."""
        return self._get_argument(name, default, self.request.arguments, strip)

    def get_arguments(self, name: str, strip: bool = True) -> list[str]:
        """All values of argument ``name`` (query and body), possibly empty."""
        return self._get_arguments(name, self.request.arguments, strip)

    def get_query_argument(self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True) -> Any:
        return self._get_argument(name, default, self.request.query_arguments, strip)

    def get_query_arguments(self, name: str, strip: bool = True) -> list[str]:
        return self._get_arguments(name, self.request.query_arguments, strip)

    def get_body_argument(self, name: str, default: Any = _ARG_DEFAULT, strip: bool = True) -> Any:
        return self._get_argument(name, default, self.request.body_arguments, strip)

    def get_body_arguments(self, name: str, strip: bool = True) -> list[str]:
        return self._get_arguments(name, self.request.body_arguments, strip)

    def _get_argument(self, name: str, default: Any, source: dict, strip: bool) -> Any:
        values = self._get_arguments(name, source, strip)
        if not values:
            if default is RequestHandler._ARG_DEFAULT:
                raise MissingArgumentError(name)
            return default
        return values[-1]

    def _get_arguments(self, name: str, source: dict, strip: bool) -> list[str]:
        values = []
        for raw in source.get(name, ()):
            value = self.decode_argument(raw, name=name)
            if isinstance(value, str):
                # control characters would end up in logs and pages
                value = _ARG_CONTROL_RE.sub(" ", value)
                if strip:
                    value = value.strip()
            values.append(value)
        return values

    def decode_argument(self, value: bytes | str, name: str | None = None) -> str:
        """Decode an argument (UTF-8); undecodable input answers 400."""
        if isinstance(value, str):
            return value
        if value is None:  # an optional group that did not match (as Tornado)
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(400, "Invalid unicode in %s: %r", name or "url", value[:40]) from None

    # -- cookies ---------------------------------------------------------------------------

    @property
    def cookies(self) -> dict[str, http.cookies.Morsel]:
        """The request's cookies (``self.request.cookies``)."""
        return self.request.cookies

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """The value of cookie ``name``, or ``default``."""
        morsel = self.request.cookies.get(name)
        if morsel is not None:
            return morsel.value
        return default

    def set_cookie(
        self,
        name: str | bytes,
        value: str | bytes,
        domain: str | None = None,
        expires: float | tuple | datetime.datetime | None = None,
        path: str = "/",
        expires_days: float | None = None,
        *,
        max_age: int | None = None,
        httponly: bool = False,
        secure: bool = False,
        samesite: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Send a ``Set-Cookie`` header with this response, formatted as Tornado
        does (see ``cyclone.cookies``).

        A later ``set_cookie`` of the same name replaces this one, whatever its
        path or domain; the cookies are added to the headers when they are
        written, and survive ``clear()`` (an error page carries them).
        Raises ``cyclone.cookies.CookieError`` (an ``http.cookies.CookieError``
        and a ``ValueError``) for a name, value or attribute that cannot be sent.
        """
        header = format_set_cookie(
            name, value, domain, expires, path, expires_days,
            max_age=max_age, httponly=httponly, secure=secure, samesite=samesite,
            stacklevel=3, **kwargs,
        )
        name = _unicode(name)
        new_cookies = self._new_cookies
        if new_cookies is None:
            new_cookies = self._new_cookies = {}
        else:
            # replaced, and moved last (as Tornado's SimpleCookie does)
            new_cookies.pop(name, None)
        new_cookies[name] = header

    def clear_cookie(self, name: str, path: str = "/", domain: str | None = None, **kwargs: Any) -> None:
        """Delete cookie ``name``: an empty value that expired a year ago.

        ``path``, ``domain`` (and for some browsers ``secure``/``samesite``)
        must be those it was set with; ``expires`` and ``max_age`` are refused.
        """
        for excluded in ("expires", "max_age"):
            if excluded in kwargs:
                raise TypeError(f"clear_cookie() got an unexpected keyword argument {excluded!r}")
        expires = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=365)
        self.set_cookie(name, "", path=path, domain=domain, expires=expires, **kwargs)

    def clear_all_cookies(self, path: str = "/", domain: str | None = None, **kwargs: Any) -> None:
        """``clear_cookie`` every cookie the request sent, with the same arguments."""
        for name in self.request.cookies:
            self.clear_cookie(name, path=path, domain=domain, **kwargs)

    def _add_new_cookies(self) -> None:
        # the Set-Cookie headers of set_cookie(), added when the head is written
        headers = self._headers
        for header in self._new_cookies.values():
            headers.add("Set-Cookie", header)

    def set_signed_cookie(
        self,
        name: str,
        value: str | bytes,
        expires_days: float | None = 30,
        version: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Set a cookie signed with ``cookie_secret`` (timestamped, tamper-proof)."""
        self.set_cookie(
            name,
            self.create_signed_value(name, value, version=version),
            expires_days=expires_days,
            **kwargs,
        )

    set_secure_cookie = set_signed_cookie

    def create_signed_value(self, name: str, value: str | bytes, version: int | None = None) -> bytes:
        """Sign ``value`` for cookie ``name`` with the ``cookie_secret`` setting
        (a dict of secrets with the ``key_version`` setting rotates keys)."""
        self.require_setting("cookie_secret", "secure cookies")
        secret = self.application.settings["cookie_secret"]
        key_version = None
        if isinstance(secret, dict):
            if self.application.settings.get("key_version") is None:
                raise RuntimeError("key_version setting must be used for secret_key dicts")
            key_version = self.application.settings["key_version"]
        return _create_signed_value(secret, name, value, version=version, key_version=key_version)

    def get_signed_cookie(
        self,
        name: str,
        value: str | None = None,
        max_age_days: float = 31,
        min_version: int | None = None,
    ) -> bytes | None:
        """The verified value of signed cookie ``name`` (bytes), or None."""
        self.require_setting("cookie_secret", "secure cookies")
        if value is None:
            value = self.get_cookie(name)
        return _decode_signed_value(
            self.application.settings["cookie_secret"],
            name,
            value,
            max_age_days=max_age_days,
            min_version=min_version,
        )

    get_secure_cookie = get_signed_cookie

    def get_signed_cookie_key_version(self, name: str, value: str | None = None) -> int | None:
        """The key version a signed cookie was made with, or None."""
        self.require_setting("cookie_secret", "secure cookies")
        if value is None:
            value = self.get_cookie(name)
        if value is None:
            return None
        return get_signature_key_version(value)

    get_secure_cookie_key_version = get_signed_cookie_key_version

    # -- output ----------------------------------------------------------------------------------

    def write(self, chunk: str | bytes | dict | list) -> None:
        """Buffer output: str (UTF-8), bytes, or a dict (JSON; lists only with
        ``serialize_lists``)."""
        if self._finished:
            raise RuntimeError("Cannot write() after finish()")
        if isinstance(chunk, bytes):
            self._write_buffer.append(chunk)
            return
        if isinstance(chunk, str):
            self._write_buffer.append(chunk.encode("utf-8"))
            return
        if isinstance(chunk, dict) or (isinstance(chunk, list) and self.serialize_lists):
            chunk = json_encode(chunk)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self._write_buffer.append(chunk.encode("utf-8"))
            return
        message = "write() only accepts bytes, str and dict objects"
        if isinstance(chunk, list):
            message += ". Lists are accepted when serialize_lists is True"
        raise TypeError(message)

    def flush(self, include_footers: bool = False) -> defer.Deferred:
        """Send what is buffered; the Deferred fires when the client has taken it
        (backpressure: wait on it before writing more)."""
        connection = self.request.connection
        chunk = b"".join(self._write_buffer)
        self._write_buffer = []
        if not self._headers_written:
            if self._new_cookies:
                self._add_new_cookies()
            status = self._status_code
            headers = self._headers
            for transform in self._transforms or ():
                status, headers, chunk = transform.transform_first_chunk(
                    status, headers, chunk, include_footers
                )
            if connection is None:
                self._headers_written = True
                return defer.succeed(None)
            connection.write_head(status, headers.get_all(), self._reason, body=chunk)
            self._headers_written = True
        else:
            for transform in self._transforms or ():
                chunk = transform.transform_chunk(chunk, include_footers)
            if connection is None:
                return defer.succeed(None)
            return connection.write(chunk)  # when_drained()'s Deferred
        return connection.when_drained()

    def write_stream(self, chunks: Iterable[Any] | AsyncIterable[Any]) -> defer.Deferred:
        """Write and flush each chunk of an iterable, generator or async
        generator, waiting for the client to take each one (see
        ``cyclone.streaming``); return or await the Deferred. A *returned*
        bare generator is still run as ``@inlineCallbacks``."""
        return streaming.write_stream(self, chunks)

    def cancel_on_close(self, awaitable: Any, timeout: float | None = None) -> defer.Deferred:
        """Wait on ``awaitable`` (long polling): it is cancelled if the client
        goes away (the Deferred then fails with ``StreamClosedError``, which
        ends the request quietly) or after ``timeout`` seconds if given
        (``TimeoutError``). See ``cyclone.streaming``."""
        return streaming.cancel_on_close(self, awaitable, timeout)

    def finish(self, chunk: str | bytes | dict | None = None) -> None:
        """Finish the response, writing ``chunk`` first if given."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        if self._before_finish is not None and self._before_finish(chunk):
            return  # finished later, by the hook
        if chunk is not None:
            self.write(chunk)
        request = self.request
        connection = request.connection
        if not self._headers_written:
            status = self._status_code
            method = request.method
            headers_dict = self._headers._as_list
            if status == 200 and (method == "GET" or method == "HEAD") and "Etag" not in headers_dict:
                overrides = self._overrides
                if overrides.etag or (overrides.initialize and self._etag_hooks_on_instance()):
                    self._set_computed_etag()
                    not_modified = self.check_etag_header()
                else:
                    # compute_etag() and check_etag_header(), inlined for one body
                    # piece and for a request without If-None-Match
                    buffer = self._write_buffer
                    if len(buffer) == 1:
                        headers_dict["Etag"] = [f'"{_etag_sha1(buffer[0]).hexdigest()}"']
                    else:
                        headers_dict["Etag"] = [self.compute_etag()]
                    request_headers = request.headers
                    if type(request_headers) is httputil.HTTPHeaders:
                        not_modified = (
                            "If-None-Match" in request_headers._as_list and self.check_etag_header()
                        )
                    else:
                        not_modified = self.check_etag_header()
                if not_modified:
                    self._write_buffer = []
                    self.set_status(304)
                    status = 304
            buffer = self._write_buffer
            chunk = buffer[0] if len(buffer) == 1 else b"".join(buffer)
            if status in _BODYLESS or status < 200:
                if chunk:
                    raise RuntimeError(f"Cannot send a body with a {status} response")
                self._clear_representation_headers()
            elif "Content-Length" not in headers_dict:
                headers_dict["Content-Length"] = [str(len(chunk))]
            if self._new_cookies:
                self._add_new_cookies()
            headers = self._headers
            transforms = self._transforms
            if transforms:
                for transform in transforms:
                    status, headers, chunk = transform.transform_first_chunk(status, headers, chunk, True)
            if connection is not None:
                # raises ValueError for a head that cannot be sent: nothing was
                # written yet, so the caller can still answer with an error page
                if type(headers) is httputil.HTTPHeaders:
                    # get_all() as a list: cheaper than its generator
                    pairs = []
                    for name, values in headers._as_list.items():
                        if len(values) == 1:
                            pairs.append((name, values[0]))
                        else:
                            for value in values:
                                pairs.append((name, value))
                else:
                    pairs = headers.get_all()
                connection.write_head(status, pairs, self._reason, body=chunk, finish=True)
            self._write_buffer = []
            self._headers_written = True
            self._finished = True
        else:
            if self._write_buffer or self._transforms:
                # transforms (gzip) must see the last chunk even when it is empty
                self.flush(include_footers=True)
            self._finished = True
            try:
                if connection is not None:
                    # HTTPOutputError for a body short of its Content-Length,
                    # after the connection was closed
                    connection.finish()
            finally:
                self._after_finish()
            return
        self._after_finish()

    def _after_finish(self) -> None:
        request = self.request
        if request._finish_time is None:
            request._finish_time = time.time()
        self.application.log_request(self)
        try:
            self.on_finish()
        except Exception:
            app_log.error("Exception in on_finish of %r", request, exc_info=True)
        self._ui = None

    def _clear_representation_headers(self) -> None:
        # RFC 9110 §15.4.5: a 304 carries no representation metadata of its body.
        for name in ("Content-Encoding", "Content-Language", "Content-Type", "Content-Length"):
            self.clear_header(name)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Answer with an error page made by ``write_error``.

        If the response has started, it can only be cut short: the connection
        is closed after what was sent.
        """
        if self._headers_written:
            gen_log.error("Cannot send error response after headers written")
            if not self._finished:
                connection = self.request.connection
                self._finished = True
                if connection is not None:
                    connection.no_keep_alive = True
                    try:
                        connection.finish()
                    except httputil.HTTPOutputError:
                        pass  # cut short on purpose: the connection closes
                    except Exception:
                        gen_log.error("Failed to flush partial response", exc_info=True)
                self._after_finish()
            return
        self.clear()
        reason = kwargs.get("reason")
        exc_info = kwargs.get("exc_info")
        challenge = kwargs.get("exception")
        if exc_info:
            exc = exc_info[1]
            if isinstance(exc, HTTPError) and exc.reason:
                reason = exc.reason
            if isinstance(exc, HTTPAuthenticationRequired):
                challenge = exc
        if isinstance(challenge, HTTPAuthenticationRequired):
            try:
                for value in challenge.challenges():
                    self.add_header("WWW-Authenticate", value)
            except ValueError:
                self.clear_header("WWW-Authenticate")
                app_log.error("Invalid WWW-Authenticate challenge %r", challenge.challenges())
                status_code, reason = 500, None
        try:
            self.set_status(status_code, reason=reason)
        except ValueError:
            app_log.error("Invalid status %r or reason %r in send_error", status_code, reason)
            self.set_status(status_code if isinstance(status_code, int) and 100 <= status_code <= 999
                            else 500)
        if self._status_code == 405:
            self.set_header("Allow", ", ".join(self._allowed_methods()))
        if self._status_code in _BODYLESS or self._status_code < 200:
            # HTTPError(204) or (304): the status is the whole answer
            self._write_buffer = []
            self.finish()
            return
        try:
            self.write_error(status_code, **kwargs)
        except Exception:
            app_log.error("Uncaught exception in write_error", exc_info=True)
            self._write_buffer = []
        if not self._finished:
            self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Write the error page: the traceback as text/plain when the
        ``serve_traceback`` (or ``debug``) setting is on, else a small HTML page."""
        if self.settings.get("serve_traceback", self.settings.get("debug")) and "exc_info" in kwargs:
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            for line in traceback.format_exception(*kwargs["exc_info"]):
                self.write(line)
            self.finish()
            return
        legacy = getattr(self, "get_error_html", None)
        if legacy is not None:
            self.finish(legacy(status_code, **kwargs))
            return
        message = escape.xhtml_escape(self._reason or "")
        self.finish(
            f"<html><title>{status_code}: {message}</title>"
            f"<body>{status_code}: {message}</body></html>"
        )

    def redirect(
        self,
        url: str,
        permanent: bool = False,
        status: int | None = None,
        *,
        allow_external: bool | None = None,
    ) -> None:
        """Redirect to ``url``, sent as given (a relative URL too: the client
        resolves it against the request's URL, RFC 9110 §10.2.2, as with Tornado).

        Refused with a 400, so that no page becomes an open redirect: a
        ``url`` with a control character, and a ``url`` that leaves this site
        (another host, as a browser reads it, ``//host``, ``/\\host`` and
        ``https:host`` included, or a scheme such as ``javascript:``) when
        that host or scheme appears in the request (its decoded URI, path
        arguments or argument values), i.e. when the client chose where the
        redirect goes. ``allow_external=True``, or the ``allow_external_redirects``
        application setting, allows that on purpose; an external target the
        application chose itself (an OAuth provider) is never refused.
        """
        if self._headers_written:
            raise RuntimeError("Cannot redirect after headers have been written")
        if status is None:
            status = 301 if permanent else 302
        elif not 300 <= status <= 399:
            raise ValueError(f"redirect status must be 3xx, not {status}")
        url = _unicode(url)
        if origin.has_control_characters(url):
            raise HTTPError(400, "redirect target %r has control characters", url,
                            reason="Redirect target has control characters")
        # controls, spaces and non-ASCII are percent-encoded (UTF-8): a Location
        # header can carry neither a raw CR/LF nor a character outside latin-1
        location = urllib.parse.quote(url, safe=_LOCATION_SAFE)
        if allow_external is None:
            allow_external = bool(self.settings.get("allow_external_redirects", False))
        if not allow_external:
            self._refuse_open_redirect(location)
        self.set_status(status)
        self.set_header("Location", location)
        self.finish()

    def _refuse_open_redirect(self, location: str) -> None:
        request = self.request
        target = origin.redirect_target(location, request.protocol or "http")
        if not origin.is_external(target, request.host or ""):
            return
        if origin.taken_from(target, self._request_supplied_values()):
            raise HTTPError(
                400,
                "refused redirect to %r: its target comes from the request "
                "(pass allow_external=True to redirect() to allow it)",
                location,
                reason="Refused redirect to another site",
            )

    def _request_supplied_values(self) -> Iterable[str]:
        """What a client chose in its request, decoded, for ``_refuse_open_redirect``."""
        request = self.request
        yield urllib.parse.unquote(request.uri or "")
        yield from (str(arg) for arg in self.path_args)
        yield from (str(arg) for arg in self.path_kwargs.values())
        for values in request.arguments.values():
            for value in values:
                yield value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    def detach(self, protocol: Any = None) -> Any:
        """Take the connection over from HTTP: returns the Twisted transport.

        Tornado's ``detach()`` returns the ``IOStream``; here the transport
        takes its place (``transport.write(data)``, ``transport.loseConnection()``
        for ``stream.close()``), and what the peer sends from now on goes to
        ``protocol`` (a Twisted ``Protocol``, connected to the transport at
        once, with the bytes already received after the request); without
        one, those bytes are dropped. What was written and flushed is sent
        first; nothing else is: no further response, no ``on_finish``, no
        access log line.
        """
        connection = self.request.connection
        if connection is None or not hasattr(connection, "detach"):
            raise RuntimeError("this request's connection cannot be detached")
        self._finished = True
        return connection.detach(protocol)

    def _etag_hooks_on_instance(self) -> bool:
        # an ETag hook assigned on the instance (self.compute_etag = f in
        # initialize(), as Tornado allows): the bound methods found through
        # the instance are the defaults' unless one was; cheaper than
        # looking in __dict__ (see _Overrides)
        defaults = _DEFAULT_METHODS
        return (
            getattr(self.compute_etag, "__func__", None) is not defaults["compute_etag"]
            or getattr(self.check_etag_header, "__func__", None) is not defaults["check_etag_header"]
            or getattr(self.set_etag_header, "__func__", None) is not defaults["set_etag_header"]
        )

    def notifyFinish(self) -> defer.Deferred:
        """A Deferred fired when the response finished, or when the client went away."""
        return self.request.notifyFinish()

    # -- ETags -----------------------------------------------------------------------------------

    def compute_etag(self) -> str | None:
        """The ETag of the buffered body (SHA-1), or None to send none."""
        buffer = self._write_buffer
        if len(buffer) == 1:
            return f'"{_etag_sha1(buffer[0]).hexdigest()}"'
        hasher = _etag_sha1()
        for part in buffer:
            hasher.update(part)
        return f'"{hasher.hexdigest()}"'

    def set_etag_header(self) -> None:
        etag = self.compute_etag()
        if etag is not None:
            self.set_header("Etag", etag)

    def _set_computed_etag(self) -> None:
        # finish()'s automatic ETag; an overridden set_etag_header still runs
        if getattr(self.set_etag_header, "__func__", None) is not _DEFAULT_METHODS["set_etag_header"]:
            self.set_etag_header()
            return
        etag = self.compute_etag()
        if etag is not None:
            self._headers._as_list["Etag"] = [etag]

    def check_etag_header(self) -> bool:
        """True when the request's ``If-None-Match`` matches our ETag
        (weak comparison, ``*`` matches anything)."""
        header = self.request.headers.get("If-None-Match")
        if not header:
            return False
        computed = utf8(self._headers.get("Etag", ""))
        if not computed:
            return False
        tags = _ETAG_LIST_RE.findall(header)
        if "*" in tags:
            return True
        bare = computed[2:] if computed.startswith(b"W/") else computed
        for tag in tags:
            tag_bytes = tag.encode("latin-1")
            if tag_bytes.startswith(b"W/"):
                tag_bytes = tag_bytes[2:]
            if tag_bytes == bare:
                return True
        return False

    # -- users, locale, XSRF --------------------------------------------------------------------

    @property
    def current_user(self) -> Any:
        """The user of this request, from ``get_current_user()`` (cached); settable."""
        if not hasattr(self, "_current_user"):
            self._current_user = self.get_current_user()
        return self._current_user

    @current_user.setter
    def current_user(self, value: Any) -> None:
        self._current_user = value

    def get_current_user(self) -> Any:
        """Override to find the user (e.g. from a signed cookie)."""
        return None

    def get_login_url(self) -> str:
        """The ``login_url`` setting (``@authenticated`` redirects there)."""
        self.require_setting("login_url", "@cyclone.web.authenticated")
        return self.application.settings["login_url"]

    def get_template_path(self) -> str | None:
        """The ``template_path`` setting."""
        return self.application.settings.get("template_path")

    @property
    def locale(self) -> locale.Locale:
        """The locale of this request: ``get_user_locale()``, else the browser's."""
        if not hasattr(self, "_locale"):
            user_locale = self.get_user_locale()
            self._locale = user_locale if user_locale is not None else self.get_browser_locale()
        return self._locale

    @locale.setter
    def locale(self, value: locale.Locale) -> None:
        self._locale = value

    def get_user_locale(self) -> locale.Locale | None:
        """Override to choose the locale (e.g. from a cookie or the user)."""
        return None

    def get_browser_locale(self, default: str = "en_US") -> locale.Locale:
        """The best locale from ``Accept-Language`` (q-values honoured; only
        the first ``_MAX_LANGUAGE_RANGES`` ranges are read, since browsers send
        a handful and each costs objects)."""
        header = self.request.headers.get("Accept-Language")
        if header:
            weighted = []
            ranges = header.split(",", _MAX_LANGUAGE_RANGES)[:_MAX_LANGUAGE_RANGES]
            for position, part in enumerate(ranges):
                pieces = [p.strip() for p in part.split(";")]
                code = pieces[0]
                if not code:
                    continue
                quality = 1.0
                for param in pieces[1:]:
                    if param.startswith("q="):
                        try:
                            quality = float(param[2:])
                        except ValueError:
                            quality = 0.0
                if quality > 0:
                    weighted.append((-quality, position, code))
            if weighted:
                codes = [code.replace("-", "_") for _, _, code in sorted(weighted)]
                return locale.get(*codes)
        return locale.get(default)

    @property
    def xsrf_token(self) -> bytes:
        """This request's XSRF token (masked v2 by default); sets the cookie if needed.

        Settings: ``xsrf_cookie_name`` (``_xsrf``; e.g. ``__Host-xsrf`` with
        ``secure``), ``xsrf_cookie_version`` (2), ``xsrf_cookie_kwargs`` (extra
        ``set_cookie`` arguments, e.g. ``{"httponly": True, "samesite": "Strict"}``).
        """
        if not hasattr(self, "_xsrf_token"):
            version, token, timestamp = self._get_raw_xsrf_token()
            output_version = self.settings.get("xsrf_cookie_version", 2)
            cookie_kwargs = dict(self.settings.get("xsrf_cookie_kwargs", {}))
            self._xsrf_token = signing.encode_xsrf_token(token, timestamp, output_version)
            if version is None:
                if self.current_user and "expires_days" not in cookie_kwargs:
                    cookie_kwargs["expires_days"] = 30
                cookie_name = self.settings.get("xsrf_cookie_name", self.xsrf_cookie_name)
                self.set_cookie(cookie_name, self._xsrf_token, **cookie_kwargs)
        return self._xsrf_token

    def _get_raw_xsrf_token(self) -> tuple[int | None, bytes, float]:
        if not hasattr(self, "_raw_xsrf_token"):
            cookie = self.get_cookie(self.settings.get("xsrf_cookie_name", self.xsrf_cookie_name))
            version = token = timestamp = None
            if cookie:
                version, token, timestamp = signing.decode_xsrf_token(cookie)
            if token is None:
                version = None
                token = signing.new_xsrf_token()
                timestamp = time.time()
            self._raw_xsrf_token = (version, token, timestamp)
        return self._raw_xsrf_token

    def check_xsrf_cookie(self) -> None:
        """403 unless the ``_xsrf`` argument (or ``X-Xsrftoken``/``X-Csrftoken``
        header) matches the XSRF cookie."""
        given = (
            self.get_argument("_xsrf", None)
            or self.request.headers.get("X-Xsrftoken")
            or self.request.headers.get("X-Csrftoken")
        )
        if not given:
            raise HTTPError(403, "'_xsrf' argument missing from POST")
        _, token, _ = signing.decode_xsrf_token(given)
        _, expected, _ = self._get_raw_xsrf_token()
        if not token:
            raise HTTPError(403, "'_xsrf' argument has invalid format")
        if not signing.xsrf_tokens_match(token, expected):
            raise HTTPError(403, "XSRF cookie does not match POST argument")

    def check_cross_origin(self) -> None:
        """403 if this state-changing request comes from another origin.

        Run before ``prepare()`` for methods other than GET, HEAD and OPTIONS
        when the ``cross_origin_protection`` setting is on (off by default, as
        in Tornado 6.6). A browser's ``Sec-Fetch-Site: same-origin`` or
        ``none`` passes; ``cross-site``/``same-site`` pass only for an origin
        that ``check_trusted_origin`` accepts. Without Fetch Metadata, an
        ``Origin`` naming this host passes, another must be trusted, and no
        ``Origin`` (not a browser) passes.
        """
        request = self.request
        refusal = origin.cross_origin_refusal(
            request.method, request.headers, request.host or "", self.check_trusted_origin
        )
        if refusal is not None:
            raise HTTPError(403, "%s", refusal, reason="Cross-origin request refused")

    def check_trusted_origin(self, origin: str) -> bool:
        """True to accept a cross-origin request from ``origin`` (an ``Origin``
        value such as ``https://example.com``): by default, if it is in the
        ``trusted_origins`` setting. Called before ``prepare()``, so decide
        from the request alone; return True always to open an endpoint
        to every origin (it must then not rely on cookies for authentication)."""
        return origin in self.settings.get("trusted_origins", ())

    def xsrf_form_html(self) -> str:
        """``<input type="hidden" name="_xsrf" value="...">`` for forms."""
        return (
            '<input type="hidden" name="_xsrf" value="'
            + escape.xhtml_escape(self.xsrf_token)
            + '"/>'
        )

    # -- templates -------------------------------------------------------------------------------

    @property
    def ui(self) -> ObjectDict:
        """UI methods bound to this handler, plus ``modules``/``_tt_modules``."""
        if self._ui is None:
            ui = ObjectDict(
                (name, self._ui_method(method)) for name, method in self.application.ui_methods.items()
            )
            modules = _UIModuleNamespace(self, self.application.ui_modules)
            ui["_tt_modules"] = modules
            ui["modules"] = modules
            self._ui = ui
        return self._ui

    def _ui_method(self, method: Callable) -> Callable:
        return lambda *args, **kwargs: method(self, *args, **kwargs)

    def render(self, template_name: str, **kwargs: Any) -> defer.Deferred:
        """Render a template and finish the request with it; returns a Deferred
        fired once the page (including any Deferreds in the template) was sent."""
        if self._finished:
            raise RuntimeError("Cannot render() after finish()")
        rendered = self.render_string(template_name, **kwargs)
        if isinstance(rendered, bytes):
            self._finish_rendered(rendered)
            return defer.succeed(None)
        # the page waits on Deferreds: the request must not auto-finish meanwhile
        self._auto_finish = False
        d = ensure_deferred(rendered)
        d.addCallback(self._finish_rendered)
        d.addErrback(self._handle_failure)
        return d

    def _finish_rendered(self, html: bytes) -> None:
        modules = list(getattr(self, "_active_modules", {}).values())
        js_embed, js_files, css_embed, css_files, html_heads, html_bodies = [], [], [], [], [], []
        for module in modules:
            embed = module.embedded_javascript()
            if embed:
                js_embed.append(utf8(embed))
            files = module.javascript_files()
            if files:
                js_files.extend([files] if isinstance(files, (str, bytes)) else files)
            embed = module.embedded_css()
            if embed:
                css_embed.append(utf8(embed))
            files = module.css_files()
            if files:
                css_files.extend([files] if isinstance(files, (str, bytes)) else files)
            head = module.html_head()
            if head:
                html_heads.append(utf8(head))
            body = module.html_body()
            if body:
                html_bodies.append(utf8(body))
        if js_files:
            html = _insert_before(html, b"</body>", utf8(self.render_linked_js(js_files)))
        if js_embed:
            html = _insert_before(html, b"</body>", utf8(self.render_embed_js(js_embed)))
        if css_files:
            html = _insert_before(html, b"</head>", utf8(self.render_linked_css(css_files)))
        if css_embed:
            html = _insert_before(html, b"</head>", utf8(self.render_embed_css(css_embed)))
        if html_heads:
            html = _insert_before(html, b"</head>", b"".join(html_heads))
        if html_bodies:
            html = _insert_before(html, b"</body>", b"".join(html_bodies))
        if not self._finished:
            self.finish(html)

    def _static_paths(self, files: Iterable[str | bytes]) -> list[str]:
        """Unique URLs for JS/CSS files: relative ones go through static_url."""
        paths = []
        seen = set()
        for path in files:
            path = _unicode(path)
            if not _is_absolute_url(path):
                path = self.static_url(path)
            if path not in seen:
                seen.add(path)
                paths.append(path)
        return paths

    def render_linked_js(self, js_files: Iterable[str]) -> str:
        return "".join(
            f'<script src="{escape.xhtml_escape(p)}" type="text/javascript"></script>'
            for p in self._static_paths(js_files)
        )

    def render_embed_js(self, js_embed: Iterable[bytes]) -> bytes:
        return (
            b'<script type="text/javascript">\n//<![CDATA[\n'
            + b"\n".join(js_embed)
            + b"\n//]]>\n</script>"
        )

    def render_linked_css(self, css_files: Iterable[str]) -> str:
        return "".join(
            f'<link href="{escape.xhtml_escape(p)}" type="text/css" rel="stylesheet"/>'
            for p in self._static_paths(css_files)
        )

    def render_embed_css(self, css_embed: Iterable[bytes]) -> bytes:
        return b'<style type="text/css">\n' + b"\n".join(css_embed) + b"\n</style>"

    def render_string(self, template_name: str, **kwargs: Any) -> bytes | defer.Deferred:
        """Render a template to bytes (or a Deferred when it awaits Deferreds).

        Templates come from ``get_template_path()``, or the directory of the
        file that called this method.
        """
        settings_loader = self.application.settings.get("template_loader")
        if settings_loader is not None:
            # the application's own loader: never mix it into the per-path cache
            tmpl = settings_loader.load(template_name)
            namespace = self.get_template_namespace()
            namespace.update(kwargs)
            return tmpl.generate(**namespace)
        template_path = self.get_template_path()
        if not template_path:
            frame = sys._getframe(0)
            here = os.path.normcase(__file__)
            while frame.f_back is not None and os.path.normcase(frame.f_code.co_filename) == here:
                frame = frame.f_back
            template_path = os.path.dirname(os.path.abspath(frame.f_code.co_filename))
        with RequestHandler._template_loader_lock:
            loader = RequestHandler._template_loaders.get(template_path)
            if loader is None:
                loader = self.create_template_loader(template_path)
                RequestHandler._template_loaders[template_path] = loader
        tmpl = loader.load(template_name)
        namespace = self.get_template_namespace()
        namespace.update(kwargs)
        return tmpl.generate(**namespace)

    def get_template_namespace(self) -> dict[str, Any]:
        """The names every template rendered by this handler sees."""
        namespace = dict(
            handler=self,
            request=self.request,
            current_user=self.current_user,
            locale=self.locale,
            _=self.locale.translate,
            pgettext=self.locale.pgettext,
            static_url=self.static_url,
            xsrf_form_html=self.xsrf_form_html,
            reverse_url=self.reverse_url,
        )
        namespace.update(self.ui)
        return namespace

    def create_template_loader(self, template_path: str) -> template.BaseLoader:
        """The ``template_loader`` setting, or a ``Loader`` for ``template_path``
        honouring the ``autoescape`` and ``template_whitespace`` settings."""
        settings = self.application.settings
        if "template_loader" in settings:
            return settings["template_loader"]
        kwargs = {}
        if "autoescape" in settings:
            kwargs["autoescape"] = settings["autoescape"]
        if "template_whitespace" in settings:
            kwargs["whitespace"] = settings["template_whitespace"]
        return template.Loader(template_path, **kwargs)

    # -- URLs ---------------------------------------------------------------------------------------

    def static_url(self, path: str, include_host: bool | None = None, **kwargs: Any) -> str:
        """The URL of a static file, with a ``?v=`` hash for caching
        (``include_version=False`` leaves it out; ``include_host`` prefixes the host)."""
        self.require_setting("static_path", "static_url")
        get_url = self.settings.get("static_handler_class", StaticFileHandler).make_static_url
        if include_host is None:
            include_host = getattr(self, "include_host", False)
        base = f"{self.request.protocol}://{self.request.host}" if include_host else ""
        return base + get_url(self.settings, path, **kwargs)

    def reverse_url(self, name: str, *args: Any) -> str:
        """``self.application.reverse_url``."""
        return self.application.reverse_url(name, *args)

    def require_setting(self, name: str, feature: str = "this feature") -> None:
        """Raise if the application lacks setting ``name``."""
        if not self.application.settings.get(name):
            raise Exception(
                f"You must define the '{name}' setting in your application to use {feature}"
            )

    # -- execution -------------------------------------------------------------------------------

    def _execute(self, transforms: list, *args: Any, **kwargs: Any) -> defer.Deferred | None:
        """Run prepare() and the verb method; finish unless ``@asynchronous``."""
        self._transforms = transforms
        try:
            method = self.request.method
            if method not in self.SUPPORTED_METHODS:
                raise HTTPError(405)
            if args:
                decode = self.decode_argument
                self.path_args = [decode(arg) for arg in args]
            if kwargs:
                decode = self.decode_argument
                self.path_kwargs = {name: decode(value, name=name) for name, value in kwargs.items()}
            if method not in ("GET", "HEAD", "OPTIONS"):
                settings = self.application.settings
                if settings.get("cross_origin_protection"):
                    self.check_cross_origin()
                if settings.get("xsrf_cookies") and not getattr(self, "no_xsrf", False):
                    self.check_xsrf_cookie()
            result = self.prepare()
            if result is not None:
                d = ensure_deferred(result)
                d.addCallback(self._after_prepare)
                d.addErrback(self._handle_failure)
                return d
            self._prepared = True
            if self._finished or self._stream_request_body:
                return None
            return self._call_method()
        except Exception as exc:
            self._handle_error_safely(exc)
            return None

    def _handle_error_safely(self, exc: BaseException) -> None:
        try:
            self._handle_request_exception(exc)
        except Exception:
            app_log.error("Exception while answering an error for %r", self.request, exc_info=True)
            self._abort()

    def _after_prepare(self, _: Any) -> Any:
        self._prepared = True
        if self._finished:
            return None
        if self._stream_request_body:
            # the body is still arriving: the verb method runs at its end
            return None
        return self._call_method()

    def _call_method(self) -> Any:
        try:
            name = self.request.method.lower()
            method = getattr(self, name, None)
            if method is None:
                method = self.default
            args, kwargs = self.path_args, self.path_kwargs
            result = method(*args, **kwargs) if args or kwargs else method()
            if result is not None:
                return self._wait_for_method(result, name)
            if self._auto_finish and not self._finished:
                self.finish()
        except Exception as exc:
            self._handle_error_safely(exc)
        return None

    def _wait_for_method(self, result: Any, name: str) -> defer.Deferred:
        """Finish when what the verb method ``name`` returned is done."""
        if inspect.isgenerator(result):
            app_log.warning(
                "%s.%s returned a generator: decorate it with @defer.inlineCallbacks "
                "(to stream its chunks instead, return self.write_stream(generator))",
                type(self).__name__,
                name,
            )
            result = defer.inlineCallbacks(lambda: (yield from result))()
        d = ensure_deferred(result)
        d.addCallback(self._auto_finish_now)
        d.addErrback(self._handle_failure)
        return d

    def _auto_finish_now(self, _: Any) -> None:
        if self._auto_finish and not self._finished:
            self.finish()

    def _handle_failure(self, reason: failure.Failure) -> None:
        exc = reason.value
        if exc.__traceback__ is None and reason.tb is not None:
            exc = exc.with_traceback(reason.tb)
        try:
            self._handle_request_exception(exc)
        except Exception:
            # the error page itself failed: never leave the client waiting
            app_log.error("Exception while answering an error for %r", self.request, exc_info=True)
            self._abort()

    def _abort(self) -> None:
        """End a request that cannot be answered properly: 500 if nothing was
        sent yet, else close the connection after what was sent."""
        connection = self.request.connection
        if self._finished or connection is None:
            return
        self._finished = True
        connection.no_keep_alive = True
        try:
            if not self._headers_written:
                connection.write_head(500, [("Content-Length", "0")], finish=True)
            else:
                connection.finish()
        except Exception:
            connection.reject(500)

    def _handle_request_exception(self, exc: BaseException) -> None:
        exc = _unwrap_failure(exc)
        if isinstance(exc, httputil.HTTPInputError):
            # the request's own data broke a limit or the syntax (query
            # string, cookies, ...), found while the handler read it
            exc = _input_error(exc)
        if isinstance(exc, Finish):
            if not self._finished:
                self.finish(*exc.args)
            return
        if isinstance(exc, StreamClosedError):
            # the client went away while the handler streamed: nothing to answer
            gen_log.info("Client went away during %s", self._request_summary())
            if not self._finished:
                self._finished = True
                self._after_finish()
            return
        try:
            self.log_exception(type(exc), exc, exc.__traceback__)
        except Exception:
            app_log.error("Error in exception logger", exc_info=True)
        if self._finished:
            return
        if isinstance(exc, HTTPError):
            self.send_error(exc.status_code, exc_info=_exc_info(exc))
        else:
            self.send_error(500, exc_info=_exc_info(exc))

    def log_exception(self, typ: type, value: BaseException, tb: Any) -> None:
        """Log an exception: HTTPErrors as a warning line, others with a traceback."""
        if isinstance(value, HTTPError):
            if value.log_message:
                args = [value.status_code, self._request_summary()] + list(value.args)
                gen_log.warning("%d %s: " + value.log_message, *args)
        else:
            app_log.error(
                "Uncaught exception %s\n%r", self._request_summary(), self.request, exc_info=(typ, value, tb)
            )

    def _request_summary(self) -> str:
        return f"{self.request.method} {self.request.uri} ({self.request.remote_ip})"

    def _on_connection_lost(self) -> None:
        if not self._finished:
            try:
                self.on_connection_close()
            except Exception:
                app_log.error("Exception in on_connection_close", exc_info=True)


# RequestHandler's own methods that _Overrides looks for
_DEFAULT_METHODS = {
    name: getattr(RequestHandler, name)
    for name in ("clear", "initialize", "compute_etag", "set_etag_header", "check_etag_header",
                 "_checked_name", "_convert_header_value")
}


def _insert_before(html: bytes, marker: bytes, snippet: bytes) -> bytes:
    index = html.rfind(marker)
    if index < 0:
        return html + snippet
    return html[:index] + snippet + b"\n" + html[index:]


def _is_absolute_url(path: str) -> bool:
    return path.startswith("/") or path.startswith("http:") or path.startswith("https:")


def create_signed_value(
    secret: Any, name: str, value: str | bytes, version: int | None = None, clock: Any = None,
    key_version: int | None = None,
) -> bytes:
    """Sign ``value`` (see ``cyclone.signing``)."""
    return _create_signed_value(secret, name, value, version=version, clock=clock, key_version=key_version)


def decode_signed_value(
    secret: Any, name: str, value: Any, max_age_days: float = 31, clock: Any = None,
    min_version: int | None = None,
) -> bytes | None:
    """Verify and decode a signed value (see ``cyclone.signing``)."""
    return _decode_signed_value(secret, name, value, max_age_days=max_age_days, clock=clock,
                                min_version=min_version)


# ----------------------------------------------------------------------------
# Decorators
# ----------------------------------------------------------------------------


def asynchronous(method: Callable) -> Callable:
    """Keep the request open after the method returns, until ``self.finish()``."""

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Any:
        self._auto_finish = False
        return method(self, *args, **kwargs)

    return wrapper


def stream_request_body(cls: type[RequestHandler]) -> type[RequestHandler]:
    """Class decorator: the body is passed to ``data_received(chunk)`` as it
    arrives (after ``prepare()``), instead of being buffered in ``request.body``.

    ``prepare()`` may raise the limit for this request with
    ``self.request.connection.set_max_body_size(n)``.
    """
    if not issubclass(cls, RequestHandler):
        raise TypeError(f"expected subclass of RequestHandler, got {cls!r}")
    cls._stream_request_body = True
    return cls


def _refuse_scheme_relative(path: str) -> None:
    # "//evil.example" or "/\\evil.example" redirected to with a slash added or
    # removed would be read by a browser as another host (403, as Tornado)
    if path.startswith(("//", "/\\")):
        raise HTTPError(403, "refused to redirect %r: it would lead to another host", path)


def removeslash(method: Callable) -> Callable:
    """Redirect ``/path/`` to ``/path`` (GET/HEAD); 404 for other methods."""

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Any:
        if self.request.path.endswith("/"):
            if self.request.method in ("GET", "HEAD"):
                _refuse_scheme_relative(self.request.path)
                uri = self.request.path.rstrip("/")
                if uri:
                    if self.request.query:
                        uri += "?" + self.request.query
                    self.redirect(uri, permanent=True)
                    return None
            else:
                raise HTTPError(404)
        return method(self, *args, **kwargs)

    return wrapper


def addslash(method: Callable) -> Callable:
    """Redirect ``/path`` to ``/path/`` (GET/HEAD); 404 for other methods."""

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Any:
        if not self.request.path.endswith("/"):
            if self.request.method in ("GET", "HEAD"):
                _refuse_scheme_relative(self.request.path)
                uri = self.request.path + "/"
                if self.request.query:
                    uri += "?" + self.request.query
                self.redirect(uri, permanent=True)
                return None
            raise HTTPError(404)
        return method(self, *args, **kwargs)

    return wrapper


def authenticated(method: Callable) -> Callable:
    """Require ``current_user``: GET/HEAD redirect to ``login_url?next=...``,
    other methods get 403."""

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Any:
        if not self.current_user:
            if self.request.method in ("GET", "HEAD"):
                login_url = self.get_login_url()
                if "?" not in login_url:
                    if urllib.parse.urlsplit(login_url).scheme:
                        next_url = self.request.full_url()
                    else:
                        next_url = self.request.uri
                    login_url += "?" + urllib.parse.urlencode({"next": next_url})
                self.redirect(login_url)
                return None
            raise HTTPError(403)
        return method(self, *args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------
# Output transforms
# ----------------------------------------------------------------------------


class OutputTransform:
    """Changes a response on its way out (e.g. gzip). One instance per request."""

    def __init__(self, request: HTTPRequest) -> None:
        pass

    def transform_first_chunk(
        self, status_code: int, headers: httputil.HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, httputil.HTTPHeaders, bytes]:
        return status_code, headers, chunk

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        return chunk


class GZipContentEncoding(OutputTransform):
    """gzip the response when the client accepts it (settings
    ``compress_response`` or cyclone's ``gzip``); adds ``Vary: Accept-Encoding``."""

    CONTENT_TYPES = {
        "application/javascript",
        "application/x-javascript",
        "application/xml",
        "application/atom+xml",
        "application/json",
        "application/xhtml+xml",
        "image/svg+xml",
    }
    GZIP_LEVEL = 6
    MIN_LENGTH = 1024

    def __init__(self, request: HTTPRequest) -> None:
        self._gzipping = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        self._buffer: io.BytesIO | None = None
        self._file: gzip.GzipFile | None = None

    def _compressible_type(self, ctype: str) -> bool:
        return ctype.startswith("text/") or ctype in self.CONTENT_TYPES

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        if "Vary" in headers:
            if "accept-encoding" not in headers["Vary"].lower():
                headers["Vary"] += ", Accept-Encoding"
        else:
            headers["Vary"] = "Accept-Encoding"
        if self._gzipping:
            ctype = headers.get("Content-Type", "").split(";")[0].strip()
            self._gzipping = (
                self._compressible_type(ctype)
                and (not finishing or len(chunk) >= self.MIN_LENGTH)
                and "Content-Encoding" not in headers
                and status_code not in _BODYLESS
                and status_code >= 200
                # a byte range of the identity body must stay uncompressed
                and status_code != 206
                and "Content-Range" not in headers
            )
        if self._gzipping:
            headers["Content-Encoding"] = "gzip"
            self._buffer = io.BytesIO()
            self._file = gzip.GzipFile(mode="w", fileobj=self._buffer, compresslevel=self.GZIP_LEVEL)
            chunk = self.transform_chunk(chunk, finishing)
            if "Content-Length" in headers:
                if finishing:
                    headers["Content-Length"] = str(len(chunk))
                else:
                    del headers["Content-Length"]
            etag = headers.get("Etag")
            if etag and not etag.startswith("W/"):
                # the bytes differ from the identity representation
                headers["Etag"] = "W/" + etag
        return status_code, headers, chunk

    def transform_chunk(self, chunk, finishing):
        if self._gzipping:
            self._file.write(chunk)
            if finishing:
                self._file.close()
            else:
                self._file.flush()
            chunk = self._buffer.getvalue()
            self._buffer.truncate(0)
            self._buffer.seek(0)
        return chunk


# ----------------------------------------------------------------------------
# UI modules
# ----------------------------------------------------------------------------


class UIModule:
    """A reusable piece of UI rendered with ``{% module Name(...) %}``."""

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler
        self.request = handler.request
        self.ui = handler.ui
        self.locale = handler.locale

    @property
    def current_user(self) -> Any:
        return self.handler.current_user

    def render(self, *args: Any, **kwargs: Any) -> str | bytes:
        raise NotImplementedError()

    def embedded_javascript(self) -> str | None:
        return None

    def javascript_files(self) -> Iterable[str] | None:
        return None

    def embedded_css(self) -> str | None:
        return None

    def css_files(self) -> Iterable[str] | None:
        return None

    def html_head(self) -> str | None:
        return None

    def html_body(self) -> str | None:
        return None

    def render_string(self, path: str, **kwargs: Any) -> bytes | defer.Deferred:
        return self.handler.render_string(path, **kwargs)


class _linkify(UIModule):
    def render(self, text: str, **kwargs: Any) -> str:
        return escape.linkify(text, **kwargs)


class _xsrf_form_html(UIModule):
    def render(self) -> str:
        return self.handler.xsrf_form_html()


class TemplateModule(UIModule):
    """``{% module Template("file.html", **kwargs) %}``: renders another
    template; it may call ``set_resources(javascript_files=..., ...)``."""

    def __init__(self, handler: RequestHandler) -> None:
        super().__init__(handler)
        self._resource_list: list[dict[str, Any]] = []
        self._resource_dict: dict[str, dict[str, Any]] = {}

    def render(self, path: str, **kwargs: Any) -> bytes | defer.Deferred:
        def set_resources(**resources: Any) -> str:
            if path not in self._resource_dict:
                self._resource_list.append(resources)
                self._resource_dict[path] = resources
            elif self._resource_dict[path] != resources:
                raise ValueError("set_resources called with different resources for the same template")
            return ""

        return self.render_string(path, set_resources=set_resources, **kwargs)

    def _get_resources(self, key: str) -> Iterable[str]:
        return (r[key] for r in self._resource_list if key in r)

    def embedded_javascript(self) -> str:
        return "\n".join(self._get_resources("embedded_javascript"))

    def javascript_files(self) -> list[str]:
        result = []
        for f in self._get_resources("javascript_files"):
            result.extend([f] if isinstance(f, (str, bytes)) else f)
        return result

    def embedded_css(self) -> str:
        return "\n".join(self._get_resources("embedded_css"))

    def css_files(self) -> list[str]:
        result = []
        for f in self._get_resources("css_files"):
            result.extend([f] if isinstance(f, (str, bytes)) else f)
        return result

    def html_head(self) -> str:
        return "".join(self._get_resources("html_head"))

    def html_body(self) -> str:
        return "".join(self._get_resources("html_body"))


class _UIModuleNamespace:
    """``_tt_modules.Name(...)`` in templates: renders the module for this handler."""

    def __init__(self, handler: RequestHandler, ui_modules: dict[str, type[UIModule]]) -> None:
        self.handler = handler
        self.ui_modules = ui_modules

    def __getitem__(self, key: str) -> Callable:
        return self._renderer(key)

    def __getattr__(self, key: str) -> Callable:
        try:
            return self._renderer(key)
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

    def _renderer(self, name: str) -> Callable:
        module_class = self.ui_modules[name]
        handler = self.handler

        def render(*args: Any, **kwargs: Any) -> Any:
            active = handler.__dict__.setdefault("_active_modules", {})
            module = active.get(name)
            if module is None:
                module = active[name] = module_class(handler)
            return module.render(*args, **kwargs)

        return render


# ----------------------------------------------------------------------------
# Built-in handlers
# ----------------------------------------------------------------------------


class ErrorHandler(RequestHandler):
    """Answers every request with ``status_code`` (404 by default)."""

    no_xsrf = True

    def initialize(self, status_code: int = 404, error: HTTPError | None = None) -> None:
        self.set_status(status_code)
        self._error = error

    def prepare(self) -> None:
        if self._error is not None:
            raise self._error
        raise HTTPError(self._status_code)

    def check_xsrf_cookie(self) -> None:
        # an error answer must not turn into 403 because of XSRF
        pass

    def check_cross_origin(self) -> None:
        # nor because of cross-origin protection
        pass


class RedirectHandler(RequestHandler):
    """Redirects to ``url``; ``{0}``/``{name}`` in it take the path arguments,
    and the query string is kept."""

    def initialize(self, url: str, permanent: bool = True) -> None:
        self._url = url
        self._permanent = permanent

    def get(self, *args: Any, **kwargs: Any) -> None:
        to_url = self._url.format(*args, **kwargs)
        # what the path supplies may fill in the path or query, never the
        # scheme or host: "/{0}/b" with "/evil.example" is "//evil.example/b"
        scheme = self.request.protocol or "http"

        def where(url: str) -> tuple:
            return origin.redirect_target(url, scheme)[:2]

        def filled_with(value: str) -> tuple:
            return where(self._url.format(*(value for _ in args), **{name: value for name in kwargs}))

        # Where the template leads whatever a plain segment fills it with;
        # when the placeholder touches the host ("https://example.com{0}"),
        # where it leads once the substitution starts a path
        fixed, other = filled_with("a"), filled_with("b")
        if fixed != other:
            fixed, other = filled_with("/a"), filled_with("/b")
        if origin.has_control_characters(to_url) or not fixed == other == where(to_url):
            # the log line starts with Tornado's wording, which tests look for
            raise HTTPError(400, "Redirect URL cannot change the scheme or netloc: %r from %r",
                            to_url, self._url, reason="Redirect URL cannot change the scheme or host")
        if self.request.query_arguments:
            to_url = httputil.url_concat(
                to_url, list(httputil.qs_to_qsl(self.request.query_arguments))
            )
        # the template chose the target: only the check above applies
        self.redirect(to_url, permanent=self._permanent, allow_external=True)


class FallbackHandler(RequestHandler):
    """Hands the request to ``fallback(request)``, a callable that answers
    through ``request.connection`` (e.g. a ``cyclone.wsgi.WSGIContainer``).

    When the route has groups and the fallback takes them, it is called as a
    routed callable is: ``fallback(request, path_args=[...],
    path_kwargs={...})``, the groups undecoded (Latin-1 strings of the
    percent-decoded bytes): a WSGI container makes the last one ``PATH_INFO``.
    """

    def initialize(self, fallback: Callable[..., Any]) -> None:
        self.fallback = fallback

    def decode_argument(self, value: bytes | str, name: str | None = None) -> str:
        # the fallback decodes the path itself (WSGI: Latin-1 "native strings")
        return value.decode("latin-1") if isinstance(value, bytes) else value

    def prepare(self) -> Any:
        self._finished = True
        fallback = self.fallback
        if (self.path_args or self.path_kwargs) and _takes_path_arguments(fallback):
            result = fallback(self.request, path_args=self.path_args, path_kwargs=self.path_kwargs)
        else:
            result = fallback(self.request)
        if result is not None:
            return ensure_deferred(result)
        return None


def _takes_path_arguments(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return "path_args" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


# ----------------------------------------------------------------------------
# Routing
# ----------------------------------------------------------------------------


url = URLSpec


class _ApplicationRouter(ReversibleRuleRouter):
    """The rule router of an ``Application``: besides ``RuleRouter``'s
    targets, a ``RequestHandler`` class (served by the application) and a
    list of rules (a nested router of the same application)."""

    def __init__(self, application: "Application", rules: list | None = None) -> None:
        self.application = application
        super().__init__(rules)

    def add_rules(self, rules: list) -> None:
        super().add_rules(rules)
        self.application._routes = None  # the fast path is decided again

    def process_rule(self, rule: Rule) -> Rule:
        rule = super().process_rule(rule)
        if isinstance(rule._target, (list, tuple)):
            rule.target = _ApplicationRouter(self.application, rule._target)
        return rule

    def get_target_delegate(self, target: Any, request: HTTPRequest, **target_params: Any) -> Any:
        if isinstance(target, type) and issubclass(target, RequestHandler):
            return self.application.get_handler_delegate(request, target, **target_params)
        return super().get_target_delegate(target, request, **target_params)


# ----------------------------------------------------------------------------
# Application
# ----------------------------------------------------------------------------


def _request_limits(settings: dict[str, Any]) -> dict[str, Any]:
    """The parsing limits each request of an application gets (only those
    its settings change): attributes of ``HTTPServerRequest``."""
    limits: dict[str, Any] = {}
    config = settings.get("parse_body_config")
    if config is not None and not isinstance(config, httputil.ParseBodyConfig):
        raise TypeError(f"parse_body_config must be a ParseBodyConfig, not {type(config)!r}")
    flat = {
        ("urlencoded", "max_arguments"): settings.get("max_body_arguments"),
        ("multipart", "enabled"): settings.get("multipart_enabled"),
        ("multipart", "max_parts"): settings.get("max_multipart_parts"),
        ("multipart", "max_part_header_size"): settings.get("max_multipart_part_header_size"),
    }
    if config is not None or any(v is not None for v in flat.values()):
        base = config or httputil._default_parse_body_config
        config = httputil.ParseBodyConfig(
            multipart=dataclasses.replace(base.multipart),
            urlencoded=dataclasses.replace(base.urlencoded),
        )
        for (part, name), value in flat.items():
            if value is not None:
                setattr(getattr(config, part), name, value)
        limits["parse_body_config"] = config
    for name in ("max_query_arguments", "max_cookies"):
        if settings.get(name) is not None:
            limits[name] = settings[name]
    return limits


class Application(ReversibleRouter, protocol.ServerFactory):
    """A collection of request handlers that make up a web application; a
    Twisted ``ServerFactory``: ``reactor.listenTCP(8888, app)``, and a
    ``cyclone.routing.ReversibleRouter`` (a target of another router's rules).

    ``handlers`` is a list of rules: ``URLSpec`` objects, tuples ``(pattern,
    handler)``, ``(pattern, handler, kwargs)``, ``(pattern, handler, kwargs,
    name)`` (a handler may be a dotted name), or ``cyclone.routing.Rule`` objects
    whose target is a handler class, a list of rules, another ``Router`` (an
    ``Application``), or anything a ``RuleRouter`` serves. They go into
    ``wildcard_router``; ``default_router`` holds the host rules of
    ``add_handlers`` and, last, a rule sending every host to
    ``wildcard_router``. ``default_host``: the host whose ``add_handlers``
    rules also serve requests for hosts no pattern matches (unless they came
    through a proxy, with ``X-Real-Ip``).

    Settings read by this module: ``debug`` (turns on ``serve_traceback``,
    ``compiled_template_cache=False``, ``static_hash_cache=False``),
    ``serve_traceback``, ``compiled_template_cache``, ``static_hash_cache``,
    ``compress_response``/``gzip``, ``cookie_secret``, ``key_version``,
    ``xsrf_cookies``, ``xsrf_cookie_name``, ``xsrf_cookie_version``, ``xsrf_cookie_kwargs``,
    ``login_url``, ``template_path``, ``template_loader``, ``autoescape``,
    ``template_whitespace``, ``static_path``, ``static_url_prefix`` ("/static/"),
    ``static_handler_class``, ``static_handler_args``, ``ui_modules``,
    ``ui_methods``, ``log_function``, ``default_handler_class``,
    ``default_handler_args``, ``log_bridge`` (True: send ``cyclone.*`` logs to
    Twisted's log when stdlib logging is not configured).  Parsing limits
    (read when the application is made; past one the answer is a 400 that
    says which): ``parse_body_config`` (a ``httputil.ParseBodyConfig``;
    default the global one of ``httputil.set_parse_body_config``), and over
    it ``max_body_arguments`` (1000), ``multipart_enabled`` (True),
    ``max_multipart_parts`` (100), ``max_multipart_part_header_size``
    (10240); ``max_query_arguments`` (default: ``max_body_arguments``'s
    value) and ``max_cookies`` (3000).  The HTTP server's
    settings (limits, timeouts, ``xheaders``, ``trusted_downstream``,
    ``no_keep_alive``) are read by ``cyclone.httpserver``.
    """

    protocol = HTTPConnection
    #: the shared Redis pool and pub/sub connection (``cyclone.redis``), made on first use
    redis = lazy_attribute("cyclone.redis.shared_pool")
    redis_pubsub = lazy_attribute("cyclone.redis.shared_pubsub")

    def __init__(
        self,
        handlers: list | None = None,
        default_host: str | None = None,
        transforms: list | None = None,
        error_handler: type[RequestHandler] | None = None,
        **settings: Any,
    ) -> None:
        if transforms is None:
            self.transforms: list[type[OutputTransform]] = []
            if settings.get("compress_response") or settings.get("gzip"):
                self.transforms.append(GZipContentEncoding)
        else:
            self.transforms = list(transforms)
        self.default_host = default_host
        self.settings = ObjectDict(settings)
        self.error_handler = error_handler
        self.ui_modules: dict[str, type[UIModule]] = {
            "linkify": _linkify,
            "xsrf_form_html": _xsrf_form_html,
            "Template": TemplateModule,
        }
        self.ui_methods: dict[str, Callable] = {}
        self._load_ui_modules(settings.get("ui_modules", {}))
        self._load_ui_methods(settings.get("ui_methods", {}))
        if self.settings.get("debug"):
            self.settings.setdefault("compiled_template_cache", False)
            self.settings.setdefault("static_hash_cache", False)
            self.settings.setdefault("serve_traceback", True)
        if self.settings.get("static_path"):
            path = self.settings["static_path"]
            handlers = list(handlers or [])
            static_url_prefix = settings.get("static_url_prefix", "/static/")
            static_handler_class = settings.get("static_handler_class", StaticFileHandler)
            static_handler_args = dict(settings.get("static_handler_args", {}))
            static_handler_args["path"] = path
            for pattern in (
                re.escape(static_url_prefix) + r"(.*)",
                r"/(favicon\.ico)",
                r"/(robots\.txt)",
            ):
                handlers.insert(0, (pattern, static_handler_class, static_handler_args))
        # the plain routes, [(regex, URLSpec)], while the rules are a list of
        # paths and handler classes only (False: they are not; None: not known)
        self._routes: list[tuple[re.Pattern, Rule]] | bool | None = None
        self.wildcard_router = _ApplicationRouter(self, handlers)
        self._wildcard_rule = Rule(AnyMatches(), self.wildcard_router)
        self.default_router = _ApplicationRouter(self, [self._wildcard_rule])
        self._request_limits = _request_limits(self.settings)

    # -- configuration -------------------------------------------------------------------

    def add_handlers(self, host_pattern: str, host_handlers: list) -> None:
        """Serve the rules ``host_handlers`` for hosts matching ``host_pattern``
        (a regex; ``$`` is appended). Host patterns are tried in the order
        they were added, before the constructor's handlers; a request goes on
        to the next pattern that matches its host while a pattern's rules
        have nothing for its path."""
        matcher = HostMatches(host_pattern)
        self.default_router.rules.insert(-1, Rule(matcher, _ApplicationRouter(self, host_handlers)))
        self._routes = None
        if self.default_host is not None:
            self.wildcard_router.add_rules([(DefaultHostMatches(self, matcher.host_pattern), host_handlers)])

    def add_transform(self, transform_class: type[OutputTransform]) -> None:
        self.transforms.append(transform_class)

    def _load_ui_methods(self, methods: Any) -> None:
        if isinstance(methods, types.ModuleType):
            self._load_ui_methods({n: getattr(methods, n) for n in dir(methods)})
        elif isinstance(methods, list):
            for m in methods:
                self._load_ui_methods(m)
        else:
            for name, fn in methods.items():
                if not name.startswith("_") and callable(fn) and name[0].lower() == name[0]:
                    self.ui_methods[name] = fn

    def _load_ui_modules(self, modules: Any) -> None:
        if isinstance(modules, types.ModuleType):
            self._load_ui_modules({n: getattr(modules, n) for n in dir(modules)})
        elif isinstance(modules, list):
            for m in modules:
                self._load_ui_modules(m)
        else:
            for name, cls in modules.items():
                if isinstance(cls, type) and issubclass(cls, UIModule):
                    self.ui_modules[name] = cls

    def reverse_url(self, name: str, *args: Any, **kwargs: Any) -> str:
        """The path of the rule named ``name`` (here or in a nested router),
        with ``args`` in its groups; keyword arguments become a sorted query
        string. ``KeyError`` if no rule has that name."""
        path = self.default_router.reverse_url(name, *args)
        if path is None:
            raise KeyError(f"{name} not found in named urls")
        if kwargs:
            path += "?" + urllib.parse.urlencode(sorted(kwargs.items()))
        return path

    def listen(
        self,
        port: int,
        address: str | None = None,
        *,
        family: Any = None,
        backlog: int = 128,
        flags: int | None = None,
        reuse_port: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Serve on ``port`` (``address`` None or "": every interface) with a
        ``cyclone.httpserver.HTTPServer(self, **kwargs)``, which is returned
        (``stop()``; ``getHost()`` as the port this returned before). Under
        ``asyncio.run()`` it starts Twisted's asyncio reactor on that loop."""
        import socket

        from cyclone.httpserver import HTTPServer

        server = HTTPServer(self, **kwargs)
        server.listen(port, address, family=family or socket.AF_UNSPEC, backlog=backlog,
                      flags=flags, reuse_port=reuse_port)
        return server

    def startFactory(self) -> None:
        if self.settings.get("log_bridge", True):
            bridge_to_twisted()

    # -- serving --------------------------------------------------------------------------

    def find_handler(self, request: HTTPRequest, **kwargs: Any) -> Any:
        """The request delegate for ``request`` (``cyclone.routing.Router``):
        the first matching rule's, else one for ``default_handler_class``,
        else a 404 (by ``error_handler`` if given)."""
        routes = self._routes
        if routes is None:
            routes = self._plain_routes()
        if routes is False:
            delegate = self.default_router.find_handler(request)
            if delegate is not None:
                return delegate
            return self.get_handler_delegate(request, *self._no_route())
        path = request.path
        for regex, spec in routes:
            match = regex.match(path)
            if match is not None:
                target = spec.target  # a dotted name is imported here, once
                if not (isinstance(target, type) and issubclass(target, RequestHandler)):
                    self._routes = None  # it named another kind of target: not plain
                    return self.find_handler(request)
                return self.get_handler_delegate(request, target, spec.target_kwargs, *_path_arguments(match))
        return self.get_handler_delegate(request, *self._no_route())

    def get_handler_delegate(
        self,
        request: HTTPRequest,
        target_class: type[RequestHandler],
        target_kwargs: dict[str, Any] | None = None,
        path_args: list | None = None,
        path_kwargs: dict[str, Any] | None = None,
    ) -> "_RequestDispatcher":
        """The request delegate that serves ``request`` with a
        ``target_class(self, request, **target_kwargs)`` handler, calling
        its method with ``path_args`` and ``path_kwargs``."""
        dispatcher = _new_dispatcher(_RequestDispatcher)
        dispatcher.application = self
        dispatcher.connection = request.connection
        dispatcher.request = request
        dispatcher.handler = None
        dispatcher.chunks = None
        dispatcher.stream = False
        dispatcher.handler_class = target_class
        dispatcher.handler_kwargs = target_kwargs or _NO_PATH_KWARGS
        dispatcher.path_args = path_args or _NO_PATH_ARGS
        dispatcher.path_kwargs = path_kwargs or _NO_PATH_KWARGS
        if self._request_limits:
            request.__dict__.update(self._request_limits)
        return dispatcher

    def _plain_routes(self) -> list[tuple[re.Pattern, Rule]] | bool:
        """Decide (and keep) whether requests take the fast path: the rules
        are the constructor's list of path patterns and handler classes (or
        dotted names), and nothing that routing calls is overridden."""
        routes: list[tuple[re.Pattern, Rule]] | bool = False
        cls = type(self)
        if (
            cls.find_handler is Application.find_handler
            and cls.get_handler_delegate is Application.get_handler_delegate
            and type(self.default_router) is _ApplicationRouter
            and type(self.wildcard_router) is _ApplicationRouter
            and len(self.default_router.rules) == 1
            and self.default_router.rules[0] is self._wildcard_rule
            and self._wildcard_rule.target is self.wildcard_router
            and type(self._wildcard_rule.matcher) is AnyMatches
        ):
            routes = []
            for rule in self.wildcard_router.rules:
                target = rule._target
                if type(rule.matcher) is not PathMatches or not (
                    isinstance(target, str) or (isinstance(target, type) and issubclass(target, RequestHandler))
                ):
                    routes = False
                    break
                routes.append((rule.matcher.regex, rule))
        self._routes = routes
        return routes

    def _no_route(self) -> tuple[type[RequestHandler], dict[str, Any]]:
        """The handler, and its arguments, of a request no rule serves."""
        settings = self.settings
        if settings.get("default_handler_class"):
            return settings["default_handler_class"], settings.get("default_handler_args", {})
        if self.error_handler is not None:
            return self.error_handler, {"status_code": 404}
        return ErrorHandler, {"status_code": 404}

    def start_request(self, connection: HTTPConnection, request: HTTPRequest) -> Any:
        """The request delegate for ``cyclone.httpserver`` (one per request)."""
        routes = self._routes
        if routes is None:
            routes = self._plain_routes()
        if routes is False:
            return self.find_handler(request)
        # find_handler() and get_handler_delegate(), inline: the common case
        path = request.path
        for regex, spec in routes:
            match = regex.match(path)
            if match is not None:
                handler_class = spec._target
                if handler_class.__class__ is str:
                    return self.find_handler(request)  # a dotted name: imported there, once
                kwargs = spec.target_kwargs
                if not regex.groups:
                    args, path_kwargs = _NO_PATH_ARGS, _NO_PATH_KWARGS
                else:
                    args, path_kwargs = _path_arguments(match)
                break
        else:
            handler_class, kwargs = self._no_route()
            args, path_kwargs = _NO_PATH_ARGS, _NO_PATH_KWARGS
        # _RequestDispatcher(...), without the cost of calling a class with an __init__
        dispatcher = _new_dispatcher(_RequestDispatcher)
        dispatcher.application = self
        dispatcher.connection = connection
        dispatcher.request = request
        dispatcher.handler = None
        dispatcher.chunks = None
        dispatcher.stream = False
        dispatcher.handler_class = handler_class
        dispatcher.handler_kwargs = kwargs
        dispatcher.path_args = args
        dispatcher.path_kwargs = path_kwargs
        limits = self._request_limits
        if limits:
            request.__dict__.update(limits)
        return dispatcher

    def __call__(self, request: HTTPRequest) -> RequestHandler | None:
        """Serve a request whose body is already read (the original cyclone's
        interface); returns the handler (None if a nested router's target
        that is not a handler served it)."""
        delegate = self.find_handler(request)
        if isinstance(delegate, _RequestDispatcher):
            delegate.execute()
            return delegate.handler
        delegate.headers_received()
        if request.body:
            delegate.data_received(request.body)
        delegate.finish()
        return None

    def log_request(self, handler: RequestHandler) -> None:
        """Log a finished request to ``cyclone.access`` (or call the
        ``log_function`` setting with the handler)."""
        log_function = self.settings.get("log_function")
        if log_function is not None:
            log_function(handler)
            return
        # get_status(), unless the handler overrides it
        status = handler.get_status()
        if status < 400:
            level = 20
        elif status < 500:
            level = 30
        else:
            level = 40
        if not access_log.isEnabledFor(level):
            return
        request_time = 1000.0 * handler.request.request_time()
        access_log.log(level, "%d %s %.2fms", status, handler._request_summary(), request_time)


# Accept-Language ranges read by get_browser_locale
_MAX_LANGUAGE_RANGES = 100


def _path_arguments(match: re.Match) -> tuple[list, dict]:
    """The handler method's arguments from a path match: percent-decoded
    bytes (handlers decode them with decode_argument: 400 on bad UTF-8), by
    name if the groups are named; None for a group that did not match."""
    if match.re.groupindex:
        return [], {str(k): _unquote_path(v) for k, v in match.groupdict().items()}
    return [_unquote_path(g) for g in match.groups()], {}


def _input_error(exc: httputil.HTTPInputError) -> HTTPError:
    """The 400 for malformed or over-limit input; the reason phrase says
    what was wrong (printable ASCII only, so it is always a valid one)."""
    message = _UNPRINTABLE_RE.sub("?", str(exc))[:200] or "Bad Request"
    return HTTPError(400, "%s", message, reason=message)


_UNPRINTABLE_RE = re.compile(r"[^\x20-\x7e]")


_NO_TRANSFORMS: list = []  # shared, never mutated
# a _RequestDispatcher without a call to its __init__ (start_request sets its attributes)
_new_dispatcher = object.__new__
# what a pattern without groups passes to the handler: shared, never mutated
_NO_PATH_ARGS: tuple = ()
_NO_PATH_KWARGS: dict = {}


class _RequestDispatcher:
    """The request delegate that serves a request with a handler of an
    application (``Application.start_request`` and ``get_handler_delegate``
    set the attributes of ``__init__`` themselves)."""

    __slots__ = ("application", "connection", "request", "handler", "chunks", "stream", "handler_class",
                 "handler_kwargs", "path_args", "path_kwargs")

    def __init__(
        self,
        application: Application,
        connection: HTTPConnection,
        request: HTTPRequest,
        handler_class: type[RequestHandler],
        handler_kwargs: dict[str, Any],
        path_args: list,
        path_kwargs: dict[str, Any],
    ) -> None:
        self.application = application
        self.connection = connection
        self.request = request
        self.handler: RequestHandler | None = None
        self.chunks: list[bytes] | None = None  # the body's pieces; most requests have none
        self.stream = False
        self.handler_class = handler_class
        self.handler_kwargs = handler_kwargs
        self.path_args = path_args
        self.path_kwargs = path_kwargs

    def headers_received(self) -> Any:
        if getattr(self.handler_class, "_stream_request_body", False):
            self.stream = True
            # prepare() runs now; the body waits until it is done
            handler = self._make_handler()
            return handler._execute(self._transforms(), *self.path_args, **self.path_kwargs)
        return None

    def _transforms(self) -> list:
        transforms = self.application.transforms
        if not transforms:
            return _NO_TRANSFORMS
        request = self.request
        return [t(request) for t in transforms]

    def _make_handler(self) -> RequestHandler:
        try:
            if self.handler_kwargs:
                handler = self.handler_class(self.application, self.request, **self.handler_kwargs)
            else:
                handler = self.handler_class(self.application, self.request)
        except Exception:
            handler = self._handler_failed()
        self.handler = handler
        return handler

    def _handler_failed(self) -> RequestHandler:
        """The handler class could not be instantiated: answer 500."""
        app_log.error("Error creating %r for %r", self.handler_class, self.request, exc_info=True)
        handler = RequestHandler(self.application, self.request)
        handler._transforms = []
        self.handler = handler
        handler.send_error(500)
        return handler

    def data_received(self, chunk: bytes) -> Any:
        if not self.stream:
            if self.chunks is None:
                self.chunks = [chunk]
            else:
                self.chunks.append(chunk)
            self.request._body_chunk(chunk)
            return None
        handler = self.handler
        if handler is None or handler._finished:
            return None
        try:
            result = handler.data_received(chunk)
        except Exception as exc:
            handler._handle_request_exception(exc)
            return None
        if result is not None:
            d = ensure_deferred(result)
            d.addErrback(handler._handle_failure)
            return d
        return None

    def finish(self) -> None:
        if self.stream:
            handler = self.handler
            if handler is not None and not handler._finished and handler._prepared:
                handler._call_method()
            return
        # the common request: its body is all here; make the handler and run it
        application = self.application
        request = self.request
        chunks = self.chunks
        if chunks:
            self.chunks = None
            try:
                request._set_body(chunks)
            except httputil.HTTPInputError as exc:
                error = _input_error(exc)
                self.handler_class, self.handler_kwargs = ErrorHandler, {"status_code": 400, "error": error}
                self.path_args, self.path_kwargs = [], {}
        handler = self._make_handler()
        if handler._finished:
            return
        settings = application.settings
        if settings.get("compiled_template_cache", True) is False:
            with RequestHandler._template_loader_lock:
                for loader in RequestHandler._template_loaders.values():
                    loader.reset()
        if settings.get("static_hash_cache", True) is False:
            StaticFileHandler.reset()
        transforms = self._transforms()
        args, kwargs = self.path_args, self.path_kwargs
        if args or kwargs:
            handler._execute(transforms, *args, **kwargs)
        else:
            handler._execute(transforms)

    def execute(self) -> None:
        """Serve a request whose body is already read (``Application.__call__``)."""
        self.finish()

    def on_connection_close(self) -> None:
        handler = self.handler
        self.chunks = None
        if handler is not None:
            handler._on_connection_lost()


from cyclone.staticfile import StaticFileHandler  # noqa: E402  (it subclasses RequestHandler)
