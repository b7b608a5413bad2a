"""In-memory WebSocket echo round trips: cyclone.websocket_codec against wsproto.

One round trip: the client frames a message (masked), the server parses it
and frames the echo, the client parses that. No sockets, one process, so this
measures the codecs alone. Run: ``python bench/ws_codec.py [--seconds 1]``.
Needs ``pip install wsproto`` for the comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cyclone import websocket_codec as wc  # noqa: E402


def cyclone_pair(compress: bool):
    if compress:
        pmd, response = wc.negotiate_deflate(wc.deflate_offer())
        client_pmd = wc.accept_deflate_response(response)
    else:
        pmd = client_pmd = None
    client = wc.Codec(client=True, deflate=client_pmd, max_message_size=None)
    server = wc.Codec(client=False, deflate=pmd, max_message_size=None)
    Message = wc.Message

    def round_trip(message):
        for event in server.receive(client.message(message)):
            if type(event) is Message:
                out = server.message(event.data)
                (echo,) = client.receive(out)
                return echo.data

    return round_trip


def wsproto_pair(compress: bool):
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, Request, TextMessage
    from wsproto.extensions import PerMessageDeflate

    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    extensions = [PerMessageDeflate()] if compress else []
    server.receive_data(client.send(Request(host="localhost", target="/", extensions=extensions)))
    for event in server.events():
        if isinstance(event, Request):
            client.receive_data(server.send(AcceptConnection(
                extensions=[PerMessageDeflate()] if compress else [])))
    list(client.events())

    def round_trip(message):
        cls = TextMessage if isinstance(message, str) else BytesMessage
        server.receive_data(client.send(cls(data=message)))
        for event in server.events():
            client.receive_data(server.send(cls(data=event.data)))
            for echo in client.events():
                return echo.data

    return round_trip


def measure(round_trip, message, seconds: float) -> float:
    """Microseconds per round trip (best of 3 runs)."""
    assert round_trip(message) == message
    best = float("inf")
    for _ in range(3):
        n = 0
        batch = 100
        start = time.perf_counter()
        while True:
            for _ in range(batch):
                round_trip(message)
            n += batch
            elapsed = time.perf_counter() - start
            if elapsed > seconds / 3:
                break
        best = min(best, elapsed / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()
    try:
        import wsproto  # noqa: F401
        peers = [("cyclone", cyclone_pair), ("wsproto", wsproto_pair)]
    except ImportError:
        print("wsproto not installed: measuring cyclone only")
        peers = [("cyclone", cyclone_pair)]
    messages = [
        ("text 32 B", "x" * 32),
        ("binary 32 B", os.urandom(32)),
        ("text 64 KiB", "é" * 32768),
        ("binary 64 KiB", os.urandom(65536)),
    ]
    print(f"{'case':<28}" + "".join(f"{name:>14}" for name, _ in peers) + "   ratio")
    for compress in (False, True):
        for label, message in messages:
            results = [measure(make(compress), message, args.seconds) for _, make in peers]
            row = f"{label + (' deflate' if compress else ''):<28}"
            row += "".join(f"{us:>11.2f} µs" for us in results)
            if len(results) == 2:
                row += f"   {results[1] / results[0]:5.1f}x"
            print(row, flush=True)


if __name__ == "__main__":
    main()
