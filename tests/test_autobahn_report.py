"""Tests for tools/autobahn_report.py.

Run with:  python3 -m pytest tools   (or: python3 -m unittest discover -s tools)
"""
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))

import autobahn_report as ar  # noqa: E402


def case(behavior="OK", close="OK", code=1000, duration=1):
    return {"behavior": behavior, "behaviorClose": close,
            "remoteCloseCode": code, "duration": duration,
            "reportfile": "x.json"}


class SpecTests(unittest.TestCase):
    def test_server_spec(self):
        spec = ar.make_spec("server", "ws://127.0.0.1:9", "/r", ["1.*", "2.*"],
                            ["2.3"], agent="cyclone")
        self.assertEqual(spec, {
            "outdir": "/r",
            "servers": [{"url": "ws://127.0.0.1:9", "agent": "cyclone"}],
            "cases": ["1.*", "2.*"],
            "exclude-cases": ["2.3"],
            "exclude-agent-cases": {},
        })

    def test_client_spec_defaults_to_all_cases(self):
        spec = ar.make_spec("client", "ws://127.0.0.1:9", "/r", [])
        self.assertEqual(spec["url"], "ws://127.0.0.1:9")
        self.assertEqual(spec["cases"], ["*"])
        self.assertNotIn("servers", spec)

    def test_bad_mode(self):
        with self.assertRaises(ValueError):
            ar.make_spec("both", "ws://x", "/r", [])

    def test_split_cases(self):
        self.assertEqual(ar.split_cases(" 1.*, 12.1.* ,,"), ["1.*", "12.1.*"])
        self.assertEqual(ar.split_cases(""), [])

    def test_spec_command_writes_json(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "spec.json")
            rc = ar.main(["spec", "server", "--url", "ws://127.0.0.1:1",
                          "--outdir", d, "--cases", "1.*,2.*", "-o", path])
            self.assertEqual(rc, 0)
            with open(path) as f:
                self.assertEqual(json.load(f)["cases"], ["1.*", "2.*"])


class SummaryTests(unittest.TestCase):
    def run_summary(self, index, **kw):
        out = io.StringIO()
        rc = ar.summarize(index, out=out, **kw)
        return rc, out.getvalue()

    def test_case_key_sorts_numerically(self):
        ids = ["12.1.10", "1.1.2", "12.1.2", "2.10", "2.9", "1.1.10"]
        self.assertEqual(sorted(ids, key=ar.case_key),
                         ["1.1.2", "1.1.10", "2.9", "2.10", "12.1.2", "12.1.10"])

    def test_all_ok_and_informational_pass(self):
        index = {"a": {"1.1.1": case(), "2.1": case(),
                       "7.1.6": case("INFORMATIONAL", "INFORMATIONAL")}}
        rc, text = self.run_summary(index)
        self.assertEqual(rc, 0)
        self.assertIn("behavior:      OK 2, INFORMATIONAL 1", text)
        self.assertIn("autobahn: PASS", text)
        self.assertTrue(text.rstrip().endswith("autobahn: 3 passed, 0 failed"))

    def test_each_bad_behavior_fails(self):
        for beh, close in [("NON-STRICT", "OK"), ("FAILED", "OK"),
                           ("UNIMPLEMENTED", "OK"), ("OK", "WRONG CODE"),
                           ("OK", "UNCLEAN"), ("OK", "FAILED BY CLIENT"),
                           ("OK", "FAILED")]:
            with self.subTest(behavior=beh, close=close):
                rc, text = self.run_summary({"a": {"1.1.1": case(),
                                                   "3.2": case(beh, close)}})
                self.assertEqual(rc, 1)
                self.assertIn("3.2 ", text)
                self.assertIn("autobahn: 1 passed, 1 failed", text)

    def test_counts_in_fixed_order(self):
        index = {"a": {"1": case("FAILED"), "2": case("OK"),
                       "3": case("NON-STRICT"), "4": case("UNIMPLEMENTED")}}
        rc, text = self.run_summary(index)
        self.assertIn("OK 1, NON-STRICT 1, UNIMPLEMENTED 1, FAILED 1", text)

    def test_failures_listed_in_case_order_and_capped(self):
        index = {"a": {"9.%d" % i: case("FAILED") for i in range(1, 12)}}
        rc, text = self.run_summary(index, max_list=3)
        lines = [l.split()[0] for l in text.splitlines() if l.startswith("    9.")]
        self.assertEqual(lines, ["9.1", "9.2", "9.3"])
        self.assertIn("... and 8 more", text)

    def test_agent_selection(self):
        index = {"a": {"1": case("FAILED")}, "b": {"1": case()}}
        self.assertEqual(self.run_summary(index, agent="b")[0], 0)
        self.assertEqual(self.run_summary(index)[0], 1)
        with self.assertRaises(ar.ReportError):
            self.run_summary(index, agent="c")

    def test_expected_case_count(self):
        index = {"a": {"1": case(), "2": case()}}
        self.assertEqual(self.run_summary(index, expect_cases=2)[0], 0)
        with self.assertRaises(ar.ReportError):
            self.run_summary(index, expect_cases=3)

    def test_empty_report(self):
        for index in ({}, {"a": {}}):
            with self.assertRaises(ar.ReportError):
                self.run_summary(index)

    def test_main_exit_codes(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "index.json")
            out, err = io.StringIO(), io.StringIO()
            with redirect_stdout(out), redirect_stderr(err):
                self.assertEqual(ar.main(["summary", path]), 2)  # missing
            self.assertIn("no report", err.getvalue())
            with open(path, "w") as f:
                f.write("{not json")
            with redirect_stdout(out), redirect_stderr(err):
                self.assertEqual(ar.main(["summary", path]), 2)
            with open(path, "w") as f:
                json.dump({"a": {"1.1.1": case()}}, f)
            with redirect_stdout(out), redirect_stderr(err):
                self.assertEqual(ar.main(["summary", path, "--agent", "a",
                                          "--expect-cases", "1"]), 0)
            with open(path, "w") as f:
                json.dump({"a": {"1.1.1": case("NON-STRICT")}}, f)
            with redirect_stdout(out), redirect_stderr(err):
                self.assertEqual(ar.main(["summary", path]), 1)


if __name__ == "__main__":
    unittest.main()
