"""cyclone.auth: OAuth 1.0a signatures against RFC 5849's own examples and
against oauthlib (an implementation we did not write); then every login flow
against the local provider of tests/oauth_provider.py, walked by urllib (a
client we did not write, with a cookie jar, following redirects as a browser
does) through the real redirect chain: application → provider → application.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import threads

from cyclone import auth, web
from cyclone.auth import (
    oauth1_authorization_header,
    oauth1_base_string,
    oauth1_request_parameters,
    oauth1_signature,
    oauth_escape,
)

from .oauth_provider import Provider, make_app

try:
    from oauthlib.oauth1.rfc5849 import signature as oauthlib_signature
except ImportError:  # pragma: no cover - depends on the environment
    oauthlib_signature = None

inline = pytest_twisted.inlineCallbacks

needs_oauthlib = pytest.mark.skipif(
    oauthlib_signature is None, reason="oauthlib is not installed (pip install -e '.[test]')"
)


# -- RFC 5849's examples --------------------------------------------------------------------------

# §3.4.1: the request "POST /request?b5=%3D%253D&a3=a&c%40=&a2=r%20b" with body "c2&a3=2+q"
EXAMPLE_URL = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"
EXAMPLE_PARAMS = [
    ("oauth_consumer_key", "9djdj82h48djs9d2"),
    ("oauth_token", "kkk9d7dh3k39sjv7"),
    ("oauth_signature_method", "HMAC-SHA1"),
    ("oauth_timestamp", "137131201"),
    ("oauth_nonce", "7d8f3e4a"),
    ("c2", ""),  # the form body, decoded
    ("a3", "2 q"),
]
EXAMPLE_BASE_STRING = (
    "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q"
    "%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_"
    "key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m"
    "ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk"
    "9d7dh3k39sjv7"
)


def test_rfc5849_signature_base_string():
    assert oauth1_base_string("POST", EXAMPLE_URL, EXAMPLE_PARAMS) == EXAMPLE_BASE_STRING
    # oauth_signature is never part of it
    with_signature = [*EXAMPLE_PARAMS, ("oauth_signature", "bYT5CMsGcbgUdFHObYMEfcx6bsw=")]
    assert oauth1_base_string("post", EXAMPLE_URL, with_signature) == EXAMPLE_BASE_STRING


def test_rfc5849_section_3_4_1_signature():
    # The RFC prints bYT5CMsGcbgUdFHObYMEfcx6bsw=, which its errata correct to
    # this value (client secret j49sk3j29djd, token secret dh893hdasih9)
    signature = oauth1_signature("j49sk3j29djd", "dh893hdasih9", "POST", EXAMPLE_URL, EXAMPLE_PARAMS)
    assert signature == "r6/TJjbCOr97/+UU0NsvSne7s5g="


# §1.2: printer.example.com and photos.example.net, client secret kd94hf93k423kf44
@pytest.mark.parametrize(
    "method, url, token_secret, params, expected",
    [
        (
            "POST", "https://photos.example.net/initiate", None,
            [("oauth_consumer_key", "dpf43f3p2l4k3l03"), ("oauth_signature_method", "HMAC-SHA1"),
             ("oauth_timestamp", "137131200"), ("oauth_nonce", "wIjqoS"),
             ("oauth_callback", "http://printer.example.com/ready")],
            "74KNZJeDHnMBp0EMJ9ZHt/XKycU=",
        ),
        (
            "POST", "https://photos.example.net/token", "hdhd0244k9j7ao03",
            [("oauth_consumer_key", "dpf43f3p2l4k3l03"), ("oauth_token", "hh5s93j4hdidpola"),
             ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", "137131201"),
             ("oauth_nonce", "walatlh"), ("oauth_verifier", "hfdp7dh39dks9884")],
            "gKgrFCywp7rO0OXSjdot/IHF7IU=",
        ),
        (
            "GET", "http://photos.example.net/photos?file=vacation.jpg&size=original", "pfkkdhi9sl3r4s00",
            [("oauth_consumer_key", "dpf43f3p2l4k3l03"), ("oauth_token", "nnch734d00sl2jdk"),
             ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", "137131202"),
             ("oauth_nonce", "chapoH")],
            "MdpQcU8iPSUjWoN/UDMsK2sui9I=",
        ),
    ],
    ids=["temporary-credentials", "token-credentials", "protected-resource"],
)
def test_rfc5849_section_1_2_signatures(method, url, token_secret, params, expected):
    assert oauth1_signature("kd94hf93k423kf44", token_secret, method, url, params) == expected


def test_rfc5849_plaintext_examples():
    # §2.1 and §2.3: client secret ja893SD9, temporary secret xyz4992k83j47x0b
    assert oauth1_signature("ja893SD9", None, "POST", "https://server.example.com/x", [], "PLAINTEXT") == "ja893SD9&"
    assert (
        oauth1_signature("ja893SD9", "xyz4992k83j47x0b", "POST", "https://server.example.com/x", [], "PLAINTEXT")
        == "ja893SD9&xyz4992k83j47x0b"
    )


@pytest.mark.parametrize(
    "url, base",
    [
        ("http://EXAMPLE.COM:80/r%20v/X?id=123", "http://example.com/r%2520v%2FX"),  # §3.4.1.2
        ("https://www.example.net:8080/?q=1", "https://www.example.net:8080/"),
        ("HTTPS://Example.net:443", "https://example.net/"),
        ("http://[::1]:8080/p", "http://[::1]:8080/p"),
    ],
)
def test_base_string_uri(url, base):
    # the URI is the second, escaped, element of the base string
    assert urllib.parse.unquote(oauth1_base_string("GET", url, []).split("&")[1]) == urllib.parse.unquote(base)


def test_escape_is_rfc3986_unreserved_only():
    assert oauth_escape("abcXYZ019-._~") == "abcXYZ019-._~"
    assert oauth_escape(" +&=*/%") == "%20%2B%26%3D%2A%2F%25"
    assert oauth_escape("ü😀") == "%C3%BC%F0%9F%98%80"
    assert oauth_escape(b"\xff") == "%FF"
    assert oauth_escape(42) == "42"


def test_bad_signature_input_is_refused():
    with pytest.raises(ValueError, match="unsupported OAuth signature method"):
        oauth1_signature("a", "b", "GET", "http://example.com/", [], "RSA-SHA1")
    with pytest.raises(ValueError, match="http and https"):
        oauth1_base_string("GET", "ftp://example.com/", [])


def test_request_parameters_and_header_round_trip_through_oauthlib():
    params = oauth1_request_parameters(
        "dpf43f3p2l4k3l03", "kd94hf93k423kf44", "https://photos.example.net/initiate", "POST",
        nonce="wIjqoS", timestamp=137131200, callback="http://printer.example.com/ready",
    )
    assert params["oauth_version"] == "1.0"
    header = oauth1_authorization_header(params, realm="Photos")
    assert header.startswith('OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03"')
    if oauthlib_signature is not None:  # the header, parsed by oauthlib, gives back every parameter
        parsed = dict(oauthlib_signature.collect_parameters(
            headers={"Authorization": header}, exclude_oauth_signature=False, with_realm=True))
        assert parsed.pop("realm") == "Photos"
        assert parsed == params
    # with oauth_version in it, the signature differs from the RFC's (which has none), as it must
    assert params["oauth_signature"] != "74KNZJeDHnMBp0EMJ9ZHt/XKycU="


def test_original_helper_names_work_on_python_3():
    signature = auth._oauth10a_signature(
        {"key": "dpf43f3p2l4k3l03", "secret": "kd94hf93k423kf44"}, "GET",
        "http://photos.example.net/photos?file=vacation.jpg&size=original",
        {"oauth_consumer_key": "dpf43f3p2l4k3l03", "oauth_token": "nnch734d00sl2jdk",
         "oauth_signature_method": "HMAC-SHA1", "oauth_timestamp": "137131202", "oauth_nonce": "chapoH"},
        {"key": "nnch734d00sl2jdk", "secret": "pfkkdhi9sl3r4s00"},
    )
    assert signature == b"MdpQcU8iPSUjWoN/UDMsK2sui9I="
    assert auth._oauth_escape("a b") == "a%20b"
    token = auth._oauth_parse_response(b"oauth_token=k&oauth_token_secret=s%26x&user_id=7")
    assert token == {"key": "k", "secret": "s&x", "user_id": "7"}
    with pytest.raises(auth.AuthError, match="no oauth_token"):
        auth._oauth_parse_response(b"error=nope")


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@needs_oauthlib
@pytest.mark.filterwarnings("ignore:use sign_hmac_sha1_with_client:DeprecationWarning")
@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "delete"]),
    path=st.lists(text, max_size=3),
    query=st.lists(st.tuples(text, text), max_size=4),
    body=st.lists(st.tuples(text, text), max_size=4),
    consumer_secret=text,
    token_secret=text,
)
def test_signatures_agree_with_oauthlib(method, path, query, body, consumer_secret, token_secret):
    url = "https://Example.COM:8443/" + "/".join(urllib.parse.quote(p, safe="") for p in path)
    if query:
        url += "?" + urllib.parse.urlencode(query)
    oauth = [("oauth_consumer_key", "ck"), ("oauth_nonce", "n"), ("oauth_timestamp", "1"),
             ("oauth_signature_method", "HMAC-SHA1"), ("oauth_token", "tk")]
    ours = oauth1_signature(consumer_secret, token_secret, method, url, oauth + body)

    collected = oauthlib_signature.collect_parameters(
        uri_query=urllib.parse.urlsplit(url).query, body=body or None
    ) + oauth
    base = oauthlib_signature.signature_base_string(
        method.upper(), oauthlib_signature.base_string_uri(url), oauthlib_signature.normalize_parameters(collected)
    )
    assert ours == oauthlib_signature.sign_hmac_sha1(base, consumer_secret, token_secret)


# -- flows against the local provider ---------------------------------------------------------------


class Browser:
    """urllib with a cookie jar: follows redirects (GET), keeps cookies, as a browser."""

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.history: list[str] = []

    def _get(self, url: str) -> tuple[int, str, str]:
        try:
            with self.opener.open(url, timeout=15) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.geturl(), error.read().decode()

    def get(self, url: str):
        """A Deferred of (status, final URL, body)."""
        return threads.deferToThread(self._get, url)

    def _get_no_redirect(self, url: str) -> tuple[int, str]:
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect)
        try:
            with opener.open(url, timeout=15) as response:
                return response.status, response.headers.get("Location", "")
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Location", "")

    def step(self, url: str):
        """One request, redirects not followed: a Deferred of (status, Location)."""
        return threads.deferToThread(self._get_no_redirect, url)


def provider_urls(cls, base):
    """A subclass of mixin ``cls`` whose provider URLs point at the local provider."""
    attrs = {
        "_OAUTH_AUTHORIZE_URL": f"{base}/oauth2/authorize",
        "_OAUTH_ACCESS_TOKEN_URL": f"{base}/oauth2/token",
        "_GITHUB_API_URL": f"{base}/api",
        "_OAUTH_USERINFO_URL": f"{base}/oidc/userinfo",
        "_OAUTH_ISSUERS": ("https://accounts.example.test",),
        "_FACEBOOK_BASE_URL": f"{base}/graph",
        "_OAUTH_REQUEST_TOKEN_URL": f"{base}/oauth1/request_token",
        "_OAUTH_AUTHENTICATE_URL": f"{base}/oauth1/authorize",
        "_TWITTER_BASE_URL": f"{base}/oauth1/api",
    }
    if issubclass(cls, auth.OAuthMixin):
        attrs["_OAUTH_AUTHORIZE_URL"] = f"{base}/oauth1/authorize"
        attrs["_OAUTH_ACCESS_TOKEN_URL"] = f"{base}/oauth1/access_token"
    return type(f"Local{cls.__name__}", (cls,), attrs)


def show_error(handler, status_code, **kwargs):
    exc = kwargs.get("exc_info", (None, None))[1]
    handler.finish({"status": status_code, "error": str(exc) if exc else None})


def handlers(base: str):
    class GitHubLogin(web.RequestHandler, provider_urls(auth.GitHubMixin, base)):
        write_error = show_error

        async def get(self):
            redirect_uri = self.request.full_url().split("?")[0]
            if not self.get_argument("code", None) and not self.get_argument("error", None):
                self.authorize_redirect(redirect_uri=redirect_uri, scope=["read:user", "gist"])
                return
            user = await self.get_authenticated_user(redirect_uri=redirect_uri, code=self.get_argument("code", None))
            self.finish({"user": user})

    class GoogleLogin(web.RequestHandler, provider_urls(auth.GoogleOAuth2Mixin, base)):
        write_error = show_error

        async def get(self):
            redirect_uri = "/google"  # relative: made absolute against the request
            if not self.get_argument("code", None):
                self.authorize_redirect(redirect_uri=redirect_uri)
                return
            token = await self.get_authenticated_user(redirect_uri=redirect_uri, code=self.get_argument("code"))
            userinfo = await self.oauth2_request(self._OAUTH_USERINFO_URL, access_token=token["access_token"])
            self.finish({"claims": token["id_token_claims"], "userinfo": userinfo})

    class FacebookLogin(web.RequestHandler, provider_urls(auth.FacebookGraphMixin, base)):
        write_error = show_error

        async def get(self):
            redirect_uri = self.request.full_url().split("?")[0]
            if not self.get_argument("code", None):
                self.authorize_redirect(redirect_uri=redirect_uri, client_id="the-client",
                                        scope=["email", "public_profile"])
                return
            user = await self.get_authenticated_user(redirect_uri=redirect_uri, client_id="the-client",
                                                     client_secret="the-client-secret",
                                                     code=self.get_argument("code"), extra_fields=["email"])
            post = await self.facebook_request("/me/feed", user["access_token"], post_args={"message": "Olá & ~"})
            self.finish({"user": user, "post": post})

    class TwitterLogin(web.RequestHandler, provider_urls(auth.TwitterMixin, base)):
        write_error = show_error

        async def get(self):
            if not self.get_argument("oauth_token", None) and not self.get_argument("denied", None):
                if self.get_argument("authenticate", None):
                    await self.authenticate_redirect()
                else:
                    await self.authorize_redirect(callback_uri="/twitter")
                return
            user = await self.get_authenticated_user()
            token = user["access_token"]
            again = await self.twitter_request("/account/verify_credentials", token, include_email="true")
            posted = await self.twitter_request("/statuses/update", token, post_args={"status": "Olá & 😀 ~*"})
            self.finish({"user": user, "again": again, "posted": posted})

    class PlainOAuth2(web.RequestHandler, provider_urls(auth.OAuth2Mixin, base)):
        write_error = show_error

        def get(self):
            if not self.get_argument("code", None):
                self.authorize_redirect(redirect_uri="/plain", client_id="the-client",
                                        extra_params={"state": "chosen-state", "prompt": "consent"})
                return
            return self._finish_login()

        @pytest_twisted.inlineCallbacks
        def _finish_login(self):  # the Deferred API, from @inlineCallbacks code
            token = yield self.get_authenticated_user(redirect_uri="/plain", client_id="the-client",
                                                      client_secret="the-client-secret")
            self.finish({"token": token})

    return [(r"/github", GitHubLogin), (r"/google", GoogleLogin), (r"/facebook", FacebookLogin),
            (r"/twitter", TwitterLogin), (r"/plain", PlainOAuth2)]


@pytest.fixture
def oauth(listen):
    """(provider, app_base_url): the local provider and an application logging in with it."""
    provider = Provider()
    provider_port = listen(make_app(provider))
    base = f"http://127.0.0.1:{provider_port}"
    app = web.Application(
        handlers(base),
        cookie_secret="a secret for the test",
        github_oauth={"key": provider.client_id, "secret": provider.client_secret},
        google_oauth={"key": provider.client_id, "secret": provider.client_secret},
        twitter_consumer_key=provider.consumer_key,
        twitter_consumer_secret=provider.consumer_secret,
    )
    app_base = f"http://127.0.0.1:{listen(app)}"
    for path in ("github", "google", "facebook", "plain"):
        provider.redirect_uris.append(f"{app_base}/{path}")
    return provider, app_base


def body_json(body: str):
    return json.loads(body)


@inline
def test_github_login(oauth):
    provider, app = oauth
    status, final_url, body = yield Browser().get(f"{app}/github")
    assert status == 200, body
    assert final_url.startswith(f"{app}/github?code=")
    user = body_json(body)["user"]
    assert user["login"] == "octocat" and user["name"] == "Mona Lisa Octocät"
    assert user["access_token"] in provider.tokens
    assert user["scope"] == "read:user gist"
    [(_, authorize)] = [e for e in provider.log if e[0] == "authorize"]
    assert authorize["scope"] == "read:user gist" and authorize["code_challenge_method"] == "S256"
    [(_, token)] = [e for e in provider.log if e[0] == "token"]
    assert token["_method"] == "POST" and "json" in token["_accept"]
    assert token["code_verifier"] and token["redirect_uri"] == f"{app}/github"
    [(_, api)] = [e for e in provider.log if e[0] == "api/user"]
    assert api["headers"]["Authorization"] == f"Bearer {user['access_token']}"


@inline
def test_google_openid_connect_login(oauth):
    provider, app = oauth
    status, _, body = yield Browser().get(f"{app}/google")
    assert status == 200, body
    result = body_json(body)
    assert result["claims"]["email"] == "mona@example.org" and result["claims"]["aud"] == "the-client"
    assert result["userinfo"]["sub"] == "583231"
    [(_, authorize)] = [e for e in provider.log if e[0] == "authorize"]
    assert authorize["scope"] == "openid email profile"
    assert authorize["nonce"] == result["claims"]["nonce"]
    assert authorize["redirect_uri"] == f"{app}/google"


@pytest.mark.parametrize(
    "changes, status, message",
    [
        ({"aud": "someone-else"}, 502, "another client"),
        ({"iss": "https://evil.example"}, 502, "issued by"),
        ({"exp": 1000}, 502, "expired"),
        ({"nonce": "replayed"}, 403, "nonce"),
    ],
)
@inline
def test_google_id_token_is_checked(oauth, changes, status, message):
    provider, app = oauth
    provider.id_token_changes = changes
    code, _, body = yield Browser().get(f"{app}/google")
    assert code == status
    assert message in body_json(body)["error"]


@inline
def test_facebook_login(oauth):
    provider, app = oauth
    status, _, body = yield Browser().get(f"{app}/facebook")
    assert status == 200, body
    user = body_json(body)["user"]
    assert user["id"] == "583231" and user["first_name"] == "Mona" and user["email"] == "mona@example.org"
    assert body_json(body)["post"] == {"id": "583231_1", "message": "Olá & ~"}  # a Bearer form POST
    assert user["session_expires"] == "3599"
    [(_, authorize)] = [e for e in provider.log if e[0] == "authorize"]
    assert authorize["scope"] == "email,public_profile"
    [(_, token)] = [e for e in provider.log if e[0] == "token"]
    assert token["_method"] == "GET"
    [(_, me)] = [e for e in provider.log if e[0] == "graph/me"]
    assert set(me["fields"].split(",")) == {"id", "name", "first_name", "last_name", "locale", "picture",
                                           "link", "email"}


@inline
def test_twitter_oauth1a_login_and_signed_api_calls(oauth):
    provider, app = oauth
    status, _, body = yield Browser().get(f"{app}/twitter")
    assert status == 200, body
    result = body_json(body)
    assert result["user"]["username"] == "octocat"
    assert result["user"]["access_token"]["screen_name"] == "octocat"
    assert result["user"]["access_token"]["key"] in provider.access_tokens
    assert result["again"]["include_email"] == "true"  # a signed query parameter
    assert result["posted"]["text"] == "Olá & 😀 ~*"  # a signed form body
    assert provider.request_tokens == {}  # the request token was used, once
    callbacks = [e[1]["oauth_callback"] for e in provider.log if e[0] == "/oauth1/request_token"]
    assert callbacks == [f"{app}/twitter"]


@inline
def test_twitter_authenticate_redirect(oauth):
    provider, app = oauth
    status, _, body = yield Browser().get(f"{app}/twitter?authenticate=1")
    assert status == 200, body
    callbacks = [e[1]["oauth_callback"] for e in provider.log if e[0] == "/oauth1/request_token"]
    assert callbacks == [f"{app}/twitter?authenticate=1"]  # this request's URL


@inline
def test_plain_oauth2_mixin_with_a_chosen_state_from_inline_callbacks(oauth):
    provider, app = oauth
    status, _, body = yield Browser().get(f"{app}/plain")
    assert status == 200, body
    assert body_json(body)["token"]["token_type"] == "bearer"
    [(_, authorize)] = [e for e in provider.log if e[0] == "authorize"]
    assert authorize["state"] == "chosen-state" and authorize["prompt"] == "consent"


# -- CSRF and failures --------------------------------------------------------------------------


@inline
def test_a_callback_with_another_state_is_refused(oauth):
    """Login CSRF: the attacker starts a login, stops at the callback and makes
    the victim's browser open it. The victim's state cookie does not match."""
    provider, app = oauth
    attacker = Browser()
    status, location = yield attacker.step(f"{app}/github")
    assert status == 302
    status, callback = yield attacker.step(location)  # the provider approves, redirects
    assert status == 302 and callback.startswith(f"{app}/github?code=")

    victim = Browser()
    yield victim.step(f"{app}/github")  # the victim has a login of their own going
    status, _, body = yield victim.get(callback)
    assert status == 403
    assert "state" in body_json(body)["error"]
    # and with no login going at all
    status, _, body = yield Browser().get(callback)
    assert status == 403
    assert "no login in progress" in body_json(body)["error"]


@inline
def test_a_callback_works_once(oauth):
    provider, app = oauth
    browser = Browser()
    _, location = yield browser.step(f"{app}/github")
    _, callback = yield browser.step(location)
    status, _, _ = yield browser.get(callback)
    assert status == 200
    status, _, body = yield browser.get(callback)  # replayed: the login cookie is gone
    assert status == 403


@inline
def test_the_login_cookie_is_signed_lax_and_httponly(oauth):
    provider, app = oauth
    browser = Browser()
    yield browser.step(f"{app}/github")
    [cookie] = list(browser.cookies)
    assert cookie.name == "_oauth2_state"
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "Lax"
    # a cookie with the right state but no valid signature is not ours
    forged = http.cookiejar.Cookie(0, "_oauth2_state", '{"state":"x"}', None, False, "127.0.0.1", False, False,
                                   "/", True, False, None, False, None, None, {})
    browser.cookies.clear()
    browser.cookies.set_cookie(forged)
    status, _, body = yield browser.get(f"{app}/github?code=abc&state=x")
    assert status == 403


@inline
def test_user_denies(oauth):
    provider, app = oauth
    provider.auto_approve = False
    browser = Browser()
    _, location = yield browser.step(f"{app}/github")
    status, _, page = yield browser.get(location)
    assert status == 200 and "Allow" in page
    ticket = provider.pending and next(iter(provider.pending))
    # the Deny button: POST /oauth2/decide, then the redirect back to the application
    def deny():
        data = urllib.parse.urlencode({"ticket": ticket, "decision": "deny"}).encode()
        try:
            with browser.opener.open(location.split("/oauth2/")[0] + "/oauth2/decide", data, timeout=15) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    status, body = yield threads.deferToThread(deny)
    assert status == 403
    assert "access_denied" in body_json(body)["error"]


@inline
def test_provider_failure_is_502(oauth):
    provider, app = oauth
    provider.token_status = 500
    status, _, body = yield Browser().get(f"{app}/github")
    assert status == 502
    assert "answered 500" in body_json(body)["error"]


@inline
def test_provider_unreachable_is_502(listen):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"

        class Login(web.RequestHandler, provider_urls(auth.GitHubMixin, nowhere)):
            write_error = show_error

            async def get(self):
                if not self.get_argument("code", None):
                    self.authorize_redirect(redirect_uri="/")
                    return
                await self.get_authenticated_user(redirect_uri="/")

        app = web.Application([(r"/", Login)], cookie_secret="s", github_oauth={"key": "k", "secret": "s"})
        base = f"http://127.0.0.1:{listen(app)}"
        browser = Browser()
        status, location = yield browser.step(f"{base}/")
        assert status == 302 and location.startswith(f"{nowhere}/oauth2/authorize?")
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["state"][0]
        status, _, body = yield browser.get(f"{base}/?code=x&state={state}")
    assert status == 502
    assert "could not reach" in body_json(body)["error"]


@inline
def test_twitter_denied_and_wrong_token(oauth):
    provider, app = oauth
    provider.deny_oauth1 = True
    status, _, body = yield Browser().get(f"{app}/twitter")
    assert status == 403
    assert "did not authorize" in body_json(body)["error"]

    provider.deny_oauth1 = False
    browser = Browser()
    _, location = yield browser.step(f"{app}/twitter")  # our request token in the cookie
    other = Browser()
    _, other_location = yield other.step(f"{app}/twitter")
    _, other_callback = yield other.step(other_location)  # someone else's token and verifier
    status, _, body = yield browser.get(other_callback)
    assert status == 403
    assert "oauth_token" in body_json(body)["error"]


@inline
def test_missing_cookie_secret_is_a_clear_error(listen):
    class Login(web.RequestHandler, auth.GitHubMixin):
        write_error = show_error

        def get(self):
            self.authorize_redirect(redirect_uri="/")

    app = web.Application([(r"/", Login)], github_oauth={"key": "k", "secret": "s"})
    status, _, body = yield Browser().get(f"http://127.0.0.1:{listen(app)}/")
    assert status == 500  # a configuration mistake of the application
    assert "cookie_secret" in body_json(body)["error"]
