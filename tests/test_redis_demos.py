"""demos/redis: two processes on one redis-server, one page in headless Chromium.

Keys set in the browser on one process are read over HTTP on the other; a
message published on either process reaches the page's WebSocket feed and a
long-poll on the other; closing the page ends its subscription.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import urllib.parse

import pytest

from tests.test_plugin import ROOT, Server, free_port

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - depends on the environment
    expect = None

DEMO = ROOT / "demos" / "redis"


def call(port: int, method: str, path: str, fields: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        body = urllib.parse.urlencode(fields) if fields is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if fields is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def wait_for(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.05)  # pacing a bounded poll


@pytest.fixture
def demos(tmp_path, redis_server):
    """Two redis_demo.py processes on the test's redis-server: their ports."""
    servers, ports = [], []
    for i in range(2):
        port = free_port()
        server = Server([sys.executable, "redis_demo.py", "--port", str(port), "--redis-url", redis_server.url],
                        DEMO, tmp_path / f"demo-{i}.log")
        servers.append(server)
        server.wait_tcp(port)
        ports.append(port)
    yield ports
    for server in servers:
        server.stop()
        print(f"--- {server.log_path.name} ---\n{server.output()}")


def test_keys_and_a_live_feed_across_two_processes(demos, context, redis_server):
    first, second = demos
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{first}/")
    expect(page.locator("#status")).to_have_text("live")

    # a key set in the browser on the first process, read on the second
    page.locator("#set-key").fill("greeting")
    page.locator("#set-value").fill("olá, <b>redis</b>")
    page.locator("#set").click()
    expect(page.locator("#result")).to_have_text('200 {"key":"greeting","value":"olá, <b>redis</b>"}')
    assert call(second, "GET", "/key/greeting") == (200, {"key": "greeting", "value": "olá, <b>redis</b>"})
    page.locator("#get-key").fill("nothing-here")
    page.locator("#get").click()
    expect(page.locator("#result")).to_have_text('200 {"key":"nothing-here","value":null}')

    # published on the second process: the page of the first shows it
    status, answer = call(second, "POST", "/publish", {"message": "from the second process"})
    assert status == 200 and answer["receivers"] >= 1
    expect(page.locator("#feed li")).to_have_text(["from the second process"])

    # published from the page: a long-poll waiting on the second process gets it
    polled: list = []
    poller = threading.Thread(target=lambda: polled.append(call(second, "GET", "/poll")))
    poller.start()
    wait_for(lambda: call(second, "GET", "/stats")[1]["subscribers"] == 1, "the long-poll's subscription")
    page.locator("#message").fill("from the page")
    page.locator("#publish").click()
    poller.join(timeout=20)
    assert polled == [(200, {"message": "from the page"})]
    expect(page.locator("#feed li")).to_have_text(["from the page", "from the second process"])
    wait_for(lambda: call(second, "GET", "/stats")[1]["subscribers"] == 0, "the long-poll's end")

    # closing the page ends its subscription on the first process
    assert call(first, "GET", "/stats")[1]["subscribers"] == 1
    page.close()
    wait_for(lambda: call(first, "GET", "/stats")[1]["subscribers"] == 0, "the closed page's unsubscription")


def test_the_api_answers_503_while_redis_is_down_and_recovers(demos, redis_server):
    first, _ = demos
    assert call(first, "POST", "/key/k", {"value": "v"}) == (200, {"key": "k", "value": "v"})
    redis_server.stop()
    status, answer = call(first, "GET", "/key/k")
    assert (status, answer) == (503, {"error": "Redis unavailable"})
    redis_server.start()  # empty: nothing is persisted
    wait_for(lambda: call(first, "GET", "/key/k")[0] == 200, "reconnection", timeout=20)
    assert call(first, "GET", "/key/k") == (200, {"key": "k", "value": None})


def test_a_too_long_value_is_refused(demos):
    first, _ = demos
    status, answer = call(first, "POST", "/key/big", {"value": "x" * (64 * 1024 + 1)})
    assert status == 413 and "longer than" in answer["error"]
