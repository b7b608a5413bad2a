"""The command line shared by the fuzz targets.

``python -m fuzz.<target> [libFuzzer options] [corpus dirs or files]`` runs
the target under atheris (coverage-guided, libFuzzer's options) when atheris
is installed; ``python -m fuzz.<target> --hypothesis [--seconds N]
[--examples N]`` runs it under Hypothesis instead (no build, no coverage
guidance: random and dictionary-shaped bytes, shrunk to a minimal input
when one fails).  ``--replay FILE...`` runs the target once on each file
(a crash file left by either), without atheris.

atheris is only imported here, and only when it is used: the targets'
``one_input`` functions are plain Python that the test suite runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence

OneInput = Callable[[bytes], None]


def _dictionary_file(tokens: Sequence[bytes]) -> str:
    """A libFuzzer dictionary holding ``tokens`` (a temporary file)."""
    fd, path = tempfile.mkstemp(prefix="cyclone-fuzz-", suffix=".dict")
    with os.fdopen(fd, "w", encoding="ascii") as out:
        for token in tokens:
            out.write('"' + "".join(f"\\x{b:02x}" for b in token) + '"\n')
    return path


def _seed_corpus(directory: str, seeds: Sequence[bytes]) -> None:
    """Put the seeds in an empty corpus directory (libFuzzer starts from it)."""
    os.makedirs(directory, exist_ok=True)
    if os.listdir(directory):
        return
    for index, seed in enumerate(seeds):
        with open(os.path.join(directory, f"seed-{index:03d}"), "wb") as out:
            out.write(seed)


def run_atheris(one_input: OneInput, seeds: Sequence[bytes], tokens: Sequence[bytes], argv: list[str]) -> None:
    import atheris  # optional: see fuzz/README.rst

    args = list(argv)
    if not any(a.startswith("-dict=") for a in args[1:]):
        args.insert(1, "-dict=" + _dictionary_file(tokens))
    for arg in args[1:]:
        if not arg.startswith("-") and not os.path.isfile(arg):
            _seed_corpus(arg, seeds)  # the first corpus directory gets the seeds
            break
    # coverage feedback from every module loaded so far: the target's cyclone
    # modules, and the standard library code they call (re, urllib.parse)
    atheris.instrument_all()
    atheris.Setup(args, one_input)
    atheris.Fuzz()


def run_hypothesis(
    one_input: OneInput, seeds: Sequence[bytes], tokens: Sequence[bytes], seconds: float, examples: int
) -> int:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    pieces = list(tokens) + list(seeds)
    inputs = st.one_of(
        st.binary(max_size=2048),
        st.lists(st.sampled_from(pieces), max_size=80).map(b"".join),
        st.tuples(st.sampled_from(list(seeds)), st.binary(max_size=64), st.integers(0, 4096)).map(
            lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]  # a seed with bytes spliced in
        ),
    )
    for seed in seeds:
        one_input(seed)
    batch = min(examples, 5000)
    done = 0
    start = time.monotonic()

    @settings(
        max_examples=batch,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(inputs)
    def check(data: bytes) -> None:
        one_input(data)

    while done < examples and time.monotonic() - start < seconds:
        try:
            check()
        except Exception:  # noqa: BLE001 - any exception is the crash to report
            traceback.print_exc()
            print(f"CRASH after about {done} examples (the shrunk input is above)", file=sys.stderr)
            return 1
        done += batch
        print(f"#{done} examples, {time.monotonic() - start:.0f} s, no crash", file=sys.stderr, flush=True)
    return 0


def replay(one_input: OneInput, paths: Sequence[str]) -> int:
    status = 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        try:
            one_input(data)
        except Exception:  # noqa: BLE001 - any exception is the crash to report
            traceback.print_exc()
            print(f"CRASH on {path}: {data!r}", file=sys.stderr)
            status = 1
        else:
            print(f"ok: {path}", file=sys.stderr)
    return status


def main(one_input: OneInput, seeds: Sequence[bytes], tokens: Sequence[bytes]) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--hypothesis", action="store_true")
    parser.add_argument("--seconds", type=float, default=float("inf"))
    parser.add_argument("--examples", type=int, default=10**12)
    parser.add_argument("--replay", nargs="+")
    parser.add_argument("--help", action="store_true")
    known, rest = parser.parse_known_args(sys.argv[1:])
    if known.help:
        print(__doc__)
        sys.exit(0)
    if known.replay:
        sys.exit(replay(one_input, known.replay))
    if known.hypothesis:
        sys.exit(run_hypothesis(one_input, seeds, tokens, known.seconds, known.examples))
    try:
        import atheris  # noqa: F401
    except ImportError:
        sys.exit("atheris is not installed (pip install atheris), or run with --hypothesis")
    run_atheris(one_input, seeds, tokens, [sys.argv[0], *rest])
