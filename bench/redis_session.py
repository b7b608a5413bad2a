#!/usr/bin/env python3
"""Requests/s of Redis and session handlers, as a share of plain hello in the same run.

    flock /tmp/cyclone-bench.lock python bench/redis_session.py
    python bench/redis_session.py --duration 5 --results /tmp/r.md

Starts a redis-server (no persistence, its own port) and
bench/apps/cyclone_redis_app.py from this checkout (the interpreter running
this script, with the checkout first on ``sys.path``), then loads each
endpoint with wrk (``-t1 -c50``, keep-alive, as bench/run.py):

``hello``                ``GET /``: the baseline, measured first and last
``redis``                ``GET /redis``: one Redis ``GET`` per request (``async def``)
``redis-deferred``       the same GET, the handler returning the Deferred
``session-memory``       a session counter incremented per request, memory store
``session-memory-read``  the same session read, not changed (no save)
``session-redis``        the counter with the Redis store (``GETEX`` + ``SET``)
``session-redis-read``   read only with the Redis store (``GETEX``)

All session requests carry the cookie of one session. The server runs on
``--server-cpu`` (0), wrk on ``--client-cpu`` (1), redis-server on
``--redis-cpu`` (1, beside wrk: its work per request is small; its CPU share
is printed). The bar: ``redis`` keeps at least 0.5 of ``hello``'s requests/s.
Results: a table on stdout and in ``--results`` (bench/RESULTS-redis.md).
Needs wrk (Debian's package; bench/run.py installs it when root) and
redis-server.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
import run as bench_run  # noqa: E402  (its wrk, CPU and machine helpers)

RESULTS = BENCH / "RESULTS-redis.md"
CONNECTIONS = 50
BAR = 0.5  # redis / hello

# name -> (which app: 0 memory store, 1 Redis store; path; session cookie?)
SCENARIOS = {
    "hello": (0, "/", False),
    "redis": (0, "/redis", False),
    "redis-deferred": (0, "/redis-deferred", False),
    "session-memory": (0, "/session", True),
    "session-memory-read": (0, "/session-read", True),
    "session-redis": (1, "/session", True),
    "session-redis-read": (1, "/session-read", True),
}


def log(message: str) -> None:
    print(message, flush=True)


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start (exit status {proc.poll()}); its output:\n"
                             + getattr(proc, "log_path", Path("/dev/null")).read_text()[-3000:])
        time.sleep(0.05)


def free_port_pair() -> int:
    """A port P such that P and P + 1 are both free (the app listens on both)."""
    while True:
        port = bench_run.free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def redis_command(port: int, *args: str) -> bytes:
    parts = [a.encode() for a in args]
    command = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(65536)


def session_cookie(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/session")
    response = conn.getresponse()
    response.read()
    conn.close()
    header = response.getheader("Set-Cookie")
    if response.status != 200 or not header:
        raise SystemExit(f"GET /session on {port}: {response.status}, no session cookie")
    return header.split(";", 1)[0]


def check(port: int, path: str, cookie: str | None) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200 or body != b"Hello, World!":
        raise SystemExit(f"GET {path} on {port}: {response.status} {body[:100]!r}")


def run_wrk(wrk: str, cpu: int, port: int, path: str, cookie: str | None, duration: float,
            server_pid: int, redis_pid: int) -> dict:
    cmd = ["taskset", "-c", str(cpu), wrk, "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(duration))}s",
           "--timeout", "5s", "--latency", "-s", str(BENCH / "wrk" / "get.lua")]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = bench_run.busy_seconds()
    server_before = bench_run.cpu_seconds(server_pid)
    redis_before = bench_run.cpu_seconds(redis_pid)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_used = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    server_used = bench_run.cpu_seconds(server_pid) - server_before
    redis_used = bench_run.cpu_seconds(redis_pid) - redis_before
    busy = bench_run.busy_seconds() - busy_before
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            import json

            data = json.loads(line[len("BENCH-JSON "):])
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
            data["server_cpu"] = server_used / wall
            data["client_cpu"] = wrk_used / wall
            data["redis_cpu"] = redis_used / wall
            data["other_cpu"] = max(0.0, (busy - server_used - wrk_used - redis_used) / wall)
            data["errors"] = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
            return data
    raise SystemExit(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per scenario (10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each (1)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--redis-cpu", type=int, default=1)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="which, comma-separated (hello is always measured, first and last)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--gc-freeze", action="store_true",
                        help="the server calls gc.freeze() once started (see the app's --gc-freeze)")
    args = parser.parse_args(argv)

    wrk = bench_run.ensure_wrk()
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        raise SystemExit("redis-server is missing: apt-get install redis-server")
    workdir = Path(tempfile.mkdtemp(prefix="cyclone-bench-redis-"))
    redis_port, port = bench_run.free_port(), free_port_pair()
    processes: list[subprocess.Popen] = []
    try:
        redis = subprocess.Popen(
            ["taskset", "-c", str(args.redis_cpu), redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=open(workdir / "redis.log", "wb"), stderr=subprocess.STDOUT)
        redis.log_path = workdir / "redis.log"
        processes.append(redis)
        wait_port(redis_port, redis, "redis-server")
        redis_command(redis_port, "SET", "bench:hello", "Hello, World!")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        server = subprocess.Popen(
            ["taskset", "-c", str(args.server_cpu), sys.executable, str(BENCH / "apps" / "cyclone_redis_app.py"),
             "--port", str(port), "--redis-url", f"redis://127.0.0.1:{redis_port}/0"]
            + (["--gc-freeze"] if args.gc_freeze else []),
            env=env, stdout=open(workdir / "server.log", "wb"), stderr=subprocess.STDOUT)
        server.log_path = workdir / "server.log"
        processes.append(server)
        wait_port(port, server, "the server")
        wait_port(port + 1, server, "the server")
        cookies = [session_cookie(port), session_cookie(port + 1)]
        for name, (app, path, with_cookie) in SCENARIOS.items():
            if name.endswith("-read") or name.startswith(("hello", "redis")):
                check(port + app, path, cookies[app] if with_cookie else None)

        results: dict[str, dict] = {}
        chosen = [name for name in args.scenarios.split(",") if name and name != "hello"]
        unknown = set(chosen) - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
        order = ["hello", *chosen, "hello"]  # hello again last: the drift of the run
        for index, name in enumerate(order):
            app, path, with_cookie = SCENARIOS[name]
            cookie = cookies[app] if with_cookie else None
            bench_run.wait_for_quiet(0.3, 20)
            if args.warmup > 0:
                run_wrk(wrk, args.client_cpu, port + app, path, cookie, args.warmup, server.pid, redis.pid)
            data = run_wrk(wrk, args.client_cpu, port + app, path, cookie, args.duration, server.pid, redis.pid)
            key = name if name not in results else "hello (again)"
            results[key] = data
            data["server_us"] = 1e6 * data["server_cpu"] / data["rps"]
            log(f"{key:22} {data['rps']:9.0f} req/s  {data['server_us']:5.0f} µs CPU/req  "
                f"p50 {data['p50_us'] / 1000:.2f} ms  "
                f"server {data['server_cpu']:.0%} wrk {data['client_cpu']:.0%} "
                f"redis {data['redis_cpu']:.0%} other {data['other_cpu']:.0%}  errors {data['errors']}")
    finally:
        for proc in reversed(processes):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    hello = (results["hello"]["rps"] + results["hello (again)"]["rps"]) / 2
    redis_ratio = results["redis"]["rps"] / hello
    # CPU per request: what throughput would be on a machine where the server had its core to itself
    hello_us = (results["hello"]["server_us"] + results["hello (again)"]["server_us"]) / 2
    lines = [
        "# Redis and session handlers against plain hello",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{bench_run.machine_info()['cpu']}, 2 cores, shared machine "
        f"(other processes' CPU in the last column); git {bench_run.git_revision()}.",
        f"`python {' '.join([Path(sys.argv[0]).name] + sys.argv[1:])}`: wrk -t1 -c{CONNECTIONS} keep-alive, "
        f"{args.duration:g} s per row; server on CPU {args.server_cpu}, wrk on CPU {args.client_cpu}, "
        f"redis-server on CPU {args.redis_cpu}.",
        "",
        "| scenario | req/s | × hello | server CPU µs/req | × hello | p50 ms | p99 ms "
        "| CPU server | wrk | redis | other | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, data in results.items():
        lines.append(
            f"| {name} | {data['rps']:.0f} | {data['rps'] / hello:.2f} | {data['server_us']:.0f} | "
            f"{hello_us / data['server_us']:.2f} | {data['p50_us'] / 1000:.2f} | "
            f"{data['p99_us'] / 1000:.2f} | {data['server_cpu']:.0%} | {data['client_cpu']:.0%} | "
            f"{data['redis_cpu']:.0%} | {data['other_cpu']:.0%} | {data['errors']} |")
    verdict = "met" if redis_ratio >= BAR else "NOT met"
    lines += ["", f"× hello is against the mean of the two hello rows ({hello:.0f} req/s; "
              f"{hello_us:.0f} µs of server CPU per request, where × hello is hello's CPU per request "
              "over the row's: the share of hello's throughput the row would have with the server "
              "saturating its core, which a busy shared machine does not let it do). "
              f"Bar: the Redis GET handler keeps ≥ {BAR} of hello: {redis_ratio:.2f}, {verdict}.", ""]
    text = "\n".join(lines)
    print("\n" + text)
    args.results.write_text(text)
    log(f"written to {args.results}")
    return 0 if redis_ratio >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
