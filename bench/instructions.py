#!/usr/bin/env python3
"""Instructions per request, by layer, counted by valgrind: repeatable on a
busy machine, where timings are not.

    python bench/instructions.py                      # every stage
    python bench/instructions.py --stages parser,hello

Each stage serves requests in memory (``twisted.internet.testing.
StringTransport``, as bench/inproc.py) from this checkout, run twice under
``valgrind --tool=callgrind`` with 500 and 1500 requests; the difference of
the two totals over 1000 is the cost of one request, start-up excluded.
``PYTHONHASHSEED=0`` keeps dict layouts, and so the count, the same from run
to run (to within a few hundred instructions of a change elsewhere).

Stages:

``parser``       ``cyclone.http1.RequestParser`` alone on ``GET /`` with a Host
``parser-post``  the same for a POST with a 4 KiB Content-Length body
``glue``         the connection (``cyclone.httpserver``) answering ``GET /``
                 with a canned delegate: parser, request object, response head
``hello``, ``json``, ``echo``
                 the whole stack with bench/apps/cyclone_app.py's handlers
``close``        ``hello`` with ``Connection: close``: a connection per request
                 (another connection stays open, as under load)
``socket-close``, ``socket-close-limit``
                 the same over real sockets on 127.0.0.1, for cyclone and for
                 the limit app: the server (under valgrind) serves a client
                 process (not counted) that keeps 50 connections busy. This
                 counts Twisted's accepting, reading and closing as well, and
                 what cyclone does on sockets only (``httpserver``'s direct
                 sends and closes, the first read); the system calls' kernel
                 time is not counted

Roughly 10,000 instructions are 1 µs on the reference machine. Needs
valgrind (Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
STAGES = ["parser", "parser-post", "glue", "hello", "json", "echo", "close",
          "socket-close", "socket-close-limit"]
SOCKET_CONNECTIONS = 50
HOST = b"Host: 127.0.0.1:8888\r\n"
REQUESTS = {
    "hello": b"GET / HTTP/1.1\r\n" + HOST + b"\r\n",
    "json": b"GET /json HTTP/1.1\r\n" + HOST + b"\r\n",
    "echo": (
        b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 4096\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + b"0123456789abcdef" * 256
    ),
    "close": b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
}


def serve(stage: str, count: int) -> None:
    """Runs under valgrind: serve ``count`` requests of ``stage`` in memory."""
    sys.path[:0] = [str(ROOT), str(BENCH / "apps")]
    sys.argv = [sys.argv[0]]
    if stage.startswith("socket-"):
        serve_sockets(stage, count)
        return
    from twisted.internet.address import IPv4Address
    from twisted.internet.error import ConnectionDone
    from twisted.internet.testing import StringTransport
    from twisted.python.failure import Failure

    from cyclone import http1, httpserver

    peer = IPv4Address("TCP", "127.0.0.1", 40000)
    host = IPv4Address("TCP", "127.0.0.1", 8888)

    def connect(factory):
        protocol = factory.buildProtocol(peer)
        transport = StringTransport(hostAddress=host, peerAddress=peer)
        protocol.makeConnection(transport)
        return protocol, transport

    if stage in ("parser", "parser-post"):
        parser = http1.RequestParser()
        data = REQUESTS["hello" if stage == "parser" else "echo"]

        def run(n: int) -> None:
            for _ in range(n):
                parser.feed(data)
                while parser.next_event() is not http1.PAUSED:
                    pass
                parser.start_next_request()
    elif stage == "glue":
        class Canned:
            def __init__(self, connection, request):
                self.connection = connection

            def headers_received(self):
                return None

            def data_received(self, chunk):
                pass

            def finish(self):
                self.connection.write_head(
                    200, [("Content-Type", "text/plain"), ("Content-Length", "13")],
                    body=b"Hello, World!", finish=True)

            def on_connection_close(self):
                pass

        class CannedServer(httpserver.HTTPServer):
            def start_request(self, connection, request):
                return Canned(connection, request)

        protocol, transport = connect(CannedServer(lambda request: None))
        data = REQUESTS["hello"]

        def run(n: int) -> None:
            for _ in range(n):
                protocol.dataReceived(data)
                transport.clear()
    else:
        import cyclone_app

        factory = cyclone_app.make_factory()
        factory.doStart()
        data = REQUESTS[stage]
        if stage == "close":
            connect(factory)  # stays open, so the timeout sweeper keeps running
            done = Failure(ConnectionDone())

            def run(n: int) -> None:
                for _ in range(n):
                    protocol, _transport = connect(factory)
                    protocol.dataReceived(data)
                    protocol.connectionLost(done)
        else:
            protocol, transport = connect(factory)

            def run(n: int) -> None:
                for _ in range(n):
                    protocol.dataReceived(data)
                    transport.clear()

    run(200)  # warm caches
    run(count)


def serve_sockets(stage: str, count: int) -> None:
    """Serve ``count`` (+ 200 to warm up) Connection: close requests from a
    client process over 127.0.0.1, then stop."""
    import importlib

    from twisted.internet import protocol, reactor

    app = importlib.import_module("limit_app" if stage.endswith("-limit") else "cyclone_app")
    port = reactor.listenTCP(0, app.make_factory(), interface="127.0.0.1")

    failed = []

    class StopWhenDone(protocol.ProcessProtocol):
        def processEnded(self, reason):
            if reason.value.exitCode:
                failed.append(reason.value)
            reactor.stop()

    reactor.callWhenRunning(
        reactor.spawnProcess, StopWhenDone(), sys.executable,
        [sys.executable, __file__, "--client", str(port.getHost().port), str(count + 200)],
        env=os.environ, childFDs={0: "w", 1: 1, 2: 2},
    )
    reactor.run()
    if failed:
        raise SystemExit(f"the client failed: {failed[0]}")


def client(port: int, count: int) -> None:
    """Make ``count`` Connection: close requests, SOCKET_CONNECTIONS at a time
    (runs outside valgrind)."""
    import asyncio

    request = REQUESTS["close"]

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        response = await reader.read()
        writer.close()
        if not response.startswith(b"HTTP/1.1 200 "):
            raise SystemExit(f"unexpected response: {response[:100]!r}")

    async def main() -> None:
        left = count

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one()

        await asyncio.gather(*(worker() for _ in range(SOCKET_CONNECTIONS)))

    asyncio.run(main())


def instructions(stage: str, count: int) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--serve", stage, str(count)],
        env=env, capture_output=True, text=True,
    )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode or match is None:
        raise SystemExit(f"{stage}: valgrind failed:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated, from: " + ", ".join(STAGES)
    )
    parser.add_argument(
        "--serve", nargs=2, metavar=("STAGE", "COUNT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--client", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(*args.client)
        return 0
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stages: {', '.join(sorted(unknown))}")
    for stage in stages:
        per_request = (instructions(stage, 1500) - instructions(stage, 500)) // 1000
        print(f"{stage:18} {per_request:>9,} instructions per request", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
