"""Look for super-linear time in the parsers, which the fuzz targets cannot
see (libFuzzer's inputs stay under 4 KB, where a quadratic loop is cheap).

``python -m fuzz.scaling [TARGET ...] [--files N] [--size BYTES]`` takes the
inputs of each target's corpus (``fuzz/corpus/<target>``, else its seeds),
grows each one in two ways -- the input repeated, and its middle byte
repeated -- to ``--size`` bytes and to 16 times that, and times the target's
``parse`` on both (CPU time, best of three).  Linear code takes about 16
times as long on the larger one; an input that takes more than 40 times as
long (and over 50 ms) is reported, the worst first, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

TARGETS = ["http1", "urlencoded", "multipart", "cookies", "headers"]
GROWTH = 16
LIMIT = 40


def _cpu(function, data: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        function(data)
        best = min(best, time.process_time() - start)
    return best


def _grown(payload: bytes, size: int):
    yield "repeated", payload * (size // len(payload) + 1)
    middle = len(payload) // 2
    yield "middle byte repeated", payload[:middle] + payload[middle : middle + 1] * size + payload[middle + 1 :]


def _inputs(name: str, module, files: int):
    directory = os.path.join(os.path.dirname(__file__), "corpus", name)
    found = []
    if os.path.isdir(directory):
        for entry in sorted(os.listdir(directory))[:files]:
            with open(os.path.join(directory, entry), "rb") as f:
                found.append((entry, f.read()))
    return found or [(f"seed {i}", seed) for i, seed in enumerate(module.SEEDS)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", default=TARGETS)
    parser.add_argument("--files", type=int, default=200, help="corpus inputs per target")
    parser.add_argument("--size", type=int, default=30_000, help="bytes of the smaller input")
    args = parser.parse_args()
    slow = []
    for name in args.targets:
        module = importlib.import_module(f"fuzz.{name}")
        worst = (0.0, "")
        for entry, data in _inputs(name, module, args.files):
            payload = data[module.OPTION_BYTES :]
            if not payload:
                continue
            for how, small in _grown(payload, args.size):
                large = next(g for h, g in _grown(payload, args.size * GROWTH) if h == how)
                t_small = _cpu(module.parse, small)
                t_large = _cpu(module.parse, large)
                ratio = t_large / max(t_small, 1e-6)
                if ratio > worst[0]:
                    worst = (ratio, f"{entry} ({how})")
                if ratio > LIMIT and t_large > 0.05:
                    slow.append((ratio, name, entry, how, len(large), t_large, payload[:80]))
        print(f"{name}: worst growth {worst[0]:.1f}x for {GROWTH}x the input, {worst[1]}", flush=True)
    for ratio, name, entry, how, size, seconds, head in sorted(slow, reverse=True)[:20]:
        print(f"SUPER-LINEAR {name} {entry} ({how}): {ratio:.0f}x, {size} bytes in {seconds:.2f} s; "
              f"input starts {head!r}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
