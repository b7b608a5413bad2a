#!/usr/bin/env python3
"""Redis: get/set, and a live feed over pub/sub that crosses processes.

    python redis_demo.py [--port 8888] [--address 127.0.0.1]
                         [--redis-url redis://127.0.0.1:6379/0]

Open http://127.0.0.1:8888/: set and get keys, and publish to the live feed.
The page follows the feed over a WebSocket; every process running this demo
on the same Redis shows every message, whichever process it was published
on (each process has one subscriber connection, ``application.redis_pubsub``,
that fans the messages out to its WebSockets and long-polls).

HTTP API (JSON answers):

- ``GET /key/NAME``: ``{"key": NAME, "value": ...}`` (null when unset);
- ``POST /key/NAME`` with the form field ``value``: sets it;
- ``POST /publish`` with the form field ``message``: ``{"receivers": N}``,
  the Redis subscriber connections that got it;
- ``GET /poll``: waits for the next message of the feed (long-poll);
- ``GET /stats``: ``{"subscribers": N}``, the feed's local subscribers;
- WebSocket ``/feed``: ``{"ready": true}`` once subscribed, then
  ``{"message": ...}`` for each message.

If Redis is down, the API answers 503 and reconnects by itself.
"""

import argparse
import os
import sys

from twisted.internet import defer, reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.redis
import cyclone.web
import cyclone.websocket

HERE = os.path.dirname(os.path.abspath(__file__))
CHANNEL = "demo:feed"
KEY_PREFIX = "demo:key:"
MAX_VALUE = 64 * 1024  # characters in a value or a message


class PageHandler(cyclone.web.RequestHandler):
    def get(self):
        self.render("index.html", max_value=MAX_VALUE)


class RedisHandler(cyclone.web.RequestHandler):
    def write_error(self, status_code, **kwargs):
        self.write({"error": self._reason})

    async def command(self, name, *args):
        """A Redis command; 503 while Redis cannot be reached."""
        try:
            return await getattr(self.redis, name)(*args)
        except cyclone.redis.ConnectionError as exc:
            raise cyclone.web.HTTPError(503, reason="Redis unavailable") from exc

    def text_argument(self, name):
        value = self.get_argument(name)
        if len(value) > MAX_VALUE:
            raise cyclone.web.HTTPError(413, reason=f"{name} longer than {MAX_VALUE} characters")
        return value


class KeyHandler(RedisHandler):
    async def get(self, name):
        value = await self.command("get", KEY_PREFIX + name)
        self.write({"key": name, "value": value})

    async def post(self, name):
        value = self.text_argument("value")
        await self.command("set", KEY_PREFIX + name, value)
        self.write({"key": name, "value": value})


class PublishHandler(RedisHandler):
    async def post(self):
        receivers = await self.command("publish", CHANNEL, self.text_argument("message"))
        self.write({"receivers": receivers})


class PollHandler(cyclone.web.RequestHandler):
    """Long-poll: answers with the next message of the feed."""

    async def get(self):
        self.subscription = self.application.redis_pubsub.subscribe(CHANNEL)
        try:
            _, message = await self.subscription.get()
        except defer.CancelledError:
            return  # the client left: on_connection_close stopped the subscription
        self.subscription.stop()
        self.write({"message": message})

    def on_connection_close(self):
        self.subscription.stop()


class StatsHandler(cyclone.web.RequestHandler):
    def get(self):
        self.write({"subscribers": self.application.redis_pubsub.subscriber_count()})


class FeedHandler(cyclone.websocket.WebSocketHandler):
    subscription = None

    def open(self):
        self.subscription = self.application.redis_pubsub.subscribe(CHANNEL, self.on_feed)
        # tell the page once Redis has confirmed: from then on, nothing published is missed
        self.subscription.ready.addCallbacks(lambda _: self.send({"ready": True}), lambda _: None)

    def send(self, event):
        try:
            self.write_message(event)
        except cyclone.websocket.WebSocketClosedError:
            pass

    def on_feed(self, channel, message):
        self.send({"message": message})

    def on_message(self, message):
        pass  # the feed is one-way: publish with POST /publish

    def on_close(self):
        if self.subscription is not None:
            self.subscription.stop()


def make_app(redis_url: str = "redis://127.0.0.1:6379/0") -> cyclone.web.Application:
    return cyclone.web.Application(
        [
            (r"/", PageHandler),
            (r"/key/([\w.:-]{1,100})", KeyHandler),
            (r"/publish", PublishHandler),
            (r"/poll", PollHandler),
            (r"/stats", StatsHandler),
            (r"/feed", FeedHandler),
        ],
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        redis_url=redis_url,
        redis_connect_timeout=2.0,
        cross_origin_protection=True,  # the page's POSTs only, not another site's
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="TCP port (default 8888)")
    parser.add_argument("--address", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    options = parser.parse_args(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.listenTCP(options.port, make_app(options.redis_url), interface=options.address)
    print(f"redis demo on http://{options.address}:{options.port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
