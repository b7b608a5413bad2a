"""A local OAuth provider for the tests: a test double of GitHub, Google,
Facebook and Twitter, served by cyclone on 127.0.0.1.

* OAuth 2 (RFC 6749): ``/oauth2/authorize`` (an Allow / Deny page, or
  straight back with ``auto_approve``), ``/oauth2/token`` (single-use codes,
  exact ``redirect_uri``, client secret in the form or HTTP Basic, PKCE S256
  checked, JSON or form-encoded answer as GitHub does, an HS256 ID token when
  ``openid`` is in the scope), and the APIs ``/api/user`` (GitHub's
  ``/user``), ``/api/gists``, ``/oidc/userinfo``, ``/graph/me`` (Facebook, with
  ``appsecret_proof`` checked), all with ``Authorization: Bearer``.
* OAuth 1.0a (RFC 5849): ``/oauth1/request_token``, ``/oauth1/authorize``,
  ``/oauth1/access_token`` and ``/oauth1/api/…`` (verify_credentials and a
  status update). Every signature is checked with oauthlib, an
  implementation we did not write; nonces are single-use.

Everything it saw is kept in ``Provider.log`` for the tests to look at.
Run alone (the demo tests do)::

    python -m tests.oauth_provider --port 9000 --client-id ID --client-secret SECRET \\
        --redirect-uri http://127.0.0.1:8888/auth/github [--manual]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.parse
from typing import Any

from cyclone import web

try:
    from oauthlib.common import Request as OAuthlibRequest
    from oauthlib.oauth1.rfc5849 import signature as oauth1_signature
except ImportError:  # pragma: no cover - the test extra installs it
    OAuthlibRequest = oauth1_signature = None

USER = {
    "login": "octocat",
    "id": 583231,
    "name": "Mona Lisa Octocät",
    "email": "mona@example.org",
    "first_name": "Mona",
    "last_name": "Octocät",
    "locale": "pt_BR",
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Provider:
    """The provider's configuration and memory."""

    def __init__(
        self,
        client_id: str = "the-client",
        client_secret: str = "the-client-secret",
        redirect_uris: list[str] | None = None,
        consumer_key: str = "the-consumer",
        consumer_secret: str = "the-consumer-secret ü&=",
        auto_approve: bool = True,
        require_pkce: bool = True,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris if redirect_uris is not None else []
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.auto_approve = auto_approve
        self.require_pkce = require_pkce
        self.issuer = "https://accounts.example.test"
        self.user = dict(USER)
        self.codes: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.request_tokens: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, str] = {}
        self.nonces: set[tuple[str, str]] = set()
        self.log: list[tuple[str, dict[str, Any]]] = []
        # knobs for the tests
        self.id_token_changes: dict[str, Any] = {}
        self.token_status: int | None = None
        self.deny_oauth1 = False

    def issue_code(self, request: dict[str, Any]) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = request
        return code


def redirect_with(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to its query (RFC 6749 §4.1.2, RFC 5849 §2.2)."""
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


class Base(web.RequestHandler):
    def initialize(self, provider: Provider) -> None:
        self.provider = provider

    def oauth2_error(self, status: int, error: str, description: str) -> None:
        self.set_status(status)
        self.finish({"error": error, "error_description": description})

    def bearer_user(self) -> dict[str, Any] | None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or token not in self.provider.tokens:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.finish({"message": "Bad credentials"})
            return None
        return self.provider.tokens[token]


# -- OAuth 2 ------------------------------------------------------------------------------------


class AuthorizeHandler(Base):
    def get(self) -> None:
        p = self.provider
        args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        p.log.append(("authorize", args))
        # RFC 6749 §4.1.2.1: a bad client or redirect URI is told to the user, never redirected to
        if args.get("client_id") != p.client_id:
            raise web.HTTPError(400, reason="unknown client_id")
        if args.get("redirect_uri") not in p.redirect_uris:
            raise web.HTTPError(400, reason="redirect_uri not registered")
        if args.get("response_type") != "code":
            raise web.HTTPError(400, reason="response_type must be code")
        if not args.get("state"):
            raise web.HTTPError(400, reason="no state: this provider insists on CSRF protection")
        if p.require_pkce and (not args.get("code_challenge") or args.get("code_challenge_method") != "S256"):
            raise web.HTTPError(400, reason="PKCE S256 required")
        if p.auto_approve:
            self.decide(args, allow=True)
            return
        ticket = secrets.token_urlsafe(12)
        p.pending[ticket] = args
        self.write(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Authorize</title></head><body>"
            f"<h1>Let the application see your profile?</h1><p>Scope: <span id='scope'>{args.get('scope', '')}</span></p>"
            "<form method='post' action='/oauth2/decide'>"
            f"<input type='hidden' name='ticket' value='{ticket}'>"
            "<button id='allow' name='decision' value='allow'>Allow</button>"
            "<button id='deny' name='decision' value='deny'>Deny</button>"
            "</form></body></html>"
        )

    def decide(self, args: dict[str, Any], allow: bool) -> None:
        if not allow:
            self.redirect(
                redirect_with(args["redirect_uri"], {"error": "access_denied",
                                                     "error_description": "The user said no", "state": args["state"]}),
                allow_external=True,
            )
            return
        code = self.provider.issue_code(args)
        self.redirect(redirect_with(args["redirect_uri"], {"code": code, "state": args["state"]}),
                      allow_external=True)


class DecideHandler(AuthorizeHandler):
    def post(self) -> None:
        args = self.provider.pending.pop(self.get_body_argument("ticket"), None)
        if args is None:
            raise web.HTTPError(400, reason="unknown ticket")
        self.decide(args, allow=self.get_body_argument("decision") == "allow")


class TokenHandler(Base):
    def check_xsrf_cookie(self) -> None:
        pass

    def handle(self, form: dict[str, str]) -> None:
        p = self.provider
        p.log.append(("token", dict(form, _method=self.request.method,
                                    _accept=self.request.headers.get("Accept", ""))))
        if p.token_status is not None:
            self.set_status(p.token_status)
            self.finish("the token endpoint is down")
            return
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = self.request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, client_secret = urllib.parse.unquote(client_id), urllib.parse.unquote(client_secret)
        if client_id != p.client_id or client_secret != p.client_secret:
            return self.oauth2_error(401, "invalid_client", "bad client credentials")
        if form.get("grant_type") != "authorization_code":
            return self.oauth2_error(400, "unsupported_grant_type", "only authorization_code")
        request = p.codes.pop(form.get("code", ""), None)  # single use
        if request is None:
            return self.oauth2_error(400, "invalid_grant", "unknown or used code")
        if form.get("redirect_uri") != request["redirect_uri"]:
            return self.oauth2_error(400, "invalid_grant", "redirect_uri differs from the authorization's")
        challenge = request.get("code_challenge")
        if challenge is not None:
            verifier = form.get("code_verifier", "")
            if b64url(hashlib.sha256(verifier.encode()).digest()) != challenge:
                return self.oauth2_error(400, "invalid_grant", "PKCE verifier does not match")
        access_token = secrets.token_urlsafe(20)
        p.tokens[access_token] = {"scope": request.get("scope", ""), "client_id": client_id}
        answer: dict[str, Any] = {"access_token": access_token, "token_type": "bearer",
                                  "scope": request.get("scope", ""), "expires_in": 3599}
        if "openid" in request.get("scope", "").split():
            answer["id_token"] = self.id_token(request)
        if "json" in self.request.headers.get("Accept", ""):
            self.finish(answer)
        else:  # what GitHub answers without Accept: application/json
            self.set_header("Content-Type", "application/x-www-form-urlencoded")
            self.finish(urllib.parse.urlencode(answer))

    def id_token(self, request: dict[str, Any]) -> str:
        p = self.provider
        now = int(time.time())
        claims = {"iss": p.issuer, "aud": p.client_id, "sub": str(p.user["id"]), "email": p.user["email"],
                  "email_verified": True, "name": p.user["name"], "iat": now, "exp": now + 3600}
        if "nonce" in request:
            claims["nonce"] = request["nonce"]
        claims.update(p.id_token_changes)
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(claims).encode())
        mac = hmac.new(p.client_secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url(mac)}"

    def post(self) -> None:
        self.handle({k: self.get_body_argument(k) for k in self.request.body_arguments})

    def get(self) -> None:  # Facebook's token endpoint is a GET
        self.handle({k: self.get_query_argument(k) for k in self.request.query_arguments})


class GitHubUserHandler(Base):
    def get(self) -> None:
        self.provider.log.append(("api/user", {"headers": dict(self.request.headers.get_all())}))
        if not self.request.headers.get("User-Agent"):
            raise web.HTTPError(403, reason="a User-Agent is required")  # as GitHub
        if self.bearer_user() is not None:
            u = self.provider.user
            self.finish({"login": u["login"], "id": u["id"], "name": u["name"], "email": u["email"]})


class GistsHandler(Base):
    def get(self) -> None:
        if self.bearer_user() is not None:
            self.finish(json.dumps([
                {"id": "aa5a315d61ae9438b18d", "html_url": "https://gist.example/aa5a", "description": "Olá, gist"},
                {"id": "bb6b426e72bf0549c29e", "html_url": "https://gist.example/bb6b", "description": None},
            ]))


class UserinfoHandler(Base):
    def get(self) -> None:
        if self.bearer_user() is not None:
            u = self.provider.user
            self.finish({"sub": str(u["id"]), "name": u["name"], "email": u["email"], "email_verified": True})


class GraphFeedHandler(Base):
    def post(self) -> None:
        if self.bearer_user() is not None:
            self.finish({"id": "583231_1", "message": self.get_body_argument("message")})


class GraphMeHandler(Base):
    def get(self) -> None:
        p = self.provider
        p.log.append(("graph/me", {k: self.get_query_argument(k) for k in self.request.query_arguments}))
        if self.bearer_user() is None:
            return
        token = self.request.headers["Authorization"].partition(" ")[2]
        proof = hmac.new(p.client_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        if self.get_query_argument("appsecret_proof", None) != proof:
            return self.oauth2_error(400, "invalid_request", "appsecret_proof does not match")
        u = p.user
        everything = {"id": str(u["id"]), "name": u["name"], "first_name": u["first_name"],
                      "last_name": u["last_name"], "locale": u["locale"], "email": u["email"],
                      "link": "https://facebook.example/mona", "picture": {"data": {"url": "https://img/x.png"}}}
        fields = self.get_query_argument("fields", "id,name").split(",")
        self.finish({k: v for k, v in everything.items() if k in fields})


# -- OAuth 1.0a -----------------------------------------------------------------------------------


class OAuth1Base(Base):
    def check_xsrf_cookie(self) -> None:
        pass

    def verified(self, token_secret: str | None) -> dict[str, str] | None:
        """The request's oauth_* parameters if its signature holds (checked
        by oauthlib), else answer 401 and return None."""
        uri = self.request.full_url()
        headers = {"Authorization": self.request.headers.get("Authorization", "")}
        content_type = self.request.headers.get("Content-Type", "")
        body = self.request.body.decode() if content_type.startswith("application/x-www-form-urlencoded") else None
        query = urllib.parse.urlsplit(uri).query
        try:
            params = oauth1_signature.collect_parameters(uri_query=query, body=body, headers=headers)
            with_signature = oauth1_signature.collect_parameters(
                uri_query=query, body=body, headers=headers, exclude_oauth_signature=False)
        except ValueError as exc:
            self.set_status(400)
            self.finish({"error": str(exc)})
            return None
        oauth = {k: v for k, v in with_signature if k.startswith("oauth_")}
        self.provider.log.append((self.request.path, dict(oauth)))
        request = OAuthlibRequest(uri, http_method=self.request.method, body=body, headers=headers)
        request.params = params
        request.signature = oauth.get("oauth_signature", "")
        if oauth.get("oauth_consumer_key") != self.provider.consumer_key:
            self.set_status(401)
            self.finish({"error": "unknown consumer"})
            return None
        nonce = (oauth.get("oauth_nonce", ""), oauth.get("oauth_timestamp", ""))
        if nonce in self.provider.nonces:
            self.set_status(401)
            self.finish({"error": "nonce used before"})
            return None
        self.provider.nonces.add(nonce)
        method = oauth.get("oauth_signature_method")
        verify = {"HMAC-SHA1": oauth1_signature.verify_hmac_sha1,
                  "HMAC-SHA256": oauth1_signature.verify_hmac_sha256}.get(method)
        if verify is None or not verify(request, self.provider.consumer_secret, token_secret):
            self.set_status(401)
            self.finish({"error": "invalid signature"})
            return None
        return oauth


class RequestTokenHandler(OAuth1Base):
    def post(self) -> None:
        oauth = self.verified(None)
        if oauth is None:
            return
        if "oauth_callback" not in oauth:
            self.set_status(400)
            self.finish({"error": "oauth_callback is required"})
            return
        key, secret = secrets.token_urlsafe(12), secrets.token_urlsafe(12) + "&+ü"
        self.provider.request_tokens[key] = {"secret": secret, "callback": oauth["oauth_callback"]}
        self.set_header("Content-Type", "application/x-www-form-urlencoded")
        self.finish(urllib.parse.urlencode(
            {"oauth_token": key, "oauth_token_secret": secret, "oauth_callback_confirmed": "true"}))


class OAuth1AuthorizeHandler(OAuth1Base):
    def get(self) -> None:
        key = self.get_query_argument("oauth_token")
        token = self.provider.request_tokens.get(key)
        if token is None:
            raise web.HTTPError(400, reason="unknown oauth_token")
        if self.provider.deny_oauth1:  # Twitter's way of saying no
            self.redirect(redirect_with(token["callback"], {"denied": key}), allow_external=True)
            return
        token["verifier"] = secrets.token_urlsafe(8)
        self.redirect(redirect_with(token["callback"], {"oauth_token": key, "oauth_verifier": token["verifier"]}),
                      allow_external=True)


class AccessTokenHandler(OAuth1Base):
    def post(self) -> None:
        key = self._oauth_token()
        token = self.provider.request_tokens.get(key)
        if token is None:
            self.set_status(401)
            self.finish({"error": "unknown request token"})
            return
        oauth = self.verified(token["secret"])
        if oauth is None:
            return
        if "verifier" not in token or oauth.get("oauth_verifier") != token["verifier"]:
            self.set_status(401)
            self.finish({"error": "bad verifier"})
            return
        del self.provider.request_tokens[key]  # RFC 5849 §2: used once
        access_key, access_secret = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        self.provider.access_tokens[access_key] = access_secret
        self.set_header("Content-Type", "application/x-www-form-urlencoded")
        self.finish(urllib.parse.urlencode({"oauth_token": access_key, "oauth_token_secret": access_secret,
                                            "user_id": str(self.provider.user["id"]),
                                            "screen_name": self.provider.user["login"]}))

    def _oauth_token(self) -> str:
        header = self.request.headers.get("Authorization", "")
        for key, value in oauth1_signature.utils.parse_authorization_header(header):
            if key == "oauth_token":
                return value
        return ""


class OAuth1ApiHandler(AccessTokenHandler):
    def get(self, what: str) -> None:
        self.api(what)

    def post(self, what: str) -> None:
        self.api(what)

    def api(self, what: str) -> None:
        key = self._oauth_token()
        if key not in self.provider.access_tokens:
            self.set_status(401)
            self.finish({"error": "unknown access token"})
            return
        if self.verified(self.provider.access_tokens[key]) is None:
            return
        u = self.provider.user
        if what == "account/verify_credentials.json":
            self.finish({"id": u["id"], "screen_name": u["login"], "name": u["name"],
                         "include_email": self.get_query_argument("include_email", None)})
        elif what == "statuses/update.json":
            self.finish({"text": self.get_body_argument("status"), "user": {"screen_name": u["login"]}})
        else:
            raise web.HTTPError(404)


def make_app(provider: Provider) -> web.Application:
    kwargs = {"provider": provider}
    return web.Application([
        (r"/oauth2/authorize", AuthorizeHandler, kwargs),
        (r"/oauth2/decide", DecideHandler, kwargs),
        (r"/oauth2/token", TokenHandler, kwargs),
        (r"/api/user", GitHubUserHandler, kwargs),
        (r"/api/gists", GistsHandler, kwargs),
        (r"/oidc/userinfo", UserinfoHandler, kwargs),
        (r"/graph/me", GraphMeHandler, kwargs),
        (r"/graph/me/feed", GraphFeedHandler, kwargs),
        (r"/oauth1/request_token", RequestTokenHandler, kwargs),
        (r"/oauth1/authorize", OAuth1AuthorizeHandler, kwargs),
        (r"/oauth1/access_token", AccessTokenHandler, kwargs),
        (r"/oauth1/api/(.+)", OAuth1ApiHandler, kwargs),
    ])


def main(argv: list[str] | None = None) -> None:
    from twisted.internet import reactor

    parser = argparse.ArgumentParser(description="a local OAuth provider for tests")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", default="the-client")
    parser.add_argument("--client-secret", default="the-client-secret")
    parser.add_argument("--redirect-uri", action="append", default=[])
    parser.add_argument("--manual", action="store_true", help="show an Allow / Deny page")
    options = parser.parse_args(argv)
    provider = Provider(options.client_id, options.client_secret, options.redirect_uri,
                        auto_approve=not options.manual)
    reactor.listenTCP(options.port, make_app(provider), interface="127.0.0.1")
    print(f"OAuth provider on http://127.0.0.1:{options.port}/", flush=True)
    sys.stdout.flush()
    reactor.run()


if __name__ == "__main__":
    main()
