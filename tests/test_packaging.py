"""Packaging and tooling invariants: version, CI script and README agree."""

import re
import subprocess
import sys
from pathlib import Path

import cyclone

ROOT = Path(__file__).resolve().parent.parent


def readme_test_command() -> str:
    text = (ROOT / "README.rst").read_text()
    section = text.split("Running the tests", 1)[1]
    match = re.search(r"::\n\n    (.+)\n", section)
    assert match, "README.rst must give the test command in a literal block"
    return match.group(1).strip()


def test_version_is_a_string():
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", cyclone.__version__)
    assert cyclone.version == cyclone.__version__


def test_ci_runs_exactly_the_readme_test_command():
    command = readme_test_command()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines


def test_importing_cyclone_changes_nothing_global():
    code = (
        "import twisted.python.log as L; before = L.FileLogObserver.emit; "
        "import logging; handlers = list(logging.getLogger().handlers); "
        "import cyclone; "
        "assert L.FileLogObserver.emit is before; "
        "assert logging.getLogger().handlers == handlers; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
