"""demos/sse: the feed demo as its README runs it, a child process on free
ports. Lines typed into its feed port (a raw socket, as ``nc`` would) come
out as events read by sseclient-py, and by the ``EventSource`` of its page
in headless Chromium (Debian's, through Playwright), which reconnects with
``Last-Event-ID`` after the server drops its stream and gets only what it
missed. Browser tests skip without Chromium or Playwright, except under CI.
"""

from __future__ import annotations

import http.client
import socket
import sys
import time

import pytest
from sseclient import SSEClient

from tests.test_plugin import ROOT, Server, free_port
from tests.browser import expect

DEMO = ROOT / "demos" / "sse"


class Feed:
    """The feed port, typed into as with ``nc``."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.file = self.sock.makefile("rb")

    def type(self, *lines: str) -> list[str]:
        """Send ``lines`` in one write; the feed's answer to each."""
        self.sock.sendall("".join(line + "\n" for line in lines).encode("utf-8"))
        return [self.file.readline().decode("utf-8").rstrip("\r\n") for _ in lines]

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def feed_demo(tmp_path):
    """(base URL, Feed) of a running demos/sse/feed.py."""
    port, feed_port = free_port(), free_port()
    server = Server(
        [sys.executable, "feed.py", "--port", str(port), "--feed-port", str(feed_port), "--history", "50"],
        DEMO,
        tmp_path / "feed.log",
    )
    feed = None
    try:
        server.wait_tcp(port)
        server.wait_tcp(feed_port)
        feed = Feed(feed_port)
        yield f"http://127.0.0.1:{port}/", feed, server
    finally:
        if feed is not None:
            feed.close()
        server.stop()
        print(f"--- feed.log ---\n{server.output()}")


def test_lines_typed_into_the_feed_reach_an_sse_client(feed_demo):
    url, feed, _ = feed_demo
    connection = http.client.HTTPConnection(url.split("/")[2], timeout=15)
    try:
        connection.request("GET", "/events")
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "text/event-stream"
        events = SSEClient(response).events()
        assert feed.type("/count") == ["1 streams open"]
        assert feed.type("hello there", "!look out") == ["line sent to 1 streams", "alert sent to 1 streams"]
        got = [next(events) for _ in range(2)]
        assert [(e.event, e.id, e.data) for e in got] == [("line", "1", "hello there"), ("alert", "2", "look out")]
        assert got[0].retry is None  # the retry came in a field-only event before
    finally:
        connection.close()


def test_the_page_gets_named_events_and_after_a_drop_only_what_it_missed(feed_demo, context):  # noqa: F811  (the fixture)
    url, feed, server = feed_demo
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#status")).to_have_text("open")
    assert feed.type("/count") == ["1 streams open"]

    feed.type("first line", "!an alert")
    expect(page.locator("#events li .text")).to_have_text(["first line", "an alert"])
    expect(page.locator("#events li .id")).to_have_text(["1", "2"])
    expect(page.locator("#events li")).to_have_class(["line", "alert"])

    # The stream is dropped, and two events are published in the same
    # reactor turn, before the browser can be back: it can only get them
    # through the replay of what came after its Last-Event-ID.
    assert feed.type("/drop", "while away", "!also away") == [
        "dropped 1 streams",
        "line sent to 0 streams",
        "alert sent to 0 streams",
    ]
    expect(page.locator("#opens")).to_have_text("2")  # EventSource reconnected by itself
    expect(page.locator("#status")).to_have_text("open")
    expect(page.locator("#events li .text")).to_have_text(["first line", "an alert", "while away", "also away"])
    expect(page.locator("#events li .id")).to_have_text(["1", "2", "3", "4"])  # nothing twice
    assert "Last-Event-ID: 2" in server.output()

    feed.type("back live")
    expect(page.locator("#events li .text").last).to_have_text("back live")
    expect(page.locator("#events li .id").last).to_have_text("5")

    page.close()  # the tab's stream ends: the server sees it go
    deadline = time.monotonic() + 10
    while feed.type("/count") != ["0 streams open"]:  # a bounded poll
        assert time.monotonic() < deadline, "the closed tab's stream is still open"
        time.sleep(0.05)
