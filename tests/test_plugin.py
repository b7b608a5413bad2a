"""``twistd cyclone`` and the ``cyclone`` command, run as real processes.

Every server is a child process serving on a port picked by binding port 0
first (or a UNIX socket in tmp_path); a test waits for it by connecting, with
a bound, and stops it in a ``finally``. The child's output goes to a file that
failing assertions show. The helpers here are shared by test_demos.py and
test_install.py.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import cyclone
import cyclone.cli

ROOT = Path(__file__).resolve().parent.parent
# twistd in this interpreter ("python -m twisted" is the newer "twist" runner)
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
# foreground, no pid file (parallel runs must not clash), log to stdout
TWISTD_N = [*TWISTD, "-n", "--pidfile="]
START_TIMEOUT = 30.0


# -- helpers (also used by test_demos.py and test_install.py) ----------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: this checkout first on sys.path, so that its
    cyclone and its twistd plugin are the ones tested whatever is installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep demos/ and tmp dirs free of __pycache__
    env.update(extra)
    return env


class Server:
    """A server in a child process, stopped by ``stop()`` (or the ``with`` block)."""

    def __init__(self, args: list[str], cwd: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=child_env() if env is None else env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait(self, connect, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                connect()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reachable after {timeout}s; output:\n{self.output()}")
            try:
                # waiting on the process both paces the polling and notices an early exit
                self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(
                f"server exited with status {self.proc.returncode} before {what} was reachable; "
                f"output:\n{self.output()}"
            )

    def wait_tcp(self, port: int, host: str = "127.0.0.1", timeout: float = START_TIMEOUT) -> Server:
        self._wait(
            lambda: socket.create_connection((host, port), timeout=1).close(), f"{host}:{port}", timeout
        )
        return self

    def wait_unix(self, path: Path, timeout: float = START_TIMEOUT) -> Server:
        def connect() -> None:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(str(path))

        self._wait(connect, str(path), timeout)
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def run_command(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 60):
    """Run a command that is expected to exit by itself; stdout and stderr merged."""
    return subprocess.run(
        args,
        cwd=cwd,
        env=child_env() if env is None else env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def request(
    port: int,
    path: str = "/",
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, http.client.HTTPMessage, str]:
    """One request on a fresh connection (or ``connection``); (status, headers, body text)."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.msg, response.read().decode("utf-8")
    finally:
        conn.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a UNIX socket."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.socket_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


# An application module: "/" answers with the app's name, its appopts and the scheme.
APP_HEADER = """
import cyclone.web
from cyclone.web import Application as ImportedApplication  # imported: never picked


class Hello(cyclone.web.RequestHandler):
    def get(self):
        self.write({"app": self.application.name, "appopts": self.application.appopts,
                    "protocol": self.request.protocol})
"""

APP_CLASS = """

class {name}(cyclone.web.Application):
    name = "{name}"

    def __init__(self, appopts=None):
        self.appopts = appopts
        super().__init__([(r"/", Hello)])
"""


def app_source(*names: str) -> str:
    """Source of a module defining one Application subclass per name."""
    return APP_HEADER + "".join(APP_CLASS.format(name=name) for name in names)


def get_json(port: int, path: str = "/", **kwargs) -> dict:
    status, _, body = request(port, path, **kwargs)
    assert status == 200, body
    return json.loads(body)


# -- the welcome application --------------------------------------------------------------


@pytest.fixture(scope="module")
def welcome(tmp_path_factory):
    """(port, server) of ``twistd -n cyclone -p PORT``: no application given."""
    tmp = tmp_path_factory.mktemp("welcome")
    port = free_port()
    server = Server([*TWISTD_N, "cyclone", "-p", str(port)], tmp, tmp / "twistd.log")
    try:
        server.wait_tcp(port)
        yield port, server
    finally:
        server.stop()


def test_welcome_page_shows_version_and_working_examples(welcome):
    port, server = welcome
    status, headers, body = request(port, "/")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/html")
    assert f"cyclone {cyclone.__version__}" in body
    links = sorted(set(re.findall(r'<a href="(/[^"]+)"', body)))
    assert {"/hello", "/json", "/template", "/form", "/counter"} <= set(links)
    for link in links:
        status, _, page = request(port, link)
        assert status == 200, (link, page)
    # without -l, the welcome application is only reachable from this host
    assert f"on http://127.0.0.1:{port}/" in server.output()


def test_welcome_examples_do_what_they_say(welcome):
    port, _ = welcome
    assert request(port, "/hello?name=%3Cb%3E")[2] == "Hello, <b>!\n"
    assert request(port, "/hello")[1]["Content-Type"].startswith("text/plain")
    info = get_json(port, "/json?x=1")
    assert info["cyclone"] == cyclone.__version__
    assert info["arguments"] == {"x": ["1"]}
    table = request(port, "/template?size=3")[2]
    assert table.count("<tr>") == 3 and "<td>9</td>" in table and "<td>16</td>" not in table
    assert request(port, "/template?size=x")[0] == 400


def test_welcome_form_requires_the_xsrf_token(welcome):
    port, _ = welcome
    status, headers, page = request(port, "/form")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert cookie.startswith("_xsrf=")
    token = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert request(port, "/form", "POST", "message=hi", form)[0] == 403
    status, _, page = request(
        port, "/form", "POST", f"_xsrf={token}&message=%3Cscript%3E", {**form, "Cookie": cookie}
    )
    assert status == 200, page
    assert "You said: <strong>&lt;script&gt;</strong>" in page


def test_welcome_counter_counts_in_a_signed_cookie(welcome):
    port, _ = welcome
    _, headers, body = request(port, "/counter")
    assert "1 time." in body
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    _, headers, body = request(port, "/counter", headers={"Cookie": cookie})
    assert "2 times." in body
    # the value is signed: editing it starts the count again
    forged = cookie.replace("visits=", "visits=9", 1)
    assert "1 time." in request(port, "/counter", headers={"Cookie": forged})[2]
    assert "1 time." in request(port, "/counter?reset=1", headers={"Cookie": cookie})[2]


# -- loading applications ---------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        "mysite.web.Site",  # a class by dotted name
        "mysite.web:Site",  # module:attribute
        "mysite.web",  # a module: its only Application is found
        "mysite.web.make_site",  # a factory
    ],
)
def test_dotted_name_with_appopts(tmp_path, reference):
    write(tmp_path / "mysite" / "__init__.py", "")
    write(
        tmp_path / "mysite" / "web.py",
        app_source("Site") + "\n\ndef make_site(appopts=None):\n    return Site(appopts)\n",
    )
    port = free_port()
    # found from the current directory, like "python -m" does
    args = [*TWISTD_N, "cyclone", "-p", str(port), "-r", reference, "-c", "some options"]
    with Server(args, tmp_path, tmp_path / "twistd.log") as server:
        server.wait_tcp(port)
        assert get_json(port) == {"app": "Site", "appopts": "some options", "protocol": "http"}
        # an application listens on every interface unless told otherwise
        assert f"serving {reference} on http://0.0.0.0:{port}/" in server.output()


def test_python_file_imports_its_neighbours(tmp_path):
    write(tmp_path / "apps" / "helpers.py", "GREETING = 'from a neighbour'\n")
    write(
        tmp_path / "apps" / "server.py",
        app_source("Server") + "\nfrom helpers import GREETING\n",
    )
    port = free_port()
    args = [*TWISTD_N, "cyclone", "-p", str(port), "-l", "127.0.0.1", str(tmp_path / "apps" / "server.py")]
    with Server(args, tmp_path, tmp_path / "twistd.log") as server:
        server.wait_tcp(port)
        assert get_json(port) == {"app": "Server", "appopts": None, "protocol": "http"}


@pytest.mark.parametrize("option", ["--app", "-r", None])
def test_file_name_picks_one_of_several(tmp_path, option):
    write(tmp_path / "two.py", app_source("First", "Second"))
    port = free_port()
    picked = ["two.py:Second"] if option is None else [option, "two.py:Second"]
    with Server(
        [*TWISTD_N, "cyclone", "-p", str(port), *picked], tmp_path, tmp_path / "twistd.log"
    ) as server:
        server.wait_tcp(port)
        assert get_json(port)["app"] == "Second"


def test_application_instance_in_a_file(tmp_path):
    write(
        tmp_path / "instance.py",
        """
        import cyclone.web

        class Hello(cyclone.web.RequestHandler):
            def get(self):
                self.write("instance")

        application = cyclone.web.Application([(r"/", Hello)])
        """,
    )
    port = free_port()
    with Server(
        [*TWISTD_N, "cyclone", "-p", str(port), "instance.py"], tmp_path, tmp_path / "twistd.log"
    ) as server:
        server.wait_tcp(port)
        assert request(port)[2] == "instance"


def test_unix_socket(tmp_path):
    write(tmp_path / "app.py", app_source("Local"))
    sock_path = tmp_path / "app.sock"
    port = free_port()
    args = [*TWISTD_N, "cyclone", "-p", str(port), "-u", str(sock_path), "app.py"]
    with Server(args, tmp_path, tmp_path / "twistd.log") as server:
        server.wait_unix(sock_path)
        assert get_json(0, connection=UnixHTTPConnection(sock_path))["app"] == "Local"
        # -u replaces the TCP port
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def https_get(port: int, cafile: str, path: str = "/") -> dict:
    context = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("localhost", port, timeout=10, context=context)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        conn.close()


def test_tls_with_explicit_certificate(tmp_path, self_signed):
    cert, key = self_signed
    write(tmp_path / "app.py", app_source("Both"))
    port, tls_port = free_port(), free_port()
    args = [
        *TWISTD_N, "cyclone", "-p", str(port), "-l", "127.0.0.1",
        "--ssl-port", str(tls_port), "--ssl-cert", cert, "--ssl-key", key, "app.py",
    ]  # fmt: skip
    with Server(args, tmp_path, tmp_path / "twistd.log") as server:
        server.wait_tcp(port).wait_tcp(tls_port)
        assert get_json(port) == {"app": "Both", "appopts": None, "protocol": "http"}
        # the same application over TLS, verified against the test's certificate
        assert https_get(tls_port, cert) == {"app": "Both", "appopts": None, "protocol": "https"}
        assert f"on https://127.0.0.1:{tls_port}/" in server.output()


def test_tls_application_with_default_certificate_names(tmp_path, self_signed):
    cert, key = self_signed
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(cert, work / "server.crt")
    shutil.copy(key, work / "server.key")
    write(work / "app.py", app_source("Plain", "Secure"))
    port, tls_port = free_port(), free_port()
    args = [
        *TWISTD_N, "cyclone", "-p", str(port), "--app", "app.py:Plain",
        "--ssl-port", str(tls_port), "--ssl-app", "app.py:Secure", "--ssl-appopts", "tls only",
    ]  # fmt: skip
    with Server(args, work, tmp_path / "twistd.log") as server:
        server.wait_tcp(port).wait_tcp(tls_port)
        assert get_json(port)["app"] == "Plain"
        assert https_get(tls_port, cert) == {"app": "Secure", "appopts": "tls only", "protocol": "https"}


def test_tls_application_alone_serves_nothing_in_clear_text(tmp_path, self_signed):
    cert, key = self_signed
    write(tmp_path / "app.py", app_source("Secure"))
    port, tls_port = free_port(), free_port()
    args = [*TWISTD_N, "cyclone", "-p", str(port), "--ssl-port", str(tls_port), "--ssl-app", "app.py"]
    with Server(args, tmp_path, tmp_path / "twistd.log") as server:
        server.wait_tcp(tls_port)
        assert https_get(tls_port, cert)["app"] == "Secure"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_no_tls_just_because_server_crt_exists(tmp_path, self_signed):
    cert, key = self_signed  # written as server.crt and server.key in tmp_path
    assert Path(cert).parent == tmp_path and Path(cert).name == "server.crt"
    write(tmp_path / "app.py", app_source("Plain"))
    port = free_port()
    with Server(
        [*TWISTD_N, "cyclone", "-p", str(port), "app.py"], tmp_path, tmp_path / "twistd.log"
    ) as server:
        server.wait_tcp(port)
        assert get_json(port)["app"] == "Plain"
        server.stop()
        output = server.output()
    assert "https://" not in output
    assert "starting on 8443" not in output


def test_tac_file_using_the_plugin(tmp_path):
    write(tmp_path / "app.py", app_source("FromTac"))
    port = free_port()
    write(
        tmp_path / "site.tac",
        f"""
        from twisted.application import service
        from twisted.plugins.cyclone_plugin import Options, serviceMaker

        options = Options()
        options.parseOptions(["-p", "{port}", "-l", "127.0.0.1", "-c", "tac", "app.py"])
        application = service.Application("site")
        serviceMaker.makeService(options).setServiceParent(application)
        """,
    )
    with Server([*TWISTD_N, "--python=site.tac"], tmp_path, tmp_path / "twistd.log") as server:
        server.wait_tcp(port)
        assert get_json(port) == {"app": "FromTac", "appopts": "tac", "protocol": "http"}


# -- mistakes -------------------------------------------------------------------------------

BAD_FILES = {
    "none.py": (
        "import cyclone.web\nfrom cyclone.web import Application\n\n"
        "class Handler(cyclone.web.RequestHandler):\n    pass\n"
    ),
    "two.py": app_source("First", "Second"),
    "instance.py": "import cyclone.web\napplication = cyclone.web.Application([])\n",
    "broken.py": "import cyclone.web\n1 / 0\n",
}


@pytest.mark.parametrize(
    "args, message",
    [
        (["none.py"], "none.py defines no cyclone.web.Application subclass or instance"),
        (
            ["two.py"],
            "two.py defines several applications (First, Second); pick one, e.g. --app two.py:First",
        ),
        (
            ["-r", "two"],
            "module two defines several applications (First, Second); pick one, e.g. -r two.First",
        ),
        (["two.py:Third"], "two.py has no attribute 'Third'"),
        (["missing.py"], "missing.py: no such file"),
        (
            ["-r", "no_such_module.Application"],
            "cannot import no_such_module.Application: no module named 'no_such_module'",
        ),
        (["-r", "json.NoSuchApplication"], "json has no attribute 'NoSuchApplication'"),
        (["-r", "os.sep"], "os.sep is a str, not a cyclone.web.Application"),
        (["-r", "not a name"], "'not a name' is neither a file nor a dotted Python name"),
        (["broken.py"], "ZeroDivisionError"),
        (
            ["-c", "x", "instance.py"],
            "instance.py is an Application instance already, it cannot take -c/--appopts",
        ),
        (["-c", "x"], "-c/--appopts needs an application"),
        (["-r", "two.py:First", "two.py"], "give the application once"),
        (["-p", "http"], "invalid literal for int()"),
        (["-p", "70000"], "--port must be between 0 and 65535"),
        (["--ssl-key", "server.key"], "--ssl-key needs TLS"),
        (
            ["--ssl-cert", "missing.crt", "two.py:First"],
            "TLS certificate missing.crt: No such file or directory",
        ),
        (["--ssl-app", "two.py:First"], "TLS certificate server.crt: No such file or directory"),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(tmp_path, args, message):
    for name, source in BAD_FILES.items():
        write(tmp_path / name, source)
    result = run_command([*TWISTD_N, "cyclone", *args], tmp_path)
    assert result.returncode != 0, result.stdout
    assert message in result.stdout
    assert "starting on" not in result.stdout


def test_key_that_does_not_match_the_certificate(tmp_path, self_signed):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert, _ = self_signed
    other_key = tmp_path / "other.key"
    other_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    result = run_command([*TWISTD_N, "cyclone", "--ssl-cert", cert, "--ssl-key", str(other_key)], tmp_path)
    assert result.returncode != 0
    assert f"the private key {other_key} does not belong to the certificate {cert}" in result.stdout


def test_help_lists_the_options(tmp_path):
    result = run_command([*TWISTD, "cyclone", "--help"], tmp_path)
    assert result.returncode == 0, result.stdout
    for option in ("--port=", "--listen=", "--unix=", "--app=", "--appopts=", "--ssl-port=",
                   "--ssl-listen=", "--ssl-cert=", "--ssl-key=", "--ssl-app=", "--ssl-appopts="):  # fmt: skip
        assert option in result.stdout
    listing = run_command([*TWISTD, "--help"], tmp_path).stdout
    assert re.search(r"^\s+cyclone\s+A high performance web server", listing, re.M), listing


# -- the cyclone command -----------------------------------------------------------------------


def test_cyclone_command_without_arguments_prints_usage(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cyclone"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: cyclone run")
    unknown = run_command([sys.executable, "-m", "cyclone", "serve"], tmp_path)
    assert unknown.returncode == 2 and "usage: cyclone run" in unknown.stdout


def test_cyclone_run_serves_a_file(tmp_path):
    write(tmp_path / "app.py", app_source("ByCommand"))
    port = free_port()
    args = [sys.executable, "-m", "cyclone", "run", "-p", str(port), "-l", "127.0.0.1", "app.py"]
    with Server(args, tmp_path, tmp_path / "cyclone.log") as server:
        server.wait_tcp(port)
        assert get_json(port)["app"] == "ByCommand"


def test_cyclone_run_reports_bad_options(tmp_path):
    result = run_command([sys.executable, "-m", "cyclone", "run", "missing.py"], tmp_path)
    assert result.returncode == 1
    assert "missing.py: no such file" in result.stdout


def test_cyclone_app_delegates_to_the_generator(monkeypatch):
    calls = []

    class Generator:
        @staticmethod
        def main(argv):
            calls.append(argv)
            return 3

    monkeypatch.setitem(sys.modules, "cyclone.app", Generator)
    monkeypatch.setattr(cyclone, "app", Generator, raising=False)
    assert cyclone.cli.main(["app", "-p", "foo", "--git"]) == 3
    assert calls == [["-p", "foo", "--git"]]


def test_cyclone_app_matches_python_m_cyclone_app(tmp_path):
    via_command = run_command([sys.executable, "-m", "cyclone", "app", "--help"], tmp_path)
    direct = run_command([sys.executable, "-m", "cyclone.app", "--help"], tmp_path)
    assert (via_command.returncode, via_command.stdout) == (direct.returncode, direct.stdout)
    assert via_command.stdout.strip()
