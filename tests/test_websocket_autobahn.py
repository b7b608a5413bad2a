"""The Autobahn|Testsuite judges cyclone's WebSocket server and client.

Runs ``tools/autobahn.sh`` with its fast preset (cases 1-7, 10, 12.1, 13.1:
283 cases, compression included) against ``python -m cyclone.websocket_echo``
(``wstest -m fuzzingclient``) and against ``python -m
cyclone.websocket_autobahn_client`` (``wstest -m fuzzingserver``): every case
must be OK or INFORMATIONAL. The full 517 cases stay a command
(``tools/autobahn.sh server -- ...``, see tools/README.md).

wstest needs Python 2.7 (pyenv's 2.7.18) and PyPI for its virtualenv, made on
first use; without 2.7 the tests skip, except under CI, where they must run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON27 = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions" / "2.7.18" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not PYTHON27.exists() and not os.environ.get("CI"),
    reason=f"the Autobahn testsuite needs Python 2.7 ({PYTHON27} is missing)",
)

TESTEES = {
    "server": f"exec {sys.executable} -m cyclone.websocket_echo --quiet --port $PORT",
    "client": f"exec {sys.executable} -m cyclone.websocket_autobahn_client --quiet "
              "--url $AUTOBAHN_URL --agent $AUTOBAHN_AGENT",
}


@pytest.mark.parametrize("mode", ["server", "client"])
def test_autobahn_fast_preset_passes(tmp_path, mode):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run(
        ["bash", str(ROOT / "tools" / "autobahn.sh"), mode, "--fast", "--agent", "cyclone",
         "--outdir", str(tmp_path / "reports"), "--timeout", "1200", "--", "sh", "-c", TESTEES[mode]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"autobahn: 283 passed, 0 failed", output), output[-3000:]
    assert "NON-STRICT" not in output and "UNIMPLEMENTED" not in output, output[-3000:]
