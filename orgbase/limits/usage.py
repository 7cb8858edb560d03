"""Usage: the meter's counts flushed to Redis and rolled up into PostgreSQL, and read back.

Each flush adds the process's counts to the hour's hash in Redis (``HINCRBY``, in
pipelines of 500 org-hours with the event loop free between them), which answers with the
hour's totals across every gateway; those totals are then written to
``orgbase.org_usage`` (``GREATEST``, so repeating a rollup changes nothing). So a crashed
gateway loses at most what it counted since its last flush. With Redis down the counts
stay in process and go with a later flush; with PostgreSQL down the totals wait in process
and are written by a later rollup.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.csv_text import write_csv
from orgbase.core.errors import Invalid, Unavailable
from orgbase.core.expiry_memo import ExpiryMemo
from orgbase.core.metering import COUNTERS, LEVELS, Counts, Meter
from orgbase.core.postgres import Database
from orgbase.core.redis import RedisClients, RedisUnavailable
from orgbase.core.times import parse_time

KEEP_IN_REDIS_SECONDS = 3 * 86400
MAX_SPAN = timedelta(days=400)
Granularity = Literal["hour", "day", "month"]
METRICS: tuple[str, ...] = (*COUNTERS, *LEVELS)
_LEVEL_LIST = ", ".join(f"'{level}'" for level in LEVELS)  # names from a Literal, not input

_UPSERT = f"""
INSERT INTO orgbase.org_usage (org_id, hour, metric, value)
SELECT u.org_id, to_timestamp(u.hour * 3600), u.metric, u.value
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[]) AS u(org_id, hour, metric, value)
ON CONFLICT (org_id, hour, metric) DO UPDATE SET value = CASE
    WHEN EXCLUDED.metric IN ({_LEVEL_LIST}) THEN EXCLUDED.value
    ELSE GREATEST(orgbase.org_usage.value, EXCLUDED.value) END
"""  # noqa: S608 - the level names are literals


FLUSH_CHUNK = 500
"""Org-hours per Redis pipeline in a flush."""


@dataclass(eq=False)
class UsageFlusher:
    meter: Meter
    redis: RedisClients
    db: Database
    expiring: ExpiryMemo = field(default_factory=ExpiryMemo, init=False)
    _totals: dict[tuple[UUID, int, str], int] = field(default_factory=dict, init=False)
    """Totals read from Redis that PostgreSQL has not taken yet."""
    flushes: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)

    async def flush(self) -> None:
        counts, levels = self.meter.take()
        if counts or levels:
            try:
                await self._to_redis(counts, levels)
            except RedisUnavailable:
                self.failures += 1
        await self._to_postgres()
        self.flushes += 1

    async def _to_redis(self, counts: Counts, levels: Counts) -> None:
        """One pipeline per FLUSH_CHUNK org-hours, the loop free between them (with
        10,000 orgs one pipeline held the event loop for a p99's worth). Redis down: what
        was not written goes back to the meter (RedisUnavailable)."""
        work = [(key, figures, False) for key, figures in counts.items()]
        work += [(key, figures, True) for key, figures in levels.items()]
        for start in range(0, len(work), FLUSH_CHUNK):
            part = work[start : start + FLUSH_CHUNK]
            try:
                await self._write_part(part)
            except RedisUnavailable:
                self.expiring.forget_all()
                rest = work[start:]
                self.meter.give_back(
                    {key: figures for key, figures, level in rest if not level},
                    {key: figures for key, figures, level in rest if level},
                )
                raise
            await asyncio.sleep(0)

    async def _write_part(self, part: list[tuple[tuple[UUID, int], dict[str, int], bool]]) -> None:
        order: list[tuple[UUID, int, str]] = []

        async def write(r: Redis) -> list[Any]:
            order.clear()
            async with r.pipeline(transaction=False) as pipe:
                for (org, hour), figures, level in part:
                    key = keys.org_usage(org, hour)
                    for name, value in figures.items():
                        if level:
                            pipe.hset(key, name, value)
                            order.append((org, hour, ""))
                        else:
                            pipe.hincrby(key, name, value)
                            order.append((org, hour, name))
                    if self.expiring.first(key):
                        pipe.expire(key, KEEP_IN_REDIS_SECONDS)
                        order.append((org, hour, ""))
                return list(await pipe.execute())

        results = await self.redis.run(write)
        for (org, hour, name), result in zip(order, results, strict=True):
            if name:
                self._totals[(org, hour, name)] = int(result)
        for (org, hour), figures, level in part:
            if level:
                for name, value in figures.items():
                    self._totals[(org, hour, name)] = value

    async def _to_postgres(self) -> None:
        if not self._totals:
            return
        totals, self._totals = self._totals, {}
        orgs, hours, metrics, values = [], [], [], []
        for (org, hour, name), value in totals.items():
            orgs.append(org)
            hours.append(hour)
            metrics.append(name)
            values.append(value)
        try:
            async with self.db.system_connection() as connection:
                await connection.execute(_UPSERT, orgs, hours, metrics, values)
        except (Unavailable, OSError):
            self.failures += 1
            for key, value in totals.items():  # a later total replaces an earlier one
                self._totals.setdefault(key, value)
            raise


def time_range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    until = parse_time(end, "to") or now
    since = parse_time(start, "from") or until - timedelta(days=1)
    if since > until:
        raise Invalid("from is after to", code="invalid_time_range")
    if until - since > MAX_SPAN:
        raise Invalid("at most 400 days at a time", code="invalid_time_range")
    return since, until


class UsageReader:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def series(
        self, org: UUID | None, since: datetime, until: datetime, granularity: Granularity
    ) -> list[dict[str, Any]]:
        """Usage per period (and org, when ``org`` is None): counters summed, stored bytes
        at their largest in the period."""
        sql = f"""
            SELECT org_id, date_trunc('{granularity}', hour, 'UTC') AS period, metric,
                   CASE WHEN metric IN ({_LEVEL_LIST}) THEN max(value)
                        ELSE sum(value) END AS value
            FROM orgbase.org_usage
            WHERE hour >= date_trunc('hour', $2::timestamptz) AND hour < $3
              AND ($1::uuid IS NULL OR org_id = $1)
            GROUP BY org_id, period, metric ORDER BY period, org_id
        """  # noqa: S608 - granularity is one of three literals
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(sql, org, since, until)
        periods: dict[tuple[UUID, datetime], dict[str, Any]] = {}
        for row in rows:
            entry = periods.setdefault(
                (row["org_id"], row["period"]),
                {"org_id": str(row["org_id"]), "period": row["period"].isoformat()}
                | dict.fromkeys(METRICS, 0),
            )
            if row["metric"] in METRICS:
                entry[row["metric"]] = int(row["value"])
        out = list(periods.values())
        if org is not None:
            for entry in out:
                del entry["org_id"]
        return out


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    lines = ([row.get("org_id", ""), row["period"], *(row[m] for m in METRICS)] for row in rows)
    return write_csv(["org_id", "period", *METRICS], lines)
