"""demos/websocket in a real browser: Debian's Chromium, headless, driven by Playwright.

Each demo runs as a child process (as its README starts it) on a free port;
the browser loads its page and uses it the way a person would (types, presses
Enter, opens and closes tabs). Every wait is Playwright's, with a bound.

Playwright drives the system's Chromium (``/usr/bin/chromium``, or the
``CHROMIUM`` environment variable): ``playwright install`` and its browser
downloads are never needed. Without Chromium or the ``playwright`` package
these tests are skipped, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from tests.browser import expect
from tests.test_plugin import ROOT, Server, free_port

DEMOS = ROOT / "demos" / "websocket"


@pytest.fixture
def demo(tmp_path):
    """``demo("echo.py", *args) -> base URL``: the demo as its README runs it."""
    servers: list[Server] = []

    def start(script: str, *args: str) -> str:
        port = free_port()
        command = [sys.executable, script, "--port", str(port), *args]
        server = Server(command, DEMOS, tmp_path / f"{Path(script).stem}.log")
        servers.append(server)
        server.wait_tcp(port)
        return f"http://127.0.0.1:{port}/"

    yield start
    for server in servers:
        server.stop()
        # shown when the test failed: what the server logged meanwhile
        print(f"--- {server.log_path.name} ---\n{server.output()}")


def a_long_message(size: int = 70_000) -> str:
    """``size`` characters, random enough to need real compression work; non-ASCII
    (2- to 4-byte UTF-8, and astral characters that are two UTF-16 units) included."""
    rng = random.Random(6455)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ 0123456789 .,;!?'\"<>&é€ß日本😀"
    return "".join(rng.choice(alphabet) for _ in range(size))


# -- echo.py ------------------------------------------------------------------------------------


def test_echo_page_round_trips_a_70kB_message_over_deflate(demo, context):
    url = demo("echo.py")
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#status")).to_have_text("open")

    # the browser offered permessage-deflate and the server accepted it
    extensions = page.evaluate("window.echo.ws.extensions")
    assert extensions.split(";")[0].strip() == "permessage-deflate", extensions
    expect(page.locator("#extensions")).to_have_text(extensions)

    # typed key by key, sent with Enter
    page.locator("#text").press_sequentially("hello, cyclone")
    page.locator("#text").press("Enter")
    expect(page.locator("#log li.reply")).to_have_text(["hello, cyclone"])
    expect(page.locator("#text")).to_have_value("")

    message = a_long_message()
    assert len(message.encode("utf-8")) > 70_000
    page.locator("#text").fill(message)  # typing 70 000 keys would only test the keyboard
    page.locator("#text").press("Enter")
    page.wait_for_function("n => window.echo.received.length >= n", arg=2)
    assert page.evaluate("window.echo.received.length") == 2
    assert page.evaluate("window.echo.received[1]") == message
    # and the page shows it whole (the newest reply comes first)
    assert page.locator("#log li.reply").first.text_content() == message
    expect(page.locator("#status")).to_have_text("open")


# -- chat.py ------------------------------------------------------------------------------------


def join(context, url: str, nick: str):
    page = context.new_page()
    page.goto(url)
    page.locator("#nick").fill(nick)
    page.locator("#join").click()
    expect(page.locator("#status")).to_have_text(f"in the room as {nick}")
    return page


def say(page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def test_chat_room_with_three_tabs(demo, context):
    url = demo("chat.py", "--history", "2")
    alice = join(context, url, "alice")
    bob = join(context, url, "bob")
    carol = join(context, url, "carol")
    everyone = [alice, bob, carol]
    expect(alice.locator("#log li.join")).to_have_text(["alice joined", "bob joined", "carol joined"])
    expect(carol.locator("#log li.join")).to_have_text(["carol joined"])
    for page in everyone:
        expect(page.locator("#members")).to_have_text("alice, bob, carol")

    say(bob, "hi <b>all</b> & 😀")
    for page in everyone:
        expect(page.locator("#log li.message .nick")).to_have_text(["bob"])
        expect(page.locator("#log li.message .text")).to_have_text(["hi <b>all</b> & 😀"])  # text, not HTML
        expect(page.locator("#log li.message b")).to_have_count(0)
    say(alice, "second")
    say(carol, "third")
    for page in everyone:
        expect(page.locator("#log li.message .text")).to_have_text(["hi <b>all</b> & 😀", "second", "third"])
        expect(page.locator("#log li.message .nick")).to_have_text(["bob", "alice", "carol"])

    carol.close()  # closing the tab closes its WebSocket
    for page in (alice, bob):
        expect(page.locator("#log li.leave")).to_have_text(["carol left"])
        expect(page.locator("#members")).to_have_text("alice, bob")

    # a newcomer gets the last --history 2 messages, then the live ones
    dave = join(context, url, "dave")
    expect(dave.locator("#log li.history .text")).to_have_text(["second", "third"])
    expect(dave.locator("#members")).to_have_text("alice, bob, dave")
    say(dave, "hello, I'm new")
    for page in (alice, bob, dave):
        expect(page.locator("#log li.message .text").last).to_have_text("hello, I'm new")
    expect(alice.locator("#log li.join").last).to_have_text("dave joined")


def test_chat_refuses_a_nickname_already_in_the_room(demo, context):
    url = demo("chat.py")
    join(context, url, "alice")
    page = context.new_page()
    page.goto(url)
    page.locator("#nick").fill("alice")
    page.locator("#join").click()
    expect(page.locator("#status")).to_have_text("disconnected: alice is already in the room")
    expect(page.locator("#join-form")).to_be_visible()
    # another nickname in the same tab works
    page.locator("#nick").fill("alice2")
    page.locator("#join").click()
    expect(page.locator("#status")).to_have_text("in the room as alice2")
    expect(page.locator("#members")).to_have_text("alice, alice2")
