"""HTTP authentication against users kept in Redis (through txredisapi).

The passwords themselves are never stored. Each user is a Redis hash
``httpauth:user:<name>`` holding what each scheme needs to check an answer:

``SHA-256`` and ``MD5``
    ``H(name:realm:password)``, from which Digest answers are checked
    (``DigestCredentials.checkHash``); they are bound to the realm, so
    changing the realm means setting every password again.
``pbkdf2``
    a salted PBKDF2-SHA256 hash for Basic, computed in a thread so the
    reactor keeps serving (Basic sends the password with every request: each
    request pays for one PBKDF2).

Add users, then serve (Redis on 127.0.0.1:6379 unless ``--redis host:port``)::

    python httpauth_redis.py adduser alice wonderland
    python httpauth_redis.py serve 8888
    curl --digest -u alice:wonderland http://127.0.0.1:8888/
    curl --basic -u alice:wonderland http://127.0.0.1:8888/
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import os
import sys

import txredisapi
from twisted.cred import credentials as cred
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, task, threads
from zope.interface import implementer

import cyclone.web
from cyclone.httpauth import HTTPAuth, digest_ha1

REALM = "cyclone redis demo"
KEY = "httpauth:user:{}"
PBKDF2_ITERATIONS = 100_000


def pbkdf2(password: bytes, salt: bytes, iterations: int = PBKDF2_ITERATIONS) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    return f"{iterations}${salt.hex()}${digest.hex()}"


def pbkdf2_matches(stored: str, password: bytes) -> bool:
    iterations, salt, _ = stored.split("$")
    return hmac.compare_digest(pbkdf2(password, bytes.fromhex(salt), int(iterations)), stored)


# an unknown user costs as much as a known one: no timing tells who exists
_NOBODY = pbkdf2(b"", b"no such user salt")


@implementer(ICredentialsChecker)
class RedisUsers:
    """A twisted.cred checker reading the hashes above from Redis."""

    credentialInterfaces = (cred.IUsernamePassword, cred.IUsernameDigestHash)

    def __init__(self, redis: txredisapi.BaseRedisProtocol) -> None:
        self.redis = redis

    def requestAvatarId(self, credentials) -> defer.Deferred:
        return defer.ensureDeferred(self._check(credentials))

    async def _check(self, credentials) -> bytes:
        try:
            name = credentials.username.decode("utf-8")
        except UnicodeDecodeError:
            raise UnauthorizedLogin("user name is not UTF-8") from None
        key = KEY.format(name)
        if cred.IUsernamePassword.providedBy(credentials):  # Basic
            stored = await self.redis.hget(key, "pbkdf2")
            matches = await threads.deferToThread(pbkdf2_matches, stored or _NOBODY, credentials.password)
            ok = stored is not None and matches
        else:  # Digest: the hash for the algorithm the client chose
            stored = await self.redis.hget(key, credentials.algorithm)
            ok = stored is not None and credentials.checkHash(stored)
        if not ok:
            raise UnauthorizedLogin()
        return credentials.username


class Home(cyclone.web.RequestHandler):
    def initialize(self, guard: HTTPAuth) -> None:
        self.guard = guard

    def prepare(self):
        return self.guard.login(self)

    def get(self):
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        scheme = self.request.headers["Authorization"].split(" ", 1)[0]
        self.write(f"Hello, {self.current_user}: checked against Redis ({scheme}).\n")


def make_app(redis) -> cyclone.web.Application:
    guard = HTTPAuth(RedisUsers(redis), realm=REALM, schemes=("Digest", "Basic"))
    return cyclone.web.Application([(r"/", Home, {"guard": guard})])


async def adduser(connecting: defer.Deferred, name: str, password: str) -> None:
    redis = await connecting
    secret = password.encode("utf-8")
    await redis.hmset(
        KEY.format(name),
        {
            "SHA-256": digest_ha1(name, REALM, secret, "SHA-256"),
            "MD5": digest_ha1(name, REALM, secret, "MD5"),
            "pbkdf2": pbkdf2(secret, os.urandom(16)),
        },
    )
    await redis.disconnect()
    print(f"user {name} added", flush=True)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", default="127.0.0.1:6379", help="host:port of the Redis server")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("adduser", help="add (or change) a user")
    add.add_argument("name")
    add.add_argument("password")
    serve = commands.add_parser("serve", help="serve the protected page")
    serve.add_argument("port", type=int, nargs="?", default=8888)
    args = parser.parse_args(argv[1:])
    # requests and failed logins (user name and address, never the password) to stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, _, port = args.redis.rpartition(":")

    if args.command == "adduser":
        task.react(lambda reactor: defer.ensureDeferred(
            adduser(txredisapi.Connection(host, int(port), reconnect=False), args.name, args.password)))
        return
    from twisted.internet import reactor

    redis = txredisapi.lazyConnectionPool(host, int(port), poolsize=4)
    reactor.listenTCP(args.port, make_app(redis), interface="127.0.0.1")
    print(f"http://127.0.0.1:{args.port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
