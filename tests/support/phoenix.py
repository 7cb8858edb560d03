"""A small Phoenix channels client for the tests of /realtime/v1/websocket: it speaks the
frames Supabase's clients speak (vsn 1.0.0 objects, vsn 2.0.0 arrays and binary
broadcasts), keeps every frame it receives, and waits for the ones a test expects."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


@dataclass
class Received:
    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any


def socket_url(base: str, apikey: str | None, vsn: str = "2.0.0") -> str:
    url = base.replace("http", "ws", 1) + f"/realtime/v1/websocket?vsn={vsn}"
    return url + (f"&apikey={apikey}" if apikey else "")


def _decode_binary(data: bytes) -> Received:
    """A kind 4 frame (a broadcast of raw bytes)."""
    topic_size, event_size, meta_size = data[1], data[2], data[3]
    offset = 5
    topic = data[offset : offset + topic_size].decode()
    offset += topic_size
    event = data[offset : offset + event_size].decode()
    offset += event_size + meta_size
    return Received(None, None, topic, "broadcast", {"event": event, "binary": data[offset:]})


@dataclass
class Phoenix:
    socket: ClientConnection
    vsn: str
    frames: list[Received] = field(default_factory=list)
    _refs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _reader: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def open(cls, base: str, apikey: str | None, vsn: str = "2.0.0") -> Phoenix:
        socket = await websockets.connect(socket_url(base, apikey, vsn), max_size=2**22)
        client = cls(socket, vsn)
        client._reader = asyncio.ensure_future(client._read())
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                if isinstance(raw, bytes):
                    self.frames.append(_decode_binary(raw))
                    continue
                parsed = json.loads(raw)
                if self.vsn == "2.0.0":
                    self.frames.append(Received(*parsed))
                else:
                    self.frames.append(
                        Received(
                            parsed.get("join_ref"),
                            parsed.get("ref"),
                            parsed["topic"],
                            parsed["event"],
                            parsed["payload"],
                        )
                    )
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def close(self) -> None:
        await self.socket.close()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=5)

    @property
    def close_code(self) -> int | None:
        return self.socket.close_code

    async def push(self, topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
        ref = str(next(self._refs))
        if self.vsn == "2.0.0":
            await self.socket.send(json.dumps([join_ref, ref, topic, event, payload]))
        else:
            frame = {"join_ref": join_ref, "ref": ref, "topic": topic, "event": event}
            await self.socket.send(json.dumps({**frame, "payload": payload}))
        return ref

    async def reply(self, ref: str, within: float = 10) -> dict[str, Any]:
        frame = await self.wait(lambda f: f.event == "phx_reply" and f.ref == ref, within)
        payload: dict[str, Any] = frame.payload
        return payload

    async def join(
        self,
        topic: str,
        token: str | None,
        *,
        changes: list[dict[str, Any]] | None = None,
        presence: bool = False,
        self_broadcast: bool = False,
        ack: bool = False,
    ) -> dict[str, Any]:
        config = {
            "broadcast": {"self": self_broadcast, "ack": ack},
            "presence": {"key": "", "enabled": presence},
            "postgres_changes": changes or [],
            "private": False,
        }
        payload: dict[str, Any] = {"config": config}
        if token is not None:
            payload["access_token"] = token
        ref = await self.push(f"realtime:{topic}", "phx_join", payload, join_ref=None)
        return await self.reply(ref)

    async def wait(self, match: Any, within: float = 10) -> Received:
        deadline = asyncio.get_running_loop().time() + within
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                if match(frame):
                    return frame
            seen = len(self.frames)
            if self.closed.is_set() or asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no such frame; got {self.frames[-10:]}")
            await asyncio.sleep(0.02)

    def events(self, topic: str, event: str) -> list[Any]:
        return [f.payload for f in self.frames if f.topic == topic and f.event == event]

    async def broadcast(self, topic: str, event: str, payload: Any) -> str:
        body = {"type": "broadcast", "event": event, "payload": payload}
        return await self.push(f"realtime:{topic}", "broadcast", body)


def changes_of(client: Phoenix, topic: str) -> list[dict[str, Any]]:
    """The postgres_changes data a channel received, in order."""
    return [p["data"] for p in client.events(f"realtime:{topic}", "postgres_changes")]


async def wait_changes(
    client: Phoenix, topic: str, count: int, within: float = 10
) -> list[dict[str, Any]]:
    """The first ``count`` postgres_changes frames' payloads ({ids, data}) of a channel."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        frames: list[dict[str, Any]] = client.events(f"realtime:{topic}", "postgres_changes")
        if len(frames) >= count:
            return frames
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(frames)} of {count} changes: {client.frames[-10:]}")
        await asyncio.sleep(0.02)
