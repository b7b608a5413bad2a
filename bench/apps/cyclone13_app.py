"""The benchmark app on the original cyclone 1.3 (PyPI, installed with --no-deps on current Twisted), default settings."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import HELLO, ITEMS, MESSAGE, TEMPLATE_DIR, TITLE, install_reactor, parse_args, run_twisted  # noqa: E402

ARGS = parse_args(None if __name__ == "__main__" else [])  # importable by inproc.py
install_reactor(ARGS.reactor)

import cyclone.web  # noqa: E402


class HelloHandler(cyclone.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(HELLO)


class JSONHandler(cyclone.web.RequestHandler):
    def get(self):
        self.write(MESSAGE)


class EchoHandler(cyclone.web.RequestHandler):
    def post(self):
        self.set_header("Content-Type", "application/octet-stream")
        self.write(self.request.body)


class TemplateHandler(cyclone.web.RequestHandler):
    def get(self):
        return self.render("page.html", title=TITLE, items=ITEMS)


def make_factory() -> cyclone.web.Application:
    return cyclone.web.Application(
        [
            (r"/", HelloHandler),
            (r"/json", JSONHandler),
            (r"/echo", EchoHandler),
            (r"/template", TemplateHandler),
        ],
        template_path=TEMPLATE_DIR,
    )


if __name__ == "__main__":
    run_twisted(make_factory(), ARGS, "cyclone13")
