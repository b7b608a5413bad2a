#!/usr/bin/env python3
"""Profile cyclone's server under one benchmark scenario, for optimizing.

    python bench/profiling.py                       # hello keep-alive, both profilers
    python bench/profiling.py --scenario json --tool cprofile --duration 20
    python bench/run.py --profile hello             # the same, from the runner

(Not named profile.py: that would shadow the standard library's ``profile``,
which ``cProfile`` imports, for every script run from bench/.)

Runs bench/apps/cyclone_app.py from the benchmark's cyclone virtualenv (a
fresh install of this checkout, see run.py), pinned to the server CPU, with
wrk on the other CPU, and writes into bench/.work/:

``profile-<scenario>-cprofile.txt``
    cProfile: the top functions by cumulative and by total (own) time, and
    the callers of the most expensive ones; ``.prof`` next to it for pstats,
    snakeviz and friends. cProfile slows every Python call down, so small
    functions look more expensive than they are; the call counts are exact.
``profile-<scenario>-pyspy.txt``, ``.svg``, ``.folded``
    py-spy (sampling, installed into the cyclone venv on first use): the
    share of busy samples per function, own and total, a flame graph and
    the folded stacks. Closer to the real cost; no call counts.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import html
import io
import pstats
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py)


def profile_cprofile(args, wrk: str) -> Path:
    prof = run.WORK / f"profile-{args.scenario}-cprofile.prof"
    prof.unlink(missing_ok=True)
    server = run.Server("cyclone", args.reactor, args.server_cpu, label="cyclone-cprofile",
                        extra=["--cprofile", str(prof)])
    try:
        if run.check_endpoints(server.port).get(run.ENDPOINT_OF[args.scenario]):
            raise SystemExit(f"cyclone does not serve {args.scenario}; see {server.log_path}")
        data = run.run_wrk(wrk, args.client_cpu, server.port, args.scenario, args.duration, server.pid)
    finally:
        server.stop()
    for _ in range(50):
        if prof.exists():
            break
        time.sleep(0.1)
    if not prof.exists():
        raise SystemExit(f"no profile written; see {server.log_path}")
    out = io.StringIO()
    out.write(f"cyclone, scenario {args.scenario} ({run.SCENARIOS[args.scenario][3]}), "
              f"{args.duration:.0f} s under cProfile: {data['rps']:.0f} req/s "
              f"({data['requests']} requests)\n\n")
    stats = pstats.Stats(str(prof), stream=out)
    stats.strip_dirs()
    out.write(f"=== top {args.top} by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(args.top)
    out.write(f"=== top {args.top} by total (own) time ===\n")
    stats.sort_stats("tottime").print_stats(args.top)
    out.write("=== callers of the top 10 by own time ===\n")
    stats.sort_stats("tottime").print_callers(10)
    text_path = prof.with_suffix(".txt")
    text_path.write_text(out.getvalue())
    return text_path


def profile_pyspy(args, wrk: str) -> Path:
    pyspy = run.VENVS / "cyclone" / "bin" / "py-spy"
    if not pyspy.exists():
        run.log("[setup] pip install py-spy into the cyclone venv")
        run.pip("cyclone", ["py-spy"])
    base = run.WORK / f"profile-{args.scenario}-pyspy"
    folded = base.with_suffix(".folded")
    server = run.Server("cyclone", args.reactor, args.server_cpu, label="cyclone-pyspy")
    try:
        if run.check_endpoints(server.port).get(run.ENDPOINT_OF[args.scenario]):
            raise SystemExit(f"cyclone does not serve {args.scenario}; see {server.log_path}")
        run.run_wrk(wrk, args.client_cpu, server.port, args.scenario, 1)  # warm-up
        spy = subprocess.Popen(
            ["taskset", "-c", str(args.client_cpu), str(pyspy), "record", "--pid", str(server.pid),
             "--duration", str(int(args.duration)), "--rate", str(args.rate), "--function",
             *(["--nonblocking"] if args.nonblocking else []),
             "--format", "raw", "--output", str(folded)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        data = run.run_wrk(wrk, args.client_cpu, server.port, args.scenario, args.duration + 1,
                           server.pid)
        spy_out = spy.communicate(timeout=60)[0]
        if spy.returncode or not folded.exists():
            raise SystemExit(f"py-spy failed:\n{spy_out}")
    finally:
        server.stop()
    stacks = read_folded(folded)
    title = (f"cyclone, scenario {args.scenario} ({run.SCENARIOS[args.scenario][3]}), "
             f"py-spy at {args.rate} Hz: {data['rps']:.0f} req/s")
    base.with_suffix(".svg").write_text(flame_svg(stacks, title))
    text_path = base.with_suffix(".txt")
    text_path.write_text(title + "\n\n" + summarize(stacks, args.top))
    return text_path


def read_folded(path: Path) -> dict[tuple[str, ...], int]:
    stacks: dict[tuple[str, ...], int] = collections.Counter()
    # --nonblocking sampling now and then reads a frame mid-update: garbage
    # names, kept but made printable
    text = path.read_text(errors="replace")
    text = "".join(ch if ch.isprintable() or ch == "\n" else "?" for ch in text)
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def summarize(stacks: dict[tuple[str, ...], int], top: int) -> str:
    own: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    for frames, count in stacks.items():
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    samples = sum(stacks.values()) or 1
    out = [f"{samples} busy samples (idle time in epoll is not sampled)", ""]
    for label, counter in (("own", own), ("total (cumulative)", total)):
        out.append(f"=== top {top} by {label} share of busy samples ===")
        out.append(f"{'own %':>7} {'total %':>8}  function (file:first line)")
        for frame, _ in counter.most_common(top):
            out.append(f"{100 * own[frame] / samples:7.1f} {100 * total[frame] / samples:8.1f}  {frame}")
        out.append("")
    return "\n".join(out)


def flame_svg(stacks: dict[tuple[str, ...], int], title: str, width: int = 1400) -> str:
    """A flame graph (root at the bottom) of folded stacks as a standalone SVG;
    hover a frame for its name and share."""
    root: dict = {"n": 0, "c": {}}
    for frames, count in sorted(stacks.items()):
        node = root
        node["n"] += count
        for frame in frames:
            node = node["c"].setdefault(frame, {"n": 0, "c": {}})
            node["n"] += count

    def depth(node) -> int:
        return 1 + max((depth(child) for child in node["c"].values()), default=0)

    row, pad, top_margin = 16, 10, 40
    levels = depth(root)
    height = top_margin + levels * row + pad
    total = root["n"] or 1
    scale = (width - 2 * pad) / total
    rects = []

    def draw(name: str, node, x: float, level: int) -> None:
        w = node["n"] * scale
        if w < 0.3:
            return
        y = height - pad - (level + 1) * row
        digest = hashlib.md5(name.encode()).digest()
        color = f"rgb({205 + digest[0] % 50},{80 + digest[1] % 130},{digest[2] % 60})"
        label = name if level else "all"
        tip = html.escape(f"{label} — {node['n']} samples, {100 * node['n'] / total:.1f}%")
        text = ""
        chars = int(w / 7)
        if chars >= 3:
            shown = label if len(label) <= chars else label[: chars - 2] + ".."
            text = (f'<text x="{x + 3:.1f}" y="{y + 12}" font-size="11" '
                    f'font-family="monospace">{html.escape(shown)}</text>')
        rects.append(f'<g><title>{tip}</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" '
                     f'height="{row - 1}" fill="{color}" rx="2"/>{text}</g>')
        child_x = x
        for child_name, child in sorted(node["c"].items()):
            draw(child_name, child, child_x, level + 1)
            child_x += child["n"] * scale

    draw("all", root, pad, 0)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n<rect width="100%" height="100%" fill="#f8f8f0"/>\n'
            f'<text x="{pad}" y="24" font-size="15" font-family="sans-serif">{html.escape(title)}</text>\n'
            + "\n".join(rects) + "\n</svg>\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="hello", choices=list(run.SCENARIOS))
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--tool", default="both", choices=["cprofile", "py-spy", "both"])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second (250)")
    parser.add_argument("--nonblocking", action="store_true",
                        help="py-spy samples without pausing the server: less overhead, "
                             "but some stacks come out torn")
    parser.add_argument("--reactor", default="default")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args(argv)
    run.WORK.mkdir(exist_ok=True)
    run.VENVS.mkdir(exist_ok=True)
    wrk = run.ensure_wrk()
    run.ensure_venv("cyclone", args.python, None, False)
    written = []
    if args.tool in ("cprofile", "both"):
        written.append(profile_cprofile(args, wrk))
    if args.tool in ("py-spy", "both"):
        written.append(profile_pyspy(args, wrk))
    for path in written:
        run.log(f"\n##### {path}\n")
        run.log(path.read_text().split("=== callers")[0])
    run.log("wrote " + ", ".join(str(p) for p in written)
            + (" (+ .svg, .folded)" if args.tool != "cprofile" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
