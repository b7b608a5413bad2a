"""What every benchmark app shares: the payloads, the template data and the
command line. Standard library only: each app runs in its own virtualenv.

Endpoints every app serves (the runner checks them before measuring):

``GET /``          ``Hello, World!`` as text/plain
``GET /json``      ``{"message": "Hello, World!"}`` as application/json
``POST /echo``     the request body (4 KiB in the benchmark) echoed back
``GET /template``  ``templates/page.html`` rendered with TITLE and ITEMS
                   (a loop over 20 items, every value HTML-escaped)
``POST /form``     an urlencoded form parsed by the framework: answers
                   ``<fields> <bytes>`` (how many fields, and the UTF-8 size
                   of their decoded values), see ``form_summary``
"""

from __future__ import annotations

import argparse
import html
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE_DIR = os.path.join(HERE, "templates")

HELLO = "Hello, World!"
MESSAGE = {"message": "Hello, World!"}

# Values that need escaping, so the escaper does real work.
TITLE = "Items & <friends>"
ITEMS = [{"id": i, "name": f"Item #{i} <b>\"{i * 7}\" & 'co'</b>"} for i in range(20)]


def render_page(title: str = TITLE, items: list = ITEMS) -> str:
    """The page of ``templates/page.html`` built with a loop and html.escape:
    the "template engine" of the apps whose framework has none."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>\n<html>\n<head><title>",
        esc(title),
        "</title></head>\n<body>\n<h1>",
        esc(title),
        "</h1>\n<ul>\n",
    ]
    for item in items:
        parts.append(f'<li id="item-{esc(str(item["id"]))}">{esc(item["name"])}</li>\n')
    parts.append("</ul>\n</body>\n</html>\n")
    return "".join(parts)


def form_summary(values) -> bytes:
    """``b"<count> <total UTF-8 bytes>"`` of a form's decoded values (str or bytes)."""
    total = sum(len(v.encode() if isinstance(v, str) else v) for v in values)
    return f"{len(values)} {total}".encode()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--reactor",
        default="default",
        help="Twisted apps: default, epoll, poll, select or asyncio",
    )
    parser.add_argument(
        "--cprofile",
        metavar="FILE",
        help="run under cProfile and dump the stats to FILE on SIGTERM/SIGINT",
    )
    return parser.parse_args(argv)


def install_reactor(name: str) -> None:
    """Install the named Twisted reactor (before anything imports the reactor)."""
    if name in ("", "default"):
        return
    if name == "asyncio":
        import asyncio

        from twisted.internet import asyncioreactor

        asyncioreactor.install(asyncio.new_event_loop())
    elif name == "epoll":
        from twisted.internet import epollreactor

        epollreactor.install()
    elif name == "poll":
        from twisted.internet import pollreactor

        pollreactor.install()
    elif name == "select":
        from twisted.internet import selectreactor

        selectreactor.install()
    else:
        raise SystemExit(f"unknown reactor {name!r}")


def run_twisted(factory, args: argparse.Namespace, name: str) -> None:
    """Listen with ``factory`` on args.host:args.port and run the reactor;
    under ``--cprofile`` profile until SIGTERM/SIGINT and dump the stats."""
    from twisted.internet import reactor

    reactor.listenTCP(args.port, factory, backlog=1024, interface=args.host)
    announce(name, type(reactor).__module__ + "." + type(reactor).__name__)
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()

        def stop(signum, frame):
            reactor.callFromThread(reactor.stop)

        reactor.callWhenRunning(signal.signal, signal.SIGTERM, stop)
        reactor.callWhenRunning(signal.signal, signal.SIGINT, stop)
        profiler.enable()
        reactor.run(installSignalHandlers=False)
        profiler.disable()
        profiler.dump_stats(args.cprofile)
    else:
        reactor.run()


def announce(name: str, loop: str) -> None:
    print(f"{name} ready on pid {os.getpid()}, python {sys.version.split()[0]}, loop {loop}", flush=True)
