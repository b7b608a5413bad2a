"""cyclone.httpclient against servers and proxies we did not write: a
twisted.web site, nginx (gzip, redirects, keep-alive), ``python -m
http.server``, TLS with a self-signed certificate (checked, unchecked, a
client certificate), tinyproxy (HTTP proxy and CONNECT tunnels), and a UNIX
socket.

nginx and tinyproxy are Debian packages (.ci/run installs them); without
them those tests skip, unless CI is set.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import pytest_twisted
from twisted.internet import reactor, ssl
from twisted.web import resource, server, util

import cyclone.web
from cyclone.httpclient import AsyncHTTPClient, HTTPClientError, HTTPStreamClosedError


def _need(program: str) -> str:
    path = shutil.which(program) or (f"/usr/sbin/{program}" if os.path.exists(f"/usr/sbin/{program}") else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is not installed (CI must run this test)")
        pytest.skip(f"{program} is not installed")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_tcp(port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)  # polling a port another process opens: bounded by the deadline
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


class _Process:
    """A server process on ``port``, stopped at the end of the test."""

    def __init__(self, args: list[str], port: int, cwd: str, log: str) -> None:
        self.log = log
        self._out = open(log, "wb")
        self.process = subprocess.Popen(args, cwd=cwd, stdout=self._out, stderr=subprocess.STDOUT)
        self.port = port
        try:
            _wait_tcp(port, self.process)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()


@pytest.fixture
def client():
    c = AsyncHTTPClient(force_instance=True)
    yield c
    pytest_twisted.blockon(c.close())


# -- twisted.web ----------------------------------------------------------------------


class _Chunked(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        # No Content-Length: twisted.web sends HTTP/1.1 chunked.
        for piece in (b"one ", b"two ", b"three"):
            request.write(piece)
        request.write(f" channel={id(request.channel)}".encode())
        request.finish()
        return server.NOT_DONE_YET

    def render_POST(self, request):
        return b"posted:" + request.content.read()


class _Plain(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        return b"x" * 5000


def _twisted_site() -> server.Site:
    root = resource.Resource()
    root.putChild(b"chunked", _Chunked())
    root.putChild(b"gzip", resource.EncodingResourceWrapper(_Plain(), [server.GzipEncoderFactory()]))
    root.putChild(b"redirect", util.Redirect(b"/chunked"))
    return server.Site(root)


@pytest_twisted.inlineCallbacks
def test_twisted_web_chunked_body_headers_as_received_and_keep_alive(listen, client):
    base = f"http://127.0.0.1:{listen(_twisted_site())}"
    first = yield client.fetch(base + "/chunked")
    assert first.body.startswith(b"one two three channel=")
    assert first.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in first.headers
    second = yield client.fetch(base + "/chunked")
    assert second.body == first.body  # the same channel: the connection was kept
    posted = yield client.fetch(base + "/chunked", method="POST", body=b"data")
    assert posted.body == b"posted:data"


@pytest_twisted.inlineCallbacks
def test_twisted_web_gzip_and_redirect(listen, client):
    base = f"http://127.0.0.1:{listen(_twisted_site())}"
    response = yield client.fetch(base + "/gzip")
    assert response.body == b"x" * 5000
    assert response.headers["X-Consumed-Content-Encoding"] == "gzip"
    response = yield client.fetch(base + "/redirect")
    assert response.effective_url == base + "/chunked" and response.body.startswith(b"one two")


# -- nginx ----------------------------------------------------------------------------

_NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    default_type text/plain;
    keepalive_timeout 60;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        gzip on;
        gzip_min_length 1;
        gzip_types text/plain;
        location = /moved {{ return 301 /big.txt; }}
        location = /see-other {{ return 303 /conn; }}
        location = /conn {{
            add_header X-Conn $connection;
            add_header X-Conn-Requests $connection_requests;
            return 200 "ok";
        }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path):
    program = _need("nginx")
    port = _free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "big.txt").write_bytes(b"nginx text " * 10000)
    (tmp_path / "nginx.conf").write_text(_NGINX_CONF.format(tmp=tmp_path, port=port))
    process = _Process([program, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                       port, str(tmp_path), str(tmp_path / "out.log"))
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest_twisted.inlineCallbacks
def test_nginx_gzip_is_decoded_and_the_raw_headers_are_kept(nginx, client):
    response = yield client.fetch(nginx + "/big.txt")
    assert response.body == b"nginx text " * 10000
    assert response.headers["X-Consumed-Content-Encoding"] == "gzip"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert response.headers["Connection"] == "keep-alive"
    raw = yield client.fetch(nginx + "/big.txt", decompress_response=False,
                             headers={"Accept-Encoding": "gzip"})
    assert raw.headers["Content-Encoding"] == "gzip" and gzip.decompress(raw.body) == response.body
    plain = yield client.fetch(nginx + "/big.txt", headers={"Accept-Encoding": "identity"})
    assert plain.headers["Content-Length"] == str(len(plain.body)) == "110000"


@pytest_twisted.inlineCallbacks
def test_nginx_keeps_one_connection_for_sequential_requests(nginx, client):
    seen = []
    for _ in range(4):
        response = yield client.fetch(nginx + "/conn")
        seen.append((response.headers["X-Conn"], response.headers["X-Conn-Requests"]))
    assert len({conn for conn, _ in seen}) == 1
    assert [int(n) for _, n in seen] == [1, 2, 3, 4]


@pytest_twisted.inlineCallbacks
def test_nginx_redirects(nginx, client):
    response = yield client.fetch(nginx + "/moved")
    assert response.effective_url == nginx + "/big.txt" and len(response.body) == 110000
    response = yield client.fetch(nginx + "/see-other", method="POST", body=b"x")
    assert response.body == b"ok" and response.effective_url == nginx + "/conn"
    response = yield client.fetch(nginx + "/moved", follow_redirects=False, raise_error=False)
    assert response.code == 301 and response.headers["Location"].endswith("/big.txt")


# -- python -m http.server ------------------------------------------------------------


@pytest.fixture
def stdlib_server(tmp_path):
    port = _free_port()
    (tmp_path / "www" / "dir").mkdir(parents=True)
    (tmp_path / "www" / "file.bin").write_bytes(bytes(range(256)) * 100)
    (tmp_path / "www" / "dir" / "index.html").write_text("<p>index</p>")
    process = _Process([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                       port, str(tmp_path / "www"), str(tmp_path / "out.log"))
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest_twisted.inlineCallbacks
def test_python_http_server_http10_file_redirect_and_404(stdlib_server, client):
    response = yield client.fetch(stdlib_server + "/file.bin")
    assert response.body == bytes(range(256)) * 100
    assert response.headers["Content-Length"] == "25600"
    # A directory without its slash is a 301 to it.
    response = yield client.fetch(stdlib_server + "/dir")
    assert response.effective_url == stdlib_server + "/dir/" and response.body == b"<p>index</p>"
    with pytest.raises(HTTPClientError) as raised:
        yield client.fetch(stdlib_server + "/missing")
    assert raised.value.code == 404
    # HTTP/1.0 answers close the connection: the next request opens another.
    response = yield client.fetch(stdlib_server + "/file.bin")
    assert len(response.body) == 25600


# -- TLS ------------------------------------------------------------------------------


class _Hello(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.write({"protocol": self.request.protocol, "path": self.request.path})


def _tls_server(listen_ssl, cert: str, key: str, require_client_cert: bool = False) -> int:
    with open(cert, "rb") as f:
        cert_pem = f.read()
    with open(key, "rb") as f:
        key_pem = f.read()
    identity = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
    if require_client_cert:
        options = ssl.CertificateOptions(
            privateKey=identity.privateKey.original, certificate=identity.original,
            verify=True, caCerts=[identity.original], requireCertificate=True,
        )
    else:
        options = identity.options()
    return listen_ssl(cyclone.web.Application([(r"/.*", _Hello)]), options)


@pytest.fixture
def listen_ssl():
    ports = []

    def _listen(factory, options) -> int:
        port = reactor.listenSSL(0, factory, options, interface="127.0.0.1")
        ports.append(port)
        return port.getHost().port

    yield _listen
    for port in ports:
        pytest_twisted.blockon(port.stopListening())


@pytest_twisted.inlineCallbacks
def test_tls_self_signed_checked_against_ca_certs_or_not_checked(listen_ssl, self_signed, client):
    cert, key = self_signed
    port = _tls_server(listen_ssl, cert, key)
    response = yield client.fetch(f"https://127.0.0.1:{port}/a", ca_certs=cert)
    assert json.loads(response.body) == {"protocol": "https", "path": "/a"}
    response = yield client.fetch(f"https://localhost:{port}/b", ca_certs=cert)
    assert json.loads(response.body)["path"] == "/b"
    response = yield client.fetch(f"https://127.0.0.1:{port}/c", validate_cert=False)
    assert json.loads(response.body)["path"] == "/c"


@pytest_twisted.inlineCallbacks
def test_tls_an_unknown_certificate_is_refused_by_default(listen_ssl, self_signed, client):
    cert, key = self_signed
    port = _tls_server(listen_ssl, cert, key)
    with pytest.raises(HTTPStreamClosedError):
        yield client.fetch(f"https://127.0.0.1:{port}/")


@pytest_twisted.inlineCallbacks
def test_tls_client_certificate(listen_ssl, self_signed, client):
    cert, key = self_signed
    port = _tls_server(listen_ssl, cert, key, require_client_cert=True)
    with pytest.raises(HTTPStreamClosedError):
        yield client.fetch(f"https://127.0.0.1:{port}/", ca_certs=cert)
    response = yield client.fetch(f"https://127.0.0.1:{port}/in", ca_certs=cert,
                                  client_cert=cert, client_key=key)
    assert json.loads(response.body)["path"] == "/in"


# -- a proxy (tinyproxy) --------------------------------------------------------------

_TINYPROXY_CONF = """
Port {port}
Listen 127.0.0.1
Timeout 30
Allow 127.0.0.1
LogFile "{tmp}/tinyproxy.log"
LogLevel Info
PidFile "{tmp}/tinyproxy.pid"
MaxClients 20
DisableViaHeader Yes
{extra}
"""


def _tinyproxy(tmp_path, extra: str = ""):
    program = _need("tinyproxy")
    port = _free_port()
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(_TINYPROXY_CONF.format(port=port, tmp=tmp_path, extra=extra))
    return _Process([program, "-d", "-c", str(conf)], port, str(tmp_path), str(tmp_path / "out.log"))


@pytest.fixture
def proxy(tmp_path):
    process = _tinyproxy(tmp_path)
    yield process
    process.stop()


@pytest.fixture
def auth_proxy(tmp_path):
    process = _tinyproxy(tmp_path, "BasicAuth user s3cret")
    yield process
    process.stop()


class _Seen(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.write({"uri": self.request.uri, "via": self.request.headers.get("Proxy-Authorization")})


def _proxy_log(proxy) -> str:
    with open(os.path.join(os.path.dirname(proxy.log), "tinyproxy.log")) as f:
        return f.read()


@pytest_twisted.inlineCallbacks
def test_http_through_a_proxy(listen, proxy, client):
    port = listen(cyclone.web.Application([(r"/.*", _Seen)]))
    response = yield client.fetch(f"http://127.0.0.1:{port}/through?x=1",
                                  proxy_host="127.0.0.1", proxy_port=proxy.port)
    assert json.loads(response.body) == {"uri": "/through?x=1", "via": None}
    assert f"127.0.0.1:{port}/through" in _proxy_log(proxy)
    # The original cyclone's proxy=(host, port).
    response = yield client.fetch(f"http://127.0.0.1:{port}/old", proxy=("127.0.0.1", proxy.port))
    assert json.loads(response.body)["uri"] == "/old"


@pytest_twisted.inlineCallbacks
def test_https_through_a_connect_tunnel(listen_ssl, proxy, self_signed, client):
    cert, key = self_signed
    port = _tls_server(listen_ssl, cert, key)
    for path in ("/one", "/two"):
        response = yield client.fetch(f"https://127.0.0.1:{port}{path}", ca_certs=cert,
                                      proxy_host="127.0.0.1", proxy_port=proxy.port)
        assert json.loads(response.body) == {"protocol": "https", "path": path}
    # The tunnel was kept alive: one CONNECT for the two requests.
    assert _proxy_log(proxy).count(f"CONNECT 127.0.0.1:{port} HTTP/1.1") == 1


@pytest_twisted.inlineCallbacks
def test_proxy_credentials(listen, listen_ssl, auth_proxy, self_signed, client):
    port = listen(cyclone.web.Application([(r"/.*", _Seen)]))
    url = f"http://127.0.0.1:{port}/p"
    refused = yield client.fetch(url, proxy_host="127.0.0.1", proxy_port=auth_proxy.port, raise_error=False)
    assert refused.code == 407
    response = yield client.fetch(url, proxy_host="127.0.0.1", proxy_port=auth_proxy.port,
                                  proxy_username="user", proxy_password="s3cret")
    assert json.loads(response.body)["uri"] == "/p"
    cert, key = self_signed
    tls_port = _tls_server(listen_ssl, cert, key)
    with pytest.raises(HTTPClientError, match="407"):
        yield client.fetch(f"https://127.0.0.1:{tls_port}/", ca_certs=cert,
                           proxy_host="127.0.0.1", proxy_port=auth_proxy.port)
    response = yield client.fetch(f"https://127.0.0.1:{tls_port}/t", ca_certs=cert,
                                  proxy_host="127.0.0.1", proxy_port=auth_proxy.port,
                                  proxy_username="user", proxy_password="s3cret")
    assert json.loads(response.body)["path"] == "/t"


# -- a UNIX socket --------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_unix_socket(tmp_path, client):
    from urllib.parse import quote

    path = str(tmp_path / "app.sock")
    listening = reactor.listenUNIX(path, cyclone.web.Application([(r"/.*", _Hello)]))
    try:
        response = yield client.fetch("http://localhost/by-keyword", unix_socket=path)
        assert json.loads(response.body)["path"] == "/by-keyword"
        response = yield client.fetch(f"http+unix://{quote(path, safe='')}/by-url")
        assert json.loads(response.body)["path"] == "/by-url"
        assert response.effective_url == "http://localhost/by-url"
    finally:
        yield client.close()
        yield listening.stopListening()
