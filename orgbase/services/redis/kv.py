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
from dataclasses import KW_ONLY, dataclass, field
from typing import Any
from uuid import UUID

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from orgbase.core import keys, rbac
from orgbase.core.context import OrgContext
from orgbase.core.errors import Conflict, Invalid, NotFound, TooLarge
from orgbase.core.org_usage import OrgUsage
from orgbase.core.pg_errors import org_not_found
from orgbase.core.redis import RedisClients, RedisUnavailable, unlink_matching
from orgbase.core.settings import KvSettings
from orgbase.services.redis.stats import RedisStats

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,255}")
DELETED_MARKER_SECONDS = 3600
"""How long a deleted org's marker refuses writes that were in flight at its deletion."""

# Every write first forgets the org's expired keys, with their sizes. KEYS[2] is the index
# (key names scored by expiry); KEYS[4] the bytes the org's values take, KEYS[5] each
# value's size (value plus name), so the storage quota holds however keys come and go.
_FORGET_EXPIRED = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if #expired > 0 then
  local freed = 0
  for _, name in ipairs(expired) do
    local size = redis.call('HGET', KEYS[5], name)
    if size then
      freed = freed + tonumber(size)
      redis.call('HDEL', KEYS[5], name)
    end
  end
  if freed > 0 then redis.call('DECRBY', KEYS[4], freed) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
end
"""
# Stores ARGV[1] under KEYS[1] for ARGV[2] ms (0: no expiry), indexes its name ARGV[5] by
# expiry (now: ARGV[3]) and records its size ``new``.
_STORE = """
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], '+inf', ARGV[5])
end
redis.call('HSET', KEYS[5], ARGV[5], new)
"""
# KEYS: value key, index, the org's deletion marker, bytes, sizes. ARGV: value, ttl ms (0:
# none), now ms, key quota, key name, byte quota. {status, bytes held}: -2 the org was
# deleted (a write in flight when it was), -1 over the key quota, -3 over the byte quota.
_SET = (
    """
if redis.call('EXISTS', KEYS[3]) == 1 then return {-2, 0} end
"""
    + _FORGET_EXPIRED
    + """
local known = redis.call('ZSCORE', KEYS[2], ARGV[5])
if not known and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return {-1, 0}
end
local used = tonumber(redis.call('GET', KEYS[4]) or '0')
local old = tonumber(redis.call('HGET', KEYS[5], ARGV[5]) or '0')
local new = string.len(ARGV[1]) + string.len(ARGV[5])
if new > old and used - old + new > tonumber(ARGV[6]) then return {-3, used} end
"""
    + _STORE
    + """
return {1, redis.call('INCRBY', KEYS[4], new - old)}
"""
)
# KEYS: as _SET. ARGV: increment, now ms (ARGV[3] of _FORGET_EXPIRED: given twice), key
# quota, key name, byte quota. Keeps an existing TTL. {status, value, bytes held}.
_INCR = (
    """
if redis.call('EXISTS', KEYS[3]) == 1 then return {-2, 0, 0} end
"""
    + _FORGET_EXPIRED
    + """
local known = redis.call('ZSCORE', KEYS[2], ARGV[4])
if not known and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  return {-1, 0, 0}
end
local used = tonumber(redis.call('GET', KEYS[4]) or '0')
if used > tonumber(ARGV[6]) then return {-3, 0, used} end
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if not known then redis.call('ZADD', KEYS[2], '+inf', ARGV[4]) end
local old = tonumber(redis.call('HGET', KEYS[5], ARGV[4]) or '0')
local new = redis.call('STRLEN', KEYS[1]) + string.len(ARGV[4])
redis.call('HSET', KEYS[5], ARGV[4], new)
return {1, value, redis.call('INCRBY', KEYS[4], new - old)}
"""
)
# A value stored under an earlier layout, taken into the org's index and sizes without a
# quota check (it was there before; the byte quota then refuses only growth). KEYS and ARGV
# as _SET's (the quotas unused). 1 adopted; 0 a value is already there (written since: it
# wins); -2 the org is being deleted.
ADOPT = (
    """
if redis.call('EXISTS', KEYS[3]) == 1 then return -2 end
"""
    + _FORGET_EXPIRED
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local old = tonumber(redis.call('HGET', KEYS[5], ARGV[5]) or '0')
local new = string.len(ARGV[1]) + string.len(ARGV[5])
"""
    + _STORE
    + """
redis.call('INCRBY', KEYS[4], new - old)
return 1
"""
)
# KEYS: value key, index, bytes, sizes. ARGV: key name. 1 when the key was there.
_DELETE = """
local deleted = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local size = redis.call('HGET', KEYS[4], ARGV[1])
if size then
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('DECRBY', KEYS[3], tonumber(size))
end
return deleted
"""


class Entry(msgspec.Struct):
    key: str
    value: Any
    ttl: int | None
    """Seconds left, or None when the key does not expire."""


def write_keys(org: UUID | str, key: str) -> list[str]:
    """The KEYS of the write scripts (_SET, _INCR, ADOPT): the value, the org's index, its
    deletion marker, bytes and sizes (one slot: all tagged by the org)."""
    return [
        keys.kv_value(org, key),
        keys.kv_index(org),
        keys.org_gone(org),
        keys.cache_bytes(org),
        keys.cache_sizes(org),
    ]


def _key(name: str) -> str:
    if not KEY.fullmatch(name):
        raise Invalid(
            "keys are 1-256 characters of letters, digits and : . _ -, starting with a "
            "letter or digit",
            code="invalid_key",
        )
    return name


@dataclass(eq=False)
class KeyValueStore:
    redis: RedisClients
    settings: KvSettings
    stats: RedisStats
    _: KW_ONLY
    usage: OrgUsage
    _set: AsyncScript = field(init=False)
    _incr: AsyncScript = field(init=False)
    _delete: AsyncScript = field(init=False)

    def __post_init__(self) -> None:
        self._set = self.redis.primary.register_script(_SET)
        self._incr = self.redis.primary.register_script(_INCR)
        self._delete = self.redis.primary.register_script(_DELETE)

    @staticmethod
    def _names(ctx: OrgContext, key: str) -> tuple[str, str, str]:
        org = ctx.org_id
        return keys.kv_value(org, key), keys.kv_index(org), keys.org_gone(org)

    def _byte_quota(self, ctx: OrgContext) -> int:
        limits_of = self.usage.limits_of
        if limits_of is None:
            return 1 << 62
        return limits_of(ctx.org_id).cache_storage_bytes

    def _written(self, ctx: OrgContext, key: str, status: int, quota: int, used: int) -> None:
        """A write script's answer: refused (the org is going, over its bytes or its
        keys), or done (metered, counted)."""
        if status == -2:
            raise org_not_found()
        if status == -3:
            raise _over_storage(quota, used)
        if status < 0:
            raise self._over_quota()
        self.usage.meter.level(ctx.org_id, "cache_bytes", used)
        self.stats.access(str(ctx.org_id), key)

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
        names = write_keys(ctx.org_id, _key(key))
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
        quota = self._byte_quota(ctx)
        done, used = await self.redis.run(
            lambda r: self._set(
                keys=names,
                args=[
                    encoded,
                    (ttl or 0) * 1000,
                    now_ms,
                    self.settings.max_keys_per_org,
                    key,
                    quota,
                ],
                client=r,
            )
        )
        self._written(ctx, key, int(done), quota, int(used))
        return Entry(key, value, ttl)

    async def increment(self, ctx: OrgContext, key: str, by: int) -> Entry:
        rbac.require(ctx, "member", "writing to the cache")
        names = write_keys(ctx.org_id, _key(key))
        now_ms = int(time.time() * 1000)
        quota = self._byte_quota(ctx)
        try:
            status, value, used = await self.redis.run(
                lambda r: self._incr(
                    keys=names,
                    args=[by, now_ms, now_ms, key, self.settings.max_keys_per_org, quota],
                    client=r,
                )
            )
        except ResponseError as exc:
            raise Conflict("the value is not an integer", code="not_an_integer") from exc
        self._written(ctx, key, int(status), quota, int(used))
        return Entry(key, int(value), None)

    async def delete(self, ctx: OrgContext, key: str) -> None:
        rbac.require(ctx, "member", "writing to the cache")
        value_key, index, _ = self._names(ctx, _key(key))
        org = ctx.org_id
        deleted = await self.redis.run(
            lambda r: self._delete(
                keys=[value_key, index, keys.cache_bytes(org), keys.cache_sizes(org)],
                args=[key],
                client=r,
            )
        )
        if not int(deleted):
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


def _over_storage(quota: int, used: int) -> Conflict:
    return Conflict(
        f"this org's cache holds {used} bytes; its storage limit is {quota} bytes",
        code="cache_storage_exceeded",
        details={"limit_bytes": quota, "used_bytes": used},
        hint="delete keys or give them a ttl (nothing is deleted for you)",
    )
