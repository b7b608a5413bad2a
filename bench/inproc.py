#!/usr/bin/env python3
"""CPU per request of the Twisted-based servers, without sockets or wrk.

    python bench/inproc.py                        # limit, cyclone, cyclone13, twistedweb
    python bench/inproc.py --servers cyclone --scenarios hello --profile

Each server's protocol (from ``bench/apps/<server>_app.py``, in the server's
virtualenv under bench/.venvs, created by run.py) is connected to an
in-memory transport (``twisted.internet.testing.StringTransport``) and fed the
same request bytes wrk sends, one request at a time, many thousand times.
What it reports is the framework's own CPU time per request: no system
calls, no reactor, no scheduling noise, so it is steady to within a few per
cent from run to run and shows small optimizations that the socket
benchmark cannot. The socket benchmark adds about what the limit costs there
(~16 µs per request on the reference machine) on top.

cyclone is reinstalled into its virtualenv first when the checkout changed.
``--profile`` runs cProfile over the loop of each server and scenario and
writes bench/.work/inproc-<server>-<scenario>.txt (top functions by own and
cumulative time) and the .prof.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TWISTED_SERVERS = ["limit", "cyclone", "cyclone13", "twistedweb"]
SCENARIOS = ["hello", "json", "echo", "template"]
HOST = b"Host: 127.0.0.1:8888\r\n"
BODY = b"0123456789abcdef" * 256
REQUESTS = {
    "hello": b"GET / HTTP/1.1\r\n" + HOST + b"\r\n",
    "json": b"GET /json HTTP/1.1\r\n" + HOST + b"\r\n",
    "echo": (b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 4096\r\n"
             b"Content-Type: application/octet-stream\r\n\r\n" + BODY),
    "template": b"GET /template HTTP/1.1\r\n" + HOST + b"\r\n",
}


def child(server: str, scenarios: list[str], count: int, profile: bool, top: int) -> None:
    """Runs in the server's virtualenv: print one JSON line per scenario."""
    sys.path[:] = [str(BENCH / "apps")] + [p for p in sys.path if Path(p or ".").resolve() != BENCH]
    sys.argv = [sys.argv[0]]
    module = __import__(f"{server}_app")
    from twisted.internet.address import IPv4Address
    from twisted.internet.error import ConnectionDone
    from twisted.internet.testing import StringTransport
    from twisted.python.failure import Failure

    factory = module.make_factory()
    factory.doStart()
    peer = IPv4Address("TCP", "127.0.0.1", 40000)
    for scenario in scenarios:
        proto = factory.buildProtocol(peer)
        transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 8888),
                                    peerAddress=peer)
        proto.makeConnection(transport)
        request = REQUESTS[scenario]
        feed = proto.dataReceived
        value, clear = transport.value, transport.clear

        def loop(n: int) -> int:
            answered = 0
            for _ in range(n):
                feed(request)
                answered += value().count(b"HTTP/1.1 200 ")
                clear()
            return answered

        if loop(max(200, count // 10)) == 0:
            print(json.dumps({"scenario": scenario, "error": "no 200 response in memory"}), flush=True)
            continue
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        start = time.perf_counter()
        answered = loop(count)
        elapsed = time.perf_counter() - start
        if profiler:
            profiler.disable()
            write_profile(profiler, server, scenario, count, elapsed, top)
        proto.connectionLost(Failure(ConnectionDone()))
        print(json.dumps({"scenario": scenario, "us": 1e6 * elapsed / count,
                          "answered": answered, "count": count}), flush=True)


def write_profile(profiler, server: str, scenario: str, count: int, elapsed: float, top: int) -> None:
    import io
    import pstats

    work = BENCH / ".work"
    work.mkdir(exist_ok=True)
    prof = work / f"inproc-{server}-{scenario}.prof"
    profiler.dump_stats(str(prof))
    out = io.StringIO()
    out.write(f"{server}, {scenario}, in memory under cProfile: {count} requests, "
              f"{1e6 * elapsed / count:.1f} µs per request (cProfile included)\n\n")
    stats = pstats.Stats(str(prof), stream=out).strip_dirs()
    out.write(f"=== top {top} by own time ===\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write(f"=== top {top} by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(top)
    prof.with_suffix(".txt").write_text(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(TWISTED_SERVERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--requests", type=int, default=20000, help="per scenario (20000)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (0)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    if args.child:
        child(args.child, scenarios, args.requests, args.profile, args.top)
        return 0
    results: dict[str, dict[str, float]] = {}
    servers = [s for s in args.servers.split(",") if s]
    if "cyclone" in servers:  # reinstall the checkout if it changed since
        sys.path.insert(0, str(BENCH))
        import run

        run.WORK.mkdir(exist_ok=True)
        run.VENVS.mkdir(exist_ok=True)
        run.ensure_venv("cyclone", sys.executable, None, False)
    for server in servers:
        if server not in TWISTED_SERVERS:
            raise SystemExit(f"{server}: only {', '.join(TWISTED_SERVERS)} run in memory")
        python = BENCH / ".venvs" / server / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"no {python}: run `python bench/run.py --servers {server} "
                             "--scenarios hello --quick` once to create it")
        cmd = ["taskset", "-c", str(args.cpu), str(python), str(Path(__file__).resolve()),
               "--child", server, "--scenarios", ",".join(scenarios),
               "--requests", str(args.requests), "--top", str(args.top)]
        if args.profile:
            cmd.append("--profile")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=BENCH / ".work"
                              if (BENCH / ".work").exists() else BENCH)
        results[server] = {}
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                data = json.loads(line)
                results[server][data["scenario"]] = data.get("us") or float("nan")
                if "error" in data:
                    print(f"{server} {data['scenario']}: {data['error']}")
        if proc.returncode:
            print(f"{server} failed:\n{proc.stderr[-3000:]}")
    print(f"µs of CPU per request, in memory ({args.requests} requests per scenario); "
          "(× cyclone) in brackets\n")
    print(f"{'server':12s}" + "".join(f"{s:>18s}" for s in scenarios))
    base = results.get("cyclone", {})
    for server, row in results.items():
        cells = []
        for s in scenarios:
            us = row.get(s)
            if us is None:
                cells.append(f"{'n/a':>18s}")
            else:
                rel = f" ({us / base[s]:.2f})" if base.get(s) else ""
                cells.append(f"{us:9.1f}{rel:>9s}")
        print(f"{server:12s}" + "".join(cells))
    if args.profile:
        print(f"\nprofiles: {BENCH / '.work'}/inproc-<server>-<scenario>.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
