"""The WebSocket echo servers of bench/ws_echo.py, one per library::

    python bench/apps/ws_echo_servers.py --server cyclone --port 8000 [--compress]

Each echoes every message on ``/ws`` as it came (text as text, binary as
binary), the way that library's documentation writes an echo handler, with
permessage-deflate only when ``--compress`` is given (aiohttp offers it by
default: turned off unless asked). Prints "ready on pid N" when listening.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

MAX_SIZE = 1 << 20


def ready(name: str, port: int) -> None:
    print(f"{name} ready on pid {os.getpid()} port {port}", flush=True)


def run_cyclone(port: int, compress: bool) -> None:
    from twisted.internet import reactor

    from cyclone import web
    from cyclone.websocket import WebSocketHandler

    class Echo(WebSocketHandler):
        def check_origin(self, origin):
            return True

        def get_compression_options(self):
            return {} if compress else None

        def on_message(self, message):
            self.write_message(message, binary=type(message) is bytes)

    app = web.Application([(r"/ws", Echo)], websocket_max_message_size=MAX_SIZE, log_function=lambda h: None)
    reactor.listenTCP(port, app, interface="127.0.0.1", backlog=1024)
    reactor.callWhenRunning(ready, "cyclone", port)
    reactor.run()


def run_tornado(port: int, compress: bool) -> None:
    import tornado.web
    import tornado.websocket

    class Echo(tornado.websocket.WebSocketHandler):
        def check_origin(self, origin):
            return True

        def get_compression_options(self):
            return {} if compress else None

        def on_message(self, message):
            self.write_message(message, binary=isinstance(message, bytes))

    async def main():
        app = tornado.web.Application([(r"/ws", Echo)], websocket_max_message_size=MAX_SIZE,
                                      log_function=lambda h: None)
        app.listen(port, "127.0.0.1", backlog=1024)
        ready("tornado", port)
        await asyncio.Event().wait()

    asyncio.run(main())


def run_aiohttp(port: int, compress: bool) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request):
        ws = web.WebSocketResponse(compress=compress, max_msg_size=MAX_SIZE)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    async def main():
        app = web.Application()
        app.router.add_get("/ws", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready("aiohttp", port)
        await asyncio.Event().wait()

    asyncio.run(main())


def run_websockets(port: int, compress: bool) -> None:
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", port, compression="deflate" if compress else None,
                         max_size=MAX_SIZE, backlog=1024):
            ready("websockets", port)
            await asyncio.Event().wait()

    asyncio.run(main())


def run_twisted(port: int, compress: bool) -> None:
    if compress:
        raise SystemExit("twisted.web.websocket: no permessage-deflate")
    from twisted.internet import reactor
    from twisted.web.resource import Resource
    from twisted.web.server import Site
    from twisted.web.websocket import WebSocketResource

    class Echo:
        transport = None

        def negotiationStarted(self, transport):
            self.transport = transport

        def negotiationFinished(self):
            pass

        def pongReceived(self, payload):
            pass

        def textMessageReceived(self, message):
            self.transport.sendTextMessage(message)

        def bytesMessageReceived(self, data):
            self.transport.sendBytesMessage(data)

        def connectionLost(self, reason):
            pass

    class Factory:
        def buildProtocol(self, request):
            return Echo()

    root = Resource()
    root.putChild(b"ws", WebSocketResource(Factory()))
    site = Site(root)
    site.log = lambda request: None  # no access log, as for the others
    reactor.listenTCP(port, site, interface="127.0.0.1", backlog=1024)
    reactor.callWhenRunning(ready, "twisted", port)
    reactor.run()


SERVERS = {"cyclone": run_cyclone, "tornado": run_tornado, "aiohttp": run_aiohttp,
           "websockets": run_websockets, "twisted": run_twisted}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=sorted(SERVERS), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--compress", action="store_true")
    args = parser.parse_args()
    sys.setrecursionlimit(10000)
    SERVERS[args.server](args.port, args.compress)


if __name__ == "__main__":
    main()
