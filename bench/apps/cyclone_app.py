"""The benchmark app on cyclone (this checkout), with its default settings."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    HELLO, ITEMS, MESSAGE, TEMPLATE_DIR, TITLE, form_summary, install_reactor, parse_args, run_twisted,
)

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


class FormHandler(cyclone.web.RequestHandler):
    def post(self):
        # request.arguments: cyclone 1.3 has no body_arguments (the query is empty)
        self.set_header("Content-Type", "text/plain")
        self.write(form_summary([v for values in self.request.arguments.values() for v in values]))


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
            (r"/form", FormHandler),
        ],
        template_path=TEMPLATE_DIR,
    )


if __name__ == "__main__":
    run_twisted(make_factory(), ARGS, "cyclone")
