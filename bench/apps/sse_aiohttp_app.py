"""SSE benchmark app on aiohttp with aiohttp-sse, as its documentation
shows a broadcast: each stream a task waiting on its own queue,
``EventSourceResponse.send`` per event; default settings (a ping every
15 s). Endpoints as ``sse_cyclone_app.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import announce, parse_args  # noqa: E402

from aiohttp import web  # noqa: E402
from aiohttp_sse import sse_response  # noqa: E402

SSE_DATA = '{"seq": %d, "symbol": "CYCL", "price": 101.25}'
queues: set = set()


async def events(request: web.Request) -> web.StreamResponse:
    queue: asyncio.Queue = asyncio.Queue()
    async with sse_response(request) as response:
        queues.add(queue)
        try:
            while response.is_connected():
                seq = await queue.get()
                await response.send(SSE_DATA % seq, id=str(seq), event="tick")
        finally:
            queues.discard(queue)
    return response


async def count(request: web.Request) -> web.Response:
    return web.Response(text=str(len(queues)))


async def publish(request: web.Request) -> web.Response:
    seq = int(request.query["seq"])
    for queue in queues:
        queue.put_nowait(seq)
    return web.Response(text=str(len(queues)))


if __name__ == "__main__":
    args = parse_args()
    app = web.Application()
    app.add_routes([web.get("/events", events), web.get("/count", count), web.get("/publish", publish)])
    announce("aiohttp", "asyncio")
    web.run_app(app, host=args.host, port=args.port, backlog=1024, print=None)
