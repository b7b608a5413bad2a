"""demos/email: the form filled in by headless Chromium (Playwright), a file
attached, the mail received by aiosmtpd in this process and compared byte for
byte. The demo runs as a child process, as its README starts it.

Without Chromium, Playwright or aiosmtpd these tests skip, except under CI.
"""

from __future__ import annotations

import email
import email.policy
import sys

import pytest

from tests.test_mail import USERS, Recorder, server_tls, smtp_server  # noqa: F401 - fixtures
from tests.test_plugin import ROOT, Server, child_env, free_port
from tests.browser import expect

DEMO = ROOT / "demos" / "email"
ATTACHMENT = bytes(range(256)) * 64 + b"\r\n.\r\n"  # binary, with SMTP's end-of-data in it


@pytest.fixture
def mailform(tmp_path):
    """``mailform(*args, env=None) -> URL``: demos/email/mailform.py running."""
    servers: list[Server] = []

    def start(*args: str, env: dict | None = None) -> str:
        port = free_port()
        command = [sys.executable, "mailform.py", "--port", str(port), *args]
        server = Server(command, DEMO, tmp_path / "mailform.log", env=child_env(**(env or {})))
        servers.append(server)
        server.wait_tcp(port)
        return f"http://127.0.0.1:{port}/"

    yield start
    for server in servers:
        server.stop()
        print(f"--- mailform.log ---\n{server.output()}")


def fill_and_send(page, url, tmp_path):
    upload = tmp_path / "picture ü.png"
    upload.write_bytes(ATTACHMENT)
    page.goto(url)
    page.locator("#to").fill("zoe@example.org")
    page.locator("#subject").fill("Grüße 😀")
    page.locator("#message").fill("Hello,\nsee the picture.")
    page.locator("#attachment").set_input_files(str(upload))
    page.locator("#send").click()


def test_form_sends_a_mail_with_an_attachment(smtp_server, mailform, context, tmp_path):  # noqa: F811
    smtp_port, handler = smtp_server()
    url = mailform("--smtp-port", str(smtp_port), "--from", "Demo <demo@example.com>")
    page = context.new_page()
    fill_and_send(page, url, tmp_path)
    expect(page.locator("#result")).to_have_text("Sent to zoe@example.org (1 recipient accepted).")

    [(mail_from, rcpt_tos, raw)] = handler.messages
    assert (mail_from, rcpt_tos) == ("demo@example.com", ["zoe@example.org"])
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "Grüße 😀"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Hello,\nsee the picture.\n"
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == "picture ü.png"
    assert attachment.get_content_type() == "image/png"  # as the browser labelled it
    assert attachment.get_payload(decode=True) == ATTACHMENT


def test_form_over_starttls_with_login(smtp_server, server_tls, mailform, context, tmp_path):  # noqa: F811
    tls_context, cert = server_tls
    smtp_port, handler = smtp_server(tls_context=tls_context, require_starttls=True, auth=True)
    url = mailform(
        "--smtp-port", str(smtp_port), "--smtp-tls", "--smtp-ca-certs", cert, "--smtp-user", "alice",
        env={"SMTP_PASSWORD": USERS["alice"]},
    )
    page = context.new_page()
    fill_and_send(page, url, tmp_path)
    expect(page.locator("#result")).to_contain_text("Sent to zoe@example.org")
    assert handler.logins and handler.logins[-1][1] is True
    [(_, _, raw)] = handler.messages
    [attachment] = email.message_from_bytes(raw, policy=email.policy.default).iter_attachments()
    assert attachment.get_payload(decode=True) == ATTACHMENT


def test_form_shows_a_refused_recipient(smtp_server, mailform, context, tmp_path):  # noqa: F811
    smtp_port, handler = smtp_server(Recorder(refuse={"zoe@example.org"}))
    url = mailform("--smtp-port", str(smtp_port))
    page = context.new_page()
    with page.expect_response(lambda r: r.request.method == "POST") as response:
        fill_and_send(page, url, tmp_path)
    assert response.value.status == 502
    expect(page.locator("#error")).to_contain_text("refused every recipient")
    expect(page.locator("#error")).to_contain_text("550")
    assert handler.messages == []
