#!/usr/bin/env python3
"""One Server-Sent Event broadcast to 10,000 open streams: cyclone against
Tornado (a hand-written event-stream handler) and aiohttp (aiohttp-sse).

    flock /tmp/cyclone-bench.lock python bench/sse.py [--streams 10000] [--rounds 5]

For each server (bench/apps/sse_*_app.py, one process pinned to CPU 0 with
``taskset``), the load generator ``bench/sse_load.c`` (compiled here with
gcc -O2, pinned to CPU 1: one epoll loop in C holding every stream) opens
the streams, then asks the server to publish one event, ``--rounds`` times,
and times how long it takes until every stream has it. Reported:

- time until the last stream has the event (the median over the rounds),
  and until half of them have it;
- the server's memory per open stream: its RSS with every stream open, less
  its RSS before, divided by the number of streams;
- the CPU time of the server and of the load generator during the rounds,
  so that the load generator can be seen not to be the bottleneck.

Runs with the interpreter running it (which needs tornado, aiohttp and
aiohttp-sse: the test environment has them), and this checkout's cyclone.
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
APPS = BENCH / "apps"
WORK = BENCH / ".work"
SERVERS = {
    "cyclone": "sse_cyclone_app.py",
    "tornado": "sse_tornado_app.py",
    "aiohttp": "sse_aiohttp_app.py",
}
SERVER_CPU, LOAD_CPU = 0, 1


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_load_generator() -> Path:
    WORK.mkdir(exist_ok=True)
    binary = WORK / "sse_load"
    source = BENCH / "sse_load.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return binary


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"the hard limit of open files is {hard}; {needed} are needed (ulimit -Hn)")
    if soft == resource.RLIM_INFINITY or soft < needed:
        # inherited by the server and the load generator
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else hard, hard))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vmrss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(port: int, path: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]}")
        return body
    finally:
        connection.close()


def run_server(name: str, load: Path, streams: int, rounds: int) -> dict:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    server = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CPU), sys.executable, str(APPS / SERVERS[name]), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = server.stdout.readline().strip()
        deadline = time.monotonic() + 30
        while True:
            try:
                get(port, "/count")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{name} did not start: {banner}")
                time.sleep(0.05)
        get(port, "/publish?seq=0")  # warm the code paths up
        time.sleep(0.5)
        rss_before = vmrss_kib(server.pid)
        loader = subprocess.Popen(
            ["taskset", "-c", str(LOAD_CPU), str(load), str(port), str(streams), str(rounds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = loader.stdout.readline().split()
        if ready[:1] != ["READY"]:
            raise RuntimeError(f"the load generator failed against {name}: {ready}")
        time.sleep(1.0)  # let the server settle (no request is in flight)
        rss_after = vmrss_kib(server.pid)
        cpu_before = cpu_seconds(server.pid)
        started = time.monotonic()
        loader.stdin.write("GO\n")
        loader.stdin.flush()
        rows = []
        load_cpu = None
        for line in loader.stdout:
            fields = line.split()
            if fields[0] == "ROUND":
                rows.append([int(f) for f in fields[2:6]])  # last, p50, p99, loader cpu (µs)
            elif fields[0] == "CPU":
                load_cpu = (int(fields[1]) + int(fields[2])) / 1e6
        if loader.wait() != 0 or len(rows) != rounds:
            raise RuntimeError(f"the load generator failed against {name}")
        cpu_rounds = cpu_seconds(server.pid) - cpu_before
        wall = time.monotonic() - started
        return {
            "banner": banner,
            "last_ms": statistics.median(r[0] for r in rows) / 1000,
            "p50_ms": statistics.median(r[1] for r in rows) / 1000,
            "p99_ms": statistics.median(r[2] for r in rows) / 1000,
            "rounds_last_ms": [r[0] / 1000 for r in rows],
            "load_cpu_round_ms": statistics.median(r[3] for r in rows) / 1000,
            "bytes_per_stream": (rss_after - rss_before) * 1024 / streams,
            "rss_before_mib": rss_before / 1024,
            "rss_after_mib": rss_after / 1024,
            "server_cpu_s": cpu_rounds,
            "load_cpu_s": load_cpu,
            "wall_s": wall,
        }
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", default=",".join(SERVERS))
    args = parser.parse_args(argv)
    names = [n for n in args.servers.split(",") if n]
    raise_fd_limit(args.streams + 1000)
    load = build_load_generator()
    results = {}
    for name in names:
        log(f"{name}: {args.streams} streams, {args.rounds} broadcasts ...")
        results[name] = run_server(name, load, args.streams, args.rounds)
        r = results[name]
        log(f"  {r['banner']}")
        log(f"  last stream {r['last_ms']:.1f} ms (rounds: {', '.join(f'{x:.1f}' for x in r['rounds_last_ms'])}),"
            f" {r['bytes_per_stream'] / 1024:.2f} KiB per stream")
    base = results.get("cyclone")
    print(f"\n{args.streams} open SSE streams, one event broadcast to all, median of {args.rounds} rounds; "
          f"server on CPU {SERVER_CPU}, load generator (C, epoll) on CPU {LOAD_CPU}\n")
    print("| server | every stream has it | half have it | memory per stream | server CPU per round "
          "| load generator CPU per round | time ratio | memory ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        time_ratio = f"{r['last_ms'] / base['last_ms']:.2f}×" if base else "-"
        memory_ratio = f"{r['bytes_per_stream'] / base['bytes_per_stream']:.2f}×" if base else "-"
        print(f"| {name} | {r['last_ms']:.1f} ms | {r['p50_ms']:.1f} ms | {r['bytes_per_stream'] / 1024:.2f} KiB "
              f"| {r['server_cpu_s'] * 1000 / args.rounds:.0f} ms | {r['load_cpu_round_ms']:.1f} ms "
              f"| {time_ratio} | {memory_ratio} |")
    print("\n(ratios: the server's figure over cyclone's; above 1 is worse than cyclone)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
