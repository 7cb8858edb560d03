"""Reads on PostgreSQL streaming replicas, with read-your-writes.

Reads that may go to a replica (data API reads, the audit log) ask ``pool_for_read``:
- a writer (session, API key or impersonation) that wrote recently has its commit LSN in
  Redis (``lsn:{writer}``, written after each data API write commits); its reads go to a
  replica only once that replica has replayed past it, so nobody misses their own write;
- a replica is used only while it answers and lags at most ``replica_max_lag_seconds``;
- otherwise, and whenever in doubt (Redis down, no replica fit), the read goes to the
  primary.

How far each replica has replayed is polled in the background (one tiny query per
replica every ``replica_poll_seconds``), so the per-read cost is one Redis GET. Lag is
measured against the primary's WAL position: a replica lags by the age of the newest
primary position it has not yet replayed (an idle primary gives no false lag).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import structlog
from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.periodic import Periodic
from orgbase.core.postgres import CONNECTION_ERRORS, Database
from orgbase.core.redis import RedisClients, RedisUnavailable
from orgbase.core.settings import DatabaseSettings

log = structlog.get_logger("orgbase.replicas")

T = TypeVar("T")
_CLOSE_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_ERRORS)

# Errors of a read on a replica that the primary answers instead: the replica has not yet
# seen the session, key or org the statement enters with (OB4xx from the entry), or
# recovery cancelled the query (40001, 57014).
_RETRY_ON_PRIMARY_STATES = ("40001", "57014")

# Keeps an LSN only while it can matter: once it is older than the lag bound, every
# replica still in use has replayed it.
_LSN_TTL_MARGIN_SECONDS = 10

# KEYS: the writer's LSN key. ARGV: lsn, ttl seconds. Keeps the larger of the two.
_KEEP_MAX = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 1
"""


def parse_lsn(text: str) -> int:
    """'16/B374D848' -> its 64-bit position."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def writer_of(args: tuple[Any, ...]) -> str:
    """Who writes, from a tenant entry's first argument: session, key digest or
    impersonation id."""
    first = args[0]
    return first.hex() if isinstance(first, bytes) else str(first)


@dataclass
class Replica:
    url: str
    name: str
    pool: asyncpg.Pool | None = None
    replayed: int = 0
    lag_seconds: float | None = None
    up: bool = False
    error: str | None = None
    polled_at: float = 0.0
    reads: int = 0


@dataclass
class ReplicaRouter:
    settings: DatabaseSettings
    db: Database
    redis: RedisClients
    replicas: list[Replica] = field(default_factory=list)
    primary_reads: int = 0
    _history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=600))
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.replicas = [
            Replica(url, f"replica{i + 1}") for i, url in enumerate(self.settings.replica_urls)
        ]
        self._keep_max = self.redis.primary.register_script(_KEEP_MAX)
        self._distrust_until = 0.0
        # A failed round is a warning (a replica or the primary is unreachable); the next
        # round tries again.
        self._poller = Periodic(
            "replica poll",
            self.poll,
            self.settings.replica_poll_seconds,
            first_round_at_once=True,
            failure_level=logging.WARNING,
        )
        if self.replicas:
            self.redis.revocation_listeners.append(self.revoked)

    @property
    def enabled(self) -> bool:
        return bool(self.replicas)

    # -- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        if not self.replicas:
            return
        for replica in self.replicas:
            replica.pool = await self.db.replica_pool(replica.url, replica.name)
        self._poller.start()

    async def close(self) -> None:
        await self._poller.stop()
        for replica in self.replicas:
            if replica.pool is not None:
                try:
                    await asyncio.wait_for(replica.pool.close(), timeout=5)
                except _CLOSE_ERRORS:
                    replica.pool.terminate()
                replica.pool = None

    # -- polling ----------------------------------------------------------------------

    async def poll(self) -> None:
        """Note the primary's WAL position, then how far each replica has replayed."""
        timeout = min(1.0, self.settings.connect_timeout)
        try:
            async with asyncio.timeout(timeout), self.db.system_connection() as connection:
                primary = parse_lsn(
                    await connection.fetchval("SELECT pg_current_wal_insert_lsn()::text")
                )
            self._history.append((time.monotonic(), primary))
        except Exception as exc:  # lag stays as last measured; replicas are still polled
            log.debug("primary position unknown", error=repr(exc))
        await asyncio.gather(*(self._poll_one(r, timeout) for r in self.replicas))

    async def _poll_one(self, replica: Replica, seconds: float) -> None:
        assert replica.pool is not None
        try:
            async with asyncio.timeout(seconds), replica.pool.acquire() as connection:
                row = await connection.fetchrow(
                    "SELECT pg_is_in_recovery() AS standby,"
                    " coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn())::text AS lsn"
                )
        except Exception as exc:
            if replica.up:
                log.warning("replica down; reads go to the primary", replica=replica.name)
            replica.up, replica.error = False, type(exc).__name__
            return
        assert row is not None
        replica.replayed = parse_lsn(row["lsn"])
        replica.lag_seconds = self._lag(replica.replayed)
        replica.up, replica.error, replica.polled_at = True, None, time.monotonic()
        if not row["standby"]:
            # A promoted replica is a primary of its own: never read from it.
            replica.up, replica.error = False, "not in recovery"

    def _lag(self, replayed: int) -> float:
        """Age of the oldest primary position the replica has not replayed (0 if none)."""
        now = time.monotonic()
        for seen_at, position in self._history:
            if position > replayed:
                return round(now - seen_at, 3)
        return 0.0

    def usable(self, replica: Replica) -> bool:
        fresh = time.monotonic() - replica.polled_at <= max(
            2.0, 5 * self.settings.replica_poll_seconds
        )
        return (
            replica.up
            and fresh
            and replica.pool is not None
            and replica.lag_seconds is not None
            and replica.lag_seconds <= self.settings.replica_max_lag_seconds
        )

    # -- routing ----------------------------------------------------------------------

    async def replica_for(self, writer: str) -> Replica | None:
        """A replica that may serve ``writer``'s read, or None (use the primary): it must
        have replayed the writer's last write and the newest revocation."""
        candidates = [r for r in self.replicas if self.usable(r)]
        if not candidates or time.monotonic() < self._distrust_until:
            return None

        async def positions(r: Redis) -> list[Any]:
            async with r.pipeline(transaction=False) as pipe:
                pipe.get(keys.session_commit_lsn(writer))
                pipe.get(keys.REVOCATIONS_LSN)
                return list(await pipe.execute())

        try:
            found = await self.redis.run(positions)
        except RedisUnavailable:
            return None  # their last write is unknown: only the primary is sure to have it
        needed = max((int(v) for v in found if v is not None), default=0)
        if needed:
            candidates = [r for r in candidates if r.replayed >= needed]
            if not candidates:
                return None
        return candidates[next(self._turn) % len(candidates)]

    async def revoked(self) -> None:
        """A revocation committed: replicas serve no read until they have replayed it."""
        ttl = int(self.settings.replica_max_lag_seconds) + _LSN_TTL_MARGIN_SECONDS
        try:
            async with self.db.system_connection() as connection:
                lsn = parse_lsn(
                    await connection.fetchval("SELECT pg_current_wal_insert_lsn()::text")
                )
            await self.redis.run(
                lambda r: self._keep_max(keys=[keys.REVOCATIONS_LSN], args=[lsn, ttl], client=r)
            )
        except Exception as exc:  # unrecorded: this process reads from the primary for a while
            log.warning("revocation position not recorded; reads use the primary", error=repr(exc))
            self._distrust_until = time.monotonic() + ttl

    async def wrote(self, writer: str, lsn: int) -> None:
        """A write of ``writer`` committed at (or before) ``lsn``: its reads need it."""
        ttl = int(self.settings.replica_max_lag_seconds) + _LSN_TTL_MARGIN_SECONDS
        try:
            await self.redis.run(
                lambda r: self._keep_max(
                    keys=[keys.session_commit_lsn(writer)], args=[lsn, ttl], client=r
                )
            )
        except RedisUnavailable:
            # Unrecorded, a later read could miss this write: keep reads on the primary
            # (replica_for also answers None while Redis is unavailable).
            self.redis.breaker.trip()

    async def read(
        self,
        writer: str,
        on_primary: Callable[[], Awaitable[T]],
        on_replica: Callable[[asyncpg.Pool], Awaitable[T]],
    ) -> T:
        """Run a read on a replica that may serve ``writer``, else (or when that replica
        fails or has not seen the credential yet) on the primary."""
        replica = await self.replica_for(writer) if self.replicas else None
        if replica is not None and replica.pool is not None:
            try:
                result = await on_replica(replica.pool)
            except CONNECTION_ERRORS as exc:
                log.warning(
                    "read on a replica failed; the primary answers",
                    replica=replica.name,
                    error=repr(exc),
                )
                self.failed(replica, exc)
            except asyncpg.PostgresError as exc:
                state = str(getattr(exc, "sqlstate", "") or "")
                log.debug("read on a replica refused; the primary answers", error=repr(exc))
                if not (state.startswith("OB") or state in _RETRY_ON_PRIMARY_STATES):
                    raise
            else:
                replica.reads += 1
                return result
        self.primary_reads += 1
        return await on_primary()

    def failed(self, replica: Replica, exc: BaseException) -> None:
        """A read on ``replica`` lost its connection: skip it until it answers a poll."""
        replica.up, replica.error = False, type(exc).__name__

    def health(self) -> list[dict[str, Any]]:
        return [
            {
                "name": r.name,
                "status": "ok" if self.usable(r) else ("lagging" if r.up else "down"),
                "lag_seconds": r.lag_seconds,
                "replayed_lsn": r.replayed,
                "reads": r.reads,
                **({"error": r.error} if r.error else {}),
            }
            for r in self.replicas
        ]
