"""Reference peer: a client on the `websockets` library (not cyclone).

Drives `wstest -m fuzzingserver` the way the suite expects a client to:
ask /getCaseCount, then for N in 1..count open /runCase?case=N&agent=A and
echo every message until the server closes, then open /updateReports?agent=A
so that wstest writes its report.  Used by

    tools/autobahn.sh client --fast -- \
        .venv/bin/python tools/autobahn_client_websockets.py

Reads PORT (and AUTOBAHN_AGENT, default "websockets") from the environment.
"""
import asyncio
import os
import sys
from urllib.parse import quote

# The suite's 9.3/9.4 cases send 4-16 MiB in fragments as small as 64 bytes;
# websockets refuses messages of more than 4096 fragments (1009) unless told.
os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", str(2**20))

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException


async def run_case(url):
    try:
        async with connect(url, max_size=None, compression="deflate") as ws:
            async for message in ws:
                await ws.send(message)
    except (ConnectionClosed, WebSocketException, OSError) as exc:
        # A failed case is wstest's to judge and report; go on with the next.
        print("case %s: %s: %s" % (url, type(exc).__name__, exc), file=sys.stderr)


async def main():
    base = "ws://127.0.0.1:%s" % os.environ["PORT"]
    agent = quote(os.environ.get("AUTOBAHN_AGENT", "websockets"))
    async with connect(base + "/getCaseCount") as ws:
        count = int(await ws.recv())
    for case in range(1, count + 1):
        await run_case("%s/runCase?case=%d&agent=%s" % (base, case, agent))
    async with connect("%s/updateReports?agent=%s" % (base, agent)) as ws:
        await ws.wait_closed()
    print("ran %d cases" % count)


if __name__ == "__main__":
    asyncio.run(main())
