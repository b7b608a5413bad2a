"""SSE benchmark app on Tornado 6, which has no SSE support: the
hand-written event-stream handler a Tornado user writes (headers, flush,
a set of open handlers, write + flush per event). Endpoints as
``sse_cyclone_app.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import announce, parse_args  # noqa: E402

import tornado.web  # noqa: E402

SSE_DATA = '{"seq": %d, "symbol": "CYCL", "price": 101.25}'
streams: set = set()


class Events(tornado.web.RequestHandler):
    closed = None

    async def get(self):
        self.closed = asyncio.get_running_loop().create_future()
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        await self.flush()
        streams.add(self)
        try:
            await self.closed
        finally:
            streams.discard(self)

    def on_connection_close(self):
        streams.discard(self)
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    def send(self, frame: bytes) -> None:
        self.write(frame)
        self.flush()  # the Future is not awaited: a broadcast waits for nobody


class Count(tornado.web.RequestHandler):
    def get(self):
        self.write(str(len(streams)))


class Publish(tornado.web.RequestHandler):
    def get(self):
        seq = int(self.get_argument("seq"))
        frame = f"event: tick\nid: {seq}\ndata: {SSE_DATA % seq}\n\n".encode()
        for stream in list(streams):
            stream.send(frame)
        self.write(str(len(streams)))


async def main(args) -> None:
    app = tornado.web.Application([(r"/events", Events), (r"/count", Count), (r"/publish", Publish)])
    app.listen(args.port, address=args.host, backlog=1024)
    announce("tornado " + tornado.version, type(asyncio.get_running_loop()).__name__)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
