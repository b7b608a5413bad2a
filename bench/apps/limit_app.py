"""The practical upper bound on Twisted: a raw Protocol that parses nothing.

It counts request ends (``\\r\\n\\r\\n``) and answers each with a canned
response picked by the first byte of the path. The only request it reads
further is ``POST /echo``: it takes the Content-Length to read the body and
echo it. ``Connection: close`` in a request head closes the connection after
the response (with the exact spelling wrk sends). The Date header is rebuilt
once a second; everything else is prebuilt bytes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from email.utils import formatdate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import HELLO, MESSAGE, install_reactor, parse_args, render_page, run_twisted  # noqa: E402

ARGS = parse_args(None if __name__ == "__main__" else [])  # importable by inproc.py
install_reactor(ARGS.reactor)

from twisted.internet import protocol, task  # noqa: E402

BODIES = {
    ord(" "): (b"text/plain; charset=utf-8", HELLO.encode()),
    ord("j"): (b"application/json", json.dumps(MESSAGE).encode()),
    ord("t"): (b"text/html; charset=utf-8", render_page().encode()),
}
CANNED: dict[int, bytes] = {}
CANNED_CLOSE: dict[int, bytes] = {}
ECHO_HEAD = b""


def rebuild() -> None:
    global ECHO_HEAD
    date = formatdate(time.time(), usegmt=True).encode()
    for key, (ctype, body) in BODIES.items():
        head = (
            b"HTTP/1.1 200 OK\r\nServer: limit\r\nDate: " + date
            + b"\r\nContent-Type: " + ctype
            + b"\r\nContent-Length: " + str(len(body)).encode()
        )
        CANNED[key] = head + b"\r\n\r\n" + body
        CANNED_CLOSE[key] = head + b"\r\nConnection: close\r\n\r\n" + body
    ECHO_HEAD = (
        b"HTTP/1.1 200 OK\r\nServer: limit\r\nDate: " + date
        + b"\r\nContent-Type: application/octet-stream\r\nContent-Length: "
    )


class Limit(protocol.Protocol):
    buf = b""

    def dataReceived(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out = []
        start = 0
        close = False
        while True:
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                break
            body_start = end + 4
            if buf[start] == 80:  # "P": POST /echo, read Content-Length bytes
                i = buf.find(b"Content-Length: ", start, end)
                length = int(buf[i + 16 : buf.index(b"\r\n", i)]) if i >= 0 else 0
                if len(buf) < body_start + length:
                    break
                body = buf[body_start : body_start + length]
                out.append(ECHO_HEAD + str(length).encode() + b"\r\n\r\n" + body)
                body_start += length
            elif buf.find(b"Connection: close", start, end) >= 0:
                out.append(CANNED_CLOSE.get(buf[start + 5], CANNED[32]))
                close = True
            else:
                out.append(CANNED.get(buf[start + 5], CANNED[32]))
            start = body_start
            if close:
                break
        self.buf = buf[start:] if start < len(buf) else b""
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if close:
            self.transport.loseConnection()


def make_factory() -> protocol.Factory:
    rebuild()
    factory = protocol.Factory.forProtocol(Limit)
    factory.noisy = False
    return factory


if __name__ == "__main__":
    factory = make_factory()
    task.LoopingCall(rebuild).start(1.0, now=False)
    run_twisted(factory, ARGS, "limit")
