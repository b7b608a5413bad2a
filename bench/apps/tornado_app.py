"""The benchmark app on Tornado 6 (asyncio event loop), default settings."""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import HELLO, ITEMS, MESSAGE, TEMPLATE_DIR, TITLE, announce, form_summary, parse_args  # noqa: E402

import tornado.web  # noqa: E402


class HelloHandler(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(HELLO)


class JSONHandler(tornado.web.RequestHandler):
    def get(self):
        self.write(MESSAGE)


class EchoHandler(tornado.web.RequestHandler):
    def post(self):
        self.set_header("Content-Type", "application/octet-stream")
        self.write(self.request.body)


class FormHandler(tornado.web.RequestHandler):
    def post(self):
        self.set_header("Content-Type", "text/plain")
        self.write(form_summary([v for values in self.request.body_arguments.values() for v in values]))


class TemplateHandler(tornado.web.RequestHandler):
    def get(self):
        self.render("page.html", title=TITLE, items=ITEMS)


async def main(args) -> None:
    app = tornado.web.Application(
        [
            (r"/", HelloHandler),
            (r"/json", JSONHandler),
            (r"/echo", EchoHandler),
            (r"/template", TemplateHandler),
            (r"/form", FormHandler),
        ],
        template_path=TEMPLATE_DIR,
    )
    app.listen(args.port, address=args.host, backlog=1024)
    announce("tornado " + tornado.version, type(asyncio.get_running_loop()).__name__)
    await asyncio.Event().wait()


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.cprofile:
        import cProfile
        import signal

        profiler = cProfile.Profile()
        signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        profiler.enable()
        try:
            asyncio.run(main(ARGS))
        except KeyboardInterrupt:
            pass
        profiler.disable()
        profiler.dump_stats(ARGS.cprofile)
    else:
        asyncio.run(main(ARGS))
