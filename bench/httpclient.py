#!/usr/bin/env python3
"""Requests per second of HTTP clients: cyclone.httpclient, treq, aiohttp.

Each client fetches a small response from nginx (``return 200``, keep-alive)
with 50 requests in flight for a fixed time. nginx runs on CPU 0 with one
worker, each client in its own process on CPU 1 (``taskset``), one after the
other; the table shows each side's CPU use, so it is visible that nginx is
not the bottleneck (the client should be at ~100 %, nginx well below)::

    flock /tmp/cyclone-bench.lock python bench/httpclient.py            # 10 s each
    flock /tmp/cyclone-bench.lock python bench/httpclient.py --duration 3 --rounds 1

Needs nginx, treq (in the test extra) and aiohttp (``pip install aiohttp``).
The numbers go to stdout; copy them into bench/RESULTS-httpclient.md with
the date.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLIENTS = ["cyclone", "treq", "aiohttp"]
BODY = b"hello, world\n" * 4  # 52 bytes

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    keepalive_requests 1000000;
    keepalive_timeout 60;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}
}}
"""


# -- the client side (run in a child process) -------------------------------------------


def _run_cyclone(url: str, concurrency: int, duration: float) -> int:
    from twisted.internet import defer, reactor

    from cyclone.httpclient import AsyncHTTPClient

    client = AsyncHTTPClient(force_instance=True, max_clients=concurrency)
    return _twisted_loop(reactor, defer, lambda: client.fetch(url), lambda r: r.body, concurrency, duration)


def _run_treq(url: str, concurrency: int, duration: float) -> int:
    import treq
    from twisted.internet import defer, reactor
    from twisted.web.client import HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = concurrency

    def one():
        return treq.get(url, pool=pool).addCallback(treq.content)

    return _twisted_loop(reactor, defer, one, lambda body: body, concurrency, duration)


def _twisted_loop(reactor, defer, start, body_of, concurrency: int, duration: float) -> int:
    done = [0]
    deadline = [0.0]
    failures: list = []

    def worker():
        d = start()

        def ok(result):
            if body_of(result) != BODY:
                raise AssertionError(f"unexpected body {body_of(result)[:60]!r}")
            done[0] += 1
            if time.monotonic() < deadline[0]:
                return worker()
            return None

        return d.addCallback(ok)

    def run():
        deadline[0] = time.monotonic() + duration
        ds = [worker() for _ in range(concurrency)]
        return defer.gatherResults(ds, consumeErrors=True)

    def stop(result):
        if not isinstance(result, list):
            failures.append(result)
        reactor.stop()

    reactor.callWhenRunning(lambda: run().addBoth(stop))
    reactor.run()
    if failures:
        raise SystemExit(f"failed: {failures[0]}")
    return done[0]


def _run_aiohttp(url: str, concurrency: int, duration: float) -> int:
    import asyncio

    import aiohttp

    async def main() -> int:
        done = 0
        deadline = time.monotonic() + duration
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal done
                while time.monotonic() < deadline:
                    async with session.get(url) as response:
                        body = await response.read()
                    if body != BODY:
                        raise AssertionError(f"unexpected body {body[:60]!r}")
                    done += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done

    return asyncio.run(main())


def client_main(name: str, url: str, concurrency: int, duration: float) -> None:
    runner = {"cyclone": _run_cyclone, "treq": _run_treq, "aiohttp": _run_aiohttp}[name]
    # A short warm-up run in the same process would complicate the Twisted
    # clients (one reactor run per process): the first 5 % of requests are
    # part of the measure instead, and rounds repeat the whole run.
    started = time.monotonic()
    cpu_start = time.process_time()
    count = runner(url, concurrency, duration)
    elapsed = time.monotonic() - started
    print(json.dumps({"requests": count, "seconds": elapsed, "cpu": time.process_time() - cpu_start}))


# -- the driver --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_nginx(tmp: str) -> tuple[subprocess.Popen, int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = _free_port()
    conf = Path(tmp) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, body=BODY.decode().replace("\n", "\\n")))
    proc = subprocess.Popen(["taskset", "-c", "0", nginx, "-p", tmp, "-c", str(conf)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("nginx did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per client run (10)")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight (50)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per client, best kept (2)")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: run one client
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.url, args.concurrency, args.duration)
        return

    with tempfile.TemporaryDirectory(prefix="cyclone-bench-httpclient-") as tmp:
        nginx, port = _start_nginx(tmp)
        url = f"http://127.0.0.1:{port}/"
        results: dict[str, dict] = {}
        try:
            for round_ in range(args.rounds):
                for name in args.clients.split(","):
                    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
                    nginx_cpu = _cpu_seconds(nginx.pid)
                    out = subprocess.run(
                        ["taskset", "-c", "1", sys.executable, __file__, "--client", name, "--url", url,
                         "--duration", str(args.duration), "--concurrency", str(args.concurrency)],
                        env=env, capture_output=True, text=True, check=False,
                    )
                    if out.returncode != 0:
                        raise SystemExit(f"{name} failed:\n{out.stdout}{out.stderr}")
                    run = json.loads(out.stdout.strip().splitlines()[-1])
                    run["nginx_cpu"] = _cpu_seconds(nginx.pid) - nginx_cpu
                    run["rate"] = run["requests"] / run["seconds"]
                    if name not in results or run["rate"] > results[name]["rate"]:
                        results[name] = run
        finally:
            nginx.terminate()
            nginx.wait()

    base = results.get("treq", {}).get("rate")
    print(f"{args.concurrency} requests in flight, {args.duration:g} s per run, best of {args.rounds}; "
          f"nginx on CPU 0, each client on CPU 1")
    # On a shared machine the client may not get a whole CPU: requests per
    # CPU second of the client is the steadier measure of its cost.
    per_cpu_base = results["treq"]["requests"] / results["treq"]["cpu"] if "treq" in results else None
    print(f"{'client':10} {'req/s':>9} {'x treq':>7} {'req/CPU s':>10} {'x treq':>7} "
          f"{'client CPU':>11} {'nginx CPU':>10}")
    for name, run in results.items():
        ratio = f"{run['rate'] / base:.2f}" if base else "-"
        per_cpu = run["requests"] / run["cpu"]
        per_cpu_ratio = f"{per_cpu / per_cpu_base:.2f}" if per_cpu_base else "-"
        print(f"{name:10} {run['rate']:9.0f} {ratio:>7} {per_cpu:10.0f} {per_cpu_ratio:>7} "
              f"{run['cpu'] / run['seconds']:10.0%} {run['nginx_cpu'] / run['seconds']:9.0%}")


if __name__ == "__main__":
    main()
