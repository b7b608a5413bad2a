"""A WebSocket echo server, e.g. for the Autobahn|Testsuite's fuzzingclient::

    python -m cyclone.websocket_echo --port 9001 [--host 127.0.0.1]

Every text and binary message is sent back as it came, on any path, with
permessage-deflate offered (default options) and messages of up to 64 MiB
(Autobahn's 9.x cases send 16 MiB ones).
"""

from __future__ import annotations

import argparse
import logging
import sys

from cyclone import web
from cyclone.websocket import WebSocketHandler


class EchoHandler(WebSocketHandler):
    def check_origin(self, origin: str) -> bool:
        return True

    def get_compression_options(self) -> dict:
        return {}

    def on_message(self, message):
        # the Deferred makes the next message wait until the echo has drained
        return self.write_message(message, binary=isinstance(message, bytes))


def make_app(max_message_size: int = 64 * 1024 * 1024, **settings) -> web.Application:
    return web.Application([(r"/.*", EchoHandler)], websocket_max_message_size=max_message_size, **settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="cyclone WebSocket echo server")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--max-message-size", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from twisted.internet import reactor

    port = reactor.listenTCP(args.port, make_app(args.max_message_size), interface=args.host)
    print(f"cyclone WebSocket echo on ws://{args.host}:{port.getHost().port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
