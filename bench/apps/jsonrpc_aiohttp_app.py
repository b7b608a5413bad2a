"""bench/jsonrpc.py's aiohttp server (default settings, default asyncio loop):
JSON-RPC 2.0 at ``POST /rpc`` with one method, ``add(a, b)``, in the same
shape as cyclone's handler: the request object checked (version, method,
params, id), params by position or by name checked against the method's
signature before the call, batches answered in order, notifications not
answered (204), and the spec's error objects.

    python jsonrpc_aiohttp_app.py --port 8888
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import announce, parse_args  # noqa: E402

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402


def add(a, b):
    return a + b


METHODS = {name: (function, inspect.signature(function)) for name, function in {"add": add}.items()}
_ABSENT = object()


def error(code: int, message: str, rid=None) -> dict:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": rid}


async def answer(call):
    if type(call) is not dict or call.get("jsonrpc") != "2.0":
        return error(-32600, "Invalid Request")
    rid = call.get("id")
    if rid is not None and type(rid) not in (str, int, float):
        return error(-32600, "Invalid Request")
    method, params = call.get("method"), call.get("params", [])
    if type(method) is not str or type(params) not in (list, dict):
        return error(-32600, "Invalid Request", rid)
    notify = "id" not in call
    found = METHODS.get(method)
    if found is None:
        return None if notify else error(-32601, "Method not found", rid)
    function, signature = found
    args, kwargs = (params, {}) if type(params) is list else ((), params)
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return None if notify else error(-32602, "Invalid params", rid)
    try:
        result = function(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
    except Exception:
        return None if notify else error(-32603, "Internal error", rid)
    return None if notify else {"jsonrpc": "2.0", "result": result, "id": rid}


async def rpc(request: web.Request) -> web.Response:
    try:
        payload = json.loads(await request.read())
    except ValueError:
        return web.json_response(error(-32700, "Parse error"))
    if type(payload) is list:
        if not payload:
            return web.json_response(error(-32600, "Invalid Request"))
        answers = [a for a in await asyncio.gather(*(answer(c) for c in payload)) if a is not None]
    else:
        answers = await answer(payload)
    if not answers:
        return web.Response(status=204)
    return web.json_response(answers)


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/rpc", rpc)
    return app


if __name__ == "__main__":
    ARGS = parse_args()

    async def on_startup(app):
        announce("aiohttp " + aiohttp.__version__, type(asyncio.get_running_loop()).__name__)

    app = make_app()
    app.on_startup.append(on_startup)
    web.run_app(app, host=ARGS.host, port=ARGS.port, backlog=1024, print=None)
