"""demos/session in a real browser: Debian's Chromium, headless, driven by Playwright.

The demo runs as a child process, as its README starts it; the browser logs
in through the form, is greeted on the private page, sees its session expire
after the idle timeout, and logs out. With ``--store redis``, two processes
share one login. Every wait is Playwright's (or a bounded poll).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.test_plugin import ROOT, Server, free_port

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - depends on the environment
    expect = None

DEMO = ROOT / "demos" / "session"
SECRET = "the demo test's cookie secret, the same in every process"


@pytest.fixture
def demo(tmp_path):
    """``demo(*args) -> (base URL, server)``: session_demo.py as its README runs it."""
    servers: list[Server] = []

    def start(*args: str) -> tuple[str, Server]:
        port = free_port()
        command = [sys.executable, "session_demo.py", "--port", str(port), "--cookie-secret", SECRET, *args]
        server = Server(command, DEMO, tmp_path / f"demo-{len(servers)}.log")
        servers.append(server)
        server.wait_tcp(port)
        return f"http://127.0.0.1:{port}/", server

    yield start
    for server in servers:
        server.stop()
        print(f"--- {server.log_path.name} ---\n{server.output()}")


def log_in(page, base: str, user: str, password: str) -> None:
    page.goto(base + "login")
    page.locator("#user").fill(user)
    page.locator("#password").fill(password)
    page.locator("#submit").click()


def wait_for_output(server: Server, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.output():
        assert time.monotonic() < deadline, f"{text!r} not printed within {timeout}s:\n{server.output()}"
        time.sleep(0.05)  # pacing a bounded poll of the demo's log


def test_visit_counter_and_login_in_a_browser(demo, context):
    base, server = demo()
    page = context.new_page()
    page.goto(base)
    expect(page.locator("#visits")).to_have_text("1")
    page.reload()
    expect(page.locator("#visits")).to_have_text("2")
    expect(page.locator("#who")).to_have_text("Not logged in.")

    cookie = next(c for c in context.cookies() if c["name"] == "session_id")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert cookie["expires"] == -1  # a browser-session cookie
    assert "session_id" not in page.evaluate("document.cookie")  # out of the scripts' reach
    anonymous_id = cookie["value"]

    # the private page sends to the login form, and a wrong password is refused
    page.goto(base + "private")
    expect(page.locator("#login-form")).to_be_visible()
    page.locator("#user").fill("alice")
    page.locator("#password").fill("guess")
    page.locator("#submit").click()
    expect(page.locator("#error")).to_have_text("wrong user or password")

    log_in(page, base, "alice", "wonderland")
    expect(page.locator("#greeting")).to_have_text("Hello, alice.")
    cookie = next(c for c in context.cookies() if c["name"] == "session_id")
    assert cookie["value"] != anonymous_id  # a new id on login
    page.goto(base)
    expect(page.locator("#visits")).to_have_text("3")  # the visits came along
    expect(page.locator("#who")).to_have_text("Logged in as alice.")

    # another browser (context) has a session of its own
    other = context.browser.new_context()
    try:
        other_page = other.new_page()
        other_page.goto(base + "private")
        expect(other_page.locator("#login-form")).to_be_visible()
    finally:
        other.close()

    page.locator("#logout").click()
    expect(page.locator("#who")).to_have_text("Not logged in.")
    expect(page.locator("#visits")).to_have_text("1")
    wait_for_output(server, "session of alice ended")


def test_the_login_expires_after_the_idle_timeout(demo, context):
    base, server = demo("--idle", "2")
    page = context.new_page()
    log_in(page, base, "bob", "builder")
    expect(page.locator("#greeting")).to_have_text("Hello, bob.")
    # the page reloads itself after 2 s; the server has forgotten bob by then
    expect(page.locator("#login-form")).to_be_visible(timeout=15_000)
    wait_for_output(server, "session of bob ended")


def test_two_processes_share_a_login_through_redis(demo, context, redis_server):
    first, _ = demo("--store", "redis", "--redis-url", redis_server.url)
    second, _ = demo("--store", "redis", "--redis-url", redis_server.url)
    page = context.new_page()
    log_in(page, first, "alice", "wonderland")
    expect(page.locator("#greeting")).to_have_text("Hello, alice.")
    # cookies belong to the host, not the port: the second process sees the same session
    page.goto(second + "private")
    expect(page.locator("#greeting")).to_have_text("Hello, alice.")
    page.goto(second)
    expect(page.locator("#visits")).to_have_text("1")
    page.goto(first)
    expect(page.locator("#visits")).to_have_text("2")
    page.locator("#logout").click()  # on the first process...
    page.goto(second + "private")  # ...ends it on the second
    expect(page.locator("#login-form")).to_be_visible()
