"""HTTP Basic and Digest authentication with cyclone.httpauth.

Two users, alice (password ``wonderland``) and bob (``builder``), kept in
Twisted's in-memory checker; ``/basic`` asks for Basic, ``/digest`` for
Digest (SHA-256 offered first, MD5 for older clients), ``/any`` accepts
either. Run it and try::

    python httpauth.py 8888
    curl --basic -u alice:wonderland http://127.0.0.1:8888/basic
    curl --digest -u bob:builder http://127.0.0.1:8888/digest
    curl --anyauth -u alice:wonderland http://127.0.0.1:8888/any

A browser asks for the user name and password itself.
"""

from __future__ import annotations

import logging
import sys

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet import reactor

import cyclone.web
from cyclone.httpauth import HTTPAuth, HTTPAuthMixin, parse_authorization

USERS = InMemoryUsernamePasswordDatabaseDontUse(alice=b"wonderland", bob=b"builder")
basic = HTTPAuth(USERS, realm="cyclone basic demo")
digest = HTTPAuth(USERS, realm="cyclone digest demo", schemes=("Digest",))
either = HTTPAuth(USERS, realm="cyclone demo", schemes=("Digest", "Basic"))


def how(request) -> str:
    """"Basic", or "Digest (SHA-256)": what the client answered with."""
    scheme, params = parse_authorization(request.headers["Authorization"])
    if scheme == "digest":
        return f"Digest ({params.get('algorithm', 'MD5')})"
    return "Basic"


class Home(cyclone.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write("Protected pages: /basic (Basic), /digest (Digest), /any (either).\n")


class BasicPage(cyclone.web.RequestHandler):
    @basic.required
    def get(self):
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(f"Hello, {self.current_user}: you used Basic.\n")


class DigestPage(cyclone.web.RequestHandler):
    @digest.required
    async def get(self):  # coroutines work under the decorator too
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(f"Hello, {self.current_user}: you used {how(self.request)}.\n")


class AnyPage(HTTPAuthMixin, cyclone.web.RequestHandler):
    """Every method of this handler needs a user (the mixin authenticates before prepare)."""

    http_auth = either

    def get(self):
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(f"Hello, {self.current_user}: you used {how(self.request)}.\n")


def make_app() -> cyclone.web.Application:
    return cyclone.web.Application(
        [(r"/", Home), (r"/basic", BasicPage), (r"/digest", DigestPage), (r"/any", AnyPage)]
    )


def main(argv: list[str]) -> None:
    port = int(argv[1]) if len(argv) > 1 else 8888
    # requests and failed logins (user name and address, never the password) to stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    reactor.listenTCP(port, make_app(), interface="127.0.0.1")
    print(f"http://127.0.0.1:{port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
