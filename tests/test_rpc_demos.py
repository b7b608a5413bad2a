"""demos/rpc: the server as its README starts it, its page driven in headless
Chromium (Playwright, Debian's chromium), and its command-line clients (the
standard library's urllib and xmlrpc.client; cyclone's JsonRPC and
xmlrpc.Proxy) run as child processes.

Skipped without Chromium or playwright, except under CI (see
tests/test_websocket_demos.py, whose browser fixtures these are).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_plugin import ROOT, Server, child_env, free_port
from tests.browser import expect

DEMO = ROOT / "demos" / "rpc"


@pytest.fixture
def server(tmp_path):
    """The demo server on a free port: its port."""
    port = free_port()
    with Server([sys.executable, "server.py", "--port", str(port)], DEMO, tmp_path / "server.log") as running:
        running.wait_tcp(port)
        yield port
        print(f"--- server.log ---\n{running.output()}")


def client(port: int, *args: str, script: str = "client.py") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, script, "--port", str(port), *args],
        cwd=DEMO, env=child_env(), capture_output=True, text=True, timeout=60,
    )


def test_the_command_line_client_tour(server):
    done = client(server, "tour")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "JSON-RPC add(2, 3) = 5",
        "XML-RPC add(2, 3) = 5",
        "JSON-RPC slow_echo = hello",
        "JSON-RPC batch = [0, 2, 4]",
        "XML-RPC multicall = [2, 'async']",
        "XML-RPC methods = add, slow_echo, system.listMethods, system.methodHelp, system.methodSignature, "
        "system.multicall, todo.add, todo.done, todo.list",
        "JSON-RPC error as expected: JSON-RPC error 1: a to-do is 1 to 200 characters of text",
        "XML-RPC fault as expected: 404 no such to-do: 99999",
    ]


def test_the_twisted_client(server):
    done = client(server, "first", "", "second", script="twisted_client.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "added over JSON-RPC: 1: first",
        "not added: a to-do is 1 to 200 characters of text",
        "added over JSON-RPC: 2: second",
        "done over XML-RPC: 1: first",
        "same list over both: True",
        "[x] 1: first",
        "[ ] 2: second",
    ]
    listed = client(server, "--protocol", "xml", "list")
    assert listed.stdout.splitlines() == ["[x] 1: first", "[ ] 2: second"]


def test_errors_make_the_client_fail(server):
    done = client(server, "done", "12345")
    assert done.returncode == 1
    assert done.stderr.strip() == "JSON-RPC error 404: no such to-do (12345)"
    done = client(server, "--protocol", "xml", "add", "")
    assert done.returncode == 1
    assert "a to-do is 1 to 200 characters" in done.stderr


def test_the_page_and_both_clients_share_the_list(server, context):  # noqa: F811 - fixture
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{server}/")
    # the first load is a batch whose second call is an async method
    expect(page.locator("#status")).to_have_text("ready")
    expect(page.locator("#todos li")).to_have_count(0)

    page.locator("#a").fill("40")
    page.locator("#b").fill("2")
    page.locator("#add").click()
    expect(page.locator("#sum")).to_have_text("42")

    page.locator("#text").press_sequentially("buy <b>milk</b> 😀")
    page.locator("#text").press("Enter")
    expect(page.locator("#todos li .text")).to_have_text(["buy <b>milk</b> 😀"])  # text, not HTML
    expect(page.locator("#todos b")).to_have_count(0)
    expect(page.locator("#text")).to_have_value("")

    # an application error comes back as a JSON-RPC error the page shows
    page.locator("#text").press("Enter")
    expect(page.locator("#error")).to_have_text("error 1: a to-do is 1 to 200 characters of text")

    # added over XML-RPC by the Python client, seen in the browser over JSON-RPC
    added = client(server, "--protocol", "xml", "add", "from python")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "[ ] 2: from python"
    page.locator("#refresh").click()
    expect(page.locator("#todos li .text")).to_have_text(["buy <b>milk</b> 😀", "from python"])

    # marked done in the browser, seen by the Python client over both protocols
    page.locator("#todos li[data-id='1'] button").click()
    expect(page.locator("#todos li.done .text")).to_have_text(["buy <b>milk</b> 😀"])
    for protocol in ["xml", "json"]:
        listed = client(server, "--protocol", protocol, "list")
        assert listed.stdout.splitlines() == ["[x] 1: buy <b>milk</b> 😀", "[ ] 2: from python"]

    # the page's client: a notification (no answer) and an unknown method
    assert page.evaluate("rpc.notify('todo_clear')") is None
    page.locator("#refresh").click()
    expect(page.locator("#todos li")).to_have_count(0)
    error = page.evaluate("rpc.call('nope').catch((e) => [e.code, e.message])")
    assert error == [-32601, "error -32601: Method not found"]
    batch = page.evaluate("rpc.batch([['add', [1, 2]], ['add', [1]], ['slow_echo', {value: 'v', delay: 0}]])"
                          ".then((r) => r.map((x) => x instanceof Error ? x.code : x))")
    assert batch == [3, -32602, "v"]
