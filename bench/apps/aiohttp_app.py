"""The benchmark app on aiohttp (default asyncio event loop, default settings).

aiohttp has no template engine of its own: /template is built with a loop
and html.escape (``_common.render_page``)."""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import HELLO, ITEMS, MESSAGE, TITLE, announce, form_summary, parse_args, render_page  # noqa: E402

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=HELLO)


async def json_(request: web.Request) -> web.Response:
    return web.json_response(MESSAGE)


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(body=body, content_type="application/octet-stream")


async def form(request: web.Request) -> web.Response:
    fields = await request.post()
    return web.Response(body=form_summary(list(fields.values())), content_type="text/plain")


async def template(request: web.Request) -> web.Response:
    return web.Response(text=render_page(TITLE, ITEMS), content_type="text/html")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/json", json_)
    app.router.add_post("/echo", echo)
    app.router.add_get("/template", template)
    app.router.add_post("/form", form)
    return app


if __name__ == "__main__":
    ARGS = parse_args()

    async def on_startup(app):
        announce("aiohttp " + aiohttp.__version__, type(asyncio.get_running_loop()).__name__)

    app = make_app()
    app.on_startup.append(on_startup)
    web.run_app(app, host=ARGS.host, port=ARGS.port, backlog=1024, print=None)
