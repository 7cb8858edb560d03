"""A Redis cache for facts that can be revoked: sessions, API keys, memberships.

PostgreSQL is the source of truth. The rules that keep a revocation effective at once:
- a reader that missed fills the cache with ``SET NX`` (it never overwrites anything);
- a change writes the new value, and a revocation a *tombstone*, with plain ``SET``;
so a reader that loaded a stale value just before a revocation cannot put it back.
When a write cannot reach Redis, the breaker opens, every reader goes to PostgreSQL, and
on recovery the owner of the cache rewrites what changed meanwhile (``resync``) before
the cache is trusted again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Generic, TypeVar

import msgspec
import structlog
from redis.asyncio import Redis

from orgbase.core.redis import RedisClients, RedisUnavailable

log = structlog.get_logger("orgbase.cache")

TOMBSTONE = b"\x00revoked"
V = TypeVar("V")


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    fallbacks: int = 0


@dataclass(eq=False)
class RevocableCache(Generic[V]):
    """Values of type V stored as bytes under ``{prefix}{key}`` with a TTL."""

    redis: RedisClients
    prefix: str
    _: KW_ONLY
    encode: Callable[[V], bytes]
    decode: Callable[[bytes], V]
    ttl_seconds: int
    stats: CacheStats = field(default_factory=CacheStats, init=False)

    @classmethod
    def of_struct(
        cls, redis: RedisClients, prefix: str, kind: type[V], *, ttl_seconds: int
    ) -> RevocableCache[V]:
        """A cache of msgspec structs, stored as MessagePack."""
        return cls(
            redis,
            prefix,
            encode=msgspec.msgpack.Encoder().encode,
            decode=msgspec.msgpack.Decoder(kind).decode,
            ttl_seconds=ttl_seconds,
        )

    def trusted(self) -> bool:
        """False while caches are being resynced after an outage."""
        return not self.redis.resync_pending

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    async def get_or_load(
        self, key: str, load: Callable[[], Awaitable[V | None]], ttl: int | None = None
    ) -> V | None:
        """The cached value, or ``load()`` (None means "does not exist / revoked")."""
        if not self.trusted():
            self.stats.fallbacks += 1
            return await load()
        try:
            raw: bytes | None = await self.redis.run(lambda r: self.raw_get(r, key))
        except RedisUnavailable:
            self.stats.fallbacks += 1
            return await load()
        if not self.trusted():
            # This very call closed the breaker after an outage: what it read may be stale.
            self.stats.fallbacks += 1
            return await load()
        if raw is not None:
            self.stats.hits += 1
            return None if raw == TOMBSTONE else self.decode(raw)
        self.stats.misses += 1
        value = await load()
        await self.fill(key, value, ttl)
        return value

    async def raw_get(self, r: Redis, key: str) -> bytes | None:
        raw = await r.get(self._key(key))
        return raw if raw is None or isinstance(raw, bytes) else raw.encode()

    async def fill(self, key: str, value: V | None, ttl: int | None = None) -> None:
        """Cache a value read from PostgreSQL unless something newer is there (SET NX)."""
        data = TOMBSTONE if value is None else self.encode(value)
        seconds = max(1, min(ttl or self.ttl_seconds, self.ttl_seconds))
        with contextlib.suppress(RedisUnavailable):
            await self.redis.run(lambda r: r.set(self._key(key), data, ex=seconds, nx=True))

    async def put(self, key: str, value: V, ttl: int | None = None) -> None:
        """Write a changed value (overwrites)."""
        seconds = max(1, min(ttl or self.ttl_seconds, self.ttl_seconds))
        try:
            await self.redis.run(lambda r: r.set(self._key(key), self.encode(value), ex=seconds))
        except RedisUnavailable:
            self._lost_write()

    async def revoke(self, keys: list[str], ttl: int | None = None) -> None:
        """Write tombstones (overwrites), so no stale value can be re-cached."""
        if not keys:
            return
        seconds = max(1, ttl or self.ttl_seconds)

        async def write(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(self._key(key), TOMBSTONE, ex=seconds)
                await pipe.execute()

        try:
            await self.redis.run(write)
        except RedisUnavailable:
            self._lost_write()
        await self.redis.revoked()

    def _lost_write(self) -> None:
        """A change did not reach Redis: open the breaker now (even after one failure), so
        nothing trusts the cache until it has been resynced."""
        log.warning(
            "cache write lost; the cache is resynced before it is trusted again", prefix=self.prefix
        )
        self.redis.breaker.trip()

    async def fill_many(self, values: Mapping[str, V], ttl: int | None = None) -> int:
        """Warm the cache (SET NX each); returns how many were written."""
        if not values:
            return 0
        seconds = max(1, min(ttl or self.ttl_seconds, self.ttl_seconds))

        async def write(r: Redis) -> int:
            async with r.pipeline(transaction=False) as pipe:
                for key, value in values.items():
                    pipe.set(self._key(key), self.encode(value), ex=seconds, nx=True)
                results = await pipe.execute()
            return sum(1 for result in results if result)

        try:
            return await self.redis.run(write)
        except RedisUnavailable:
            return 0
