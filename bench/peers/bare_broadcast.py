"""The fan-out benchmark's baseline: a bare ``websockets`` server that sends every text
message it gets to every other connection (``websockets.broadcast``), nothing else: no
protocol, no credentials, no Redis, one process.

    python -m bench.peers.bare_broadcast PORT
"""

from __future__ import annotations

import asyncio
import sys

import websockets
from websockets.asyncio.server import ServerConnection, broadcast

CONNECTED: set[ServerConnection] = set()


async def handler(connection: ServerConnection) -> None:
    CONNECTED.add(connection)
    try:
        async for message in connection:
            broadcast(CONNECTED - {connection}, message)
    finally:
        CONNECTED.discard(connection)


async def main(port: int) -> None:
    async with websockets.serve(handler, "127.0.0.1", port, max_queue=None):
        print("READY", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
