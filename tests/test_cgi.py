"""cyclone.cgi: shell and Python CGI scripts run per request (RFC 3875),
over real sockets; and the sans-IO parser of a script's output."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import stat
import sys
import textwrap

import pytest
import pytest_twisted
from twisted.internet import threads

from cyclone import web
from cyclone.cgi import CGIHandler, CGIOutputError, CGIResponseParser
from tests.conftest import http_request, http_request_in_thread, poll_until

inline = pytest_twisted.inlineCallbacks


fetch = http_request
get = http_request_in_thread


def script(directory, name, source, executable=True):
    path = directory / name
    path.write_text(textwrap.dedent(source).lstrip())
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


ENV_SH = """
#!/bin/sh
echo "Content-Type: text/plain"
echo "X-Script: shell"
echo
for name in GATEWAY_INTERFACE REQUEST_METHOD SCRIPT_NAME PATH_INFO QUERY_STRING CONTENT_LENGTH \\
    CONTENT_TYPE REMOTE_ADDR REMOTE_HOST SERVER_NAME SERVER_PORT SERVER_PROTOCOL SERVER_SOFTWARE HTTP_X_CUSTOM \\
    HTTP_PROXY HTTP_AUTHORIZATION CYCLONE_TEST_SECRET EXTRA; do
    eval "value=\\${$name-unset}"
    echo "$name=$value"
done
echo "PWD=$(pwd)"
echo "BODY=$(cat)"
"""

PY_SCRIPT = """
import hashlib, os, sys
body = sys.stdin.buffer.read()
sys.stdout.write("Status: 201 Made It\\r\\n")
sys.stdout.write("Content-Type: application/json\\r\\n")
sys.stdout.write("Set-Cookie: a=1\\r\\nSet-Cookie: b=2\\r\\n")
sys.stdout.write("Connection: close\\r\\n")  # the server's business: dropped
sys.stdout.write("\\r\\n")
sys.stdout.write('{"length": %d, "sha": "%s", "method": "%s"}' % (
    len(body), hashlib.sha256(body).hexdigest(), os.environ["REQUEST_METHOD"]))
"""


class Other(web.RequestHandler):
    def get(self):
        self.write(f"other page, method {self.request.method}")


@pytest.fixture
def cgi_app(tmp_path, listen, monkeypatch):
    monkeypatch.setenv("CYCLONE_TEST_SECRET", "server-only")
    d = tmp_path
    routes = [
        (r"/env(/.*)?", CGIHandler, {"script": script(d, "env.sh", ENV_SH), "env": {"EXTRA": "given"}}),
        (r"/py", CGIHandler, {"script": script(d, "s.py", PY_SCRIPT, executable=False), "filter": sys.executable}),
        (r"/other", Other),
        (r"/local", CGIHandler, {"script": script(d, "local.sh", "#!/bin/sh\necho 'Location: /other'\necho\n")}),
        (r"/loop", CGIHandler, {"script": script(d, "loop.sh", "#!/bin/sh\necho 'Location: /loop'\necho\n")}),
        (r"/away", CGIHandler, {"script": script(
            d, "away.sh", "#!/bin/sh\necho 'Location: http://example.com/x'\necho\n")}),
        (r"/gone", CGIHandler, {"script": script(
            d, "gone.sh", "#!/bin/sh\necho 'Status: 410 Gone'\necho 'Location: http://example.com/'\necho\n")}),
        (r"/garbage", CGIHandler, {"script": script(d, "garbage.sh", "#!/bin/sh\necho 'hello world'\necho\n")}),
        (r"/no-type", CGIHandler, {"script": script(d, "notype.sh", "#!/bin/sh\necho 'X-A: b'\necho\necho body\n")}),
        (r"/bad-status", CGIHandler, {"script": script(
            d, "badstatus.sh", "#!/bin/sh\necho 'Status: OK'\necho 'Content-Type: text/plain'\necho\n")}),
        (r"/unfinished", CGIHandler, {"script": script(
            d, "unfinished.sh", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n'\n")}),
        (r"/crash", CGIHandler, {"script": script(
            d, "crash.sh", "#!/bin/sh\necho 'something broke' >&2\nexit 3\n")}),
        (r"/huge-head", CGIHandler, {"script": script(
            d, "huge.py", "print('X-Long: ' + 'a' * 100000)\n", executable=False), "filter": sys.executable}),
        (r"/not-executable", CGIHandler, {"script": script(d, "plain.sh", ENV_SH, executable=False)}),
        (r"/slow", CGIHandler, {"script": script(d, "slow.sh", "#!/bin/sh\nexec sleep 30\n"), "timeout": 0.5}),
    ]
    return listen(web.Application(routes))


@inline
def test_shell_script_gets_the_meta_variables_and_the_body(cgi_app, tmp_path):
    status, headers, body = yield get(
        cgi_app, "/env/a%20b/c?x=1&y=2", method="POST", body=b"the body",
        headers={"Content-Type": "text/plain", "X-Custom": "yes", "Proxy": "http://evil:1",
                 "Authorization": "Basic dTpw"},
    )
    assert status == 200
    assert headers["X-Script"] == "shell"
    values = dict(line.split("=", 1) for line in body.decode().splitlines())
    assert values == {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/env",
        "PATH_INFO": "/a b/c",
        "QUERY_STRING": "x=1&y=2",
        "CONTENT_LENGTH": "8",
        "CONTENT_TYPE": "text/plain",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_HOST": "127.0.0.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(cgi_app),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": values["SERVER_SOFTWARE"],
        "HTTP_X_CUSTOM": "yes",
        "HTTP_PROXY": "unset",  # httpoxy: never passed
        "HTTP_AUTHORIZATION": "unset",
        "CYCLONE_TEST_SECRET": "unset",  # the server's environment stays the server's
        "EXTRA": "given",
        "PWD": str(tmp_path),  # the script's directory
        "BODY": "the body",
    }
    assert values["SERVER_SOFTWARE"].startswith("cyclone/")


@inline
def test_python_script_through_a_filter_sets_status_and_headers(cgi_app):
    payload = os.urandom(300_000)
    status, headers, body = yield get(cgi_app, "/py", method="PUT", body=payload)
    assert (status, headers["Content-Type"]) == (201, "application/json")
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert json.loads(body) == {"length": 300_000, "sha": hashlib.sha256(payload).hexdigest(), "method": "PUT"}


@inline
def test_redirects(cgi_app, caplog):
    status, _, body = yield get(cgi_app, "/local", method="POST", body=b"x")
    assert (status, body) == (200, b"other page, method GET")  # answered as GET /other
    status, headers, _ = yield get(cgi_app, "/away")
    assert (status, headers["Location"]) == (302, "http://example.com/x")
    status, headers, _ = yield get(cgi_app, "/gone")
    assert (status, headers["Location"]) == (410, "http://example.com/")
    caplog.set_level(logging.ERROR, "cyclone.application")
    status, _, _ = yield get(cgi_app, "/loop")
    assert status == 502
    assert "more than 5 local redirects" in caplog.text


@pytest.mark.parametrize(
    "path, status, logged",
    [
        ("/garbage", 502, "not a header line"),
        ("/no-type", 502, "neither Content-Type nor Location"),
        ("/bad-status", 502, "bad Status"),
        ("/unfinished", 502, "ended inside the header block"),
        ("/crash", 502, "no output (exit status 3)"),
        ("/huge-head", 502, "no end of the header block in the first 65536 bytes"),
        ("/not-executable", 502, "is not executable"),
        ("/slow", 504, "still running after 0.5 seconds"),
    ],
)
@inline
def test_a_failing_script_is_a_clear_5xx_with_a_log_line(cgi_app, caplog, path, status, logged):
    caplog.set_level(logging.WARNING, "cyclone.application")
    got, _, _ = yield get(cgi_app, path)
    assert got == status
    assert logged in caplog.text
    if path == "/crash":
        assert "stderr: something broke" in caplog.text
    got, _, _ = yield get(cgi_app, "/other")  # the server carries on
    assert got == 200


@inline
def test_output_is_streamed_while_the_script_runs(tmp_path, listen):
    go = tmp_path / "go"
    streaming = script(tmp_path, "stream.py", f"""
        import os, sys, time
        sys.stdout.write("Content-Type: text/plain\\n\\nfirst\\n")
        sys.stdout.flush()
        while not os.path.exists({str(go)!r}):  # the test says when to go on
            time.sleep(0.01)
        sys.stdout.write("second\\n")
        """, executable=False)
    port = listen(web.Application([(r"/s", CGIHandler, {"script": streaming, "filter": sys.executable})]))

    def client():
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
            seen = b""
            while b"first\n" not in seen:  # before the script has finished
                chunk = sock.recv(4096)
                assert chunk, seen
                seen += chunk
            go.write_text("go")
            while not seen.endswith(b"0\r\n\r\n"):
                chunk = sock.recv(4096)
                assert chunk, seen
                seen += chunk
            return seen

    seen = yield threads.deferToThread(client)
    assert b"Transfer-Encoding: chunked" in seen and b"second\n" in seen


@inline
def test_large_output_arrives_whole(tmp_path, listen):
    big = script(tmp_path, "big.py", """
        import sys
        sys.stdout.write("Content-Type: application/octet-stream\\n\\n")
        sys.stdout.flush()
        for i in range(2000):
            sys.stdout.buffer.write(bytes([i % 256]) * 4096)
        """, executable=False)
    port = listen(web.Application([(r"/big", CGIHandler, {"script": big, "filter": sys.executable})]))
    status, _, body = yield get(port, "/big")
    assert status == 200
    assert body == b"".join(bytes([i % 256]) * 4096 for i in range(2000))


@inline
def test_a_client_that_leaves_kills_the_script(tmp_path, listen):
    pid_file = tmp_path / "pid"
    endless = script(tmp_path, "endless.py", f"""
        import os, sys
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        sys.stdout.write("Content-Type: text/plain\\n\\n")
        while True:
            sys.stdout.write("x" * 65536)
        """, executable=False)
    port = listen(web.Application([(r"/e", CGIHandler, {"script": endless, "filter": sys.executable})]))

    def client():
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"GET /e HTTP/1.1\r\nHost: x\r\n\r\n")
            got = 0
            while got < 500_000:
                got += len(sock.recv(65536))

    yield threads.deferToThread(client)
    pid = int(pid_file.read_text())

    def gone():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split()[2] == "Z"  # a zombie: killed, not yet reaped
        except FileNotFoundError:
            return True

    yield poll_until(gone, timeout=10)


# -- the parser, sans IO ------------------------------------------------------------------------


def test_parser_takes_the_head_in_pieces():
    parser = CGIResponseParser()
    assert parser.feed(b"Status: 404 Not Here\r\nContent-Type: text/plain\r") == b""
    assert parser.feed(b"\n\r") == b""
    assert parser.feed(b"\nbody") == b"body"
    assert parser.head == (404, "Not Here", [("Content-Type", "text/plain")])
    assert parser.feed(b"more\n\n") == b"more\n\n"  # the body, as it is
    assert not parser.local_redirect


@pytest.mark.parametrize(
    "output, local",
    [
        (b"Location: /a\n\n", True),
        (b"Location: //evil.example/\n\n", False),  # another host: a client redirect
        (b"Location: /a\nX-More: 1\n\n", False),  # RFC 3875 §6.2.2: a local redirect has no other field
        (b"Location: https://x.example/\n\n", False),
    ],
)
def test_parser_local_redirects(output, local):
    parser = CGIResponseParser()
    parser.feed(output)
    assert parser.local_redirect is local


@pytest.mark.parametrize(
    "output",
    [
        b"no colon here\n\n",
        b"Bad Name: x\n\n",
        b"Status: 2000 x\nContent-Type: a/b\n\n",
        b"Status: 200 OK\nStatus: 200 OK\nContent-Type: a/b\n\n",
        b"X: y\n\n",
    ],
)
def test_parser_refuses_what_is_not_a_cgi_head(output):
    with pytest.raises(CGIOutputError):
        CGIResponseParser().feed(output)


def test_parser_eof_and_size():
    parser = CGIResponseParser(max_header_size=100)
    with pytest.raises(CGIOutputError, match="no output"):
        parser.eof()
    with pytest.raises(CGIOutputError, match="first 100 bytes"):
        parser.feed(b"X-A: " + b"a" * 200)
