#!/usr/bin/env python3
"""The same server from Twisted code: cyclone's own clients, without threads.

    python twisted_client.py [--port 8888] "a to-do" ["another" ...]

Adds each argument as a to-do over JSON-RPC (``cyclone.httpclient.JsonRPC``,
all in one batch), marks the first one done over XML-RPC
(``cyclone.xmlrpc.Proxy``), and prints the list as both protocols see it.
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import defer, task

from cyclone.httpclient import JsonRPC
from cyclone.jsonrpc import JsonRPCError
from cyclone.xmlrpc import Proxy


async def run(base: str, texts: list[str]) -> None:
    json_rpc = JsonRPC(base + "jsonrpc", request_timeout=10)
    xml_rpc = Proxy(base + "xmlrpc", request_timeout=10)
    added = await json_rpc.batch([("todo_add", {"text": text}) for text in texts])
    for outcome in added:
        if isinstance(outcome, JsonRPCError):
            print(f"not added: {outcome.message}")
        else:
            print(f"added over JSON-RPC: {outcome['id']}: {outcome['text']}")
    first = next((outcome for outcome in added if not isinstance(outcome, JsonRPCError)), None)
    if first is not None:
        done = await xml_rpc.todo.done(first["id"])
        print(f"done over XML-RPC: {done['id']}: {done['text']}")
    # both protocols at once: the two Deferreds run side by side
    over_json, over_xml = await defer.gatherResults([json_rpc.todo_list(), xml_rpc.callRemote("todo.list")])
    print("same list over both:", over_json == over_xml)
    for item in over_json:
        print(f"[{'x' if item['done'] else ' '}] {item['id']}: {item['text']}")


def main(reactor, argv: list[str]) -> defer.Deferred:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("texts", nargs="+")
    options = parser.parse_args(argv)
    return defer.ensureDeferred(run(f"http://{options.address}:{options.port}/", options.texts))


if __name__ == "__main__":
    task.react(main, [sys.argv[1:]])
