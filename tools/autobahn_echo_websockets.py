"""Reference peer: an echo server on the `websockets` library (not cyclone).

Only here to show that tools/autobahn.sh works before cyclone has its own
WebSocket server, and as a yardstick for cyclone's results:

    tools/autobahn.sh server --fast -- \
        .venv/bin/python tools/autobahn_echo_websockets.py

Listens on 127.0.0.1:$PORT, echoes every message (text or binary) back as it
came, with permessage-deflate offered and no message size limit.
"""
import asyncio
import os

# The suite's 9.3/9.4 cases send 4-16 MiB in fragments as small as 64 bytes;
# websockets refuses messages of more than 4096 fragments (1009) unless told.
os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", str(2**20))

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main():
    port = int(os.environ["PORT"])
    async with serve(echo, "127.0.0.1", port, max_size=None,
                     compression="deflate") as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
