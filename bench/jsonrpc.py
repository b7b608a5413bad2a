"""JSON-RPC calls per second: cyclone.jsonrpc against an aiohttp JSON-RPC
server of the same shape (``apps/jsonrpc_aiohttp_app.py``).

    flock /tmp/cyclone-bench.lock python bench/jsonrpc.py
    python bench/jsonrpc.py --quick --results /tmp/r.md

Scenarios (``POST /rpc``, keep-alive, 50 connections, wrk ``-t1``):

``single``  one call, ``{"jsonrpc":"2.0","method":"add","params":[40,2],"id":1}``
            (``wrk/jsonrpc_single.lua``)
``batch``   a batch of 10 calls, half with positional and half with named
            params (``wrk/jsonrpc_batch.lua``)

Each server is one process pinned to CPU ``--server-cpu`` (0) with
``taskset``, wrk to ``--client-cpu`` (1). Before measuring, both servers must
answer the scenarios' bodies, and a few wrong calls, with the same JSON. The
table gives requests/s, calls/s (10 per batch request), p50/p99 latency, the
CPU used by the server, by wrk and by everything else meanwhile (so a busy
machine or a saturated wrk shows), and cyclone's ratio to aiohttp. It runs
with the interpreter that starts it, which needs Twisted and aiohttp (the
test environment has both); cyclone comes from this checkout. The Markdown
goes to ``bench/RESULTS-rpc.md`` (``--results``), newest run first.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from run import busy_seconds, cpu_seconds, free_port, wait_for_quiet  # noqa: E402

REPO = BENCH.parent
APPS = BENCH / "apps"
WRK_DIR = BENCH / "wrk"
RESULTS = BENCH / "RESULTS-rpc.md"
SERVERS = {"cyclone": APPS / "jsonrpc_cyclone_app.py", "aiohttp": APPS / "jsonrpc_aiohttp_app.py"}


def batch_body() -> str:
    """What wrk/jsonrpc_batch.lua sends."""
    calls = []
    for i in range(1, 11):
        if i % 2 == 0:
            calls.append(f'{{"jsonrpc":"2.0","method":"add","params":{{"a":{i},"b":2}},"id":"c{i}"}}')
        else:
            calls.append(f'{{"jsonrpc":"2.0","method":"add","params":[{i},2],"id":{i}}}')
    return "[" + ",".join(calls) + "]"


# scenario -> (wrk script, body, calls per request)
SCENARIOS = {
    "single": ("jsonrpc_single.lua", '{"jsonrpc":"2.0","method":"add","params":[40,2],"id":1}', 1),
    "batch": ("jsonrpc_batch.lua", batch_body(), 10),
}
# wrong calls both servers must answer alike
CHECKS = [
    '{"jsonrpc":"2.0","method":"nope","id":1}',
    '{"jsonrpc":"2.0","method":"add","params":[1],"id":2}',
    '{"jsonrpc":"2.0","method":"add","params":{"a":1,"c":2},"id":3}',
    "[]",
    "[1]",
    '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]',
]


def log(message: str) -> None:
    print(message, flush=True)


class Server:
    def __init__(self, name: str, cpu: int, python: str) -> None:
        self.name = name
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), python, str(SERVERS[name]), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        self.banner = self.proc.stdout.readline().strip()  # "<name> ready on pid ..."
        if "ready" not in self.banner:
            self.stop()
            raise SystemExit(f"{name} did not start: {self.banner}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                post(self.port, "[]")
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{name} does not answer")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def post(port: int, body: str) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/rpc", body=body.encode(), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def without_data(answer: object) -> object:
    """The answer without the optional ``data`` of its error objects (cyclone's say more)."""
    if isinstance(answer, list):
        return [without_data(member) for member in answer]
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return dict(answer, error={k: v for k, v in answer["error"].items() if k != "data"})
    return answer


def check(servers: dict[str, Server]) -> None:
    """Both servers answer every body alike, and the scenarios correctly."""
    for body in [scenario[1] for scenario in SCENARIOS.values()] + CHECKS:
        answers = {}
        for name, server in servers.items():
            status, answer = post(server.port, body)
            answers[name] = (status, without_data(answer))
        if len({json.dumps(a, sort_keys=True) for a in answers.values()}) != 1:
            raise SystemExit(f"the servers answer {body!r} differently: {answers}")
    status, answer = post(servers["cyclone"].port, SCENARIOS["single"][1])
    assert (status, answer) == (200, {"jsonrpc": "2.0", "result": 42, "id": 1}), answer
    status, answer = post(servers["cyclone"].port, SCENARIOS["batch"][1])
    assert status == 200 and [a["result"] for a in answer] == [i + 2 for i in range(1, 11)], answer


def run_wrk(cpu: int, port: int, scenario: str, seconds: int, connections: int, pid: int) -> dict:
    script = WRK_DIR / SCENARIOS[scenario][0]
    command = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
               "--latency", "-s", str(script), f"http://127.0.0.1:{port}/rpc"]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before, server_before, wall_before = busy_seconds(), cpu_seconds(pid), time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.monotonic() - wall_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    server_cpu = cpu_seconds(pid) - server_before
    other = max(0.0, busy_seconds() - busy_before - server_cpu - wrk_cpu)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH-JSON "):
            data = json.loads(line[len("BENCH-JSON "):])
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
            data["calls"] = data["rps"] * SCENARIOS[scenario][2]
            data["server_cpu"], data["wrk_cpu"], data["other_cpu"] = server_cpu / wall, wrk_cpu / wall, other / wall
            data["errors"] = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
            # calls per second of the server's own CPU: what a busy machine changes least
            data["calls_per_cpu"] = data["calls"] / data["server_cpu"] if data["server_cpu"] else 0.0
            return data
    raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")


def git_revision() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def versions(python: str) -> str:
    code = ("import importlib.metadata as m, sys; "
            "print(sys.version.split()[0], m.version('twisted'), m.version('aiohttp'))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.split()
    return f"Python {out[0]}, Twisted {out[1]}, aiohttp {out[2]}" if len(out) == 3 else "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per run (10)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of load before each run (1)")
    parser.add_argument("--quick", action="store_true", help="3 s runs")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs per server and scenario, taking turns; the fastest counts (2)")
    parser.add_argument("--scenarios", default="single,batch")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--python", default=sys.executable, help="interpreter of the servers")
    parser.add_argument("--quiet-limit", type=float, default=0.15,
                        help="wait until other processes use less than this share of a CPU (0.15)")
    parser.add_argument("--quiet-timeout", type=float, default=30.0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    duration = 3 if options.quick else options.duration
    scenarios = options.scenarios.split(",")
    started = datetime.datetime.now(datetime.timezone.utc)

    servers = {name: Server(name, options.server_cpu, options.python) for name in SERVERS}
    try:
        check(servers)
        for server in servers.values():
            log(f"{server.banner}")
        results: dict[tuple[str, str], dict] = {}
        for scenario in scenarios:
            for _ in range(options.rounds):
                for name, server in servers.items():
                    wait_for_quiet(options.quiet_limit, options.quiet_timeout)
                    if options.warmup:
                        run_wrk(options.client_cpu, server.port, scenario, options.warmup, options.connections,
                                server.proc.pid)
                    data = run_wrk(options.client_cpu, server.port, scenario, duration, options.connections,
                                   server.proc.pid)
                    if (scenario, name) not in results or data["rps"] > results[scenario, name]["rps"]:
                        results[scenario, name] = data
                    log(f"{scenario:7} {name:8} {data['rps']:9.0f} req/s {data['calls']:9.0f} calls/s "
                        f"{data['calls_per_cpu']:9.0f} calls/CPU-s p50 {data['p50_us'] / 1000:.2f} ms "
                        f"p99 {data['p99_us'] / 1000:.2f} ms CPU server {data['server_cpu']:.0%} "
                        f"wrk {data['wrk_cpu']:.0%} other {data['other_cpu']:.0%}"
                        f"{'  errors ' + str(data['errors']) if data['errors'] else ''}")
    finally:
        for server in servers.values():
            server.stop()

    lines = [
        f"## {started:%Y-%m-%d %H:%M} UTC, cyclone {git_revision()}",
        "",
        f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared machine; "
        f"server on CPU {options.server_cpu}, wrk on CPU {options.client_cpu} (`taskset`)",
        f"- {versions(options.python)}; `wrk -t1 -c{options.connections}`, {options.warmup} s warm-up, "
        f"{duration} s measured per run",
        f"- Command: `{' '.join(['python bench/jsonrpc.py', *(argv if argv is not None else sys.argv[1:])])}`",
        "",
        "| scenario | server | req/s | calls/s | calls per server CPU-s | p50 ms | p99 ms | × aiohttp "
        "(req/s) | × aiohttp (per CPU-s) | CPU server/wrk/other | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in scenarios:
        base = results[scenario, "aiohttp"]
        for name in servers:
            data = results[scenario, name]
            per_cpu = data["calls_per_cpu"] / base["calls_per_cpu"] if base["calls_per_cpu"] else 0.0
            lines.append(
                f"| {scenario} | {name} | {data['rps']:.0f} | {data['calls']:.0f} | {data['calls_per_cpu']:.0f} | "
                f"{data['p50_us'] / 1000:.2f} | {data['p99_us'] / 1000:.2f} | {data['rps'] / base['rps']:.2f} | "
                f"{per_cpu:.2f} | {data['server_cpu']:.0%} / "
                f"{data['wrk_cpu']:.0%} / {data['other_cpu']:.0%} | {data['errors'] or ''} |")
    lines.append("")
    for scenario in scenarios:
        ours, theirs = results[scenario, "cyclone"], results[scenario, "aiohttp"]
        ratio = ours["rps"] / theirs["rps"]
        per_cpu = ours["calls_per_cpu"] / theirs["calls_per_cpu"] if theirs["calls_per_cpu"] else 0.0
        lines.append(f"- {scenario}: cyclone / aiohttp = **{ratio:.2f}** in calls/s, {per_cpu:.2f} in calls per "
                     f"server CPU-second {'(ahead ✔)' if min(ratio, per_cpu) > 1 else '(not ahead ✘)'}")
    report = "\n".join(lines) + "\n"
    log("\n" + report)

    header = ("# JSON-RPC benchmark results\n\nWritten by `bench/jsonrpc.py` (see its docstring); "
              "newest run first. Numbers from a 2-core machine shared with other work: compare the "
              "ratios of one run, not runs with each other.\n\n")
    previous = options.results.read_text() if options.results.exists() else ""
    previous = previous[len(header):] if previous.startswith(header) else previous
    options.results.write_text(header + report + ("\n" + previous if previous else ""))
    log(f"written to {options.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
