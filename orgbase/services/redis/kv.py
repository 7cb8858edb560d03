"""The org-scoped key-value cache (`/v1/kv/{key}`).

Keys live at ``t:{org}:kv:{key}``; values are JSON. A per-org index (a sorted set of key
names scored by expiry) enforces the key quota atomically in Lua, and forgets expired
keys as it goes. When Redis is unavailable these calls answer 503: the cache has no
fallback, and says so.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any
from uuid import UUID

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from orgbase.core import keys, rbac
from orgbase.core.context import OrgContext
from orgbase.core.errors import Conflict, Invalid, NotFound, TooLarge
from orgbase.core.redis import RedisClients, RedisUnavailable, unlink_matching
from orgbase.core.settings import KvSettings
from orgbase.services.redis.stats import RedisStats

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,255}")
DELETED_MARKER_SECONDS = 3600
"""How long a deleted org's marker refuses writes that were in flight at its deletion."""

# KEYS: value key, index, the org's deletion marker. ARGV: value, ttl ms (0: none), now ms,
# quota, key name. -2: the org was deleted (a write in flight when it was).
_SET = """
if redis.call('EXISTS', KEYS[3]) == 1 then return -2 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local known = redis.call('ZSCORE', KEYS[2], ARGV[5])
if not known and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return -1
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], '+inf', ARGV[5])
end
return 1
"""
# KEYS: value key, index, deletion marker. ARGV: increment, now ms, quota, key name. Keeps
# an existing TTL.
_INCR = """
if redis.call('EXISTS', KEYS[3]) == 1 then return {-2, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
local known = redis.call('ZSCORE', KEYS[2], ARGV[4])
if not known and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return {-1, 0}
end
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if not known then redis.call('ZADD', KEYS[2], '+inf', ARGV[4]) end
return {1, value}
"""


class Entry(msgspec.Struct):
    key: str
    value: Any
    ttl: int | None
    """Seconds left, or None when the key does not expire."""


def _key(name: str) -> str:
    if not KEY.fullmatch(name):
        raise Invalid(
            "keys are 1-256 characters of letters, digits and : . _ -, starting with a "
            "letter or digit",
            code="invalid_key",
        )
    return name


class KeyValueStore:
    def __init__(self, redis: RedisClients, settings: KvSettings, stats: RedisStats) -> None:
        self.redis = redis
        self.settings = settings
        self.stats = stats
        self._set = redis.primary.register_script(_SET)
        self._incr = redis.primary.register_script(_INCR)

    @staticmethod
    def _names(ctx: OrgContext, key: str) -> tuple[str, str, str]:
        org = ctx.org_id
        return keys.kv_value(org, key), keys.kv_index(org), keys.org_gone(org)

    async def get(self, ctx: OrgContext, key: str) -> Entry:
        value_key, _, _ = self._names(ctx, _key(key))

        async def read(r: Redis) -> tuple[bytes | None, int]:
            async with r.pipeline(transaction=False) as pipe:
                pipe.get(value_key)
                pipe.pttl(value_key)
                raw, ttl = await pipe.execute()
            return raw, int(ttl)

        raw, ttl_ms = await self.redis.run(read)
        org = str(ctx.org_id)
        self.stats.access(org, key)
        self.stats.kv_lookup(org, raw is not None)
        if raw is None:
            raise NotFound("no such key", code="key_not_found")
        return Entry(key, msgspec.json.decode(raw), None if ttl_ms < 0 else max(1, ttl_ms // 1000))

    async def set(self, ctx: OrgContext, key: str, value: Any, ttl: int | None) -> Entry:
        rbac.require(ctx, "member", "writing to the cache")
        value_key, index, marker = self._names(ctx, _key(key))
        encoded = msgspec.json.encode(value)
        if len(encoded) > self.settings.max_value_bytes:
            raise TooLarge(
                f"values are limited to {self.settings.max_value_bytes} bytes",
                code="value_too_large",
            )
        if ttl is not None and not (1 <= ttl <= self.settings.max_ttl_seconds):
            raise Invalid(
                f"ttl is 1 to {self.settings.max_ttl_seconds} seconds", code="invalid_ttl"
            )
        now_ms = int(time.time() * 1000)
        done = await self.redis.run(
            lambda r: self._set(
                keys=[value_key, index, marker],
                args=[encoded, (ttl or 0) * 1000, now_ms, self.settings.max_keys_per_org, key],
                client=r,
            )
        )
        if int(done) == -2:
            raise _org_gone()
        if int(done) < 0:
            raise self._over_quota()
        self.stats.access(str(ctx.org_id), key)
        return Entry(key, value, ttl)

    async def increment(self, ctx: OrgContext, key: str, by: int) -> Entry:
        rbac.require(ctx, "member", "writing to the cache")
        value_key, index, marker = self._names(ctx, _key(key))
        now_ms = int(time.time() * 1000)
        try:
            status, value = await self.redis.run(
                lambda r: self._incr(
                    keys=[value_key, index, marker],
                    args=[by, now_ms, self.settings.max_keys_per_org, key],
                    client=r,
                )
            )
        except ResponseError as exc:
            raise Conflict("the value is not an integer", code="not_an_integer") from exc
        if int(status) == -2:
            raise _org_gone()
        if int(status) < 0:
            raise self._over_quota()
        self.stats.access(str(ctx.org_id), key)
        return Entry(key, int(value), None)

    async def delete(self, ctx: OrgContext, key: str) -> None:
        rbac.require(ctx, "member", "writing to the cache")
        value_key, index, _ = self._names(ctx, _key(key))

        async def remove(r: Redis) -> int:
            async with r.pipeline(transaction=True) as pipe:
                pipe.delete(value_key)
                pipe.zrem(index, key)
                deleted, _ = await pipe.execute()
            return int(deleted)

        if not await self.redis.run(remove):
            raise NotFound("no such key", code="key_not_found")

    def _over_quota(self) -> Conflict:
        return Conflict(
            f"this org already holds {self.settings.max_keys_per_org} keys, its quota",
            code="quota_exceeded",
            hint="delete keys or give them a ttl",
        )

    async def org_closed(self, org_id: UUID) -> None:
        """An org is being deleted: refuse the cache writes still in flight."""
        with contextlib.suppress(RedisUnavailable):
            await self.redis.run(
                lambda r: r.set(_deleted_marker(org_id), b"1", ex=DELETED_MARKER_SECONDS)
            )

    async def purge_org(self, org_id: UUID) -> int:
        """Delete every key of an org (when the org is deleted)."""
        return await self.redis.run(lambda r: unlink_matching(r, keys.org_pattern(org_id)))


def _deleted_marker(org_id: UUID) -> str:
    return keys.org_gone(org_id)


def _org_gone() -> NotFound:
    return NotFound("no such org", code="org_not_found")
