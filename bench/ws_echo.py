"""WebSocket echo throughput: cyclone against Tornado, aiohttp, the
``websockets`` library and ``twisted.web.websocket``, in one run::

    flock /tmp/cyclone-bench.lock python bench/ws_echo.py [--seconds 5] [--servers cyclone,tornado]

Each server (bench/apps/ws_echo_servers.py) runs alone, pinned to CPU 0
(``taskset``); the load generator, a Go program (bench/wsload/main.go, built
here into bench/.work/ with Debian's golang-github-gorilla-websocket-dev,
offline), is pinned to CPU 1. It keeps 50 connections busy, one message in
flight on each: 32-byte text messages, then 64 KiB binary ones, counted for
``--seconds`` after a second of warm-up. No compression, except in the
last rows (32 B, permessage-deflate as gorilla offers it: no context
takeover on either side; cyclone and websockets only: gorilla refuses
Tornado's and aiohttp's answers, see COMPRESSING).

Reported: echoed messages/s, cyclone's ratio to each, the server's CPU use
(should be ~100%: the server is the bottleneck) and the generator's (below
90%, or the row is marked generator-bound). Then memory: the server's RSS
growth per idle WebSocket (``--idle`` connections, handshake done, no
messages), with and without compression negotiated.

Every server runs with /work/main/.venv's Python (``--python``), cyclone
from this checkout (PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
WSLOAD = WORK / "wsload"
SERVERS = ["cyclone", "tornado", "aiohttp", "websockets", "twisted"]
SERVER_CPU, CLIENT_CPU = 0, 1
SIZES = [(32, False), (65536, True)]  # (bytes, binary)
# The compressed rows: gorilla offers permessage-deflate with no context
# takeover only ("server_no_context_takeover; client_no_context_takeover")
# and rejects an answer that leaves a parameter out. Tornado 6.6 answers
# "permessage-deflate" (RFC 7692 7.1.1.1 wants server_no_context_takeover
# echoed), aiohttp 3.14 leaves out client_no_context_takeover:
# gorilla refuses both. twisted.web.websocket does not compress.
COMPRESSING = ("cyclone", "websockets")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_wsload() -> Path:
    source = BENCH / "wsload" / "main.go"
    if WSLOAD.exists() and WSLOAD.stat().st_mtime >= source.stat().st_mtime:
        return WSLOAD
    WORK.mkdir(exist_ok=True)
    if not shutil.which("go"):
        raise SystemExit("needs Go: apt-get install golang-go golang-github-gorilla-websocket-dev")
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOFLAGS="",
               GOCACHE=str(WORK / "gocache"))
    log("[setup] building bench/.work/wsload")
    subprocess.run(["go", "build", "-o", str(WSLOAD), str(source)], check=True, env=env)
    return WSLOAD


def build_speedups(python: str) -> bool:
    """Build cyclone._speedups (C masking) in the checkout, as an install
    would; True when it is there."""
    if not list((REPO / "cyclone").glob("_speedups*.so")):
        log("[setup] python setup.py build_ext --inplace (cyclone._speedups)")
        subprocess.run([python, "setup.py", "-q", "build_ext", "--inplace"], cwd=REPO,
                       stdout=subprocess.DEVNULL, check=False)
    return bool(list((REPO / "cyclone").glob("_speedups*.so")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Server:
    def __init__(self, python: str, name: str, compress: bool) -> None:
        self.name = name
        self.port = free_port()
        cmd = ["taskset", "-c", str(SERVER_CPU), python, str(BENCH / "apps" / "ws_echo_servers.py"),
               "--server", name, "--port", str(self.port)]
        if compress:
            cmd.append("--compress")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd="/tmp")  # not the checkout: its twisted/ dir would shadow Twisted
        self.pid = self.proc.pid  # taskset execs the interpreter
        line = self.proc.stdout.readline()
        if " ready on pid " not in line:
            self.stop()
            raise RuntimeError(f"{name} did not start: {line}{self.proc.stdout.read()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_load(server: Server, size: int, binary: bool, compress: bool, seconds: float, conns: int) -> dict:
    cmd = ["taskset", "-c", str(CLIENT_CPU), str(WSLOAD), "-url", f"ws://127.0.0.1:{server.port}/ws",
           "-c", str(conns), "-size", str(size), "-d", f"{seconds}s", "-warmup", "1s"]
    if binary:
        cmd.append("-binary")
    if compress:
        cmd.append("-compress")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marks = {}
    result = None
    for line in proc.stdout:
        line = line.strip()
        if line in ("START", "END"):
            marks[line] = (time.monotonic(), cpu_seconds(server.pid))
        elif line.startswith("{"):
            result = json.loads(line)
    proc.wait()
    if proc.returncode or result is None:
        raise RuntimeError(f"wsload failed ({proc.returncode}): {proc.stderr.read()}")
    (t0, c0), (t1, c1) = marks["START"], marks["END"]
    result["server_cpu_percent"] = 100 * (c1 - c0) / (t1 - t0)
    # messages per CPU-second of the server: what the server costs per
    # message, less sensitive than messages/s to other processes taking CPU 0
    result["per_cpu_second"] = result["messages"] / (c1 - c0) if c1 > c0 else 0.0
    return result


def measure_idle_memory(server: Server, count: int, compress: bool) -> float:
    """RSS growth of the server per idle WebSocket (KiB): ``count`` opened by
    wsload -idle, which keeps them until its stdin closes."""
    def open_idle(n: int) -> subprocess.Popen:
        cmd = ["taskset", "-c", str(CLIENT_CPU), str(WSLOAD), "-url", f"ws://127.0.0.1:{server.port}/ws",
               "-idle", str(n)] + (["-compress"] if compress else [])
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if proc.stdout.readline().strip() != "READY":
            raise RuntimeError("wsload -idle failed")
        return proc

    warm = open_idle(20)  # first-use costs (imports, caches) are not per connection
    warm.stdin.close()
    warm.wait()
    time.sleep(0.5)
    before = rss_kib(server.pid)
    idle = open_idle(count)
    time.sleep(1.0)
    after = rss_kib(server.pid)
    idle.stdin.close()
    idle.wait()
    time.sleep(0.5)
    return (after - before) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--idle", type=int, default=2000, help="idle connections for the memory rows (0: skip)")
    parser.add_argument("--no-compression-rows", action="store_true")
    parser.add_argument("--python", default="/work/main/.venv/bin/python")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if os.cpu_count() < 2:
        raise SystemExit("needs 2 CPUs (server on 0, load generator on 1)")
    build_wsload()
    args.speedups = build_speedups(args.python)
    servers = args.servers.split(",")
    rows = []  # (label, server, size, compress, result)
    plan = [(name, size, binary, False) for name in servers for size, binary in SIZES]
    if not args.no_compression_rows:
        plan += [(name, 32, False, True) for name in servers if name in COMPRESSING]
    current = None
    try:
        for name, size, binary, compress in plan:
            if current is None or current.name != name or current.compress != compress:
                if current is not None:
                    current.stop()
                current = Server(args.python, name, compress)
                current.compress = compress
            log(f"[run] {name} {size} B{' compressed' if compress else ''}")
            result = run_load(current, size, binary, compress, args.seconds, args.connections)
            rows.append({"server": name, "size": size, "compress": compress, **result})
        if current is not None:
            current.stop()
            current = None
        memory = []
        if args.idle:
            for name in servers:
                for compress in (False, True):
                    if compress and name not in COMPRESSING:
                        continue
                    server = Server(args.python, name, compress)
                    try:
                        log(f"[memory] {name}{' compressed' if compress else ''}")
                        memory.append({"server": name, "compress": compress,
                                       "kib_per_connection": measure_idle_memory(server, args.idle, compress)})
                    finally:
                        server.stop()
    finally:
        if current is not None:
            current.stop()
    report = render(rows, memory, args)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "memory": memory}, indent=1))
    return 0


def render(rows: list[dict], memory: list[dict], args: argparse.Namespace) -> str:
    versions = subprocess.run(
        [args.python, "-c", "import tornado, aiohttp, websockets, twisted, sys; "
         "print(f'Python {sys.version.split()[0]}, Tornado {tornado.version}, aiohttp {aiohttp.__version__}, "
         "websockets {websockets.__version__}, Twisted {twisted.__version__}')"],
        capture_output=True, text=True, cwd="/tmp").stdout.strip()
    out = [f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
           f"{os.cpu_count()} cores (shared machine); {versions}",
           f"{args.connections} connections, one message in flight each, {args.seconds:g} s per row; "
           f"server on CPU {SERVER_CPU}, Go/gorilla load generator on CPU {CLIENT_CPU}; "
           f"cyclone's C masking (cyclone._speedups): {'built' if args.speedups else 'NOT built'}", ""]
    out.append("| server | message | messages/s | cyclone ÷ this | messages per server CPU-s | cyclone ÷ this "
               "| server CPU | generator CPU |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    cyclone_rate = {(r["size"], r["compress"]): r["rate"] for r in rows if r["server"] == "cyclone"}
    cyclone_eff = {(r["size"], r["compress"]): r["per_cpu_second"] for r in rows if r["server"] == "cyclone"}
    for r in rows:
        label = f"{r['size'] if r['size'] < 1024 else str(r['size'] // 1024) + ' KiB'}"
        label += " B" if r["size"] < 1024 else ""
        label += (" " + ("binary" if r["size"] >= 1024 else "text"))
        if r["compress"]:
            label += ", deflate"
        base = cyclone_rate.get((r["size"], r["compress"]))
        ratio = f"{base / r['rate']:.2f}×" if base and r["rate"] else "–"
        base_eff = cyclone_eff.get((r["size"], r["compress"]))
        ratio_eff = f"{base_eff / r['per_cpu_second']:.2f}×" if base_eff and r["per_cpu_second"] else "–"
        gen = f"{r['cpu_percent']:.0f}%" + (" (generator-bound!)" if r["cpu_percent"] >= 90 else "")
        errors = f" ({r['errors']} errors)" if r["errors"] else ""
        out.append(f"| {r['server']} | {label} | {r['rate']:,.0f}{errors} | {ratio} | "
                   f"{r['per_cpu_second']:,.0f} | {ratio_eff} | {r['server_cpu_percent']:.0f}% | {gen} |")
    if memory:
        out += ["", f"Idle WebSockets ({args.idle}, handshake done, no messages): server RSS growth per connection", "",
                "| server | no compression | permessage-deflate negotiated |", "|---|---:|---:|"]
        by = {(m["server"], m["compress"]): m["kib_per_connection"] for m in memory}
        for name in dict.fromkeys(m["server"] for m in memory):
            plain = by.get((name, False))
            deflate = by.get((name, True))
            out.append(f"| {name} | {plain:.2f} KiB | " + (f"{deflate:.2f} KiB |" if deflate is not None else "– |"))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
