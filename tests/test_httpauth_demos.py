"""demos/httpauth, started as its README says and logged into with curl and urllib.

The Redis variant needs Debian's ``redis-server``: this file starts one of its
own on a free port (no data on disk) and skips without it, except under CI
(``CI`` set), where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.test_plugin import ROOT, Server, free_port, run_command

DEMO = ROOT / "demos" / "httpauth"
CURL = shutil.which("curl")
REDIS_SERVER = shutil.which("redis-server")
WRONG = "N0t-her-Passw0rd"  # must never reach the log


def need(program: str | None, name: str, package: str) -> str:
    if program is None:
        reason = f"{name} is not installed (apt-get install {package})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so these tests must run")
        pytest.skip(reason)
    return program


def curl(*args: str) -> tuple[int, str, str]:
    """(status, body, verbose output) of one curl run."""
    result = subprocess.run(
        [need(CURL, "curl", "curl"), "-s", "-S", "-v", "-w", "\n%{http_code}", *args],
        capture_output=True, timeout=30, check=False,  # the status is asserted below
    )
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.decode().rpartition("\n")
    return int(status), body, result.stderr.decode("latin-1")


def urllib_get(url: str, handler_class, user: str, password: str) -> tuple[int, str]:
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, url, user, password)
    opener = urllib.request.build_opener(handler_class(manager))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("httpauth") / "out.log"
    with Server([sys.executable, "httpauth.py", str(port)], DEMO, log) as server:
        server.wait_tcp(port)
        yield f"http://127.0.0.1:{port}"


def test_demo_basic(demo):
    assert curl("--basic", "-u", "alice:wonderland", demo + "/basic")[:2] == (
        200, "Hello, alice: you used Basic.\n")
    assert curl("--basic", "-u", "alice:builder", demo + "/basic")[0] == 401
    status, _, verbose = curl(demo + "/basic")
    assert status == 401
    assert '< www-authenticate: basic realm="cyclone basic demo"' in verbose.lower()
    assert urllib_get(demo + "/basic", urllib.request.HTTPBasicAuthHandler, "bob", "builder") == (
        200, "Hello, bob: you used Basic.\n")


def test_demo_digest(demo):
    status, body, _ = curl("--digest", "-u", "bob:builder", demo + "/digest")
    assert (status, body) == (200, "Hello, bob: you used Digest (SHA-256).\n")
    assert curl("--digest", "-u", "bob:wonderland", demo + "/digest")[0] == 401
    challenges = [line for line in curl(demo + "/digest")[2].splitlines()
                  if line.lower().startswith("< www-authenticate:")]
    assert [("SHA-256" in c, "MD5" in c) for c in challenges] == [(True, False), (False, True)]


def test_demo_either_scheme(demo):
    status, body, _ = curl("--anyauth", "-u", "alice:wonderland", demo + "/any")
    assert (status, body) == (200, "Hello, alice: you used Digest (SHA-256).\n")  # curl picks the stronger
    assert curl("--basic", "-u", "alice:wonderland", demo + "/any")[:2] == (200, "Hello, alice: you used Basic.\n")
    assert curl(demo + "/")[:2] == (200, "Protected pages: /basic (Basic), /digest (Digest), /any (either).\n")


@pytest.fixture
def redis_port(tmp_path):
    server_path = need(REDIS_SERVER, "redis-server", "redis-server")
    port = free_port()
    args = [server_path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp_path)]
    with Server(args, tmp_path, tmp_path / "redis.log") as server:
        server.wait_tcp(port)
        yield port


def redis_hash(port: int, key: str) -> dict[str, str]:
    """HGETALL through redis-cli when Debian ships it with the server (it does)."""
    result = subprocess.run(["redis-cli", "-p", str(port), "--raw", "hgetall", key],
                            capture_output=True, text=True, timeout=10, check=True)
    items = result.stdout.splitlines()
    return dict(zip(items[::2], items[1::2]))


def test_demo_redis_checker(redis_port, tmp_path):
    redis = ["--redis", f"127.0.0.1:{redis_port}"]
    for name, password in [("alice", "wonderland"), ("jürgen", "pässwörd")]:
        added = run_command([sys.executable, "httpauth_redis.py", *redis, "adduser", name, password], DEMO)
        assert added.returncode == 0 and f"user {name} added" in added.stdout, added.stdout
    stored = redis_hash(redis_port, "httpauth:user:alice")
    assert sorted(stored) == ["MD5", "SHA-256", "pbkdf2"]
    assert not any("wonderland" in value for value in stored.values())  # no password kept

    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    with Server([sys.executable, "httpauth_redis.py", *redis, "serve", str(port)], DEMO,
                tmp_path / "demo.log") as server:
        server.wait_tcp(port)
        status, body, verbose = curl("--digest", "-u", "alice:wonderland", base)
        assert (status, body) == (200, "Hello, alice: checked against Redis (Digest).\n")
        assert "algorithm=SHA-256" in verbose
        assert curl("--basic", "-u", "alice:wonderland", base)[:2] == (
            200, "Hello, alice: checked against Redis (Basic).\n")
        assert curl("--basic", "-u", "jürgen:pässwörd", base)[:2] == (
            200, "Hello, jürgen: checked against Redis (Basic).\n")
        for args in (["--digest", "-u", f"alice:{WRONG}"], ["--basic", "-u", f"alice:{WRONG}"],
                     ["--digest", "-u", "nobody:wonderland"], ["--basic", "-u", "nobody:wonderland"], []):
            assert curl(*args, base)[0] == 401, args
        output = server.output()
    assert "authentication failed for user 'alice'" in output
    assert WRONG not in output


# -- a browser: Chromium answers the challenges itself ------------------------------------------


@pytest.fixture(scope="module")
def chromium(browser):
    """The shared headless Chromium (tests/conftest.py), by the name these tests use."""
    return browser


@pytest.mark.parametrize(
    "path, scheme", [("/basic", "Basic"), ("/digest", "Digest (SHA-256)"), ("/any", "Digest (SHA-256)")]
)
def test_demo_in_chromium(demo, chromium, path, scheme):
    context = chromium.new_context(http_credentials={"username": "alice", "password": "wonderland"})
    try:
        page = context.new_page()
        response = page.goto(demo + path)
        assert response.status == 200
        assert page.inner_text("body").strip() == f"Hello, alice: you used {scheme}."
    finally:
        context.close()
    context = chromium.new_context(http_credentials={"username": "alice", "password": "N0pe"})
    try:
        response = context.new_page().goto(demo + path)
        assert response.status == 401
    finally:
        context.close()
