"""Every variant of demos/helloworld, started the way its README says."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

from tests.test_plugin import ROOT, TWISTD_N, Server, child_env, free_port, get_json, request, run_command

HELLO = ROOT / "demos" / "helloworld"


def assert_hello(port: int) -> None:
    status, _, body = request(port, "/")
    assert (status, body) == (200, "Hello, world")


def test_script_with_listen_tcp(tmp_path):
    port = free_port()
    with Server([sys.executable, "helloworld.py", str(port)], HELLO, tmp_path / "out.log") as server:
        server.wait_tcp(port)
        assert_hello(port)


@pytest.mark.parametrize(
    "command, application",
    [
        ([*TWISTD_N, "cyclone"], ["helloworld_simple.py"]),  # twistd -n cyclone file.py
        ([sys.executable, "-m", "cyclone", "run"], ["helloworld_simple.py"]),  # cyclone run file.py
        ([*TWISTD_N, "cyclone"], ["-r", "helloworld_simple.Application"]),  # by dotted name
    ],
    ids=["twistd", "cyclone-run", "dotted-name"],
)
def test_simple_through_the_plugin(tmp_path, command, application):
    port = free_port()
    args = [*command, "-p", str(port), "-l", "127.0.0.1", *application]
    with Server(args, HELLO, tmp_path / "out.log") as server:
        server.wait_tcp(port)
        assert_hello(port)


def test_tac_file(tmp_path):
    port = free_port()
    env = child_env(HELLOWORLD_PORT=str(port))
    with Server([*TWISTD_N, "--python=helloworld.tac"], HELLO, tmp_path / "out.log", env=env) as server:
        server.wait_tcp(port)
        assert_hello(port)


PROXY_HEADERS = {"X-Real-IP": "203.0.113.7", "X-Forwarded-For": "203.0.113.7", "X-Scheme": "https"}


@pytest.mark.parametrize(
    "appopts, seen",
    [
        (["-c", "xheaders"], {"remote_ip": "203.0.113.7", "protocol": "https"}),
        ([], {"remote_ip": "127.0.0.1", "protocol": "http"}),  # headers ignored without xheaders
    ],
)
def test_simple_behind_a_proxy(tmp_path, appopts, seen):
    port = free_port()
    args = [*TWISTD_N, "cyclone", "-p", str(port), "-l", "127.0.0.1", *appopts, "helloworld_simple.py"]
    with Server(args, HELLO, tmp_path / "out.log") as server:
        server.wait_tcp(port)
        assert get_json(port, "/whoami", headers=PROXY_HEADERS) == seen


def test_nginx_conf_matches_the_instances_it_documents():
    conf = (HELLO / "nginx.conf").read_text()
    upstream = re.search(r"upstream cyclone \{(.*?)\}", conf, re.S).group(1)
    ports = re.findall(r"server 127\.0\.0\.1:(\d+);", upstream)
    assert len(ports) > 1
    # the comment's start loop launches exactly the upstream instances, with xheaders on
    assert re.search(r"for port in " + " ".join(ports) + r"; do", conf)
    assert "-c xheaders helloworld_simple.py" in conf
    for header, value in [("X-Real-IP", "$remote_addr"), ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
                          ("X-Scheme", "$scheme")]:  # fmt: skip
        assert re.search(rf"proxy_set_header {header} \{value};", conf), header


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_accepts_the_configuration(tmp_path):
    result = run_command(["nginx", "-t", "-p", str(tmp_path), "-c", str(HELLO / "nginx.conf")], tmp_path)
    assert result.returncode == 0, result.stdout
