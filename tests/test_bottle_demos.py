"""demos/bottle and demos/helloworld/helloworld_bottle.py, started as their
READMEs say and used over HTTP (urllib with a cookie jar) and WebSocket."""

from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.test_plugin import ROOT, Server, free_port, request

DEMO = ROOT / "demos" / "bottle"
HELLO = ROOT / "demos" / "helloworld"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browser():
    """A urllib opener that keeps cookies and shows redirects as they are."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())
    return opener, jar


def call(opener, url, method="GET", data=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with opener.open(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bottledemo")
    port = free_port()
    args = [sys.executable, "bottledemo.py", "--port", str(port), "--db", str(tmp / "notes.sqlite")]
    with Server(args, DEMO, tmp / "out.log") as server:
        server.wait_tcp(port)
        yield f"http://127.0.0.1:{port}", port, server


def test_notes_need_sign_in_and_an_xsrf_token(demo):
    base, _, _ = demo
    opener, _ = browser()
    status, headers, page = call(opener, base + "/")
    assert status == 200 and b"sign in as guest" in page
    token = re.search(rb'name="_xsrf" value="([^"]+)"', page).group(1).decode()
    # signed out: @authenticated refuses a POST (a GET would be sent to /login)
    status, headers, _ = call(opener, base + "/notes", "POST", {"text": "signed out", "_xsrf": token})
    assert status == 403
    status, headers, _ = call(opener, base + "/login?user=ann")
    assert (status, headers["Location"]) == (302, "/")
    # no XSRF token: refused
    status, _, _ = call(opener, base + "/notes", "POST", {"text": "hi"})
    assert status == 403
    status, headers, body = call(opener, base + "/notes", "POST", {"text": "first <note>", "_xsrf": token})
    assert status == 201
    new_id = json.loads(body)["id"]
    assert headers["Location"] == f"/notes/{new_id}"
    status, _, body = call(opener, base + f"/notes/{new_id}")
    assert (status, json.loads(body)) == (200, {"id": new_id, "author": "ann", "text": "first <note>"})
    status, _, page = call(opener, base + "/")
    assert b"signed in as ann" in page and b"first &lt;note&gt;" in page  # escaped
    status, _, body = call(opener, base + "/notes")
    notes = json.loads(body)["notes"]
    assert {"id": new_id, "author": "ann", "text": "first <note>"} in notes
    assert not [n for n in notes if n["text"] in ("signed out", "hi")]  # the refused ones
    status, _, _ = call(opener, base + f"/notes/{new_id}", "DELETE")
    assert status == 403  # a DELETE carries no XSRF token here: refused too



def test_typed_parameters_and_streams(demo):
    base, _, _ = demo
    opener, _ = browser()
    assert call(opener, base + "/notes/99999")[0] == 404  # an int, but no such note
    assert call(opener, base + "/notes/abc")[0] == 404  # not an int
    status, headers, body = call(opener, base + "/count/5")
    assert (status, body, headers["Transfer-Encoding"]) == (200, b"1\n2\n3\n4\n5\n", "chunked")
    assert call(opener, base + "/count/100000")[0] == 400
    status, _, body = call(opener, base + "/wait/0.01")
    assert (status, json.loads(body)) == (200, {"waited": 0.01})


def test_websocket_from_more_handlers(demo):
    _, port, _ = demo
    with connect(f"ws://127.0.0.1:{port}/echo") as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"


def test_helloworld_bottle(tmp_path):
    port = free_port()
    with Server([sys.executable, "helloworld_bottle.py", str(port)], HELLO, tmp_path / "out.log") as server:
        server.wait_tcp(port)
        assert request(port, "/")[::2] == (200, "Hello, world")
        assert request(port, "/hello/cyclone")[::2] == (200, "Hello, cyclone")
        assert request(port, "/nope")[0] == 404
    assert "GET /hello/cyclone" in server.output()  # run() logs to stdout
