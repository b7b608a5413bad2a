"""bench/jsonrpc.py's cyclone server (default settings):
``cyclone.jsonrpc.JsonrpcRequestHandler`` at ``POST /rpc`` with one method,
``add(a, b)``.

    python jsonrpc_cyclone_app.py --port 8888 [--cprofile FILE]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import install_reactor, parse_args, run_twisted  # noqa: E402

ARGS = parse_args(None if __name__ == "__main__" else [])
install_reactor(ARGS.reactor)

import cyclone.web  # noqa: E402
from cyclone.jsonrpc import JsonrpcRequestHandler  # noqa: E402


class Rpc(JsonrpcRequestHandler):
    def jsonrpc_add(self, a, b):
        return a + b


def make_factory() -> cyclone.web.Application:
    return cyclone.web.Application([(r"/rpc", Rpc)])


if __name__ == "__main__":
    run_twisted(make_factory(), ARGS, "cyclone")
