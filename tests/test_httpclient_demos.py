"""demos/httpclient: aggregate.py started as its README says, against
upstreams served here (or upstreams.py), asked with treq.

The upstreams served here answer only once *both* of the dashboard's
requests have arrived: a handler fetching one after the other would never
get its first answer and would show timeouts instead.
"""

from __future__ import annotations

import json
import sys

import pytest_twisted
import treq
from twisted.internet import defer

import cyclone.web
from tests.test_plugin import ROOT, Server, child_env, free_port

DEMO = ROOT / "demos" / "httpclient"


class Rendezvous:
    """Holds each arriving request until ``expected`` requests are in."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived: list[str] = []
        self._waiting: list[defer.Deferred] = []

    def arrive(self, name: str) -> defer.Deferred:
        self.arrived.append(name)
        waiter: defer.Deferred = defer.Deferred()
        self._waiting.append(waiter)
        if len(self.arrived) >= self.expected:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)
        return waiter


class Upstream(cyclone.web.RequestHandler):
    def initialize(self, name: str, rendezvous: Rendezvous | None = None, status: int = 200) -> None:
        self.name = name
        self.rendezvous = rendezvous
        self.status = status

    async def get(self) -> None:
        if self.rendezvous is not None:
            await self.rendezvous.arrive(self.name)
        self.set_status(self.status)
        self.write({"from": self.name, "city": self.get_argument("city"),
                    "accept": self.request.headers.get("Accept")})


def _start_demo(tmp_path, upstreams: dict[str, str], timeout: float = 10.0) -> tuple[Server, int]:
    port = free_port()
    args = [sys.executable, "aggregate.py", "--port", str(port), "--timeout", str(timeout)]
    for name, url in upstreams.items():
        args += ["--upstream", f"{name}={url}"]
    server = Server(args, DEMO, tmp_path / "aggregate.log", env=child_env())
    server.wait_tcp(port)
    return server, port


@pytest_twisted.inlineCallbacks
def test_the_dashboard_fetches_both_upstreams_at_once(listen, tmp_path):
    rendezvous = Rendezvous(expected=2)
    port = listen(cyclone.web.Application([
        (r"/weather", Upstream, {"name": "weather", "rendezvous": rendezvous}),
        (r"/news", Upstream, {"name": "news", "rendezvous": rendezvous}),
    ]))
    base = f"http://127.0.0.1:{port}"
    server, demo_port = _start_demo(tmp_path, {"weather": base + "/weather", "news": base + "/news"})
    try:
        response = yield treq.get(f"http://127.0.0.1:{demo_port}/dashboard", params={"city": "São Paulo"})
        page = json.loads((yield response.content()))
    finally:
        server.stop()
    assert response.code == 200
    assert page == {
        "city": "São Paulo",
        "weather": {"from": "weather", "city": "São Paulo", "accept": "application/json"},
        "news": {"from": "news", "city": "São Paulo", "accept": "application/json"},
    }
    assert sorted(rendezvous.arrived) == ["news", "weather"]


@pytest_twisted.inlineCallbacks
def test_a_failing_and_a_missing_upstream_leave_the_other_shown(listen, tmp_path):
    port = listen(cyclone.web.Application([
        (r"/weather", Upstream, {"name": "weather"}),
        (r"/broken", Upstream, {"name": "broken", "status": 500}),
    ]))
    base = f"http://127.0.0.1:{port}"
    server, demo_port = _start_demo(tmp_path, {
        "weather": base + "/weather",
        "broken": base + "/broken",
        "gone": f"http://127.0.0.1:{free_port()}/nothing",
    })
    try:
        response = yield treq.get(f"http://127.0.0.1:{demo_port}/dashboard?city=Oslo")
        page = json.loads((yield response.content()))
    finally:
        server.stop()
    assert response.code == 200
    assert page["weather"]["city"] == "Oslo"
    assert page["broken"] == {"error": "HTTP 500"}
    assert "refused" in page["gone"]["error"].lower()


@pytest_twisted.inlineCallbacks
def test_the_readme_commands_with_upstreams_py(tmp_path):
    upstream_port = free_port()
    upstreams = Server([sys.executable, "upstreams.py", "--port", str(upstream_port), "--delay", "0"],
                       DEMO, tmp_path / "upstreams.log", env=child_env())
    try:
        upstreams.wait_tcp(upstream_port)
        base = f"http://127.0.0.1:{upstream_port}"
        server, demo_port = _start_demo(tmp_path, {"weather": base + "/weather", "news": base + "/news"})
        try:
            response = yield treq.get(f"http://127.0.0.1:{demo_port}/dashboard?city=Lisbon")
            page = json.loads((yield response.content()))
        finally:
            server.stop()
    finally:
        upstreams.stop()
    assert page["weather"] == {"city": "Lisbon", "sky": "clear", "celsius": 21}
    assert page["news"]["headlines"] == ["cyclone fetches twice at once"]
