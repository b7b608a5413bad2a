#!/usr/bin/env python3
"""A form that sends a mail with an attachment, through cyclone.mail.

    python mailform.py [--port 8888] [--smtp-host 127.0.0.1] [--smtp-port 25]
                       [--smtp-tls | --smtp-ssl] [--smtp-ca-certs FILE]
                       [--smtp-user USER]   (the password from $SMTP_PASSWORD)
                       [--from "Demo <demo@example.com>"]

Then open http://127.0.0.1:8888/, fill in the form, pick a file and send.
Any SMTP server does; for a local one that prints what it gets::

    python -m aiosmtpd -n -l 127.0.0.1:8025   # then --smtp-port 8025
"""

import argparse
import os
import secrets
import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.web
from cyclone import mail

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_UPLOAD = 10 * 1024 * 1024  # the whole form, attachment included (413 above it)


class FormHandler(cyclone.web.RequestHandler):
    def initialize(self, mailconf: dict, from_addr: str) -> None:
        self.mailconf = mailconf
        self.from_addr = from_addr

    def get(self) -> None:
        self.render("form.html", result=None, error=None)

    async def post(self) -> None:
        to = self.get_body_argument("to").strip()
        subject = self.get_body_argument("subject", "")
        text = self.get_body_argument("message", "")
        try:
            message = mail.Message(self.from_addr, [to], subject, text)
        except ValueError as exc:  # a bad address or a line break in the subject
            self.set_status(400)
            self.render("form.html", result=None, error=str(exc))
            return
        for upload in self.request.files.get("attachment", []):
            if upload.filename:  # an empty file input still sends a nameless part
                message.attach(upload.filename, mime=upload.content_type or None, content=upload.body)
        try:
            sent = await mail.sendmail(self.mailconf, message)
        except mail.MailError as exc:
            self.set_status(502)  # the mail server, not this form, said no
            self.render("form.html", result=None, error=str(exc))
            return
        self.render("form.html", result=f"Sent to {to} ({sent.accepted} recipient accepted).", error=None)


def make_app(mailconf: dict, from_addr: str) -> cyclone.web.Application:
    return cyclone.web.Application(
        [(r"/", FormHandler, {"mailconf": mailconf, "from_addr": from_addr})],
        template_path=os.path.join(HERE, "templates"),
        cookie_secret=secrets.token_hex(32),
        xsrf_cookies=True,
        max_body_size=MAX_UPLOAD,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--smtp-host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=None)
    security = parser.add_mutually_exclusive_group()
    security.add_argument("--smtp-tls", action="store_true", help="STARTTLS, required")
    security.add_argument("--smtp-ssl", action="store_true", help="SMTPS (TLS from the start)")
    parser.add_argument("--smtp-ca-certs", help="PEM file to check the server's certificate against")
    parser.add_argument("--smtp-user", help="log in as this user; the password is $SMTP_PASSWORD")
    parser.add_argument("--from", dest="from_addr", default="cyclone demo <demo@example.com>")
    options = parser.parse_args(argv)

    mailconf = {"host": options.smtp_host, "tls": options.smtp_tls, "ssl": options.smtp_ssl}
    if options.smtp_port:
        mailconf["port"] = options.smtp_port
    if options.smtp_ca_certs:
        mailconf["ca_certs"] = options.smtp_ca_certs
    if options.smtp_user:
        mailconf["username"] = options.smtp_user
        mailconf["password"] = os.environ.get("SMTP_PASSWORD", "")

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.listenTCP(options.port, make_app(mailconf, options.from_addr), interface=options.address)
    print(f"mail form on http://{options.address}:{options.port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
