#!/usr/bin/env python3
"""The same Flask "hello" app under four WSGI servers, measured with wrk.

    flock /tmp/cyclone-bench.lock python bench/wsgi.py               # 10 s per server
    flock /tmp/cyclone-bench.lock python bench/wsgi.py --duration 5 --servers cyclone,twisted

Servers: cyclone's ``WSGIContainer`` (its own pool of 10 threads), Twisted's
``WSGIResource`` (the reactor's pool, 10 threads), gunicorn (sync worker, one
process) and waitress (its default 4 threads). Each runs in its own process
pinned to CPU 0 (``taskset``); wrk runs on CPU 1 with one thread and 50
keep-alive connections (gunicorn's sync worker closes every connection after
its response, so wrk reconnects for each of its requests: that is how the
sync worker serves). Run it with an interpreter that has flask, twisted,
gunicorn and waitress (the test venv); this checkout's cyclone is used.

Prints requests/s, each server's ratio to cyclone's, the CPU the server and
wrk used (wrk's share shows it is not the bottleneck), the CPU of other
processes on the machine meanwhile, and the server's CPU time per request.
``--raw`` serves a bare WSGI function instead of Flask: what the server
itself costs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WRK_SCRIPT = BENCH / "wrk" / "get.lua"
SERVERS = ["cyclone", "twisted", "gunicorn", "waitress"]
ABOUT = {
    "cyclone": "cyclone.wsgi.WSGIContainer, 10 threads",
    "twisted": "twisted.web.wsgi.WSGIResource, reactor pool (10 threads)",
    "gunicorn": "gunicorn, 1 sync worker",
    "waitress": "waitress, 4 threads",
}


def raw_app(environ, start_response):
    """The same answer without a framework: what the server itself costs."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, World!"]


def make_flask_app():
    if os.environ.get("BENCH_WSGI_RAW"):
        return raw_app
    import flask

    app = flask.Flask("bench")

    @app.route("/")
    def hello():
        return flask.Response("Hello, World!", mimetype="text/plain")

    return app


app = None
if os.environ.get("BENCH_WSGI_APP"):  # imported by gunicorn/waitress as bench_wsgi_app:app
    app = make_flask_app()


def serve(name: str, port: int) -> None:
    """Run server ``name`` on ``port`` (in the child process)."""
    flask_app = make_flask_app()
    if name == "cyclone":
        from twisted.internet import reactor

        from cyclone.httpserver import HTTPServer
        from cyclone.wsgi import WSGIContainer

        threads = int(os.environ.get("BENCH_WSGI_THREADS") or 10)
        container = WSGIContainer(flask_app, max_threads=threads)
        reactor.listenTCP(port, HTTPServer(container), interface="127.0.0.1", backlog=1024)
        reactor.run()
    elif name == "twisted":
        from twisted.internet import reactor
        from twisted.web.server import Site
        from twisted.web.wsgi import WSGIResource

        site = Site(WSGIResource(reactor, reactor.getThreadPool(), flask_app))
        site.log = lambda request: None  # no access log: cyclone's goes nowhere by default either
        reactor.listenTCP(port, site, interface="127.0.0.1", backlog=1024)
        reactor.run()
    elif name == "waitress":
        import waitress

        waitress.serve(flask_app, host="127.0.0.1", port=port, _quiet=True)
    else:
        raise SystemExit(f"unknown server {name}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(name: str, port: int, cpu: int, log_path: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if name == "gunicorn":
        env["BENCH_WSGI_APP"] = "1"
        env["PYTHONPATH"] = os.pathsep.join([str(BENCH), env["PYTHONPATH"]])
        cmd = [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
               "--bind", f"127.0.0.1:{port}", "--backlog", "1024", "wsgi:app"]
    else:
        cmd = [sys.executable, str(Path(__file__)), "--serve", name, "--port", str(port)]
    log = open(log_path, "w")
    proc = subprocess.Popen(["taskset", "-c", str(cpu), *cmd], cwd=BENCH, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited: {log_path.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not listen")
            time.sleep(0.1)
    # the answer must be the app's
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    conn.close()
    if not answer.startswith(b"HTTP/1.1 200") or b"Hello, World!" not in answer:
        raise SystemExit(f"{name} answered {answer[:300]!r}")
    return proc


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (gunicorn's worker)."""
    total = 0.0
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    pids.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except FileNotFoundError:
            continue
    return total


def busy_seconds() -> float:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + (fields[7] if len(fields) > 7 else 0)) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, cpu: int, seconds: int, connections: int, pid: int) -> dict:
    cmd = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
           "--latency", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}/"]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before, busy_before, wall_before = tree_cpu_seconds(pid), busy_seconds(), time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - wall_before
    server = tree_cpu_seconds(pid) - server_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    busy = busy_seconds() - busy_before
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            data = json.loads(line[len("BENCH-JSON "):])
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
            data["server_cpu"] = server / wall
            data["client_cpu"] = client / wall
            data["other_cpu"] = max(0.0, (busy - server - client) / wall)
            data["errors"] = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
            return data
    raise SystemExit(f"wrk failed: {proc.stdout}\n{proc.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk before measuring (2)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--raw", action="store_true", help="a bare WSGI function instead of Flask")
    parser.add_argument("--threads", type=int, default=10, help="cyclone's max_threads (10)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.raw:
        os.environ["BENCH_WSGI_RAW"] = "1"  # inherited by the servers
    os.environ["BENCH_WSGI_THREADS"] = str(args.threads)
    ABOUT["cyclone"] = f"cyclone.wsgi.WSGIContainer, {args.threads} threads"
    logs = BENCH / ".work" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.servers.split(","):
        port = free_port()
        proc = start(name, port, args.server_cpu, logs / f"wsgi-{name}.log")
        try:
            wrk(port, args.client_cpu, args.warmup, args.connections, proc.pid)
            results[name] = wrk(port, args.client_cpu, args.duration, args.connections, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        r = results[name]
        print(f"{name:9} {r['rps']:8.0f} req/s  p50 {r['p50_us'] / 1000:6.2f} ms  p99 {r['p99_us'] / 1000:7.2f} ms"
              f"  server CPU {r['server_cpu']:.2f}  wrk CPU {r['client_cpu']:.2f}  others {r['other_cpu']:.2f}"
              f"  errors {r['errors']}", flush=True)
    base = results.get("cyclone", {}).get("rps")
    print()
    print(f"{'bare WSGI' if args.raw else 'Flask'} hello, {args.connections} connections, {args.duration} s, "
          f"{datetime.date.today().isoformat()}, 2 cores, shared machine")
    print(f"{'server':9} {'req/s':>8} {'cyclone / it':>13} {'CPU us/req':>11}  what")
    for name, r in results.items():
        ratio = f"{base / r['rps']:.2f}" if base else "-"
        # the server's CPU per request: steadier than req/s on a shared machine
        per_request = 1e6 * r["server_cpu"] / r["rps"]
        print(f"{name:9} {r['rps']:8.0f} {ratio:>13} {per_request:11.0f}  {ABOUT[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
