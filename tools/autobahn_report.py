#!/usr/bin/env python3
"""Helpers for tools/autobahn.sh (Python 3, standard library only).

Two subcommands:

``spec``
    Write the JSON spec file that ``wstest -m fuzzingclient`` (to test a
    server) or ``wstest -m fuzzingserver`` (to test a client) reads.

``summary``
    Read the ``index.json`` that wstest writes into its report directory,
    print the number of cases per behavior (and per closing behavior) and
    list the cases that did not pass.  A case passes when both its
    ``behavior`` and its ``behaviorClose`` are OK or INFORMATIONAL.

    Exit status: 0 when every case passed, 1 when some did not, 2 when the
    report is missing, unreadable, lacks the agent or holds a number of
    cases other than ``--expect-cases``.

The report format (written by autobahntestsuite/fuzzing.py) is::

    {"<agent>": {"<case id>": {"behavior": "OK", "behaviorClose": "OK",
                               "remoteCloseCode": 1000, "duration": 2,
                               "reportfile": "..."}, ...}, ...}
"""

import argparse
import collections
import json
import sys

PASSING = ("OK", "INFORMATIONAL")

# Order in which behaviors are printed; anything else comes after, sorted.
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
CLOSE_BEHAVIORS = ("OK", "INFORMATIONAL", "FAILED", "WRONG CODE", "UNCLEAN",
                   "FAILED BY CLIENT")


class ReportError(Exception):
    """The report cannot be judged (missing, malformed, incomplete)."""


def case_key(case_id):
    """Sort key for case ids such as '12.1.10' (numeric, part by part)."""
    key = []
    for part in str(case_id).split("."):
        try:
            key.append((0, int(part), ""))
        except ValueError:
            key.append((1, 0, part))
    return tuple(key)


def split_cases(text):
    """'1.*, 2.*' -> ['1.*', '2.*'] (empty items dropped)."""
    if not text:
        return []
    return [item.strip() for item in text.split(",") if item.strip()]


def make_spec(mode, url, outdir, cases, exclude=(), agent=None):
    """Return the wstest spec (a dict) for mode 'server' or 'client'.

    mode 'server': we test a server, so wstest runs as fuzzingclient.
    mode 'client': we test a client, so wstest runs as fuzzingserver.
    """
    spec = {
        "outdir": outdir,
        "cases": list(cases) or ["*"],
        "exclude-cases": list(exclude),
        "exclude-agent-cases": {},
    }
    if mode == "server":
        server = {"url": url}
        if agent:
            server["agent"] = agent
        spec["servers"] = [server]
    elif mode == "client":
        spec["url"] = url
    else:
        raise ValueError("mode must be 'server' or 'client', not %r" % (mode,))
    return spec


def load_index(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ReportError("no report at %s (did wstest run any case?)" % path)
    except (OSError, ValueError) as exc:
        raise ReportError("cannot read report %s: %s" % (path, exc))
    if not isinstance(data, dict):
        raise ReportError("report %s: top level is not an object" % path)
    return data


def passed(case):
    return (case.get("behavior") in PASSING
            and case.get("behaviorClose") in PASSING)


def _ordered(counter, known):
    keys = [k for k in known if k in counter]
    keys += sorted(k for k in counter if k not in known)
    return ", ".join("%s %d" % (k, counter[k]) for k in keys) or "-"


def summarize(index, agent=None, expect_cases=None, max_list=60, out=None):
    """Print the summary of an index.json dict; return the exit status."""
    out = out if out is not None else sys.stdout

    def say(line=""):
        print(line, file=out)

    if agent is not None:
        if agent not in index:
            raise ReportError("agent %r not in report (agents: %s)"
                              % (agent, ", ".join(sorted(index)) or "none"))
        agents = [agent]
    else:
        agents = sorted(index)
    if not agents:
        raise ReportError("report holds no agent")

    total_pass = total_fail = 0
    for name in agents:
        cases = index[name]
        if not isinstance(cases, dict) or not cases:
            raise ReportError("agent %r: no case in report" % name)
        if expect_cases is not None and len(cases) != expect_cases:
            raise ReportError("agent %r: %d cases in report, %d expected"
                              % (name, len(cases), expect_cases))
        behavior = collections.Counter(c.get("behavior") for c in cases.values())
        close = collections.Counter(c.get("behaviorClose") for c in cases.values())
        duration_ms = sum(c.get("duration") or 0 for c in cases.values())
        bad = sorted((cid for cid, c in cases.items() if not passed(c)),
                     key=case_key)
        total_fail += len(bad)
        total_pass += len(cases) - len(bad)

        say("agent %s: %d cases, %.1f s in cases"
            % (name, len(cases), duration_ms / 1000.0))
        say("  behavior:      " + _ordered(behavior, BEHAVIORS))
        say("  behaviorClose: " + _ordered(close, CLOSE_BEHAVIORS))
        if bad:
            say("  not passing (%d):" % len(bad))
            for cid in bad[:max_list]:
                c = cases[cid]
                say("    %-10s behavior=%s behaviorClose=%s remoteCloseCode=%s"
                    % (cid, c.get("behavior"), c.get("behaviorClose"),
                       c.get("remoteCloseCode")))
            if len(bad) > max_list:
                say("    ... and %d more" % (len(bad) - max_list))

    verdict = "PASS" if total_fail == 0 else "FAIL"
    say("autobahn: %s (a case passes when behavior and behaviorClose are "
        "OK or INFORMATIONAL)" % verdict)
    # Last line on purpose: the plain 'N passed, N failed' form.
    say("autobahn: %d passed, %d failed" % (total_pass, total_fail))
    return 0 if total_fail == 0 else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("spec", help="write a wstest spec file")
    p.add_argument("mode", choices=("server", "client"))
    p.add_argument("--url", required=True)
    p.add_argument("--outdir", required=True)
    p.add_argument("--cases", default="*", help="comma-separated, e.g. '1.*,2.*'")
    p.add_argument("--exclude", default="", help="comma-separated case ids/patterns")
    p.add_argument("--agent", default=None)
    p.add_argument("-o", "--output", default="-", help="file, or - for stdout")

    s = sub.add_parser("summary", help="summarize reports/.../index.json")
    s.add_argument("index", help="path to index.json")
    s.add_argument("--agent", default=None)
    s.add_argument("--expect-cases", type=int, default=None)
    s.add_argument("--max-list", type=int, default=60)

    args = parser.parse_args(argv)
    if args.command == "spec":
        spec = make_spec(args.mode, args.url, args.outdir,
                         split_cases(args.cases), split_cases(args.exclude),
                         args.agent)
        text = json.dumps(spec, indent=2, sort_keys=True) + "\n"
        if args.output == "-":
            sys.stdout.write(text)
        else:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        return 0

    try:
        index = load_index(args.index)
        return summarize(index, args.agent, args.expect_cases, args.max_list)
    except ReportError as exc:
        print("autobahn: ERROR: %s" % exc, file=sys.stderr)
        print("autobahn: 0 passed, 1 failed")
        return 2


if __name__ == "__main__":
    sys.exit(main())
