"""demos/github_auth in headless Chromium (Playwright), against the local
GitHub-like provider of tests/oauth_provider.py. Both run as child
processes; the browser follows the real redirect chain demo → provider →
demo and clicks the provider's Allow / Deny buttons.

Without Chromium or Playwright these tests skip, except under CI.
"""

from __future__ import annotations

import sys

import pytest

from tests.test_plugin import ROOT, Server, free_port
from tests.browser import expect

DEMO = ROOT / "demos" / "github_auth"


@pytest.fixture
def github_demo(tmp_path):
    """The provider (asking the user, --manual) and the demo pointed at it: the demo's URL."""
    provider_port, demo_port = free_port(), free_port()
    demo_url = f"http://127.0.0.1:{demo_port}/"
    provider = Server(
        [sys.executable, "-m", "tests.oauth_provider", "--port", str(provider_port),
         "--client-id", "demo-id", "--client-secret", "demo-secret",
         "--redirect-uri", f"{demo_url}auth/github", "--manual"],
        ROOT, tmp_path / "provider.log",
    )
    demo = Server(
        [sys.executable, "github_auth.py", "--port", str(demo_port), "--client-id", "demo-id",
         "--client-secret", "demo-secret", "--provider", f"http://127.0.0.1:{provider_port}"],
        DEMO, tmp_path / "demo.log",
    )
    try:
        provider.wait_tcp(provider_port)
        demo.wait_tcp(demo_port)
        yield demo_url
    finally:
        for server in (demo, provider):
            server.stop()
            print(f"--- {server.log_path.name} ---\n{server.output()}")


def test_sign_in_allow_see_gists_sign_out(github_demo, context):  # noqa: F811
    page = context.new_page()
    page.goto(github_demo)
    expect(page.locator("#anonymous")).to_be_visible()
    page.locator("#login-link").click()
    # at the provider: its page, on its own origin
    expect(page.locator("#scope")).to_have_text("read:user gist")
    assert page.url.startswith("http://127.0.0.1:") and "/oauth2/authorize?" in page.url
    page.locator("#allow").click()
    # back home, signed in, the gists fetched with the token
    expect(page.locator("#login")).to_have_text("octocat")
    expect(page.locator("#user")).to_contain_text("Mona Lisa Octocät")
    expect(page.locator("#gists li")).to_have_text(["Olá, gist", "bb6b426e72bf0549c29e"])
    assert page.url == github_demo
    cookies = {c["name"]: c for c in context.cookies()}
    assert "_oauth2_state" not in cookies  # used up by the callback
    assert cookies["session"]["httpOnly"]

    page.locator("#logout").click()
    expect(page.locator("#anonymous")).to_be_visible()


def test_deny_shows_why(github_demo, context):  # noqa: F811
    page = context.new_page()
    page.goto(github_demo)
    page.locator("#login-link").click()
    with page.expect_response(lambda r: "/auth/github?" in r.url and "error=" in r.url) as response:
        page.locator("#deny").click()
    assert response.value.status == 403
    expect(page.locator("#reason")).to_contain_text("access_denied")
    page.goto(github_demo)
    expect(page.locator("#anonymous")).to_be_visible()


def test_a_forged_callback_is_refused(github_demo, context):  # noqa: F811
    page = context.new_page()
    response = page.goto(f"{github_demo}auth/github?code=stolen&state=guess")
    assert response.status == 403
    expect(page.locator("#reason")).to_contain_text("no login in progress")
