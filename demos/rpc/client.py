#!/usr/bin/env python3
"""A command-line client for server.py, over either protocol, with the
standard library only (urllib for JSON-RPC, xmlrpc.client for XML-RPC).

    python client.py [--port 8888] [--protocol json|xml] list
    python client.py add "water the plants"
    python client.py --protocol xml done 3
    python client.py tour          # a few calls of each kind, printed

It exits with status 1 (and the error on stderr) when the server answers
with a JSON-RPC error or an XML-RPC fault.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import urllib.request
import xmlrpc.client

_ids = itertools.count(1)


class JsonRpcError(Exception):
    def __init__(self, error: dict) -> None:
        data = f" ({error['data']})" if "data" in error else ""
        super().__init__(f"JSON-RPC error {error['code']}: {error['message']}{data}")
        self.error = error


def json_post(url: str, payload) -> object:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def json_call(url: str, method: str, *params, **named):
    answer = json_post(url, {"jsonrpc": "2.0", "method": method, "params": named or list(params), "id": next(_ids)})
    if "error" in answer:
        raise JsonRpcError(answer["error"])
    return answer["result"]


def show(items) -> None:
    for item in items:
        print(f"[{'x' if item['done'] else ' '}] {item['id']}: {item['text']}")


def tour(base: str) -> None:
    json_url, xml_url = base + "jsonrpc", base + "xmlrpc"
    xml = xmlrpc.client.ServerProxy(xml_url)
    print("JSON-RPC add(2, 3) =", json_call(json_url, "add", 2, 3))
    print("XML-RPC add(2, 3) =", xml.add(2, 3))
    print("JSON-RPC slow_echo =", json_call(json_url, "slow_echo", "hello", 0.01))
    batch = [{"jsonrpc": "2.0", "method": "add", "params": [i, i], "id": i} for i in range(3)]
    print("JSON-RPC batch =", [answer["result"] for answer in json_post(json_url, batch)])
    multicall = xmlrpc.client.MultiCall(xml)
    multicall.add(1, 1)
    multicall.slow_echo("async", 0.01)
    print("XML-RPC multicall =", list(multicall()))
    print("XML-RPC methods =", ", ".join(xml.system.listMethods()))
    try:
        json_call(json_url, "todo_add", "")
    except JsonRpcError as exc:
        print("JSON-RPC error as expected:", exc)
    try:
        xml.todo.done(99999)
    except xmlrpc.client.Fault as fault:
        print("XML-RPC fault as expected:", fault.faultCode, fault.faultString)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--protocol", choices=["json", "xml"], default="json")
    parser.add_argument("command", choices=["list", "add", "done", "tour"], nargs="?", default="tour")
    parser.add_argument("argument", nargs="?")
    options = parser.parse_args(argv)
    base = f"http://{options.address}:{options.port}/"
    xml = xmlrpc.client.ServerProxy(base + "xmlrpc")
    try:
        if options.command == "tour":
            tour(base)
        elif options.protocol == "json":
            if options.command == "list":
                show(json_call(base + "jsonrpc", "todo_list"))
            elif options.command == "add":
                show([json_call(base + "jsonrpc", "todo_add", text=options.argument or "")])
            else:
                show([json_call(base + "jsonrpc", "todo_done", int(options.argument))])
        else:
            if options.command == "list":
                show(xml.todo.list())
            elif options.command == "add":
                show([xml.todo.add(options.argument or "")])
            else:
                show([xml.todo.done(int(options.argument))])
    except (JsonRpcError, xmlrpc.client.Fault) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
