"""The benchmark app on twisted.web (a Resource and a Site, default settings).

/template is built with a loop and html.escape (``_common.render_page``), as
for aiohttp; twisted.web.template would be slower and is not what a small
app that wants speed would pick."""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (  # noqa: E402
    HELLO, ITEMS, MESSAGE, TITLE, form_summary, install_reactor, parse_args, render_page, run_twisted,
)

ARGS = parse_args(None if __name__ == "__main__" else [])  # importable by inproc.py
install_reactor(ARGS.reactor)

from twisted.web import resource, server  # noqa: E402

HELLO_BYTES = HELLO.encode()


class Root(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        path = request.path
        if path == b"/":
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return HELLO_BYTES
        if path == b"/json":
            request.setHeader(b"Content-Type", b"application/json")
            return json.dumps(MESSAGE).encode()
        if path == b"/template":
            request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
            return render_page(TITLE, ITEMS).encode()
        request.setResponseCode(404)
        return b"not found"

    def render_POST(self, request):
        if request.path == b"/form":
            # twisted.web parses urlencoded bodies into request.args
            request.setHeader(b"Content-Type", b"text/plain")
            return form_summary([v for values in request.args.values() for v in values])
        if request.path != b"/echo":
            request.setResponseCode(404)
            return b"not found"
        request.setHeader(b"Content-Type", b"application/octet-stream")
        return request.content.read()


def make_factory() -> server.Site:
    site = server.Site(Root())
    site.noisy = False
    return site


if __name__ == "__main__":
    run_twisted(make_factory(), ARGS, "twistedweb")
