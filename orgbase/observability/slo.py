"""SLOs and error budgets, from counters every replica shares through Redis.

Each process counts its requests per minute (all of them, 5xx ones, ones slower than the
latency objective), for the platform and for the request's org, and adds them every few
seconds to Redis: per-minute hashes (kept 2 h) and per-hour hashes (kept 31 days). A
report sums the buckets of a window: 1 h from minutes, 24 h and 30 d from hours.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any
from uuid import UUID

from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.expiry_memo import ExpiryMemo
from orgbase.core.periodic import Periodic
from orgbase.core.redis import RedisClients, RedisUnavailable, unlink_matching
from orgbase.core.settings import ObservabilitySettings

MINUTE_TTL = 2 * 3600
HOUR_TTL = 31 * 86400
_DELETED_KEPT = 10_000
WINDOWS = {"1h": 3600, "24h": 86400, "30d": 30 * 86400}


FLUSH_CHUNK = 1000
"""Counters per Redis pipeline in a flush."""


class SloRecorder:
    def __init__(self, redis: RedisClients, settings: ObservabilitySettings) -> None:
        self.redis = redis
        self.settings = settings
        self._counts: Counter[tuple[str, int, str]] = Counter()  # (scope, minute, field)
        self._flusher = Periodic("slo flush", self.flush, 2.0, last_round=self.flush)
        self._expiring = ExpiryMemo()
        self._deleted: dict[str, None] = {}
        """Orgs deleted through this process (oldest first, bounded): a request that
        finishes after its org's purge (the DELETE itself) must not write its counters
        back."""

    def record(self, org: str | None, status: int, seconds: float) -> None:
        minute = int(time.time() // 60)
        error = status >= 500
        slow = seconds > self.settings.slo_latency_seconds
        for scope in ("all", org) if org and org not in self._deleted else ("all",):
            self._counts[(scope, minute, "total")] += 1
            if error:
                self._counts[(scope, minute, "errors")] += 1
            if slow:
                self._counts[(scope, minute, "slow")] += 1

    def start(self) -> None:
        self._flusher.start()

    async def stop(self) -> None:
        await self._flusher.stop()

    async def flush(self) -> None:
        counts, self._counts = self._counts, Counter()
        items = [(key, count) for key, count in counts.items() if key[0] not in self._deleted]
        # Pipelines of FLUSH_CHUNK counters, the loop free between them: with 10,000 orgs
        # one pipeline held the event loop for a p99's worth.
        for start in range(0, len(items), FLUSH_CHUNK):
            part = items[start : start + FLUSH_CHUNK]

            async def write(r: Redis, part: list[tuple[tuple[str, int, str], int]] = part) -> None:
                async with r.pipeline(transaction=False) as pipe:
                    for (scope, minute, field), count in part:
                        if scope in self._deleted:  # deleted while this flush was under way
                            continue
                        minute_key = keys.slo_minute(scope, minute)
                        pipe.hincrby(minute_key, field, count)
                        if self._expiring.first(minute_key):
                            pipe.expire(minute_key, MINUTE_TTL)
                        hour_key = keys.slo_hour(scope, minute // 60)
                        pipe.hincrby(hour_key, field, count)
                        if self._expiring.first(hour_key):
                            pipe.expire(hour_key, HOUR_TTL)
                    await pipe.execute()

            try:
                await self.redis.run(write)
            except RedisUnavailable:
                self._expiring.forget_all()
                self._counts.update(dict(items[start:]))  # kept for the next flush
                return
            await asyncio.sleep(0)

    async def _window(self, scope: str, seconds: int) -> dict[str, int]:
        now = time.time()
        if seconds <= 3600:
            names = [
                keys.slo_minute(scope, m)
                for m in range(int((now - seconds) // 60) + 1, int(now // 60) + 1)
            ]
        else:
            names = [
                keys.slo_hour(scope, h)
                for h in range(int((now - seconds) // 3600) + 1, int(now // 3600) + 1)
            ]

        async def read(r: Redis) -> list[dict[bytes, bytes]]:
            async with r.pipeline(transaction=False) as pipe:
                for key in names:
                    pipe.hgetall(key)
                return list(await pipe.execute())

        totals: Counter[str] = Counter()
        for bucket in await self.redis.run(read):
            for name, value in bucket.items():
                totals[name.decode()] += int(value)
        # Not yet flushed counts of this process belong to the window too.
        cutoff = int((now - seconds) // 60)
        for (counted_scope, minute, field), count in self._counts.items():
            if counted_scope == scope and minute > cutoff:
                totals[field] += count
        return {"total": totals["total"], "errors": totals["errors"], "slow": totals["slow"]}

    async def purge_org(self, org_id: UUID) -> int:
        """Forget a deleted org's counters, those not yet flushed included."""
        scope = str(org_id)
        self._deleted[scope] = None
        if len(self._deleted) > _DELETED_KEPT:
            del self._deleted[next(iter(self._deleted))]
        for key in [key for key in self._counts if key[0] == scope]:
            del self._counts[key]

        async def drop(r: Redis) -> int:
            return await unlink_matching(r, keys.slo_pattern(str(org_id)))

        return await self.redis.run(drop)

    async def report(self, scope: str = "all") -> dict[str, Any]:
        s = self.settings
        windows = {name: await self._window(scope, seconds) for name, seconds in WINDOWS.items()}
        month = windows["30d"]
        allowed_errors = 1 - s.slo_availability
        allowed_slow = 1 - s.slo_latency_target
        month_left = {
            "availability": _remaining(month["errors"], month["total"], allowed_errors),
            "latency": _remaining(month["slow"], month["total"], allowed_slow),
        }
        report: dict[str, Any] = {
            "objectives": {
                "availability": s.slo_availability,
                "latency_seconds": s.slo_latency_seconds,
                "latency_target": s.slo_latency_target,
            },
            "windows": {},
        }
        for name, counts in windows.items():
            total = counts["total"]
            entry: dict[str, Any] = {
                "requests": total,
                "errors": counts["errors"],
                "slow": counts["slow"],
            }
            for kind, bad, allowed in (
                ("availability", counts["errors"], allowed_errors),
                ("latency", counts["slow"], allowed_slow),
            ):
                ratio = bad / total if total else 0.0
                burn = ratio / allowed
                left = month_left[kind]
                entry[kind] = {
                    "measured": round(1 - ratio, 6) if total else None,
                    "budget_consumed": round(min(1.0, ratio / allowed), 6) if total else 0.0,
                    "budget_remaining": round(max(0.0, 1 - ratio / allowed), 6) if total else 1.0,
                    "burn_rate": round(burn, 4),
                    "seconds_to_exhaustion": (
                        round(left * WINDOWS["30d"] / burn)
                        if burn > 0 and left > 0
                        else (0 if left <= 0 else None)
                    ),
                }
            report["windows"][name] = entry
        return report


def _remaining(bad: int, total: int, allowed: float) -> float:
    if not total:
        return 1.0
    return max(0.0, 1 - (bad / total) / allowed)
