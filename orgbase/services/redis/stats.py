"""Figures about Redis for the dashboard, shared by every replica through Redis itself.

Each process counts in memory (call latencies in buckets, key accesses) and flushes the
counts every few seconds into per-minute Redis keys; readers add the minutes up. Alerts
(breaker opened, failover seen, memory high) go to a capped Redis list.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from typing import Any
from uuid import UUID

import msgspec
import structlog
from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.breaker import BreakerState
from orgbase.core.periodic import Periodic
from orgbase.core.redis import RedisClients, RedisUnavailable, unlink_matching

log = structlog.get_logger("orgbase.redis.stats")

LATENCY_BUCKETS_MS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000, float("inf"))
MINUTE_TTL = 2 * 3600
HOT_WINDOW_MINUTES = 5
ALERTS_KEY = keys.ALERTS
ALERTS_KEPT = 200


def minute(now: float | None = None) -> int:
    return int((now or time.time()) // 60)


DELETED_KEPT = 10_000


class RedisStats:
    def __init__(self, redis: RedisClients, flush_seconds: float = 2.0) -> None:
        self.redis = redis
        self.flush_seconds = flush_seconds
        self._latency: Counter[int] = Counter()
        self._hot: Counter[tuple[str, str]] = Counter()
        self._kv: Counter[tuple[str, str]] = Counter()  # (org, "hits"|"misses")
        self._pending_alerts: list[dict[str, Any]] = []
        self._dependency_errors: Counter[tuple[str, int]] = Counter()  # (dependency, hour)
        self.dependency_errors_total: Counter[str] = Counter()
        self._flusher = Periodic(
            "stats flush", self._flush_and_watch, flush_seconds, last_round=self.flush
        )
        self._last_primary: tuple[str, int] | None = None
        self._deleted: dict[str, None] = {}
        """Orgs deleted through this process (oldest first, bounded): figures of requests
        that finish after the purge must not write the org's keys back."""
        redis.breaker.listeners.append(self._on_breaker)

    # -- recording (in memory, cheap) -------------------------------------------------

    def latency(self, seconds: float) -> None:
        self._latency[bisect.bisect_left(LATENCY_BUCKETS_MS, seconds * 1000)] += 1

    def access(self, org: str, key: str) -> None:
        if org not in self._deleted:
            self._hot[(org, key)] += 1

    def kv_lookup(self, org: str, hit: bool) -> None:
        if org not in self._deleted:
            self._kv[(org, "hits" if hit else "misses")] += 1

    def dependency_error(self, dependency: str) -> None:
        """A request failed because ``dependency`` was down (readiness shows the last 24 h)."""
        self._dependency_errors[(dependency, int(time.time() // 3600))] += 1
        self.dependency_errors_total[dependency] += 1

    def alert(self, kind: str, message: str, **details: Any) -> None:
        entry = {"at": time.time(), "kind": kind, "message": message, **details}
        log.warning("redis alert", alert=kind, detail=message)
        self._pending_alerts.append(entry)

    def _on_breaker(self, old: BreakerState, new: BreakerState) -> None:
        if new == "open" and old == "closed":
            self.alert("breaker_open", "Redis failed repeatedly: falling back where possible")
        elif new == "closed":
            self.alert("breaker_closed", "Redis answers again")

    # -- flushing ---------------------------------------------------------------------

    def start(self) -> None:
        self._flusher.start()

    async def stop(self) -> None:
        await self._flusher.stop()

    async def _flush_and_watch(self) -> None:
        await self.flush()
        await self._watch_primary()

    async def flush(self) -> None:
        latency, hot, kv, alerts = self._latency, self._hot, self._kv, self._pending_alerts
        errors = self._dependency_errors
        if not (latency or hot or kv or alerts or errors):
            return
        self._latency, self._hot, self._kv = Counter(), Counter(), Counter()
        self._pending_alerts, self._dependency_errors = [], Counter()
        now = minute()

        async def write(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                if latency:
                    key = keys.latency_stats(now)
                    for bucket, count in latency.items():
                        pipe.hincrby(key, str(bucket), count)
                    pipe.expire(key, MINUTE_TTL)
                for (org, kind), count in kv.items():
                    if org in self._deleted:  # deleted while this flush was under way
                        continue
                    for key in (keys.kv_stats("all", now), keys.kv_stats(org, now)):
                        pipe.hincrby(key, kind, count)
                        pipe.expire(key, MINUTE_TTL)
                for (org, name), count in hot.items():
                    if org in self._deleted:
                        continue
                    pipe.zincrby(keys.hot_keys(org, now), count, name)
                    pipe.expire(keys.hot_keys(org, now), HOT_WINDOW_MINUTES * 120)
                    pipe.zincrby(keys.hot_keys("all", now), count, f"{org}:{name}")
                    pipe.expire(keys.hot_keys("all", now), HOT_WINDOW_MINUTES * 120)
                for (dependency, hour), count in errors.items():
                    pipe.hincrby(keys.dependency_errors(hour), dependency, count)
                    pipe.expire(keys.dependency_errors(hour), 25 * 3600)
                for entry in alerts:
                    pipe.lpush(ALERTS_KEY, msgspec.json.encode(entry))
                if alerts:
                    pipe.ltrim(ALERTS_KEY, 0, ALERTS_KEPT - 1)
                await pipe.execute()

        try:
            await self.redis.run(write)
        except RedisUnavailable:
            # Keep what we have for the next flush (alerts above all).
            self._latency.update(latency)
            self._hot.update(hot)
            self._kv.update(kv)
            self._pending_alerts = alerts + self._pending_alerts
            self._dependency_errors.update(errors)

    async def _watch_primary(self) -> None:
        address = await self.redis.primary_address()
        if address is None:
            return
        if self._last_primary is not None and address != self._last_primary:
            self.redis.failovers_seen += 1
            self.alert(
                "failover",
                f"the Redis primary moved from {self._last_primary[0]}:{self._last_primary[1]}"
                f" to {address[0]}:{address[1]}",
            )
        self._last_primary = address

    # -- reading ----------------------------------------------------------------------

    async def hot_keys(self, org: str | None, top: int = 10) -> list[dict[str, Any]]:
        """The most-accessed keys of the last few minutes, across every replica."""
        scope = org or "all"
        now = minute()
        sources = [keys.hot_keys(scope, m) for m in range(now - HOT_WINDOW_MINUTES + 1, now + 1)]
        target = keys.hot_keys_scratch(scope, time.monotonic_ns())

        async def read(r: Redis) -> list[tuple[bytes, float]]:
            async with r.pipeline(transaction=False) as pipe:
                pipe.zunionstore(target, sources)
                pipe.zrevrange(target, 0, top - 1, withscores=True)
                pipe.delete(target)
                _, rows, _ = await pipe.execute()
            return list(rows)

        rows = await self.redis.run(read)
        return [{"key": name.decode(), "hits": int(score)} for name, score in rows]

    async def kv_hit_rate(self, org: str | None, minutes: int = 60) -> list[dict[str, Any]]:
        scope = org or "all"
        now = minute()
        wanted = list(range(now - minutes + 1, now + 1))

        async def read(r: Redis) -> list[dict[bytes, bytes]]:
            async with r.pipeline(transaction=False) as pipe:
                for m in wanted:
                    pipe.hgetall(keys.kv_stats(scope, m))
                return list(await pipe.execute())

        series = []
        for m, counts in zip(wanted, await self.redis.run(read), strict=True):
            hits, misses = int(counts.get(b"hits", 0)), int(counts.get(b"misses", 0))
            total = hits + misses
            series.append(
                {
                    "minute": m * 60,
                    "hits": hits,
                    "misses": misses,
                    "hit_rate": round(hits / total, 4) if total else None,
                }
            )
        return series

    async def latency_percentiles(self, minutes: int = 5) -> dict[str, float | None]:
        now = minute()

        async def read(r: Redis) -> list[dict[bytes, bytes]]:
            async with r.pipeline(transaction=False) as pipe:
                for m in range(now - minutes + 1, now + 1):
                    pipe.hgetall(keys.latency_stats(m))
                return list(await pipe.execute())

        counts: Counter[int] = Counter(self._latency)
        for bucket_counts in await self.redis.run(read):
            for bucket, count in bucket_counts.items():
                counts[int(bucket)] += int(count)
        total = sum(counts.values())
        result: dict[str, float | None] = {"samples": float(total)}
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            result[f"{name}_ms"] = _quantile(counts, total, q)
        return result

    async def dependency_errors_24h(self) -> dict[str, int]:
        hour = int(time.time() // 3600)
        hours = range(hour - 23, hour + 1)
        totals: Counter[str] = Counter()
        for (dependency, counted_hour), count in self._dependency_errors.items():
            if counted_hour in hours:
                totals[dependency] += count

        async def read(r: Redis) -> list[dict[bytes, bytes]]:
            async with r.pipeline(transaction=False) as pipe:
                for h in hours:
                    pipe.hgetall(keys.dependency_errors(h))
                return list(await pipe.execute())

        try:
            for bucket in await self.redis.run(read):
                for name, counted in bucket.items():
                    totals[name.decode()] += int(counted)
        except RedisUnavailable:
            pass  # this process's own count is the best we have
        return dict(totals)

    async def purge_org(self, org_id: UUID) -> int:
        """Forget a deleted org's figures: its hit rates, hot keys, and its share of the
        platform-wide hot keys, those not yet flushed included."""
        org = str(org_id)
        self._deleted[org] = None
        if len(self._deleted) > DELETED_KEPT:
            del self._deleted[next(iter(self._deleted))]
        for counts in (self._kv, self._hot):
            for key in [key for key in counts if key[0] == org]:
                del counts[key]

        async def drop(r: Redis) -> int:
            removed = await unlink_matching(r, keys.kv_stats_pattern(org))
            removed += await unlink_matching(r, keys.hot_keys_pattern(org))
            async for name in r.scan_iter(match=keys.hot_keys_pattern("all"), count=1000):
                members = [m async for m, _ in r.zscan_iter(name, match=f"{org}:*")]
                if members:
                    removed += int(await r.zrem(name, *members))
            return removed

        return await self.redis.run(drop)

    async def alerts(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = await self.redis.run(lambda r: r.lrange(ALERTS_KEY, 0, limit - 1))
        return [msgspec.json.decode(row) for row in rows] + list(reversed(self._pending_alerts))


def _quantile(counts: Counter[int], total: int, q: float) -> float | None:
    """Upper bound of the bucket holding the q-quantile."""
    if not total:
        return None
    running = 0
    for bucket in sorted(counts):
        running += counts[bucket]
        if running >= q * total:
            bound = LATENCY_BUCKETS_MS[min(bucket, len(LATENCY_BUCKETS_MS) - 1)]
            return None if bound == float("inf") else bound
    return None
