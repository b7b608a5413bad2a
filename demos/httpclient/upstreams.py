#!/usr/bin/env python3
"""Two fake upstream services for aggregate.py, on one port.

    python upstreams.py [--port 9001] [--delay 0.5]

``/weather?city=X`` and ``/news?city=X`` answer JSON after ``--delay``
seconds each, so the dashboard's total time shows the two requests overlap
(about one delay, not two).
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import reactor, task
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.web


class WeatherHandler(cyclone.web.RequestHandler):
    def initialize(self, delay: float) -> None:
        self.delay = delay

    async def get(self) -> None:
        await task.deferLater(reactor, self.delay)
        self.write({"city": self.get_argument("city"), "sky": "clear", "celsius": 21})


class NewsHandler(WeatherHandler):
    async def get(self) -> None:
        await task.deferLater(reactor, self.delay)
        self.write({"city": self.get_argument("city"), "headlines": ["cyclone fetches twice at once"]})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--delay", type=float, default=0.5)
    options = parser.parse_args(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    app = cyclone.web.Application([
        (r"/weather", WeatherHandler, {"delay": options.delay}),
        (r"/news", NewsHandler, {"delay": options.delay}),
    ])
    reactor.listenTCP(options.port, app, interface=options.address)
    print(f"upstreams on http://{options.address}:{options.port}/weather and /news", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
