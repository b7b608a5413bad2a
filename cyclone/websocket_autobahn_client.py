"""An echo client for the Autobahn|Testsuite's fuzzingserver mode::

    wstest -m fuzzingserver -s fuzzingserver.json          # listens on ws://127.0.0.1:9001
    python -m cyclone.websocket_autobahn_client --url ws://127.0.0.1:9001 --agent cyclone

It asks ``/getCaseCount``, runs every ``/runCase?case=N&agent=A`` with
``cyclone.websocket.websocket_connect`` as an echo client (permessage-deflate
offered, messages of up to 64 MiB: the 9.x cases send 16 MiB ones), then
asks ``/updateReports?agent=A`` to have the reports written. A case that
fails to connect is logged and the run goes on; the exit status is 0 once
the reports are updated.
"""

from __future__ import annotations

import argparse
import logging
import sys
import urllib.parse
from typing import Any

from twisted.internet import defer

from cyclone.websocket import WebSocketClosedError
from cyclone.websocket_client import websocket_connect

log = logging.getLogger("cyclone.autobahn")


def _url(base: str, path: str, **query: Any) -> str:
    url = base.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    return url


@defer.inlineCallbacks
def _read_all(conn: Any) -> Any:
    """Read until the connection closes; the messages read."""
    messages = []
    while True:
        message = yield conn.read_message()
        if message is None:
            return messages
        messages.append(message)


@defer.inlineCallbacks
def get_case_count(url: str) -> Any:
    conn = yield websocket_connect(_url(url, "/getCaseCount"))
    messages = yield _read_all(conn)
    return int(messages[0])


@defer.inlineCallbacks
def run_case(url: str, case: int, agent: str, compression: bool = True,
             max_message_size: int = 64 * 1024 * 1024) -> Any:
    """Echo everything case ``case`` sends until it closes; the close code."""
    conn = yield websocket_connect(_url(url, "/runCase", case=case, agent=agent),
                                   compression_options={} if compression else None,
                                   max_message_size=max_message_size)
    while True:
        message = yield conn.read_message()
        if message is None:
            return conn.close_code
        try:
            # waiting for the write keeps a fast sender from filling our memory
            yield conn.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            pass  # closing: read on until the end


@defer.inlineCallbacks
def update_reports(url: str, agent: str) -> Any:
    conn = yield websocket_connect(_url(url, "/updateReports", agent=agent))
    yield _read_all(conn)


@defer.inlineCallbacks
def run(url: str, agent: str, compression: bool = True, max_message_size: int = 64 * 1024 * 1024,
        cases: list[int] | None = None) -> Any:
    """Run the cases (all of them unless ``cases`` says which) and update
    the reports; the number of cases run."""
    count = yield get_case_count(url)
    log.info("%d cases", count)
    numbers = cases if cases is not None else list(range(1, count + 1))
    for case in numbers:
        try:
            code = yield run_case(url, case, agent, compression, max_message_size)
            log.info("case %d/%d: closed with %s", case, count, code)
        except Exception as e:  # a case may refuse or break the handshake on purpose
            log.warning("case %d/%d: %s", case, count, e)
    yield update_reports(url, agent)
    return len(numbers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="cyclone's WebSocket client against Autobahn's fuzzingserver")
    parser.add_argument("--url", default="ws://127.0.0.1:9001")
    parser.add_argument("--agent", default="cyclone")
    parser.add_argument("--no-compression", action="store_true", help="do not offer permessage-deflate")
    parser.add_argument("--max-message-size", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from twisted.internet import task

    def go(reactor: Any) -> Any:
        d = run(args.url, args.agent, not args.no_compression, args.max_message_size)
        d.addCallback(lambda n: print(f"{n} cases run, reports updated for {args.agent}", flush=True))
        return d

    task.react(go)


if __name__ == "__main__":
    main()
