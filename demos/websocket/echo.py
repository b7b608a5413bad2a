#!/usr/bin/env python3
"""WebSocket echo: a page that sends what you type and shows what comes back.

    python echo.py [--port 8888] [--address 127.0.0.1]

Then open http://127.0.0.1:8888/ in a browser. The WebSocket at ``/echo``
offers permessage-deflate (``get_compression_options`` returns ``{}``: the
default level and window), and the page shows the extension the browser
negotiated.
"""

import argparse
import os
import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.web
import cyclone.websocket

HERE = os.path.dirname(os.path.abspath(__file__))


class PageHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.render("echo.html")


class EchoHandler(cyclone.websocket.WebSocketHandler):
    def get_compression_options(self) -> dict:
        return {}  # permessage-deflate with the default options

    def on_message(self, message):
        # returning write_message's Deferred makes the next message wait
        # until this echo has drained: a client that stops reading stops
        # being read, instead of filling the server's memory
        return self.write_message(message, binary=isinstance(message, bytes))


def make_app() -> cyclone.web.Application:
    return cyclone.web.Application(
        [(r"/", PageHandler), (r"/echo", EchoHandler)],
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        websocket_max_message_size=1024 * 1024,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="TCP port (default 8888)")
    parser.add_argument("--address", default="127.0.0.1", help="interface (default 127.0.0.1)")
    options = parser.parse_args(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.listenTCP(options.port, make_app(), interface=options.address)
    print(f"echo demo on http://{options.address}:{options.port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
