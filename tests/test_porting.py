"""A Tornado 6.6 application moves over by changing its imports.

``tests/porting/tornado_app`` is a small but complete application written for
Tornado (handlers with arguments, JSON, templates with ``extends``, signed
cookies and login, static files, an ``async def`` handler, a custom 404,
``gen.coroutine``, a ``main()`` with ``asyncio.run``) and its tests in
Tornado's style. Each test here copies it, rewrites nothing or only the
``from tornado…`` import lines, and runs it under Tornado and under cyclone.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

APP_DIR = Path(__file__).parent / "porting" / "tornado_app"
ROOT = Path(__file__).resolve().parent.parent
IMPORT_RE = re.compile(r"^(from|import) tornado\b", re.MULTILINE)

try:
    import tornado  # noqa: F401

    HAVE_TORNADO = True
except ImportError:
    HAVE_TORNADO = False


def port_to(framework: str, tmp_path: Path) -> Path:
    """A copy of the application for ``framework``, with only its imports changed."""
    target = tmp_path / framework
    shutil.copytree(APP_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    if framework == "cyclone":
        for name in ("app.py", "tornado_tests.py"):
            path = target / name
            original = path.read_text()
            ported = IMPORT_RE.sub(lambda m: f"{m.group(1)} cyclone", original)
            # only import lines changed
            changed = [
                (a, b) for a, b in zip(original.splitlines(), ported.splitlines()) if a != b
            ]
            assert changed and all(a.startswith(("from tornado", "import tornado")) for a, _ in changed)
            path.write_text(ported)
    return target


def framework_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


FRAMEWORKS = [
    pytest.param("tornado", marks=pytest.mark.skipif(
        not HAVE_TORNADO and not os.environ.get("CI"), reason="tornado 6.6 is not installed")),
    "cyclone",
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_tornado_style_tests_pass(tmp_path, framework):
    where = port_to(framework, tmp_path)
    # the Tornado run must not load pytest-twisted's reactor handling; the
    # cyclone run is a plain pytest session too, as a ported project's would be
    plugins = ["-p", "no:twisted"] if framework == "tornado" else []
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins, "tornado_tests.py"],
        cwd=where, env=framework_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert re.search(r"\b11 passed\b", result.stdout), result.stdout[-2000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_main_in_tornado_style_serves(tmp_path, framework):
    """``asyncio.run(main())`` with ``app.listen(port)`` and ``await
    asyncio.Event().wait()``, as Tornado's docs teach."""
    where = port_to(framework, tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "app.py", str(port)], cwd=where, env=framework_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # "listening" is printed after listen(): the port is open from then on
        line = process.stdout.readline()
        assert line.strip() == "listening", (line, process.stderr.read() if process.poll() is not None else "")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/post/1?format=json")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b'{"id": 1, "title": "Hello", "body": "First post"}'
        conn.request("GET", "/nowhere")
        response = conn.getresponse()
        assert response.status == 404
        assert b"Nothing at /nowhere" in response.read()
        conn.close()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
