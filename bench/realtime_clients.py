"""One process of the realtime benchmark's subscribers (``bench/realtime_bench.py`` runs a
few, so the clients are not one process's event loop):

    python -m bench.realtime_clients MODE URL TOKENS_FILE COUNT

MODE ``bare``: plain sockets on the bare broadcast server; ``phoenix``: Supabase Realtime
sockets (vsn 2.0.0) joined to ``realtime:bench`` for broadcast; ``changes``: one socket per
token joined to ``realtime:changes`` for postgres_changes INSERTs on ``items``. Each
message carries when it was sent and its stage; the process prints ``READY``, collects
latencies until a line ``STOP`` (or the end of stdin), then prints one JSON line:
``{"stages": {stage: [milliseconds]}, "closed": sockets that ended early}``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import websockets
from websockets.asyncio.client import ClientConnection

Latencies = defaultdict[str, list[float]]
JOIN_TIMEOUT = 60.0


def socket_url(base: str, mode: str, apikey: str) -> str:
    if mode == "bare":
        return base
    return base.replace("http", "ws", 1) + f"/realtime/v1/websocket?vsn=2.0.0&apikey={apikey}"


def join_frame(mode: str, token: str, ref: int) -> str:
    if mode == "changes":
        topic = "realtime:changes"
        changes = [{"event": "INSERT", "schema": "public", "table": "items"}]
    else:
        topic, changes = "realtime:bench", []
    config = {
        "broadcast": {"self": False, "ack": False},
        "presence": {"key": "", "enabled": False},
        "postgres_changes": changes,
        "private": False,
    }
    payload = {"config": config, "access_token": token}
    return json.dumps([str(ref), str(ref), topic, "phx_join", payload])


def sent_and_stage(mode: str, raw: str | bytes) -> tuple[float, str] | None:
    """When the message was sent and its stage, or None for any other frame."""
    if mode == "bare":
        body = json.loads(raw)
        return float(body["t"]), str(body["s"])
    frame = json.loads(raw)
    if not isinstance(frame, list) or len(frame) != 5:
        return None
    event, payload = frame[3], frame[4]
    if event == "broadcast":
        inner = payload["payload"]
        return float(inner["t"]), str(inner["s"])
    if event == "postgres_changes":
        record = payload["data"]["record"]
        return float(record["title"]), str(record["status"])
    return None


async def opened(url: str, mode: str, token: str, ref: int) -> ClientConnection:
    socket = await websockets.connect(url, max_queue=None, open_timeout=JOIN_TIMEOUT)
    if mode != "bare":
        await socket.send(join_frame(mode, token, ref))
        while True:  # until the join's reply
            frame = json.loads(await asyncio.wait_for(socket.recv(), JOIN_TIMEOUT))
            if frame[3] == "phx_reply" and frame[1] == str(ref):
                if frame[4]["status"] != "ok":
                    raise SystemExit(f"join refused: {frame[4]}")
                break
    return socket


async def receive(socket: ClientConnection, mode: str, seen: Latencies) -> bool:
    """Record until the socket closes; False when it closed (the server ended it)."""
    try:
        async for raw in socket:
            found = sent_and_stage(mode, raw)
            if found is not None:
                sent, stage = found
                seen[stage].append(round((time.time() - sent) * 1000, 2))
    except websockets.ConnectionClosed:
        pass
    return False


async def main(mode: str, base: str, lines: list[str], count: int) -> None:
    """``lines``: the publishable key, then the tokens the sockets join with (in turn)."""
    apikey, tokens = lines[0], lines[1:]
    url = socket_url(base, mode, apikey)
    token_of = itertools.cycle(tokens)
    sockets: list[ClientConnection] = []
    for start in range(0, count, 50):  # joins in waves: the server's accept queue is short
        wave = [opened(url, mode, next(token_of), n) for n in range(start, min(count, start + 50))]
        sockets += await asyncio.gather(*wave)
    seen: Latencies = defaultdict(list)
    readers = [asyncio.ensure_future(receive(s, mode, seen)) for s in sockets]
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    closed = sum(1 for r in readers if r.done())
    for socket in sockets:
        await socket.close()
    print(json.dumps({"stages": seen, "closed": closed}), flush=True)


if __name__ == "__main__":
    credentials = Path(sys.argv[3]).read_text().split()
    asyncio.run(main(sys.argv[1], sys.argv[2], credentials, int(sys.argv[4])))
