#!/usr/bin/env python3
"""A to-do list served over JSON-RPC and XML-RPC, with a page that uses it.

    python server.py [--port 8888] [--address 127.0.0.1]

Then open http://127.0.0.1:8888/ in a browser, or run ``python client.py
--port 8888``. Both protocols share one list:

* JSON-RPC 2.0 at ``/jsonrpc``: ``add(a, b)``, ``todo_add(text)``,
  ``todo_list()``, ``todo_done(item_id)``, ``todo_clear()`` and ``slow_echo(value,
  delay=0.05)`` (an ``async def`` that waits without blocking the server);
* XML-RPC at ``/xmlrpc``: ``add``, ``slow_echo``, and ``todo.add``,
  ``todo.list``, ``todo.done`` from a sub-handler, with ``system.*``
  introspection and multicall.

Errors are the protocol's own: an empty text is JSON-RPC error 1 (XML-RPC
fault 1); an unknown id is error 404 (fault 404).
"""

from __future__ import annotations

import argparse
import os
import sys
import xmlrpc.client

from twisted.internet import reactor, task
from twisted.logger import globalLogBeginner, textFileLogObserver

import cyclone.web
from cyclone.jsonrpc import JsonRPCError, JsonrpcRequestHandler
from cyclone.xmlrpc import XmlrpcRequestHandler

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_TEXT = 200  # characters in one to-do


class TodoList:
    """The shared state: to-do items in the order they were added."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.next_id = 1

    def add(self, text: str) -> dict:
        text = text.strip() if isinstance(text, str) else ""
        if not text or len(text) > MAX_TEXT:
            raise ValueError(f"a to-do is 1 to {MAX_TEXT} characters of text")
        item = {"id": self.next_id, "text": text, "done": False}
        self.next_id += 1
        self.items.append(item)
        return item

    def done(self, item_id: int) -> dict:
        for item in self.items:
            if item["id"] == item_id:
                item["done"] = True
                return item
        raise KeyError(item_id)


async def slow_echo(value, delay: float = 0.05):
    """Answer ``value`` after ``delay`` seconds (at most 2), without blocking the server."""
    await task.deferLater(reactor, min(max(float(delay), 0.0), 2.0), lambda: None)
    return value


class JsonApi(JsonrpcRequestHandler):
    def initialize(self, todos: TodoList) -> None:
        self.todos = todos

    def jsonrpc_add(self, a, b):
        return a + b

    async def jsonrpc_slow_echo(self, value, delay=0.05):
        return await slow_echo(value, delay)

    def jsonrpc_todo_add(self, text):
        try:
            return self.todos.add(text)
        except ValueError as exc:
            raise JsonRPCError(1, str(exc)) from None

    def jsonrpc_todo_list(self):
        return self.todos.items

    def jsonrpc_todo_done(self, item_id):
        try:
            return self.todos.done(item_id)
        except KeyError:
            raise JsonRPCError(404, "no such to-do", data=item_id) from None

    def jsonrpc_todo_clear(self):
        count = len(self.todos.items)
        self.todos.items.clear()
        return count


class XmlTodo:
    """``todo.*`` of the XML-RPC side."""

    def __init__(self, todos: TodoList) -> None:
        self.todos = todos

    def xmlrpc_add(self, text: str) -> dict:
        """Add a to-do; returns it (a struct with id, text and done)."""
        try:
            return self.todos.add(text)
        except ValueError as exc:
            raise xmlrpc.client.Fault(1, str(exc)) from None

    def xmlrpc_list(self) -> list:
        """Every to-do, oldest first."""
        return self.todos.items

    def xmlrpc_done(self, item_id: int) -> dict:
        """Mark a to-do done."""
        try:
            return self.todos.done(item_id)
        except KeyError:
            raise xmlrpc.client.Fault(404, f"no such to-do: {item_id}") from None


class XmlApi(XmlrpcRequestHandler):
    def initialize(self, todos: TodoList) -> None:
        self.subHandlers = {"todo": XmlTodo(todos)}

    def xmlrpc_add(self, a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    async def xmlrpc_slow_echo(self, value, delay=0.05):
        """Answer the value after a short while."""
        return await slow_echo(value, delay)


class PageHandler(cyclone.web.RequestHandler):
    def get(self) -> None:
        self.render("index.html")


def make_app() -> cyclone.web.Application:
    todos = TodoList()
    return cyclone.web.Application(
        [
            (r"/", PageHandler),
            (r"/jsonrpc", JsonApi, {"todos": todos}),
            (r"/xmlrpc", XmlApi, {"todos": todos}),
        ],
        template_path=HERE,
        static_path=os.path.join(HERE, "static"),
        max_body_size=64 * 1024,  # what a to-do list needs
        jsonrpc_max_batch_size=20,
        xmlrpc_max_multicall=20,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="TCP port (default 8888)")
    parser.add_argument("--address", default="127.0.0.1", help="interface (default 127.0.0.1)")
    options = parser.parse_args(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    reactor.listenTCP(options.port, make_app(), interface=options.address)
    print(f"rpc demo on http://{options.address}:{options.port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
