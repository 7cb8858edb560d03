"""Redis keys written before the keys carried hash tags, moved to today's names: the Redis
step of ``orgbase migrate``.

One SCAN of every primary (redis-py's cluster client scans each primary with its own
cursor). Each old key is read, written under its new name, and only then deleted, so a run
cut short loses nothing and the next one finishes; a value written under the new name
since the upgrade is never overwritten. Old and new names hash to different cluster slots,
so no command or script touches both. What becomes of each family is said in
orgbase.services.redis.legacy_keys. A run that got through the whole keyspace records the
step in Redis (keys.DATA_LAYOUT); later runs then skip the scan unless asked to rescan.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from orgbase.core import keys
from orgbase.core.redis import RedisClients
from orgbase.services.redis.kv import ADOPT, write_keys
from orgbase.services.redis.legacy_keys import OldKey, classify

STEP = "redis-hash-tags"
BATCH = 500
"""Old keys read in one pipeline."""
CONCURRENCY = 32
"""Writes in flight at once (each its own slot's command or script)."""

MERGED = "_upgraded"
"""Set in a hash of counters once an old one was added to it (the readers sum only the
fields they know)."""
# KEYS: today's hash. ARGV: the old hash's ttl ms (-1: none), then field, count pairs.
# 1 added; 0 added by an earlier run (cut short before it deleted the old hash).
_MERGE = f"""
if redis.call('HEXISTS', KEYS[1], '{MERGED}') == 1 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], '{MERGED}', '1')
local ttl = tonumber(ARGV[1])
if ttl > 0 and redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

_COUNT = re.compile(rb"-?[0-9]{1,18}")
Found = tuple[str, OldKey]
Outcome = str | None
"""What became of one old key; None: it is left in place (unreadable)."""


@dataclass
class KeyUpgrade:
    counts: Counter[str] = field(default_factory=Counter)
    """``<family>: <outcome>`` -> keys."""
    recorded: str | None = None
    """When an earlier run finished (this one then skipped the scan)."""
    complete: bool = True
    """False when ``limit`` stopped the run: the next one goes on."""


async def upgrade_key_names(
    redis: RedisClients, *, rescan: bool = False, limit: int | None = None
) -> KeyUpgrade:
    """Move or drop every key of the old layout. ``limit``: stop after that many old keys
    (a large keyspace can be done over several runs); ``rescan``: scan even when an
    earlier run was recorded (after a rollback to an older release and a new upgrade)."""
    r = redis.primary
    if not rescan:
        done = await r.hget(keys.DATA_LAYOUT, STEP)
        if done is not None:
            return KeyUpgrade(recorded=done.decode() if isinstance(done, bytes) else done)
    mover = _Mover(r)
    result = KeyUpgrade()
    handled = 0
    batch: list[Found] = []
    async for raw in r.scan_iter(count=1000):
        found = _old(raw)
        if found is None:
            continue
        batch.append(found)
        if len(batch) >= BATCH or (limit is not None and handled + len(batch) >= limit):
            result.counts.update(await mover.move(batch))
            handled += len(batch)
            batch = []
            if limit is not None and handled >= limit:
                result.complete = False
                return result
    result.counts.update(await mover.move(batch))
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    await r.hset(keys.DATA_LAYOUT, STEP, finished)
    return result


def _old(raw: bytes | str) -> Found | None:
    try:
        name = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return None  # not a name orgbase ever wrote
    found = classify(name)
    return None if found is None else (name, found)


class _Mover:
    """Moves one batch of old keys: read them, write each under its new name, then delete
    those whose value is safe."""

    def __init__(self, r: Redis) -> None:
        self.r = r
        self._adopt = r.register_script(ADOPT)
        self._merge = r.register_script(_MERGE)

    async def move(self, batch: Sequence[Found]) -> Counter[str]:
        counts: Counter[str] = Counter()
        drops = [name for name, old in batch if old.action == "drop"]
        strings = [(name, old) for name, old in batch if old.action in ("kv", "copy")]
        hashes = [(name, old) for name, old in batch if old.action == "merge"]
        done = list(drops)
        counts.update(f"{old.family}: dropped" for _, old in batch if old.action == "drop")
        moved = await self._each(strings, "get", self._write_string)
        moved += await self._each(hashes, "hgetall", self._write_hash)
        for found, outcome in moved:
            name, old = found
            counts[f"{old.family}: {outcome or 'left (unreadable)'}"] += 1
            if outcome is not None:
                done.append(name)
        if done:
            await self.r.unlink(*done)
        return counts

    async def _read(
        self, found: Sequence[Found], command: str
    ) -> list[tuple[object, int | BaseException]]:
        """(value or error, ttl ms) of each key, in one pipeline."""
        if not found:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for name, _ in found:
                getattr(pipe, command)(name)
                pipe.pttl(name)
            answers = await pipe.execute(raise_on_error=False)
        return list(zip(answers[::2], answers[1::2], strict=True))

    async def _each(
        self,
        found: Sequence[Found],
        command: str,
        write: Callable[[OldKey, object, int], Awaitable[Outcome]],
    ) -> list[tuple[Found, Outcome]]:
        read = await self._read(found, command)
        outcomes: list[Outcome] = []
        for start in range(0, len(found), CONCURRENCY):
            group = range(start, min(start + CONCURRENCY, len(found)))
            outcomes += await asyncio.gather(
                *(self._write_one(write, found[i][1], *read[i]) for i in group)
            )
        return list(zip(found, outcomes, strict=True))

    @staticmethod
    async def _write_one(
        write: Callable[[OldKey, object, int], Awaitable[Outcome]],
        old: OldKey,
        value: object,
        ttl: int | BaseException,
    ) -> Outcome:
        for answer in (value, ttl):
            if isinstance(answer, ResponseError):
                return None  # not the type that family had: left for an operator to look at
            if isinstance(answer, BaseException):
                raise answer  # Redis itself failed: stop, the next run goes on
        assert isinstance(ttl, int)
        if value is None or value == {} or (ttl != -1 and ttl <= 0):
            return "expired"  # -2: gone since the scan; 0: expiring now
        try:
            return await write(old, value, ttl)
        except ResponseError:
            return None  # a counter that is not a number

    async def _write_string(self, old: OldKey, value: object, ttl: int) -> Outcome:
        assert old.new is not None
        assert isinstance(value, bytes)
        if old.action == "copy":
            copied = await self.r.set(old.new, value, px=ttl if ttl > 0 else None, nx=True)
            return "moved" if copied else "kept newer"
        assert old.org is not None
        assert old.key is not None
        now_ms = int(time.time() * 1000)
        status = await self._adopt(
            keys=write_keys(old.org, old.key), args=[value, max(ttl, 0), now_ms, 0, old.key]
        )
        return {1: "moved", 0: "kept newer"}.get(int(status), "org deleted")

    async def _write_hash(self, old: OldKey, value: object, ttl: int) -> Outcome:
        assert old.new is not None
        assert isinstance(value, dict)
        if not all(_COUNT.fullmatch(count) for count in value.values()):
            return None  # checked first: a script that fails halfway keeps what it did
        pairs = [item for name, count in value.items() for item in (name, count)]
        merged = await self._merge(keys=[old.new], args=[ttl, *pairs])
        return "merged" if int(merged) else "merged before"
