#!/usr/bin/env python3
"""Hello world in cyclone.bottle's style: decorated functions, run() starts the reactor.

python helloworld_bottle.py [port]        # default 8888, on 127.0.0.1
"""

import sys

from cyclone.bottle import route, run


@route("/")
def index(handler):
    return "Hello, world"


@route("/hello/{name}")
def hello(handler, name):
    return f"Hello, {name}"


if __name__ == "__main__":
    run(host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8888)
