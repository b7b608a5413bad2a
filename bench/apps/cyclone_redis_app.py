"""The app of bench/redis_session.py: plain hello, one Redis GET per request,
and a handler touching its session, with the memory and the Redis stores.

Two applications in one process (one session store each), on ``--port``
(memory store) and ``--port + 1`` (Redis store); both serve every endpoint:

``GET /``              ``Hello, World!`` (the baseline)
``GET /redis``         the value of one Redis key (``GET`` through ``self.redis``),
                       in an ``async def`` handler
``GET /redis-deferred`` the same, the verb method returning txredisapi's Deferred
``GET /session``       increments a counter in the session: a load and a save
``GET /session-read``  reads the session: a load, no save
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import HELLO, announce  # noqa: E402

import cyclone.web  # noqa: E402

REDIS_KEY = "bench:hello"


class HelloHandler(cyclone.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(HELLO)


class RedisHandler(cyclone.web.RequestHandler):
    async def get(self):
        value = await self.redis.get(REDIS_KEY)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(value)


class RedisDeferredHandler(cyclone.web.RequestHandler):
    """The same GET, Twisted style: the verb method returns the Deferred."""

    def get(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        return self.redis.get(REDIS_KEY).addCallback(self.write)


class SessionHandler(cyclone.web.RequestHandler):
    async def get(self):
        await self.session.load()
        self.session["n"] = self.session.get("n", 0) + 1
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(HELLO)


class SessionReadHandler(cyclone.web.RequestHandler):
    async def get(self):
        await self.session.load()
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(HELLO if self.session.get("n") is not None else "no session")


def make_app(store: str, redis_url: str) -> cyclone.web.Application:
    return cyclone.web.Application(
        [(r"/", HelloHandler), (r"/redis", RedisHandler), (r"/redis-deferred", RedisDeferredHandler), (r"/session", SessionHandler),
         (r"/session-read", SessionReadHandler)],
        cookie_secret="bench secret",
        session_store=store,
        redis_url=redis_url,
        redis_poolsize=4,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() once started: full collections then skip the objects "
                             "made at startup (modules, classes, the applications)")
    args = parser.parse_args()
    from twisted.internet import reactor

    memory = make_app("memory", args.redis_url)
    redis = make_app("redis", args.redis_url)
    reactor.listenTCP(args.port, memory, backlog=1024, interface="127.0.0.1")
    reactor.listenTCP(args.port + 1, redis, backlog=1024, interface="127.0.0.1")
    if args.gc_freeze:
        import gc

        gc.collect()
        gc.freeze()
    announce("cyclone-redis", type(reactor).__module__ + "." + type(reactor).__name__)
    reactor.run()


if __name__ == "__main__":
    main()
