"""The project generator (``python -m cyclone.app``) and its skeletons.

Every skeleton is generated, its own test suite is run in a subprocess, and
its server is started for real (twistd, or the Procfile's main.py) and
asked for ``/``. Bad arguments must fail with a message, status 2, and
nothing left on disk.
"""

from __future__ import annotations

import configparser
import gettext
import http.client
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import cyclone
from cyclone import app, i18n

SKELETONS = ("default", "signup", "foreman")
REAL_STAND_IN_PATH = app.plugin_stand_in_path
BIN_DIR = os.path.dirname(sys.executable)
COMMON_FILES = [
    ".gitignore",
    "README.md",
    "requirements.txt",
    "requirements-dev.txt",
    "{m}.conf",
    "{m}/__init__.py",
    "{m}/config.py",
    "{m}/utils.py",
    "{m}/views.py",
    "{m}/web.py",
    "twisted/plugins/{m}_plugin.py",
    "frontend/template/base.html",
    "frontend/template/index.html",
    "frontend/static/favicon.ico",
    "frontend/static/style.css",
    "frontend/locale/pt_BR/LC_MESSAGES/{m}.po",
    "frontend/locale/pt_BR/LC_MESSAGES/{m}.mo",
    "frontend/locale/es_ES/LC_MESSAGES/{m}.po",
    "frontend/locale/es_ES/LC_MESSAGES/{m}.mo",
    "scripts/cookie_secret.py",
    "tests/test_web.py",
]
DEPLOYMENT_FILES = [
    "start.sh",
    "scripts/{m}.service",
    "scripts/{m}@.service",
    "scripts/multicore.sh",
    "scripts/nginx.conf",
]
SIGNUP_FILES = [
    "{m}/users.py",
    "frontend/template/signup.html",
    "frontend/template/signin.html",
    "frontend/template/account.html",
    "tests/conftest.py",
    "tests/test_accounts.py",
]
FOREMAN_FILES = ["Procfile", ".env", "{m}/main.py"]
# (files present, files absent) per skeleton
LAYOUTS = {
    "default": (COMMON_FILES + DEPLOYMENT_FILES, SIGNUP_FILES + FOREMAN_FILES),
    "signup": (COMMON_FILES + DEPLOYMENT_FILES + SIGNUP_FILES, FOREMAN_FILES),
    "foreman": (COMMON_FILES + FOREMAN_FILES, DEPLOYMENT_FILES + SIGNUP_FILES),
}
# at least this many tests in each generated project
MIN_TESTS = {"default": 9, "signup": 15, "foreman": 10}


# -- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    """Poll until ``port`` accepts connections; fail if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"server not listening on {port} after {timeout}s:\n{log.read_text()}")
        # the pause between two attempts doubles as the check that it still runs
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"server exited with status {proc.returncode}:\n{log.read_text()}")


def http_get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept-Language": "en-US"})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        conn.close()


class Server:
    """A server subprocess, logging to a file, stopped on exit."""

    def __init__(self, argv: list[str], cwd: Path, port: int, env: dict | None = None) -> None:
        self.port = port
        self.log = cwd.parent / f"server-{port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )

    def __enter__(self) -> Server:
        try:
            wait_for_server(self.port, self.proc, self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def twistd() -> str:
    """The twistd command of this interpreter's environment."""
    path = os.path.join(BIN_DIR, "twistd")
    if not os.path.exists(path):
        path = shutil.which("twistd")
    assert path, "the twistd command is not installed"
    return path


def run_pytest(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def text_files(project: Path):
    for path in sorted(project.rglob("*")):
        if path.is_file() and ".git" not in path.parts and app._is_text(path.name):
            yield path


# -- generated projects, one per skeleton ---------------------------------------------------


@pytest.fixture(scope="module", params=SKELETONS)
def project(request, tmp_path_factory) -> tuple[str, Path]:
    """(skeleton, project path) of a project named after its skeleton."""
    skel = request.param
    target = tmp_path_factory.mktemp(f"gen-{skel}")
    name = f"my-{skel}"
    assert app.main(["-p", name, "-a", skel, "-t", str(target)]) == 0
    return skel, target / name


def test_layout(project):
    skel, path = project
    modname = path.name.replace("-", "_")
    present, absent = LAYOUTS[skel]
    for name in present:
        assert (path / name.format(m=modname)).is_file(), name
    for name in absent:
        assert not (path / name.format(m=modname)).exists(), name
    for entry in path.rglob("*"):
        assert "modname" not in entry.name
        assert not entry.name.endswith((".tmpl", ".pyc")) and not entry.name.startswith("dot-")
        assert entry.name != "__pycache__"
    # Twisted skips plugin directories that have an __init__.py
    assert not (path / "twisted" / "__init__.py").exists()
    assert not (path / "twisted" / "plugins" / "__init__.py").exists()


def test_substitution(project):
    skel, path = project
    modname = path.name.replace("-", "_")
    leftover = re.compile(r"\$\{?(" + "|".join(app.TEMPLATE_KEYS) + r")\b")
    for file in text_files(path):
        text = file.read_text(encoding="utf-8")
        assert not leftover.search(text), f"{file}: {leftover.search(text).group(0)} left"
        if file.suffix == ".py":
            compile(text, str(file), "exec")
            assert text.startswith(("# Copyright", "#!/usr/bin/env python3\n# Copyright")), file
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(path / f"{modname}.conf", encoding="utf-8")
    secret = conf.get("server", "cookie_secret")
    assert len(secret) >= 40 and not secret.startswith("b'")
    assert conf.getboolean("server", "xheaders") is True
    assert conf.get("frontend", "template_path") == "frontend/template"
    assert conf.has_option("sqlite", "enabled") and conf.has_option("sqlite", "database")
    assert "Welcome to %(project)s" in (path / "frontend/locale/pt_BR/LC_MESSAGES" / f"{modname}.po").read_text()
    # binaries are copied as they are
    skeleton_icon = app._skeleton_root() / "default" / "frontend" / "static" / "favicon.ico"
    assert (path / "frontend/static/favicon.ico").read_bytes() == skeleton_icon.read_bytes()


def test_file_modes(project):
    _, path = project
    for file in path.rglob("*"):
        mode = stat.S_IMODE(file.stat().st_mode)
        if file.is_file() and file.read_bytes().startswith(b"#!"):
            assert mode == 0o755, file
        elif file.is_file():
            assert not mode & 0o111, file


def test_translations_are_complete(project):
    """Every message of the code and templates is translated in each catalog,
    and the compiled .mo files hold the same translations."""
    _, path = project
    modname = path.name.replace("-", "_")
    messages = i18n.extract_messages([path / modname, path / "frontend" / "template"])
    msgids = {m.msgid for m in messages}
    assert "Welcome to %(project)s" in msgids
    for lang in ("pt_BR", "es_ES"):
        directory = path / "frontend" / "locale" / lang / "LC_MESSAGES"
        catalog = {m.msgid: m.msgstr for m in i18n.read_po(directory / f"{modname}.po") if m.msgid}
        missing = msgids - {k for k, v in catalog.items() if v}
        assert not missing, f"{lang}: untranslated {sorted(missing)}"
        with open(directory / f"{modname}.mo", "rb") as f:
            compiled = gettext.GNUTranslations(f)
        for msgid in msgids:
            assert compiled.gettext(msgid) == catalog[msgid]


def test_requirements_accept_this_cyclone(project):
    _, path = project
    lines = [ln for ln in (path / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    requirement = Requirement(lines[0])
    assert requirement.name == "cyclone"
    assert requirement.specifier and "==" not in str(requirement.specifier)
    assert requirement.specifier.contains(cyclone.__version__, prereleases=True)


def test_project_tests_pass(project):
    skel, path = project
    result = run_pytest(path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    match = re.match(r"(\d+) passed(, \d+ warnings?)? in ", summary)
    assert match, summary
    assert int(match.group(1)) >= MIN_TESTS[skel]


def test_server_answers(project):
    skel, path = project
    modname = path.name.replace("-", "_")
    port = free_port()
    if skel == "foreman":
        # as the Procfile runs it; main.py needs no PYTHONPATH
        env = {"PORT": str(port), "LISTEN": "127.0.0.1", "PYTHONPATH": ""}
        argv = [sys.executable, f"{modname}/main.py", f"{modname}.conf"]
    else:
        # twistd finds twisted/plugins/<modname>_plugin.py only through sys.path
        env = {"PYTHONPATH": str(path)}
        argv = [twistd(), "-n", modname, "-p", str(port)]
    with Server(argv, path, port, env):
        status, body = http_get(port, "/")
        assert status == 200
        assert f"Welcome to {path.name}" in body
        assert f"<title>{path.name}</title>" in body
        if skel == "signup":
            status, body = http_get(port, "/signup")
            assert status == 200 and 'name="_xsrf"' in body
            status, _ = http_get(port, "/account")
            assert status == 302


def test_start_script(tmp_path):
    """start.sh runs "twistd -n <modname>" with the project on PYTHONPATH."""
    assert app.main(["-p", "starter", "-t", str(tmp_path)]) == 0
    path = tmp_path / "starter"
    port = free_port()
    env = {"PATH": BIN_DIR + os.pathsep + os.environ.get("PATH", ""), "PYTHONPATH": ""}
    with Server(["./start.sh", "-p", str(port), "--listen", "127.0.0.1"], path, port, env):
        status, body = http_get(port, "/")
        assert status == 200 and "Welcome to starter" in body


def test_plugin_needs_the_project_on_sys_path(tmp_path):
    """Why start.sh and the systemd units set PYTHONPATH: the twistd command
    does not put the current directory on sys.path."""
    assert app.main(["-p", "plugged", "-t", str(tmp_path)]) == 0
    path = tmp_path / "plugged"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(args, **extra_env):
        return subprocess.run(
            [twistd(), *args], cwd=path, env={**env, **extra_env}, capture_output=True, text=True, timeout=60
        ).stdout

    assert "plugged web server" not in run(["--help"])
    with_path = run(["--help"], PYTHONPATH=".")
    assert re.search(r"^\s+plugged\s+plugged web server$", with_path, re.M), with_path
    help_text = run(["plugged", "--help"], PYTHONPATH=".")
    for option in ("--port=", "--listen=", "--config="):
        assert option in help_text
    # "python -m" puts the current directory on sys.path: "twist" finds it as is
    twist = subprocess.run(
        [sys.executable, "-m", "twisted", "--help"], cwd=path, env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert re.search(r"^\s+plugged\s+plugged web server$", twist, re.M), twist


def test_plugin_reports_a_bad_config(tmp_path):
    assert app.main(["-p", "badconf", "-t", str(tmp_path)]) == 0
    result = subprocess.run(
        [twistd(), "-n", "--pidfile=", "badconf", "-c", str(tmp_path / "missing.conf")],
        cwd=tmp_path / "badconf",
        env={**os.environ, "PYTHONPATH": "."},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "cannot read" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# -- the command line -----------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def plugin_stand_ins_in_tmp(tmp_path_factory):
    """In-process generation (module-scoped fixtures included) registers its
    twistd plugin in a scratch directory, not in the Twisted installation the
    test suite runs on."""
    scratch = tmp_path_factory.mktemp("stand-ins")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app, "plugin_stand_in_path", lambda modname: scratch / f"cyclone_project_{modname}.py")
        yield patch


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@needs_git
def test_subprocess_with_every_option(tmp_path):
    license_file = tmp_path / "LICENSE.txt"
    license_file.write_text("Copyright 2031 Example Corp.\nAll rights reserved.\n")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n")
    target = tmp_path / "out"
    target.mkdir()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(
        [
            sys.executable, "-m", "cyclone.app",
            "--project=Web-Shop", "--modname=shop", "--version=2.5", "--set-pkg-version",
            "--target", str(target), "--git", "--license", str(license_file), "--appskel=signup",
            "--no-register",
        ],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = target / "Web-Shop-2.5"
    assert str(path) in result.stdout
    assert sorted(p.name for p in target.iterdir()) == ["Web-Shop-2.5"]
    assert (path / "shop" / "users.py").is_file()
    assert (path / "shop.conf").is_file()
    web = (path / "shop" / "web.py").read_text()
    assert web.startswith("# Copyright 2031 Example Corp.\n# All rights reserved.\n")
    assert '__version__ = "2.5"' in (path / "shop" / "__init__.py").read_text()
    readme = (path / "README.md").read_text()
    assert readme.startswith("# Web-Shop\n") and "version\n2.5" in readme
    service = (path / "scripts" / "shop.service").read_text()
    assert f"WorkingDirectory={path}\n" in service
    assert f"ExecStart={path}/venv/bin/twistd -n --pidfile= shop -c {path}/shop.conf\n" in service
    # -g: a repository with every file added, nothing committed
    files = subprocess.run(
        ["git", "ls-files"], cwd=path, capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    for name in (".gitignore", "shop/web.py", "frontend/static/favicon.ico", "twisted/plugins/shop_plugin.py"):
        assert name in files
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, env=env).returncode != 0


@needs_git
def test_git_author_in_default_license(tmp_path, monkeypatch):
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert app.main(["-p", "withgit", "-g", "-t", str(tmp_path)]) == 0
    header = (tmp_path / "withgit" / "withgit" / "web.py").read_text().splitlines()[0]
    assert re.fullmatch(r"# Copyright \d{4} Ada Lovelace", header)
    assert "Author: Ada Lovelace <ada@example.com>\n" in (tmp_path / "withgit" / "README.md").read_text()
    assert (tmp_path / "withgit" / ".git").is_dir()
    # without -g, git is not asked
    assert app.main(["-p", "nogit", "-t", str(tmp_path)]) == 0
    header = (tmp_path / "nogit" / "nogit" / "web.py").read_text().splitlines()[0]
    assert header.endswith(" " + app.DEFAULT_NAME)
    assert not (tmp_path / "nogit" / ".git").exists()


def test_module_name_defaults_to_the_project_name(tmp_path):
    assert app.main(["-p", "Foo-Bar", "-t", str(tmp_path)]) == 0
    path = tmp_path / "Foo-Bar"
    assert (path / "foo_bar" / "web.py").is_file()
    assert (path / "foo_bar.conf").is_file()
    assert (path / "twisted" / "plugins" / "foo_bar_plugin.py").is_file()
    assert 'tapname = "foo_bar"' in (path / "twisted" / "plugins" / "foo_bar_plugin.py").read_text()


def test_cookie_secrets_differ(tmp_path):
    secrets = set()
    for name in ("one", "two"):
        assert app.main(["-p", name, "-t", str(tmp_path)]) == 0
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(tmp_path / name / f"{name}.conf")
        secrets.add(conf.get("server", "cookie_secret"))
    assert len(secrets) == 2


def test_help(capsys):
    assert app.main(["-h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m cyclone.app")
    for flag in (
        "--new",
        "--project=NAME",
        "--modname=NAME",
        "--version=VERSION",
        "--set-pkg-version",
        "--target=PATH",
        "--git",
        "--license=FILE",
        "--appskel=SKELETON",
    ):
        assert flag in out
    assert "default, foreman, signup" in out
    assert app.main(["--help"]) == 0


def test_available_skeletons():
    assert app.available_skeletons() == ["default", "foreman", "signup"]


def test_skeletons_from_a_source_checkout(monkeypatch):
    """Without an importable cyclone.appskel, appskel/ beside the package is used."""

    def not_installed(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(app.importlib.resources, "files", not_installed)
    root = app._skeleton_root()
    assert root == Path(app.__file__).resolve().parent.parent / "appskel"
    assert app.available_skeletons() == ["default", "foreman", "signup"]


def test_skeletons_from_the_package(tmp_path, monkeypatch):
    """The skeletons are looked up with importlib.resources: any Traversable works."""
    skeleton = tmp_path / "skels" / "mini"
    (skeleton / "modname").mkdir(parents=True)
    (skeleton / "modname" / "__init__.py.tmpl").write_text('NAME = "$project"  # $$HOME stays\n')
    (skeleton / "dot-gitignore").write_text("*.pyc\n")
    (skeleton / "modname" / "data.bin").write_bytes(b"$project\x00\xff")
    (skeleton / "run.sh").write_text("#!/bin/sh\necho $modname $PATH\n")
    requested = []

    def files(name):
        requested.append(name)
        return tmp_path / "skels"

    monkeypatch.setattr(app.importlib.resources, "files", files)
    assert app.available_skeletons() == ["mini"]
    path = app.new_project("tiny", target=tmp_path, skel="mini")
    assert requested and set(requested) == {"cyclone.appskel"}
    assert (path / "tiny" / "__init__.py").read_text() == 'NAME = "tiny"  # $HOME stays\n'
    assert (path / ".gitignore").read_text() == "*.pyc\n"
    assert (path / "tiny" / "data.bin").read_bytes() == b"$project\x00\xff"  # not text: raw
    assert (path / "run.sh").read_text() == "#!/bin/sh\necho tiny $PATH\n"
    assert stat.S_IMODE((path / "run.sh").stat().st_mode) == 0o755


def test_new_prints_a_runnable_server(tmp_path, capsys):
    assert app.main(["-n"]) == 0
    source = capsys.readouterr().out
    assert source.startswith("#!/usr/bin/env python3\n# Copyright ")
    compile(source, "hello.py", "exec")
    script = tmp_path / "hello.py"
    script.write_text(source)
    port = free_port()
    with Server([sys.executable, str(script), str(port)], tmp_path, port):
        assert http_get(port, "/") == (200, "Hello, world")


# -- refusals: a message, status 2, nothing left behind -------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["-p", "x"], "invalid project name 'x'"),
        (["--project=-bad"], "invalid project name '-bad'"),
        (["-p", "has space"], "invalid project name"),
        (["-p", "dot.ted"], "invalid project name"),
        (["-p", "9lives"], "invalid module name '9lives'"),
        (["-p", "ok", "-m", "Upper"], "invalid module name 'Upper'"),
        (["-p", "ok", "-m", "with-dash"], "invalid module name"),
        (["-p", "ok", "-m", "class"], "Python keyword"),
        (["-p", "frontend"], "module name 'frontend' is reserved"),
        (["-p", "ok", "-m", "tools"], "reserved"),
        (["-p", "ok", "-m", "twisted"], "reserved"),
        (["-p", "ok", "-m", "test"], "reserved"),
        (["-p", "ok", "-m", "cyclone"], "reserved"),
        (["-p", "ok", "-m", "tests"], "reserved"),
        (["-p", "json"], "standard library module 'json'"),
        (["-p", "ok", "-m", "os"], "standard library module 'os'"),
        (["-p", "web"], "twistd web"),
        (["-p", "ok", "-a", "nope"], "unknown skeleton 'nope' (available: default, foreman, signup)"),
        (["-p", "ok", "-v", "1 0"], "invalid version"),
        (["-p", "ok", "-l", "/nonexistent/license"], "cannot read license file"),
        (["-p", "ok", "--bogus"], "unrecognized arguments: --bogus"),
        (["-p"], "expected one argument"),
        ([], "a project name is required"),
    ],
)
def test_bad_arguments(tmp_path, capsys, args, message):
    target = tmp_path / "target"
    target.mkdir()
    assert app.main([*args, "-t", str(target)] if args != ["-p"] else args) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.err.startswith("cyclone.app: error: ")
    assert captured.out == ""
    assert list(target.iterdir()) == []


def test_bad_arguments_in_a_subprocess(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cyclone.app", "-p", "ok", "-m", "sys", "-t", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "would shadow the standard library module 'sys'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_existing_project_directory_is_left_alone(tmp_path, capsys):
    existing = tmp_path / "taken"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert app.main(["-p", "taken", "-t", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    # a file or a dangling symlink in the way counts too
    (tmp_path / "afile").write_text("")
    (tmp_path / "alink").symlink_to(tmp_path / "nowhere")
    assert app.main(["-p", "afile", "-t", str(tmp_path)]) == 2
    assert app.main(["-p", "alink", "-t", str(tmp_path)]) == 2
    assert app.main(["-p", "taken", "-v", "3", "-s", "-t", str(tmp_path)]) == 0  # taken-3 is free
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "alink", "taken", "taken-3"]


def test_bad_target(tmp_path, capsys):
    assert app.main(["-p", "ok", "-t", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert app.main(["-p", "ok", "-t", str(tmp_path / "file")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_unwritable_target_proc(capsys):
    # /proc refuses new directories even to root (for whom access() says yes)
    assert app.main(["-p", "ok", "-t", "/proc"]) == 2
    err = capsys.readouterr().err
    assert "/proc" in err and ("not writable" in err or "cannot write" in err)
    assert not os.path.exists("/proc/ok")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write in a read-only directory")
def test_unwritable_target_mode(tmp_path, capsys):
    target = tmp_path / "ro"
    target.mkdir()
    target.chmod(0o555)
    try:
        assert app.main(["-p", "ok", "-t", str(target)]) == 2
        assert "is not writable" in capsys.readouterr().err
        assert list(target.iterdir()) == []
    finally:
        target.chmod(0o755)


def test_failure_midway_leaves_nothing(tmp_path, capsys, monkeypatch):
    """A failure after files were written (here: compiling a catalog) removes
    the half-built project."""
    written = []
    real_write = app._write_file

    def spy(path, data, **kwargs):
        written.append(path)
        real_write(path, data, **kwargs)

    def broken_compile(po, mo):
        raise i18n.CompileError(f"{po}: broken on purpose")

    monkeypatch.setattr(app, "_write_file", spy)
    monkeypatch.setattr(i18n, "compile_po", broken_compile)
    assert app.main(["-p", "half", "-t", str(tmp_path)]) == 2
    assert "broken on purpose" in capsys.readouterr().err
    assert len(written) > 10  # it did get far
    assert list(tmp_path.iterdir()) == []


def test_git_failure_leaves_nothing(tmp_path, capsys, monkeypatch):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_git = fake_bin / "git"
    fake_git.write_text("#!/bin/sh\necho 'fatal: no git today' >&2\nexit 128\n")
    fake_git.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_bin))
    target = tmp_path / "target"
    target.mkdir()
    assert app.main(["-p", "ok", "-g", "-t", str(target)]) == 2
    err = capsys.readouterr().err
    assert "git init failed" in err and "no git today" in err
    assert list(target.iterdir()) == []


def test_missing_git_is_refused_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert app.main(["-p", "ok", "-g", "-t", str(tmp_path)]) == 2
    assert "needs git" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_new_project_api(tmp_path):
    path = app.new_project("apiproj", target=tmp_path, skel="foreman", version="0.9")
    assert path == tmp_path / "apiproj"
    assert (path / "Procfile").read_text() == "web: python apiproj/main.py apiproj.conf\n"
    with pytest.raises(app.ProjectError, match="already exists"):
        app.new_project("apiproj", target=tmp_path)


# -- the deployment scripts of a generated project -------------------------------------------


@pytest.fixture(scope="module")
def deployable(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("deploy")
    assert app.main(["-p", "deployme", "-t", str(target)]) == 0
    return target / "deployme"


def test_cookie_secret_script(deployable):
    script = deployable / "scripts" / "cookie_secret.py"
    printed = subprocess.run([str(script)], capture_output=True, text=True, check=True).stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", printed)
    conf = deployable / "deployme.conf"
    before = conf.read_text()
    subprocess.run([sys.executable, str(script), str(conf)], capture_output=True, check=True)
    after = conf.read_text()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(after)
    old = configparser.ConfigParser(interpolation=None)
    old.read_string(before)
    assert parser.get("server", "cookie_secret") != old.get("server", "cookie_secret")
    assert after.replace(parser.get("server", "cookie_secret"), "") == before.replace(
        old.get("server", "cookie_secret"), ""
    )


def test_multicore_script(deployable):
    script = deployable / "scripts" / "multicore.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    env = {**os.environ, "INSTANCES": "3", "FIRST_PORT": "9901"}
    out = subprocess.run([str(script), "upstream"], capture_output=True, text=True, env=env, check=True).stdout
    assert out == (
        "upstream deployme {\n    server 127.0.0.1:9901;\n    server 127.0.0.1:9902;\n    server 127.0.0.1:9903;\n}\n"
    )
    usage = subprocess.run([str(script)], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "install" in usage.stderr


def test_systemd_and_nginx_files(deployable):
    path = deployable
    service = (path / "scripts" / "deployme.service").read_text()
    assert f"ExecStart={path}/venv/bin/twistd -n --pidfile= deployme -c {path}/deployme.conf\n" in service
    assert f"Environment=PYTHONPATH={path}\n" in service
    template = (path / "scripts" / "deployme@.service").read_text()
    assert " deployme -c " in template and " -p %i -l 127.0.0.1\n" in template
    nginx = (path / "scripts" / "nginx.conf").read_text()
    assert "upstream deployme {" in nginx and "proxy_pass http://deployme;" in nginx
    for header in ("X-Real-IP $remote_addr", "X-Forwarded-For $proxy_add_x_forwarded_for", "X-Scheme $scheme"):
        assert f"proxy_set_header {header};" in nginx
    assert f"alias {path}/frontend/static/;" in nginx


def test_cd_project_and_twistd_runs_it(tmp_path, monkeypatch):
    """The README's promise: python -m cyclone.app -p NAME; cd NAME && twistd -n NAME,
    with no PYTHONPATH and no start.sh."""
    # this test registers in the real Twisted plugin directory, and cleans up
    monkeypatch.setattr(app, "plugin_stand_in_path", REAL_STAND_IN_PATH)
    modname = "regtest" + os.urandom(3).hex()
    stand_in = app.plugin_stand_in_path(modname)
    assert not stand_in.exists()
    try:
        assert app.main(["-p", modname, "-t", str(tmp_path)]) == 0
        assert stand_in.is_file()
        project = tmp_path / modname
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        with Server([twistd(), "-n", "--pidfile=", modname, "-p", str(port), "-l", "127.0.0.1"],
                    cwd=project, port=port, env={"PYTHONPATH": ""}):
            status, body = http_get(port, "/")
        assert status == 200 and modname in body
        # a deleted project disappears from twistd quietly
        shutil.rmtree(project)
        listing = subprocess.run([twistd(), "--help"], capture_output=True, text=True, env=env, timeout=60)
        assert listing.returncode == 0 and modname not in listing.stdout
    finally:
        stand_in.unlink(missing_ok=True)
        for leftover in stand_in.parent.glob(f"__pycache__/cyclone_project_{modname}.*"):
            leftover.unlink()


def test_skeletons_extend_default(tmp_path):
    """signup and foreman are layered on default: shared files come from it,
    their own files replace it, and foreman leaves out the twistd deployment."""
    assert app.main(["-p", "layered", "-a", "signup", "-t", str(tmp_path), "--no-register"]) == 0
    signup = tmp_path / "layered"
    default_root = app._skeleton_root() / "default"
    assert (signup / "start.sh").read_bytes().startswith(b"#!")
    assert (signup / "layered" / "users.py").is_file()
    # signup pages extend the default layout through its own page.html
    base = (signup / "frontend/template/base.html").read_text()
    assert "{% block nav %}" in base and "session" not in base  # default's, unchanged
    assert (default_root / "frontend/template/base.html").read_text().replace("$project", "layered") == base
    assert (signup / "frontend/template/account.html").read_text().startswith('{% extends "page.html" %}')
    assert (signup / "frontend/static/signup.css").is_file()
    assert app.main(["-p", "procfile", "-a", "foreman", "-t", str(tmp_path)]) == 0
    foreman = tmp_path / "procfile"
    assert (foreman / "Procfile").is_file() and not (foreman / "start.sh").exists()
    assert not (foreman / "scripts" / "multicore.sh").exists()
    assert (foreman / "scripts" / "cookie_secret.py").is_file()
