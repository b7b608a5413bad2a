#!/usr/bin/env python3
"""A dashboard that fetches two upstream services at once and merges their answers.

    python upstreams.py --port 9001              # two fake services: /weather and /news
    python aggregate.py --port 8888 \\
        --upstream weather=http://127.0.0.1:9001/weather \\
        --upstream news=http://127.0.0.1:9001/news

Then ``curl 'http://127.0.0.1:8888/dashboard?city=Lisbon'`` answers
``{"city": "Lisbon", "weather": {...}, "news": {...}}``. Each upstream gets
``?city=...``; both requests are in flight at the same time
(``cyclone.httpclient.fetch`` returns Deferreds, waited for together), so
the page takes as long as the slowest upstream, not the sum. An upstream
that fails, answers an error or takes longer than ``--timeout`` seconds gives
``{"error": "..."}`` in its place; the others are still shown.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse

from twisted.internet import defer, reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.web
from cyclone import httpclient


class DashboardHandler(cyclone.web.RequestHandler):
    def initialize(self, upstreams: dict[str, str], timeout: float) -> None:
        self.upstreams = upstreams
        self.timeout = timeout

    async def get(self) -> None:
        city = self.get_argument("city")
        query = urllib.parse.urlencode({"city": city})
        names = list(self.upstreams)
        # Start every fetch first, then wait for all of them together.
        pending = [
            httpclient.fetch(f"{self.upstreams[name]}?{query}", request_timeout=self.timeout,
                             headers={"Accept": "application/json"})
            for name in names
        ]
        results = await defer.DeferredList(pending, consumeErrors=True)
        page: dict[str, object] = {"city": city}
        for name, (ok, result) in zip(names, results):
            page[name] = self._part(ok, result)
        self.write(page)

    @staticmethod
    def _part(ok: bool, result) -> object:
        if not ok:  # no response at all: refused, timed out, closed early
            return {"error": str(result.value)}
        if result.error is not None:
            return {"error": f"HTTP {result.code}"}
        try:
            return json.loads(result.body)
        except ValueError:
            return {"error": "not JSON"}


def make_app(upstreams: dict[str, str], timeout: float = 5.0) -> cyclone.web.Application:
    return cyclone.web.Application([
        (r"/dashboard", DashboardHandler, {"upstreams": upstreams, "timeout": timeout}),
    ])


def _upstream(value: str) -> tuple[str, str]:
    name, sep, url = value.partition("=")
    if not sep or not name or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected NAME=http://..., got {value!r}")
    return name, url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="TCP port (default 8888)")
    parser.add_argument("--address", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--upstream", type=_upstream, action="append", required=True,
                        help="NAME=URL of an upstream service (repeat it)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per upstream (default 5)")
    options = parser.parse_args(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.listenTCP(options.port, make_app(dict(options.upstream), options.timeout), interface=options.address)
    print(f"dashboard on http://{options.address}:{options.port}/dashboard?city=Lisbon", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
