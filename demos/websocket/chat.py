#!/usr/bin/env python3
"""WebSocket chat room: everyone connected sees every message.

    python chat.py [--port 8888] [--address 127.0.0.1] [--history 50]

Then open http://127.0.0.1:8888/ in a few browser tabs, pick a nickname in
each, and talk. Newcomers get the last ``--history`` messages; everyone sees
who joins and who leaves.

The protocol, JSON over the WebSocket at ``/chat?nick=NAME``:

- server to client: ``{"type": "welcome", "nick", "members", "history"}``
  once, then ``{"type": "message", "nick", "text", "time"}``,
  ``{"type": "join", "nick"}`` and ``{"type": "leave", "nick"}``;
- client to server: the text of a message, as a text frame.

A nickname already in the room, or an invalid one, gets the connection
closed with code 4000 and the reason (the page shows it).
"""

import argparse
import collections
import os
import sys
import time

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.web
import cyclone.websocket
from cyclone.escape import json_encode

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_NICK = 24
MAX_TEXT = 2000  # characters in a message
MAX_BACKLOG = 200  # messages a member may have waiting on a full socket before being dropped


class ChatRoom:
    """The members (nickname -> handler) and the last messages."""

    def __init__(self, history: int = 50) -> None:
        self.members: dict[str, ChatHandler] = {}
        self.history: collections.deque = collections.deque(maxlen=history)

    def join(self, nick: str, member: "ChatHandler") -> None:
        member.send({"type": "welcome", "nick": nick, "members": sorted(self.members),
                     "history": list(self.history)})  # fmt: skip
        self.members[nick] = member
        self.broadcast({"type": "join", "nick": nick})

    def leave(self, nick: str) -> None:
        if self.members.pop(nick, None) is not None:
            self.broadcast({"type": "leave", "nick": nick})

    def say(self, nick: str, text: str) -> None:
        event = {"type": "message", "nick": nick, "text": text, "time": int(time.time() * 1000)}
        self.history.append(event)
        self.broadcast(event)

    def broadcast(self, event: dict) -> None:
        payload = json_encode(event)  # encoded once for everyone
        for member in list(self.members.values()):
            member.send(payload)


def nick_problem(nick: str) -> str | None:
    """Why ``nick`` cannot be a nickname, or None."""
    if not nick:
        return "a nickname is needed"
    if len(nick) > MAX_NICK:
        return f"a nickname has at most {MAX_NICK} characters"
    if not nick.isprintable():
        return "a nickname is printable characters only"
    return None


class PageHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.render("chat.html", max_nick=MAX_NICK, max_text=MAX_TEXT)


class ChatHandler(cyclone.websocket.WebSocketHandler):
    def initialize(self, room: ChatRoom) -> None:
        self.room = room
        self.nick: str | None = None
        self.backlog = 0

    def get_compression_options(self) -> dict:
        return {}

    def open(self) -> None:
        nick = self.get_argument("nick", "").strip()
        problem = nick_problem(nick)
        if problem is None and nick in self.room.members:
            problem = f"{nick} is already in the room"
        if problem is not None:
            self.close(4000, problem)
            return
        self.nick = nick
        self.room.join(nick, self)

    def on_message(self, message) -> None:
        if self.nick is None:
            return
        if isinstance(message, bytes):
            self.close(1003, "text messages only")
            return
        text = message.strip()
        if text:
            self.room.say(self.nick, text[:MAX_TEXT])

    def on_close(self) -> None:
        if self.nick is not None:
            nick, self.nick = self.nick, None
            self.room.leave(nick)

    def send(self, message: str | dict) -> None:
        """Send, unless closing; drop a member whose socket stays full."""
        try:
            drained = self.write_message(message)
        except cyclone.websocket.WebSocketClosedError:
            return
        if not drained.called:  # the socket's buffer is full: the peer is not reading
            self.backlog += 1
            drained.addBoth(self._drained)
            if self.backlog > MAX_BACKLOG:
                self.close(1008, "not reading fast enough")

    def _drained(self, _) -> None:
        self.backlog -= 1


def make_app(history: int = 50) -> cyclone.web.Application:
    room = ChatRoom(history)
    return cyclone.web.Application(
        [(r"/", PageHandler), (r"/chat", ChatHandler, {"room": room})],
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        websocket_max_message_size=64 * 1024,
        websocket_ping_interval=30,  # a member whose connection died silently leaves
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="TCP port (default 8888)")
    parser.add_argument("--address", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--history", type=int, default=50, help="messages kept for newcomers (default 50)")
    options = parser.parse_args(argv)
    if options.history < 0:
        parser.error("--history must be 0 or more")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.listenTCP(options.port, make_app(options.history), interface=options.address)
    print(f"chat demo on http://{options.address}:{options.port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
