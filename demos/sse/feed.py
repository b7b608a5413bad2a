#!/usr/bin/env python3
"""Server-Sent Events fed from a line-based TCP port, as the original
cyclone's SSE demo was (there by telnet).

    python feed.py [--port 8888] [--feed-port 8889] [--address 127.0.0.1] [--history 100]

Open http://127.0.0.1:8888/ in a browser (the page's ``EventSource`` shows
each event with its id), then type lines into the feed port::

    nc 127.0.0.1 8889

On the feed port, each line you type is one event:

- ``some text``: an event named ``line``;
- ``!some text``: an event named ``alert``;
- ``/drop``: the server drops every open stream; the browsers reconnect
  (after the ``retry`` the stream gave them, 1 s) with ``Last-Event-ID``
  and get only the events they missed (the last ``--history`` are kept);
- ``/count``: how many streams are open.

The feed answers each line with what it did. Both ports are served by the
same reactor: the feed is a plain Twisted ``LineReceiver``, the page and the
stream a cyclone ``Application``.
"""

import argparse
import os
import sys

from twisted.internet import protocol, reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.protocols.basic import LineReceiver

import cyclone.sse
import cyclone.web

HERE = os.path.dirname(os.path.abspath(__file__))
RETRY_MS = 1000  # how soon a browser reconnects after a dropped stream
MAX_LINE = 4096  # bytes in a feed line


class PageHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.render("index.html")


class EventsHandler(cyclone.sse.SSEHandler):
    def initialize(self, channel: cyclone.sse.EventChannel) -> None:
        self.channel = channel

    def bind(self) -> None:
        print(f"stream opened from {self.request.remote_ip}, Last-Event-ID: {self.last_event_id}", flush=True)
        self.send_event(retry=RETRY_MS)
        self.channel.subscribe(self)  # replays what a reconnecting browser missed

    def unbind(self) -> None:
        print(f"stream closed from {self.request.remote_ip}", flush=True)


class Feed(LineReceiver):
    """One line in, one event out to every open stream."""

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, channel: cyclone.sse.EventChannel) -> None:
        self.channel = channel

    def lineReceived(self, line: bytes) -> None:
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        if not text:
            return
        if text == "/drop":
            streams = self.channel.subscribers
            for stream in streams:
                stream.close()
            self.reply(f"dropped {len(streams)} streams")
        elif text == "/count":
            self.reply(f"{len(self.channel)} streams open")
        else:
            name = "alert" if text.startswith("!") else "line"
            sent = self.channel.publish(text.removeprefix("!"), event=name)
            self.reply(f"{name} sent to {sent} streams")

    def lineLengthExceeded(self, line: bytes) -> None:
        self.reply(f"a line has at most {MAX_LINE} bytes")
        self.transport.loseConnection()

    def reply(self, text: str) -> None:
        self.sendLine(text.encode("utf-8"))


class FeedFactory(protocol.ServerFactory):
    def __init__(self, channel: cyclone.sse.EventChannel) -> None:
        self.channel = channel

    def buildProtocol(self, addr) -> Feed:
        return Feed(self.channel)


def make_app(channel: cyclone.sse.EventChannel) -> cyclone.web.Application:
    return cyclone.web.Application(
        [(r"/", PageHandler), (r"/events", EventsHandler, {"channel": channel})],
        template_path=os.path.join(HERE, "templates"),
        sse_heartbeat_interval=15,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="HTTP port (default 8888)")
    parser.add_argument("--feed-port", type=int, default=8889, help="line feed port (default 8889)")
    parser.add_argument("--address", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--history", type=int, default=100, help="events kept for replay (default 100)")
    options = parser.parse_args(argv)
    if options.history < 1:
        parser.error("--history must be 1 or more (replay needs ids)")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    channel = cyclone.sse.EventChannel(history=options.history)
    reactor.listenTCP(options.port, make_app(channel), interface=options.address)
    reactor.listenTCP(options.feed_port, FeedFactory(channel), interface=options.address)
    print(f"SSE demo on http://{options.address}:{options.port}/, feed: nc {options.address} "
          f"{options.feed_port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
