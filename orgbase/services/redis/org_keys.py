"""An org's cache out of and back into Redis (``orgbase org export`` / ``import``): every
``t:{org}:`` key as Redis's own serialization (DUMP, RESTORE) with its time to live, so
every type comes back as it was and expires when it would have."""

from __future__ import annotations

import base64
from uuid import UUID

import msgspec
from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.redis import RedisClients, unlink_matching


class CachedKey(msgspec.Struct, frozen=True):
    key: str
    """The key after the org's prefix."""
    dump: str
    """DUMP's bytes, base64."""
    ttl_ms: int
    """Time to live left at the export (0: none)."""


async def dump_keys(redis: RedisClients, org: UUID) -> list[CachedKey]:
    start = keys.org_prefix(org)

    async def run(r: Redis) -> list[CachedKey]:
        found = []
        async for name in r.scan_iter(match=keys.org_pattern(org), count=1000):
            text = name.decode() if isinstance(name, bytes) else str(name)
            value = await r.dump(name)
            ttl = await r.pttl(name)
            if value is None or ttl == -2:  # expired meanwhile
                continue
            encoded = base64.b64encode(bytes(value)).decode()
            found.append(CachedKey(text[len(start) :], encoded, max(int(ttl), 0)))
        return found

    return await redis.run(run)


async def restore_keys(redis: RedisClients, org: UUID, cached: list[CachedKey]) -> int:
    start = keys.org_prefix(org)

    async def run(r: Redis) -> int:
        for item in cached:
            await r.restore(
                start + item.key, item.ttl_ms, base64.b64decode(item.dump), replace=True
            )
        return len(cached)

    return await redis.run(run)


async def drop_keys(redis: RedisClients, org: UUID) -> int:
    """An import cut short: the org's keys go."""
    return await redis.run(lambda r: unlink_matching(r, keys.org_pattern(org)))
