"""demos/chat, the long-polling chat room, as its README runs it (a child
process on a free port): http.client long-polls it, and three tabs of
headless Chromium (Debian's, through Playwright) talk in it; a closed tab's
waiting request is cancelled on the server. Browser tests skip without
Chromium or Playwright, except under CI."""

from __future__ import annotations

import http.client
import json
import re
import sys
import threading
import time
import urllib.parse

import pytest

from tests.test_plugin import ROOT, Server, free_port
from tests.browser import expect

DEMO = ROOT / "demos" / "chat"


@pytest.fixture
def chat(tmp_path):
    """The base URL of a running demos/chat/chat.py."""
    port = free_port()
    server = Server([sys.executable, "chat.py", "--port", str(port)], DEMO, tmp_path / "chat.log")
    try:
        server.wait_tcp(port)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.stop()
        print(f"--- chat.log ---\n{server.output()}")


class Client:
    """http.client with the page's XSRF cookie and token, as a browser has them."""

    def __init__(self, url: str) -> None:
        self.netloc = urllib.parse.urlsplit(url).netloc
        status, headers, page = self.request("GET", "/")
        assert status == 200
        self.cookie = headers["Set-Cookie"].split(";")[0]
        self.token = re.search(rb'name="_xsrf" value="([^"]+)"', page).group(1).decode()

    def request(self, method: str, path: str, fields: dict | None = None, timeout: float = 15):
        connection = http.client.HTTPConnection(self.netloc, timeout=timeout)
        try:
            headers = {}
            body = None
            if fields is not None:
                body = urllib.parse.urlencode({"_xsrf": self.token, **fields})
                headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": self.cookie}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def stats(self) -> dict:
        return json.loads(self.request("GET", "/a/stats")[2])


def wait_until(predicate, timeout: float = 10.0) -> None:
    """A bounded poll of the demo's state."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_long_poll_waits_for_the_next_message(chat):
    client = Client(chat)
    answers = []
    poller = threading.Thread(
        target=lambda: answers.append(client.request("POST", "/a/message/updates", {}, timeout=30))
    )
    poller.start()
    wait_until(lambda: client.stats()["waiting"] == 1)
    assert answers == []  # still waiting: nothing was posted
    status, _, body = client.request("POST", "/a/message/new", {"nick": "ann", "body": "hello"})
    assert status == 200
    posted = json.loads(body)
    poller.join(15)
    ((status, _, body),) = answers
    assert status == 200 and json.loads(body) == {"messages": [posted]}
    # a cursor behind the newest message is answered at once
    status, _, body = client.request("POST", "/a/message/updates", {"cursor": "unknown"})
    assert json.loads(body)["messages"] == [posted]
    # and a POST without the XSRF token is refused
    assert client.request("POST", "/a/message/new", {"nick": "x", "body": "y", "_xsrf": ""})[0] == 403


def test_an_abandoned_long_poll_is_forgotten(chat):
    client = Client(chat)
    connection = http.client.HTTPConnection(client.netloc, timeout=15)
    connection.request(
        "POST",
        "/a/message/updates",
        body=urllib.parse.urlencode({"_xsrf": client.token}),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": client.cookie},
    )
    wait_until(lambda: client.stats()["waiting"] == 1)
    connection.close()  # the client goes away without an answer
    wait_until(lambda: client.stats()["waiting"] == 0)


def say(page, text: str) -> None:
    page.locator("#body").fill(text)
    page.locator("#body").press("Enter")


def test_three_tabs_see_each_others_messages(chat, context):  # noqa: F811  (the fixture)
    tabs = []
    for nick in ("ann", "bob", "cat"):
        page = context.new_page()
        page.goto(chat)
        expect(page.locator("#status")).to_have_text("waiting for messages")
        page.locator("#nick").fill(nick)
        tabs.append(page)
    ann, bob, cat = tabs
    client = Client(chat)
    wait_until(lambda: client.stats()["waiting"] == 3)

    say(ann, "hi <b>all</b> & 😀")
    for page in tabs:
        expect(page.locator("#inbox li .body")).to_have_text(["hi <b>all</b> & 😀"])  # text, not HTML
        expect(page.locator("#inbox li .nick")).to_have_text(["ann"])
        expect(page.locator("#inbox li b")).to_have_count(0)
    say(bob, "second")
    say(cat, "third")
    for page in tabs:
        expect(page.locator("#inbox li .body")).to_have_text(["hi <b>all</b> & 😀", "second", "third"])
        expect(page.locator("#inbox li .nick")).to_have_text(["ann", "bob", "cat"])
    wait_until(lambda: client.stats()["waiting"] == 3)  # everyone asks again

    cat.close()  # its waiting request is cancelled on the server
    wait_until(lambda: client.stats()["waiting"] == 2)
    say(bob, "after cat left")
    expect(ann.locator("#inbox li .body").last).to_have_text("after cat left")

    # a newcomer's page is rendered with the messages so far, then polls from there
    dan = context.new_page()
    dan.goto(chat)
    expect(dan.locator("#inbox li .body")).to_have_text(
        ["hi <b>all</b> & 😀", "second", "third", "after cat left"]
    )
    say(ann, "welcome")
    expect(dan.locator("#inbox li .body").last).to_have_text("welcome")
    expect(dan.locator("#inbox li")).to_have_count(5)
