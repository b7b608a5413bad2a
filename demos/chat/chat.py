#!/usr/bin/env python3
"""Long-polling chat room (Tornado's chat demo, on cyclone): plain HTTP, no
WebSocket; every open tab sees every message.

    python chat.py [--port 8888] [--address 127.0.0.1] [--cache 200]

Open http://127.0.0.1:8888/ in a few browser tabs and talk.

Each page asks ``POST /a/message/updates`` with the id of the last message
it has (``cursor``). If newer messages exist the answer comes at once;
otherwise the request waits, for minutes if need be, until someone posts
(``POST /a/message/new``), and the page asks again. The wait is
``cancel_on_close``: when a tab closes, its waiting request is cancelled and
forgotten at once (``GET /a/stats`` counts the waiting requests). Both POSTs
carry the XSRF token of the page's forms.
"""

import argparse
import collections
import os
import sys
import uuid

from twisted.internet import defer, reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.web

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_NICK = 24
MAX_TEXT = 2000


class MessageBuffer:
    """The last messages and the requests waiting for the next one."""

    def __init__(self, size: int = 200) -> None:
        self.cache: collections.deque = collections.deque(maxlen=size)
        self.waiters: set[defer.Deferred] = set()

    def messages_after(self, cursor: str | None) -> list[dict]:
        if not cursor:
            return list(self.cache)
        cache = list(self.cache)
        for index in range(len(cache) - 1, -1, -1):
            if cache[index]["id"] == cursor:
                return cache[index + 1 :]
        return cache  # an unknown (or too old) cursor: everything kept

    def wait_for_messages(self, cursor: str | None) -> defer.Deferred:
        """A Deferred of the messages after ``cursor``: now if there are any,
        else when the next one is posted. Cancelling it forgets the waiter."""
        missed = self.messages_after(cursor)
        if missed:
            return defer.succeed(missed)
        waiter: defer.Deferred = defer.Deferred(self.waiters.discard)
        self.waiters.add(waiter)
        return waiter

    def add(self, message: dict) -> None:
        self.cache.append(message)
        waiters, self.waiters = self.waiters, set()
        for waiter in waiters:
            waiter.callback([message])


class MainHandler(cyclone.web.RequestHandler):
    def initialize(self, buffer: MessageBuffer) -> None:
        self.buffer = buffer

    def get(self) -> None:
        self.render("index.html", messages=list(self.buffer.cache), max_nick=MAX_NICK, max_text=MAX_TEXT)


class MessageNewHandler(cyclone.web.RequestHandler):
    def initialize(self, buffer: MessageBuffer) -> None:
        self.buffer = buffer

    def post(self) -> None:
        nick = self.get_argument("nick", "").strip()[:MAX_NICK] or "guest"
        body = self.get_argument("body", "").strip()[:MAX_TEXT]
        if not body:
            raise cyclone.web.HTTPError(400, reason="empty message")
        message = {"id": uuid.uuid4().hex, "nick": nick, "body": body}
        self.buffer.add(message)
        self.write(message)


class MessageUpdatesHandler(cyclone.web.RequestHandler):
    def initialize(self, buffer: MessageBuffer) -> None:
        self.buffer = buffer

    async def post(self) -> None:
        cursor = self.get_argument("cursor", None)
        # no timeout: the request waits as long as it takes, and is cancelled
        # (the waiter forgotten) the moment the client goes away
        messages = await self.cancel_on_close(self.buffer.wait_for_messages(cursor))
        self.write({"messages": messages})


class StatsHandler(cyclone.web.RequestHandler):
    def initialize(self, buffer: MessageBuffer) -> None:
        self.buffer = buffer

    def get(self) -> None:
        self.write({"waiting": len(self.buffer.waiters), "messages": len(self.buffer.cache)})


def make_app(cache: int = 200) -> cyclone.web.Application:
    buffer = MessageBuffer(cache)
    kwargs = {"buffer": buffer}
    return cyclone.web.Application(
        [
            (r"/", MainHandler, kwargs),
            (r"/a/message/new", MessageNewHandler, kwargs),
            (r"/a/message/updates", MessageUpdatesHandler, kwargs),
            (r"/a/stats", StatsHandler, kwargs),
        ],
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        xsrf_cookies=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="TCP port (default 8888)")
    parser.add_argument("--address", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--cache", type=int, default=200, help="messages kept (default 200)")
    options = parser.parse_args(argv)
    if options.cache < 1:
        parser.error("--cache must be 1 or more")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.listenTCP(options.port, make_app(options.cache), interface=options.address)
    print(f"long-polling chat on http://{options.address}:{options.port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
