"""Presence: who is on a channel, shared by every gateway process through Redis.

Each tracked presence is one field of the channel's hash (``t:{org}:rtp:{channel}``:
presence ref -> key, meta, until). A track or untrack changes the hash and tells every
process's sockets on the channel (a ``presence`` message on the hub: Phoenix's
``presence_diff``); a join reads the hash (``presence_state``). The process that tracked a
presence renews its ``until`` every third of the time to live, so the presences of a
process that died expire: whoever reads them then removes them and announces their leave.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import msgspec
import structlog

from orgbase.core import keys
from orgbase.core.periodic import Periodic
from orgbase.core.redis import RedisClients

log = structlog.get_logger("orgbase.realtime")

Send = Callable[[UUID, str, bytes], Awaitable[int]]
State = dict[str, dict[str, list[dict[str, Any]]]]
"""Phoenix's shape: presence key -> {"metas": [meta, ...]}."""


class Tracked(msgspec.Struct, frozen=True):
    key: str
    meta: dict[str, Any]
    until: float


_decode = msgspec.json.Decoder(Tracked).decode


def _state(entries: list[Tracked]) -> State:
    state: State = {}
    for entry in entries:
        state.setdefault(entry.key, {"metas": []})["metas"].append(entry.meta)
    return state


class PresenceStore:
    def __init__(self, redis: RedisClients, send: Send, ttl_seconds: float) -> None:
        self.redis = redis
        self.send = send
        self.ttl = ttl_seconds
        self._mine: dict[tuple[UUID, str, str], Tracked] = {}
        self._renewer = Periodic("realtime presence", self._renew, ttl_seconds / 3)

    def start(self) -> None:
        self._renewer.start()

    async def stop(self) -> None:
        await self._renewer.stop()

    async def track(
        self,
        org: UUID,
        name: str,
        *,
        ref: str,
        key: str,
        meta: dict[str, Any],
        previous: str | None,
    ) -> None:
        """Track (or re-track, replacing ``previous``) a presence of this process."""
        meta = {**meta, "phx_ref": ref}
        left = self._mine.pop((org, name, previous), None) if previous else None
        if left is not None:
            meta["phx_ref_prev"] = previous
        entry = Tracked(key, meta, time.time() + self.ttl)
        self._mine[(org, name, ref)] = entry
        await self._write(org, name, {ref: entry}, remove=[previous] if previous else [])
        await self._announce(org, name, [entry], [left] if left is not None else [])

    async def untrack(self, org: UUID, name: str, ref: str) -> None:
        entry = self._mine.pop((org, name, ref), None)
        if entry is None:
            return
        removed = await self.redis.run(lambda r: r.hdel(keys.realtime_presence(org, name), ref))
        if removed:
            await self._announce(org, name, [], [entry])

    async def state(self, org: UUID, name: str) -> State:
        """Who is present now; presences past their time are removed and their leave told."""
        key = keys.realtime_presence(org, name)
        raw: dict[bytes | str, bytes | str] = await self.redis.run(lambda r: r.hgetall(key))
        now = time.time()
        live: list[tuple[bytes | str, Tracked]] = []
        expired: list[tuple[bytes | str, Tracked]] = []
        for field, value in raw.items():
            try:
                entry = _decode(value)
            except msgspec.DecodeError:
                continue
            (live if entry.until >= now else expired).append((field, entry))
        if expired:
            gone = [entry for field, entry in expired if await self._remove(key, field)]
            if gone:
                await self._announce(org, name, [], gone)
        return _state([entry for _, entry in live])

    async def _remove(self, key: str, field: bytes | str) -> bool:
        return bool(await self.redis.run(lambda r: r.hdel(key, field)))

    async def _write(
        self, org: UUID, name: str, entries: dict[str, Tracked], remove: list[str]
    ) -> None:
        key = keys.realtime_presence(org, name)
        mapping = {ref: msgspec.json.encode(entry) for ref, entry in entries.items()}

        async def write(r: Any) -> None:
            async with r.pipeline(transaction=False) as pipe:
                if remove:
                    pipe.hdel(key, *remove)
                pipe.hset(key, mapping=mapping)
                pipe.pexpire(key, int(self.ttl * 2000))
                await pipe.execute()

        await self.redis.run(write)

    async def _announce(
        self, org: UUID, name: str, joins: list[Tracked], leaves: list[Tracked]
    ) -> None:
        message = {
            "type": "presence",
            "channel": name,
            "joins": _state(joins),
            "leaves": _state(leaves),
        }
        await self.send(org, name, msgspec.json.encode(message))

    async def _renew(self) -> None:
        """Push the ``until`` of this process's presences forward."""
        by_channel: dict[tuple[UUID, str], dict[str, Tracked]] = {}
        until = time.time() + self.ttl
        for (org, name, ref), entry in list(self._mine.items()):
            renewed = msgspec.structs.replace(entry, until=until)
            self._mine[(org, name, ref)] = renewed
            by_channel.setdefault((org, name), {})[ref] = renewed
        for (org, name), entries in by_channel.items():
            await self._write(org, name, entries, remove=[])
