#!/usr/bin/env python3
"""Log in with GitHub (cyclone.auth.GitHubMixin) and list your gists.

    python github_auth.py [--port 8888] --client-id ID --client-secret SECRET
                          [--provider URL]

Register an OAuth app at https://github.com/settings/developers with the
callback URL http://127.0.0.1:8888/auth/github (or pass the id and secret in
GITHUB_CLIENT_ID / GITHUB_CLIENT_SECRET). ``--provider`` points the demo at
another GitHub-like server (``URL/oauth2/authorize``, ``URL/oauth2/token``,
``URL/api``): the tests use a local one.
"""

import argparse
import os
import secrets
import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.auth
import cyclone.web

HERE = os.path.dirname(os.path.abspath(__file__))


class BaseHandler(cyclone.web.RequestHandler):
    def initialize(self, sessions: dict) -> None:
        # the access tokens stay on the server; the browser holds a signed session id
        self.sessions = sessions

    def get_current_user(self):
        session_id = self.get_signed_cookie("session")
        return self.sessions.get(session_id.decode()) if session_id else None


class HomeHandler(BaseHandler, cyclone.auth.GitHubMixin):
    async def get(self) -> None:
        session = self.current_user
        gists = None
        if session is not None:
            gists = await self.github_request("/gists", session["token"])
        self.render("home.html", session=session, gists=gists)


class GitHubLoginHandler(BaseHandler, cyclone.auth.GitHubMixin):
    async def get(self) -> None:
        redirect_uri = self.settings["redirect_uri"] or self.request.full_url().split("?")[0]
        if not self.get_argument("code", None) and not self.get_argument("error", None):
            self.authorize_redirect(redirect_uri=redirect_uri, scope=["read:user", "gist"])
            return
        try:
            user = await self.get_authenticated_user(redirect_uri=redirect_uri)
        except cyclone.auth.AuthError as exc:
            self.set_status(exc.status_code)
            self.render("refused.html", reason=str(exc))
            return
        session_id = secrets.token_urlsafe(24)
        self.sessions[session_id] = {"user": user, "token": user["access_token"]}
        self.set_signed_cookie("session", session_id, httponly=True, samesite="Lax")
        self.redirect("/")


class LogoutHandler(BaseHandler):
    def post(self) -> None:
        session_id = self.get_signed_cookie("session")
        if session_id:
            self.sessions.pop(session_id.decode(), None)
        self.clear_cookie("session")
        self.redirect("/")


def make_app(client_id: str, client_secret: str, provider: str | None = None,
             redirect_uri: str | None = None) -> cyclone.web.Application:
    home, login = HomeHandler, GitHubLoginHandler
    if provider:  # a GitHub-like server elsewhere (the tests' local one): the mixin's URLs are class attributes
        urls = {
            "_OAUTH_AUTHORIZE_URL": f"{provider}/oauth2/authorize",
            "_OAUTH_ACCESS_TOKEN_URL": f"{provider}/oauth2/token",
            "_GITHUB_API_URL": f"{provider}/api",
        }
        home = type("HomeHandler", (HomeHandler,), urls)
        login = type("GitHubLoginHandler", (GitHubLoginHandler,), urls)
    sessions: dict = {}
    return cyclone.web.Application(
        [
            (r"/", home, {"sessions": sessions}),
            (r"/auth/github", login, {"sessions": sessions}),
            (r"/logout", LogoutHandler, {"sessions": sessions}),
        ],
        template_path=os.path.join(HERE, "templates"),
        cookie_secret=secrets.token_hex(32),
        xsrf_cookies=True,
        login_url="/auth/github",
        github_oauth={"key": client_id, "secret": client_secret},
        redirect_uri=redirect_uri,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--client-id", default=os.environ.get("GITHUB_CLIENT_ID"))
    parser.add_argument("--client-secret", default=os.environ.get("GITHUB_CLIENT_SECRET"))
    parser.add_argument("--provider", help="base URL of a GitHub-like provider (default: GitHub)")
    parser.add_argument("--redirect-uri", help="the callback URL registered with the provider "
                        "(default: this server's /auth/github)")
    options = parser.parse_args(argv)
    if not options.client_id or not options.client_secret:
        parser.error("give --client-id and --client-secret (or GITHUB_CLIENT_ID / GITHUB_CLIENT_SECRET)")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    app = make_app(options.client_id, options.client_secret, options.provider, options.redirect_uri)
    reactor.listenTCP(options.port, app, interface=options.address)
    print(f"GitHub login demo on http://{options.address}:{options.port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
