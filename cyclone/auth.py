"""Logging in with an outside provider: OAuth 2 (Google / OpenID Connect,
GitHub, Facebook) and OAuth 1.0a (Twitter), as ``RequestHandler`` mixins.

Every step is async (``await`` it, or use the Deferred it returns in
``@inlineCallbacks`` code). A login takes two requests to the same handler:

.. code-block:: python

    class GitHubLogin(cyclone.web.RequestHandler, cyclone.auth.GitHubMixin):
        async def get(self):
            redirect_uri = "https://example.com/auth/github"
            if not self.get_argument("code", None):
                self.authorize_redirect(redirect_uri=redirect_uri, scope=["read:user"])
                return
            user = await self.get_authenticated_user(redirect_uri=redirect_uri,
                                                     code=self.get_argument("code"))
            self.set_signed_cookie("user", user["login"])
            self.redirect("/")

The first request sends the browser to the provider; the provider sends it
back with a ``code``. CSRF: ``authorize_redirect`` makes a random ``state``
(and a PKCE verifier, RFC 7636) and keeps them in a short-lived signed cookie
(so the application needs ``cookie_secret``); ``get_authenticated_user``
refuses a callback whose ``state`` does not match (``OAuthStateError``, 403).
OAuth 1.0a keeps its request token in a signed cookie the same way.

Provider URLs are class attributes (``_OAUTH_AUTHORIZE_URL``,
``_OAUTH_ACCESS_TOKEN_URL``, ``_GITHUB_API_URL``, …): a subclass or a test
points them elsewhere. Requests go through ``get_auth_http_client()``
(``cyclone.httpclient``); a provider that cannot be reached or answers with an
error raises ``AuthError`` (a 502 if the handler lets it through).

OpenID 2.0 (``OpenIdMixin``, the old ``GoogleMixin``) and FriendFeed are gone:
those services were shut down years ago.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import secrets
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from twisted.internet import defer

from cyclone import web

__all__ = [
    "AuthError",
    "OAuthStateError",
    "OAuthMixin",
    "OAuth2Mixin",
    "TwitterMixin",
    "GoogleOAuth2Mixin",
    "GitHubMixin",
    "FacebookGraphMixin",
    "oauth_escape",
    "oauth1_base_string",
    "oauth1_signature",
    "oauth1_request_parameters",
    "oauth1_authorization_header",
]


class AuthError(web.HTTPError):
    """A login step failed: the provider refused, or answered with an error
    or with something that is not what OAuth says. Answered with 502 (the
    provider failed) unless the handler catches it."""

    def __init__(self, message: str, status_code: int = 502) -> None:
        super().__init__(status_code, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class OAuthStateError(AuthError):
    """The callback does not belong to a login this browser started (no,
    expired or different ``state`` / request token): a forged or replayed
    callback, answered with 403."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 403)


def _deferred(method: Any) -> Any:
    """Make an ``async def`` method return a Deferred: awaitable in
    coroutines, yieldable in ``@inlineCallbacks`` and ``gen.coroutine`` code."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> defer.Deferred:
        return defer.ensureDeferred(method(*args, **kwargs))

    return wrapper


def _to_text(value: str | bytes | int | float) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


# -- OAuth 1.0a signatures (RFC 5849 §3.4), no I/O ------------------------------------------------

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def oauth_escape(value: str | bytes | int | float) -> str:
    """RFC 5849 §3.6: UTF-8, then every byte but the unreserved ones as
    ``%XX`` (upper-case hex); ``~`` stays, space is ``%20``."""
    if not isinstance(value, bytes):
        value = _to_text(value).encode("utf-8")
    return urllib.parse.quote(value, safe="~")  # quote() keeps A-Z a-z 0-9 _ . - and what safe adds


def _base_string_uri(url: str) -> str:
    """RFC 5849 §3.4.1.2: scheme and host lower-case, default port dropped,
    no query or fragment."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"OAuth 1 signs http and https URLs, not {url!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"no host in {url!r}")
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def _query_pairs(url: str) -> list[tuple[str, str]]:
    query = urllib.parse.urlsplit(url).query
    return urllib.parse.parse_qsl(query, keep_blank_values=True)


def oauth1_base_string(
    method: str, url: str, parameters: Iterable[tuple[str, str]] | Mapping[str, Any]
) -> str:
    """The signature base string (RFC 5849 §3.4.1): ``parameters`` are the
    oauth_* protocol parameters and any form-encoded body parameters; the
    URL's own query parameters are added here. ``oauth_signature`` is left
    out wherever it appears."""
    if isinstance(parameters, Mapping):
        parameters = parameters.items()
    pairs = [(_to_text(k), _to_text(v)) for k, v in parameters]
    pairs.extend(_query_pairs(url))
    encoded = sorted((oauth_escape(k), oauth_escape(v)) for k, v in pairs if k != "oauth_signature")
    normalized = "&".join(f"{k}={v}" for k, v in encoded)
    return "&".join((oauth_escape(method.upper()), oauth_escape(_base_string_uri(url)), oauth_escape(normalized)))


def oauth1_signature(
    consumer_secret: str,
    token_secret: str | None,
    method: str,
    url: str,
    parameters: Iterable[tuple[str, str]] | Mapping[str, Any],
    signature_method: str = "HMAC-SHA1",
) -> str:
    """``oauth_signature`` for a request: HMAC-SHA1 (RFC 5849 §3.4.2),
    HMAC-SHA256 (the same over SHA-256) or PLAINTEXT (§3.4.4)."""
    key = f"{oauth_escape(consumer_secret)}&{oauth_escape(token_secret or '')}"
    if signature_method == "PLAINTEXT":
        return key
    digests = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}
    if signature_method not in digests:
        raise ValueError(f"unsupported OAuth signature method {signature_method!r}")
    base = oauth1_base_string(method, url, parameters)
    mac = hmac.new(key.encode("ascii"), base.encode("ascii"), digests[signature_method])
    return base64.b64encode(mac.digest()).decode("ascii")


def oauth1_request_parameters(
    consumer_key: str,
    consumer_secret: str,
    url: str,
    method: str = "GET",
    token: str | None = None,
    token_secret: str | None = None,
    body_parameters: Mapping[str, Any] | Iterable[tuple[str, str]] = (),
    signature_method: str = "HMAC-SHA1",
    nonce: str | None = None,
    timestamp: int | None = None,
    **oauth_extra: str,
) -> dict[str, str]:
    """The oauth_* parameters of a signed request, ``oauth_signature``
    included. ``body_parameters`` are those of a form-encoded body (they are
    signed, not returned); ``oauth_extra`` adds ``callback=`` or ``verifier=``
    as ``oauth_callback`` / ``oauth_verifier``."""
    params = {
        "oauth_consumer_key": consumer_key,
        "oauth_signature_method": signature_method,
        "oauth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "oauth_nonce": nonce if nonce is not None else secrets.token_hex(16),
        "oauth_version": "1.0",
    }
    if token is not None:
        params["oauth_token"] = token
    for name, value in oauth_extra.items():
        params[f"oauth_{name}"] = value
    if isinstance(body_parameters, Mapping):
        body_parameters = body_parameters.items()
    signed = list(params.items()) + [(_to_text(k), _to_text(v)) for k, v in body_parameters]
    params["oauth_signature"] = oauth1_signature(consumer_secret, token_secret, method, url, signed, signature_method)
    return params


def oauth1_authorization_header(oauth_parameters: Mapping[str, str], realm: str | None = None) -> str:
    """The ``Authorization: OAuth …`` header value (RFC 5849 §3.5.1)."""
    items = [f'realm="{realm}"'] if realm is not None else []
    items.extend(f'{oauth_escape(k)}="{oauth_escape(v)}"' for k, v in oauth_parameters.items())
    return "OAuth " + ", ".join(items)


def _oauth_escape(value: str | bytes) -> str:
    """The original cyclone's name for :func:`oauth_escape`."""
    return oauth_escape(value)


def _oauth10a_signature(
    consumer_token: Mapping[str, str],
    method: str,
    url: str,
    parameters: Mapping[str, Any] | None = None,
    token: Mapping[str, str] | None = None,
) -> bytes:
    """The original cyclone's helper, fixed for Python 3: the HMAC-SHA1
    signature (base64, as bytes) of a request whose oauth_* and other
    parameters are ``parameters``."""
    return oauth1_signature(
        consumer_token["secret"], token["secret"] if token else None, method, url, parameters or {}
    ).encode("ascii")


def _oauth_parse_response(body: bytes | str) -> dict[str, Any]:
    """A token response (``oauth_token=…&oauth_token_secret=…&…``) as
    ``{"key", "secret", and every other field}``."""
    text = _to_text(body)
    fields = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    if "oauth_token" not in fields or "oauth_token_secret" not in fields:
        raise AuthError(f"the provider's answer has no oauth_token and oauth_token_secret: {text[:200]!r}")
    token = {"key": fields.pop("oauth_token"), "secret": fields.pop("oauth_token_secret")}
    token.update(fields)
    return token


# -- the HTTP side ---------------------------------------------------------------------------------


class _ProviderClient:
    """What every mixin shares: fetching from the provider, and the signed
    cookie that carries a login from ``authorize_redirect`` to its callback."""

    #: seconds a login may take between the redirect and the callback
    _OAUTH_LOGIN_MAX_AGE = 600
    #: seconds one request to the provider may take
    _OAUTH_REQUEST_TIMEOUT = 20.0
    #: largest answer read from the provider (bytes, after decompression)
    _OAUTH_MAX_RESPONSE_SIZE = 1024 * 1024

    def get_auth_http_client(self) -> Any:
        """The HTTP client the mixin fetches with (``cyclone.httpclient``'s
        ``AsyncHTTPClient``); override to use another with the same ``fetch``."""
        from cyclone import httpclient

        return httpclient.AsyncHTTPClient()

    async def _provider_fetch(
        self,
        url: str,
        method: str = "GET",
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: Any = None,
    ) -> Any:
        client = http_client or self.get_auth_http_client()
        try:
            response = await client.fetch(
                url,
                method=method,
                body=body,
                headers=dict(headers or {}),
                raise_error=False,
                request_timeout=self._OAUTH_REQUEST_TIMEOUT,
                max_body_size=self._OAUTH_MAX_RESPONSE_SIZE,
            )
        except Exception as exc:
            raise AuthError(f"could not reach {_without_query(url)}: {exc}") from exc
        if not 200 <= response.code < 300:
            raise AuthError(
                f"{method} {_without_query(url)} answered {response.code}: {_snippet(response.body)}"
            )
        return response

    async def _provider_json(self, *args: Any, **kwargs: Any) -> Any:
        response = await self._provider_fetch(*args, **kwargs)
        try:
            return json.loads(response.body)
        except ValueError as exc:
            raise AuthError(f"{_without_query(args[0])} did not answer JSON: {_snippet(response.body)}") from exc

    def _set_login_cookie(self: Any, name: str, value: Mapping[str, str]) -> None:
        self.require_setting("cookie_secret", "OAuth logins")
        # Lax: the provider sends the browser back with a top-level GET, which
        # Lax cookies go with; HttpOnly: page scripts have no business with it
        self.set_signed_cookie(
            name,
            json.dumps(value, separators=(",", ":")),
            expires_days=None,
            max_age=self._OAUTH_LOGIN_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=self.request.protocol == "https",
        )

    def _pop_login_cookie(self: Any, name: str) -> dict[str, str]:
        self.require_setting("cookie_secret", "OAuth logins")
        raw = self.get_signed_cookie(name, max_age_days=self._OAUTH_LOGIN_MAX_AGE / 86400)
        self.clear_cookie(name)  # one callback per login
        if raw is None:
            raise OAuthStateError(
                "no login in progress in this browser (its cookie is missing, expired or not ours)"
            )
        try:
            value = json.loads(raw)
        except ValueError:
            raise OAuthStateError("the login cookie is not ours") from None
        if not isinstance(value, dict):
            raise OAuthStateError("the login cookie is not ours")
        return value


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def _snippet(body: bytes | None) -> str:
    text = (body or b"")[:200].decode("utf-8", "replace")
    return repr(text)


def _absolute(handler: Any, uri: str | None) -> str | None:
    if uri is None:
        return None
    return urllib.parse.urljoin(handler.request.full_url(), uri)


def _with_query(url: str, params: Mapping[str, Any]) -> str:
    if not params:
        return url
    query = urllib.parse.urlencode({k: _to_text(v) for k, v in params.items()})
    return url + ("&" if "?" in url else "?") + query


# -- OAuth 1.0a --------------------------------------------------------------------------------


class OAuthMixin(_ProviderClient):
    """OAuth 1.0a (RFC 5849). Subclasses set the three URLs and implement
    ``_oauth_consumer_token()`` (``{"key": …, "secret": …}``) and
    ``_oauth_get_user_future(access_token)``.

    Only 1.0a is spoken (the callback and verifier of RFC 5849); OAuth 1.0
    without them has a session-fixation hole and no live provider.
    """

    _OAUTH_REQUEST_TOKEN_URL: str = ""
    _OAUTH_ACCESS_TOKEN_URL: str = ""
    _OAUTH_AUTHORIZE_URL: str = ""
    _OAUTH_VERSION = "1.0a"
    _OAUTH_NO_CALLBACKS = False
    _OAUTH_SIGNATURE_METHOD = "HMAC-SHA1"
    _OAUTH_REQUEST_TOKEN_COOKIE = "_oauth_request_token"

    @_deferred
    async def authorize_redirect(
        self,
        callback_uri: str | None = None,
        extra_params: Mapping[str, str] | None = None,
        http_client: Any = None,
    ) -> None:
        """Get a request token and send the browser to the provider to
        authorize it; it comes back to ``callback_uri`` (this request's URL
        when None; a relative URI is made absolute)."""
        await self._oauth1_redirect(self._OAUTH_AUTHORIZE_URL, callback_uri, extra_params, http_client)

    async def _oauth1_redirect(
        self: Any,
        authorize_url: str,
        callback_uri: str | None,
        extra_params: Mapping[str, str] | None,
        http_client: Any,
    ) -> None:
        consumer = self._oauth_consumer_token()
        callback = "oob" if self._OAUTH_NO_CALLBACKS else (_absolute(self, callback_uri) or self.request.full_url())
        url = self._OAUTH_REQUEST_TOKEN_URL
        body_params = dict(extra_params or {})
        oauth = oauth1_request_parameters(
            consumer["key"], consumer["secret"], url, "POST",
            body_parameters=body_params, signature_method=self._OAUTH_SIGNATURE_METHOD, callback=callback,
        )
        response = await self._provider_fetch(
            url, "POST", urllib.parse.urlencode(body_params),
            {"Authorization": oauth1_authorization_header(oauth),
             "Content-Type": "application/x-www-form-urlencoded"},
            http_client,
        )
        token = _oauth_parse_response(response.body)
        if token.get("oauth_callback_confirmed") != "true":
            raise AuthError("the provider did not confirm the callback (oauth_callback_confirmed): not OAuth 1.0a")
        self._set_login_cookie(self._OAUTH_REQUEST_TOKEN_COOKIE, {"key": token["key"], "secret": token["secret"]})
        self.redirect(_with_query(authorize_url, {"oauth_token": token["key"]}), allow_external=True)

    @_deferred
    async def get_authenticated_user(self: Any, http_client: Any = None) -> dict[str, Any]:
        """On the callback: check that it continues the login this browser
        started, trade the request token and verifier for an access token,
        and return the user (``_oauth_get_user_future``) with
        ``"access_token"`` (``key``, ``secret`` and what else the provider sent)."""
        request_token = self._pop_login_cookie(self._OAUTH_REQUEST_TOKEN_COOKIE)
        if self.get_argument("denied", None) is not None:
            raise AuthError("the user did not authorize the application", 403)
        oauth_token = self.get_argument("oauth_token", None)
        if oauth_token is None:
            raise AuthError("the callback has no oauth_token", 400)
        if not hmac.compare_digest(oauth_token.encode(), str(request_token.get("key", "")).encode()):
            raise OAuthStateError("the callback's oauth_token is not the one this browser asked for")
        verifier = self.get_argument("oauth_verifier", None)
        if verifier is None:
            raise AuthError("the callback has no oauth_verifier", 400)
        consumer = self._oauth_consumer_token()
        url = self._OAUTH_ACCESS_TOKEN_URL
        oauth = oauth1_request_parameters(
            consumer["key"], consumer["secret"], url, "POST",
            token=request_token["key"], token_secret=request_token["secret"],
            signature_method=self._OAUTH_SIGNATURE_METHOD, verifier=verifier,
        )
        response = await self._provider_fetch(
            url, "POST", b"",
            {"Authorization": oauth1_authorization_header(oauth),
             "Content-Type": "application/x-www-form-urlencoded"},
            http_client,
        )
        access_token = _oauth_parse_response(response.body)
        user = await self._oauth_get_user_future(access_token)
        if not user:
            raise AuthError("the provider gave no user")
        user["access_token"] = access_token
        return user

    def _oauth_request_parameters(
        self,
        url: str,
        access_token: Mapping[str, str],
        parameters: Mapping[str, Any] | None = None,
        method: str = "GET",
    ) -> dict[str, str]:
        """The signed oauth_* parameters for a request to ``url`` with
        ``access_token``; ``parameters`` are the request's other (query or
        form body) parameters, signed along."""
        consumer = self._oauth_consumer_token()
        query = dict(parameters or {})
        # the URL given may already carry query parameters: they are signed from it
        return oauth1_request_parameters(
            consumer["key"], consumer["secret"], url, method,
            token=access_token["key"], token_secret=access_token["secret"],
            body_parameters=query, signature_method=self._OAUTH_SIGNATURE_METHOD,
        )

    @_deferred
    async def oauth_request(
        self,
        url: str,
        access_token: Mapping[str, str],
        post_args: Mapping[str, Any] | None = None,
        **args: Any,
    ) -> Any:
        """A signed request to an API of the provider; JSON in, JSON out. A
        GET with ``args`` as the query, or a form POST of ``post_args``."""
        url = _with_query(url, args)
        method = "POST" if post_args is not None else "GET"
        oauth = self._oauth_request_parameters(url, access_token, post_args, method)
        headers = {"Authorization": oauth1_authorization_header(oauth), "Accept": "application/json"}
        body = None
        if post_args is not None:
            body = urllib.parse.urlencode({k: _to_text(v) for k, v in post_args.items()})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self._provider_json(url, method, body, headers)

    def _oauth_consumer_token(self) -> dict[str, str]:
        raise NotImplementedError(f"{type(self).__name__} must define _oauth_consumer_token()")

    async def _oauth_get_user_future(self, access_token: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must define _oauth_get_user_future()")


class TwitterMixin(OAuthMixin):
    """Sign in with Twitter (X), OAuth 1.0a. Settings ``twitter_consumer_key``
    and ``twitter_consumer_secret``. The user is the API's
    ``account/verify_credentials`` with ``"username"`` (the screen name) added."""

    _OAUTH_REQUEST_TOKEN_URL = "https://api.twitter.com/oauth/request_token"
    _OAUTH_ACCESS_TOKEN_URL = "https://api.twitter.com/oauth/access_token"
    _OAUTH_AUTHORIZE_URL = "https://api.twitter.com/oauth/authorize"
    _OAUTH_AUTHENTICATE_URL = "https://api.twitter.com/oauth/authenticate"
    _OAUTH_NO_CALLBACKS = False
    _TWITTER_BASE_URL = "https://api.twitter.com/1.1"

    @_deferred
    async def authenticate_redirect(self, callback_uri: str | None = None, http_client: Any = None) -> None:
        """Like ``authorize_redirect``, through "Sign in with Twitter": a user
        who already authorized the application is not asked again."""
        await self._oauth1_redirect(self._OAUTH_AUTHENTICATE_URL, callback_uri, None, http_client)

    @_deferred
    async def twitter_request(
        self,
        path: str,
        access_token: Mapping[str, str],
        post_args: Mapping[str, Any] | None = None,
        **args: Any,
    ) -> Any:
        """An API call: ``path`` such as ``"/statuses/update"`` (``.json``
        is added) or a full URL; a POST when ``post_args`` is given."""
        if path.startswith("http:") or path.startswith("https:"):
            url = path
        else:
            url = self._TWITTER_BASE_URL + path + ".json"
        return await self.oauth_request(url, access_token, post_args, **args)

    def _oauth_consumer_token(self: Any) -> dict[str, str]:
        self.require_setting("twitter_consumer_key", "Twitter OAuth")
        self.require_setting("twitter_consumer_secret", "Twitter OAuth")
        return {"key": self.settings["twitter_consumer_key"], "secret": self.settings["twitter_consumer_secret"]}

    async def _oauth_get_user_future(self, access_token: dict[str, Any]) -> dict[str, Any]:
        user = await self.twitter_request("/account/verify_credentials", access_token)
        if not isinstance(user, dict):
            raise AuthError("verify_credentials did not answer a user")
        if "screen_name" in user:
            user["username"] = user["screen_name"]
        return user


# -- OAuth 2 -----------------------------------------------------------------------------------


class OAuth2Mixin(_ProviderClient):
    """OAuth 2 (RFC 6749) authorization code flow, with ``state`` and PKCE
    (RFC 7636, S256) kept in a signed cookie. Subclasses set
    ``_OAUTH_AUTHORIZE_URL`` and ``_OAUTH_ACCESS_TOKEN_URL``."""

    _OAUTH_AUTHORIZE_URL: str = ""
    _OAUTH_ACCESS_TOKEN_URL: str = ""
    _OAUTH_STATE_COOKIE = "_oauth2_state"
    #: send a PKCE challenge (servers that do not know PKCE ignore it, RFC 6749 §3.1)
    _OAUTH_PKCE = True
    #: how scopes are joined in the authorization URL (RFC 6749 §3.3: spaces)
    _OAUTH_SCOPE_SEPARATOR = " "
    #: how the code is traded for a token: a form POST (RFC 6749 §4.1.3), or GET
    _OAUTH_TOKEN_METHOD = "POST"
    #: headers sent with every API call of oauth2_request
    _OAUTH_API_HEADERS: Mapping[str, str] = {"Accept": "application/json"}

    def authorize_redirect(
        self: Any,
        redirect_uri: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        scope: Iterable[str] | str | None = None,
        response_type: str = "code",
    ) -> None:
        """Send the browser to the provider's authorization page; it comes
        back to ``redirect_uri`` with a ``code`` (and the ``state``). A
        ``state`` in ``extra_params`` is used instead of a random one (and
        checked all the same)."""
        params: dict[str, Any] = {"response_type": response_type}
        if redirect_uri is not None:
            params["redirect_uri"] = _absolute(self, redirect_uri)
        if client_id is not None:
            params["client_id"] = client_id
        if scope is not None:
            params["scope"] = scope if isinstance(scope, str) else self._OAUTH_SCOPE_SEPARATOR.join(scope)
        login: dict[str, str] = {}
        extra = dict(extra_params or {})
        login["state"] = _to_text(extra.pop("state", None) or secrets.token_urlsafe(24))
        params["state"] = login["state"]
        if self._OAUTH_PKCE:
            login["verifier"] = secrets.token_urlsafe(48)  # 64 characters, RFC 7636 §4.1
            challenge = hashlib.sha256(login["verifier"].encode("ascii")).digest()
            params["code_challenge"] = base64.urlsafe_b64encode(challenge).rstrip(b"=").decode("ascii")
            params["code_challenge_method"] = "S256"
        self._oauth2_extend_login(login, params)
        params.update(extra)
        self._set_login_cookie(self._OAUTH_STATE_COOKIE, login)
        self.redirect(_with_query(self._OAUTH_AUTHORIZE_URL, params), allow_external=True)

    def _oauth2_extend_login(self, login: dict[str, str], params: dict[str, Any]) -> None:
        """A hook for providers that keep more in the login (OpenID Connect's nonce)."""

    def check_oauth2_callback(self: Any) -> dict[str, str]:
        """On the callback: the login this browser started (``state``,
        ``verifier``…), after checking that the callback's ``state`` is its
        own and that the provider did not report an error. Called by every
        ``get_authenticated_user``; call it yourself in a custom flow."""
        login = self._pop_login_cookie(self._OAUTH_STATE_COOKIE)
        state = self.get_argument("state", None)
        if state is None or not hmac.compare_digest(state.encode(), str(login.get("state", "")).encode()):
            raise OAuthStateError("the callback's state is not the one this browser was sent with")
        error = self.get_argument("error", None)
        if error is not None:
            description = self.get_argument("error_description", "")
            status = 403 if error == "access_denied" else 502
            raise AuthError(f"the provider refused: {error} {description}".strip(), status)
        return login

    def _oauth_request_token_url(
        self,
        redirect_uri: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        code: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> str:
        """The original's (GET) token URL, for code that built its own request."""
        params = {"redirect_uri": redirect_uri, "code": code, "client_id": client_id, "client_secret": client_secret}
        params = {k: v for k, v in params.items() if v is not None}
        params.update(extra_params or {})
        return _with_query(self._OAUTH_ACCESS_TOKEN_URL, params)

    async def _oauth2_access_token(
        self: Any,
        redirect_uri: str | None,
        code: str | None,
        client_id: str | None,
        client_secret: str | None,
        login: Mapping[str, str],
        extra_params: Mapping[str, Any] | None = None,
        http_client: Any = None,
    ) -> dict[str, Any]:
        """Trade the ``code`` for tokens (RFC 6749 §4.1.3), as a form POST."""
        if code is None:
            code = self.get_argument("code", None)
        if not code:
            raise AuthError("the callback has no code", 400)
        fields: dict[str, Any] = {"grant_type": "authorization_code", "code": code}
        if redirect_uri is not None:
            fields["redirect_uri"] = _absolute(self, redirect_uri)
        if client_id is not None:
            fields["client_id"] = client_id
        if client_secret is not None:
            fields["client_secret"] = client_secret
        if "verifier" in login:
            fields["code_verifier"] = login["verifier"]
        fields.update(extra_params or {})
        form = {k: _to_text(v) for k, v in fields.items()}
        if self._OAUTH_TOKEN_METHOD == "GET":
            url, body = _with_query(self._OAUTH_ACCESS_TOKEN_URL, form), None
            headers = {"Accept": "application/json"}
        else:
            url, body = self._OAUTH_ACCESS_TOKEN_URL, urllib.parse.urlencode(form)
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        token = await self._provider_json(url, self._OAUTH_TOKEN_METHOD, body, headers, http_client)
        if not isinstance(token, dict) or "error" in token or not token.get("access_token"):
            detail = token.get("error_description") or token.get("error") if isinstance(token, dict) else token
            raise AuthError(f"the provider gave no access token: {detail!r}")
        return token

    @_deferred
    async def get_authenticated_user(
        self,
        redirect_uri: str | None = None,
        code: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        http_client: Any = None,
    ) -> dict[str, Any]:
        """On the callback: check it (``check_oauth2_callback``) and trade
        the ``code`` (this request's, when None) for the provider's token
        answer (``access_token``, ``token_type``, …). Providers' mixins
        return the user instead."""
        login = self.check_oauth2_callback()
        return await self._oauth2_access_token(
            redirect_uri, code, client_id, client_secret, login, extra_params, http_client
        )

    @_deferred
    async def oauth2_request(
        self,
        url: str,
        access_token: str | None = None,
        post_args: Mapping[str, Any] | None = None,
        **args: Any,
    ) -> Any:
        """An API call with the token as ``Authorization: Bearer`` (RFC 6750
        §2.1); ``args`` go in the query, ``post_args`` make it a form POST.
        JSON in, JSON out."""
        url = _with_query(url, args)
        headers = dict(self._OAUTH_API_HEADERS)
        if access_token:
            headers["Authorization"] = f"Bearer {access_token}"
        body = None
        method = "GET"
        if post_args is not None:
            method = "POST"
            body = urllib.parse.urlencode({k: _to_text(v) for k, v in post_args.items()})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self._provider_json(url, method, body, headers)

    def _oauth2_settings(self: Any, key: str, client_id: str | None, client_secret: str | None) -> tuple[str, str]:
        if client_id is None or client_secret is None:
            self.require_setting(key, "OAuth")
            conf = self.settings[key]
            client_id = client_id if client_id is not None else conf["key"]
            client_secret = client_secret if client_secret is not None else conf["secret"]
        return client_id, client_secret


class GitHubMixin(OAuth2Mixin):
    """Log in with GitHub (an OAuth app or a GitHub App's user flow). Setting
    ``github_oauth = {"key": client_id, "secret": client_secret}``."""

    _OAUTH_AUTHORIZE_URL = "https://github.com/login/oauth/authorize"
    _OAUTH_ACCESS_TOKEN_URL = "https://github.com/login/oauth/access_token"
    _GITHUB_API_URL = "https://api.github.com"
    _OAUTH_SETTINGS_KEY = "github_oauth"
    # GitHub's REST API refuses requests without a User-Agent
    _OAUTH_API_HEADERS = {
        "Accept": "application/vnd.github+json",
        "User-Agent": "cyclone.auth",
        "X-GitHub-Api-Version": "2022-11-28",
    }

    def authorize_redirect(  # type: ignore[override]
        self,
        redirect_uri: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        scope: Iterable[str] | str | None = None,
        response_type: str = "code",
    ) -> None:
        """As ``OAuth2Mixin``'s, the client id taken from the settings when not given."""
        if client_id is None:
            client_id = self._oauth2_settings(self._OAUTH_SETTINGS_KEY, None, "")[0]
        super().authorize_redirect(redirect_uri, client_id, client_secret, extra_params, scope, response_type)

    @_deferred
    async def get_authenticated_user(  # type: ignore[override]
        self,
        redirect_uri: str | None = None,
        code: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        http_client: Any = None,
    ) -> dict[str, Any]:
        """The GitHub user (``GET /user``: ``login``, ``id``, ``name``, …) with
        ``"access_token"`` (and ``"scope"``, as granted)."""
        client_id, client_secret = self._oauth2_settings(self._OAUTH_SETTINGS_KEY, client_id, client_secret)
        token = await super().get_authenticated_user(
            redirect_uri, code, client_id, client_secret, extra_params, http_client
        )
        user = await self.github_request("/user", token["access_token"])
        if not isinstance(user, dict):
            raise AuthError("GitHub's /user is not a user")
        user["access_token"] = token["access_token"]
        user["scope"] = token.get("scope", "")
        return user

    @_deferred
    async def github_request(
        self, path: str, access_token: str | None = None, post_args: Mapping[str, Any] | None = None, **args: Any
    ) -> Any:
        """A REST API call: ``path`` such as ``"/user/repos"`` (or a full URL)."""
        url = path if path.startswith(("http:", "https:")) else self._GITHUB_API_URL + path
        return await self.oauth2_request(url, access_token, post_args, **args)


class GoogleOAuth2Mixin(OAuth2Mixin):
    """Sign in with Google (OAuth 2 / OpenID Connect). Setting
    ``google_oauth = {"key": client_id, "secret": client_secret}``.

    ``get_authenticated_user`` returns Google's token answer, as in Tornado,
    with ``"id_token_claims"``: the ID token's claims (``sub``, ``email``,
    ``name``…), checked (issuer, audience, expiry, nonce). The ID token comes
    straight from Google's token endpoint over TLS, which OpenID Connect
    Core §3.1.3.7 accepts in place of checking its signature.
    """

    _OAUTH_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
    _OAUTH_ACCESS_TOKEN_URL = "https://oauth2.googleapis.com/token"
    _OAUTH_USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"
    _OAUTH_ISSUERS: tuple[str, ...] = ("https://accounts.google.com", "accounts.google.com")
    _OAUTH_SETTINGS_KEY = "google_oauth"
    #: seconds of clock difference allowed when checking the ID token's times
    _OAUTH_CLOCK_SKEW = 300

    def get_google_oauth_settings(self: Any) -> dict[str, str]:
        """The ``google_oauth`` setting (``{"key": …, "secret": …}``)."""
        self.require_setting(self._OAUTH_SETTINGS_KEY, "Google OAuth")
        return self.settings[self._OAUTH_SETTINGS_KEY]

    def authorize_redirect(  # type: ignore[override]
        self,
        redirect_uri: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        scope: Iterable[str] | str | None = None,
        response_type: str = "code",
    ) -> None:
        """As ``OAuth2Mixin``'s; ``scope`` defaults to ``openid email profile``."""
        if client_id is None:
            client_id = self.get_google_oauth_settings()["key"]
        if scope is None:
            scope = ["openid", "email", "profile"]
        super().authorize_redirect(redirect_uri, client_id, client_secret, extra_params, scope, response_type)

    def _oauth2_extend_login(self, login: dict[str, str], params: dict[str, Any]) -> None:
        login["nonce"] = params["nonce"] = secrets.token_urlsafe(16)

    @_deferred
    async def get_authenticated_user(  # type: ignore[override]
        self,
        redirect_uri: str | None = None,
        code: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        http_client: Any = None,
    ) -> dict[str, Any]:
        """The token answer (``access_token``, ``id_token``, ``expires_in``…)
        with ``"id_token_claims"``. ``oauth2_request(self._OAUTH_USERINFO_URL,
        access_token)`` gets the profile."""
        if client_id is None or client_secret is None:
            conf = self.get_google_oauth_settings()
            client_id = client_id if client_id is not None else conf["key"]
            client_secret = client_secret if client_secret is not None else conf["secret"]
        login = self.check_oauth2_callback()
        token = await self._oauth2_access_token(
            redirect_uri, code, client_id, client_secret, login, extra_params, http_client
        )
        if "id_token" not in token:
            raise AuthError("Google sent no id_token (is 'openid' in the scope?)")
        token["id_token_claims"] = self._check_id_token(token["id_token"], client_id, login.get("nonce"))
        return token

    def _check_id_token(self, id_token: str, client_id: str, nonce: str | None) -> dict[str, Any]:
        claims = _jwt_claims(id_token)
        if claims.get("iss") not in self._OAUTH_ISSUERS:
            raise AuthError(f"the ID token was issued by {claims.get('iss')!r}, not by {self._OAUTH_ISSUERS[0]}")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if client_id not in audiences:
            raise AuthError("the ID token is for another client (aud)")
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp + self._OAUTH_CLOCK_SKEW < now:
            raise AuthError("the ID token has expired")
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise OAuthStateError("the ID token's nonce is not the one this login sent")
        return claims


def _jwt_claims(token: str) -> dict[str, Any]:
    """The claims (payload) of a compact JWT, unverified."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error) as exc:
        raise AuthError("the ID token is not a JWT") from exc
    if not isinstance(claims, dict):
        raise AuthError("the ID token's claims are not an object")
    return claims


class FacebookGraphMixin(OAuth2Mixin):
    """Log in with Facebook (the Graph API). ``facebook_request`` calls the
    API with the user's token."""

    _OAUTH_AUTHORIZE_URL = "https://www.facebook.com/dialog/oauth"
    _OAUTH_ACCESS_TOKEN_URL = "https://graph.facebook.com/oauth/access_token"
    _OAUTH_TOKEN_METHOD = "GET"  # as Facebook documents its token endpoint
    _FACEBOOK_BASE_URL = "https://graph.facebook.com"
    _OAUTH_SCOPE_SEPARATOR = ","

    @_deferred
    async def get_authenticated_user(  # type: ignore[override]
        self,
        redirect_uri: str,
        client_id: str,
        client_secret: str,
        code: str | None = None,
        extra_fields: Iterable[str] | None = None,
        http_client: Any = None,
    ) -> dict[str, Any]:
        """The user (``/me``: ``id``, ``name``, ``first_name``, ``last_name``,
        ``locale``, ``picture``, ``link`` and ``extra_fields``) with
        ``"access_token"`` and ``"session_expires"`` (seconds, as sent)."""
        login = self.check_oauth2_callback()
        token = await self._oauth2_access_token(
            redirect_uri, code, client_id, client_secret, login, None, http_client
        )
        fields = {"id", "name", "first_name", "last_name", "locale", "picture", "link"}
        fields.update(extra_fields or ())
        access_token = token["access_token"]
        proof = hmac.new(client_secret.encode("utf-8"), access_token.encode("utf-8"), hashlib.sha256).hexdigest()
        user = await self.facebook_request(
            "/me", access_token=access_token, appsecret_proof=proof, fields=",".join(sorted(fields))
        )
        if not isinstance(user, dict):
            raise AuthError("Facebook's /me is not a user")
        user["access_token"] = access_token
        user["session_expires"] = str(token.get("expires_in", ""))
        return user

    @_deferred
    async def facebook_request(
        self, path: str, access_token: str | None = None, post_args: Mapping[str, Any] | None = None, **args: Any
    ) -> Any:
        """A Graph API call: ``path`` such as ``"/me/feed"``; a POST when
        ``post_args`` is given."""
        url = path if path.startswith(("http:", "https:")) else self._FACEBOOK_BASE_URL + path
        return await self.oauth2_request(url, access_token, post_args, **args)
