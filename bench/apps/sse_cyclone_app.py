"""SSE benchmark app on cyclone (this checkout): ``cyclone.sse.SSEHandler``
streams subscribed to an ``EventChannel``; default settings (a heartbeat
every 15 s, the 256 KiB per-stream limit).

``GET /events`` a stream; ``GET /count`` how many are open; ``GET
/publish?seq=N`` one event (``event: tick``, ``id: N``, a JSON ``data``
line) to every stream, answering how many it went to.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import announce, parse_args  # noqa: E402

SSE_DATA = '{"seq": %d, "symbol": "CYCL", "price": 101.25}'

import cyclone.sse  # noqa: E402
import cyclone.web  # noqa: E402

channel = cyclone.sse.EventChannel()


class Events(cyclone.sse.SSEHandler):
    def bind(self):
        channel.subscribe(self)


class Count(cyclone.web.RequestHandler):
    def get(self):
        self.write(str(len(channel)))


class Publish(cyclone.web.RequestHandler):
    def get(self):
        seq = int(self.get_argument("seq"))
        self.write(str(channel.publish(SSE_DATA % seq, event="tick", id=seq)))


if __name__ == "__main__":
    args = parse_args()
    from twisted.internet import reactor

    app = cyclone.web.Application([(r"/events", Events), (r"/count", Count), (r"/publish", Publish)])
    reactor.listenTCP(args.port, app, backlog=1024, interface=args.host)
    announce("cyclone", type(reactor).__name__)
    reactor.run()
