#!/usr/bin/env python3
"""Sessions: a visit counter and a login that expires.

    python session_demo.py [--port 8888] [--address 127.0.0.1]
                           [--idle 1800] [--lifetime 43200]
                           [--store memory|redis] [--redis-url redis://127.0.0.1:6379/0]

Open http://127.0.0.1:8888/: every visit counts, in a session that lives in
the server (the browser keeps only a signed, HttpOnly cookie with its id).
Log in as alice (password "wonderland") or bob ("builder"): the session gets
a new id, and /private greets you until you log out or stay idle for
``--idle`` seconds (the page counts down and reloads itself). Whatever its
use, a session ends ``--lifetime`` seconds after it began.

With ``--store redis``, sessions live in Redis: run two of these on two
ports with the same ``--redis-url`` and a login on one is a login on the
other (cookies are per host, not per port). The cookie secret comes from
``--cookie-secret`` or the ``COOKIE_SECRET`` environment variable (a random
one otherwise, which ends every session when the server restarts: the two
processes then need the same one).
"""

import argparse
import hmac
import os
import secrets
import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.web

HERE = os.path.dirname(os.path.abspath(__file__))
# a demo's users; a real application keeps password hashes (hashlib.scrypt)
USERS = {"alice": "wonderland", "bob": "builder"}


class BaseHandler(cyclone.web.RequestHandler):
    async def prepare(self):
        # the Redis store loads asynchronously: load before get_current_user reads it
        await self.session.load()

    def get_current_user(self):
        return self.session.get("user")


class VisitsHandler(BaseHandler):
    def get(self):
        self.session["visits"] = self.session.get("visits", 0) + 1
        self.render("visits.html", visits=self.session["visits"], port=self.request.host)


class LoginHandler(BaseHandler):
    def get(self):
        self.render("login.html", error=None, next=self.get_argument("next", "/private"))

    def post(self):
        user = self.get_argument("user", "")
        password = self.get_argument("password", "")
        expected = USERS.get(user, "")
        # compared in constant time, whatever the user
        if not (hmac.compare_digest(password.encode(), expected.encode()) and expected):
            self.set_status(403)
            self.render("login.html", error="wrong user or password", next=self.get_argument("next", "/private"))
            return
        self.session.regenerate()  # a new id once logged in: the old one is worthless
        self.session["user"] = user
        self.session.notify_on_expire(lambda session_id: print(f"session of {user} ended", flush=True))
        self.redirect(self.get_argument("next", "/private"))


class PrivateHandler(BaseHandler):
    @cyclone.web.authenticated
    def get(self):
        self.render("private.html", user=self.current_user, idle=self.settings["session_idle_timeout"])


class LogoutHandler(BaseHandler):
    def post(self):
        self.session.expire()
        self.redirect("/")


def make_app(idle: float = 1800, lifetime: float = 43200, store: str = "memory",
             redis_url: str | None = None, cookie_secret: str | None = None) -> cyclone.web.Application:
    settings = {}
    if store == "redis":
        settings["redis_url"] = redis_url or "redis://127.0.0.1:6379/0"
    return cyclone.web.Application(
        [
            (r"/", VisitsHandler),
            (r"/login", LoginHandler),
            (r"/private", PrivateHandler),
            (r"/logout", LogoutHandler),
        ],
        template_path=os.path.join(HERE, "templates"),
        cookie_secret=cookie_secret or secrets.token_hex(32),
        xsrf_cookies=True,
        login_url="/login",
        session_store=store,
        session_idle_timeout=idle,
        session_lifetime=lifetime,
        session_sweep_interval=min(60.0, idle),
        **settings,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="TCP port (default 8888)")
    parser.add_argument("--address", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--idle", type=float, default=1800, help="idle timeout, seconds (default 1800)")
    parser.add_argument("--lifetime", type=float, default=43200, help="session lifetime, seconds (default 43200)")
    parser.add_argument("--store", choices=["memory", "redis"], default="memory")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cookie-secret", default=os.environ.get("COOKIE_SECRET"))
    options = parser.parse_args(argv)
    if options.idle <= 0 or options.lifetime <= 0:
        parser.error("--idle and --lifetime must be positive")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    app = make_app(options.idle, options.lifetime, options.store, options.redis_url, options.cookie_secret)
    reactor.listenTCP(options.port, app, interface=options.address)
    print(f"session demo ({options.store} store) on http://{options.address}:{options.port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
