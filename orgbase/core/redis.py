"""The Redis client: Sentinel discovery (writes go to the primary), short timeouts, and a
circuit breaker so that callers fall back (sessions to PostgreSQL) instead of waiting."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, cast

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orgbase.core.breaker import BreakerState, CircuitBreaker
from orgbase.core.errors import Unavailable
from orgbase.core.periodic import Periodic
from orgbase.core.settings import RedisSettings

T = TypeVar("T")

log = structlog.get_logger("orgbase.redis")

# Errors that mean "Redis is not reachable right now" (MasterNotFoundError is a
# ConnectionError); anything else is a bug in how we call it.
REDIS_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    TimeoutError,
)
_DISCOVERY_ERRORS: tuple[type[BaseException], ...] = (RedisError, *REDIS_DOWN_ERRORS)


RESYNC_MARGIN_SECONDS = 30.0


def broken_connection(exc: BaseException) -> bool:
    """True when ``exc`` was raised inside redis-py's connection code, below ours.

    When a cluster node dies, redis-py's asyncio client can touch a connection that
    another task is tearing down, and raises what a closed transport raises
    (``RuntimeError: unable to perform operation on <TCPTransport closed=True>``, or
    ``AttributeError`` on its ``None`` writer) instead of a ConnectionError; seen in the
    cluster failover drill as a 500 on a route whose sessions fall back to PostgreSQL.
    A RuntimeError or AttributeError of our own code (the last orgbase frame is the
    innermost) stays a bug."""
    last_redis = last_ours = -1
    tb = exc.__traceback__
    depth = 0
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module == "redis" or module.startswith("redis."):
            last_redis = depth
        elif module.startswith("orgbase."):
            last_ours = depth
        tb = tb.tb_next
        depth += 1
    return last_redis > last_ours


def _one_quick_retry() -> Retry:
    """redis-py retries 3 times with backoff of up to 10 s by default: with Redis down,
    a call then hangs for seconds before the breaker hears of it. One immediate retry
    still replaces a stale pooled connection (after a failover) at no cost."""
    return Retry(NoBackoff(), retries=1)


class RedisUnavailable(Unavailable, code="redis_unavailable"):
    """Redis cannot answer now (breaker open, error or timeout): use the fallback."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, dependency="redis", **kwargs)


class RedisClients:
    """The client every call goes through: the Sentinel primary, a Redis Cluster client
    (which routes each command to the primary of its key's slot), or one server."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.breaker = CircuitBreaker(
            "redis",
            failure_threshold=settings.breaker_failures,
            reset_seconds=settings.breaker_reset_seconds,
        )
        self.breaker.listeners.append(self._on_breaker_change)
        self.resync_pending = False
        """True after an outage until the caches are rewritten: do not trust reads."""
        self._recovery_callbacks: list[Callable[[float], Awaitable[None]]] = []
        self._resyncs: list[Periodic] = []
        self.failovers_seen = 0
        self.revocation_listeners: list[Callable[[], Awaitable[None]]] = []
        """Told after a revocation reached the caches (read replicas stop serving reads
        until they have replayed it)."""
        self.observers: list[Callable[[float], None]] = []
        """Called with each call's duration in seconds (latency statistics)."""
        common: dict[str, Any] = {
            "password": settings.password,
            "db": settings.db,
            "socket_timeout": settings.socket_timeout,
            "socket_connect_timeout": settings.connect_timeout,
            "retry": _one_quick_retry(),
        }
        self.sentinel: Sentinel | None = None
        self.cluster: RedisCluster | None = None
        if settings.cluster_nodes:
            del common["db"]  # a cluster has only database 0
            self.cluster = RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in settings.cluster_addresses()],
                max_connections=settings.pool_max,
                # Stale slot maps after a failover or a slot migration are refreshed by
                # redis-py on MOVED/ASK and on connection errors (the retry in ``common``).
                **common,
            )
            # The commands orgbase uses (keys, scripts, pipelines, scans) take the same
            # arguments on both clients; the cluster client routes them by slot.
            self.primary: Redis = cast("Redis", self.cluster)
        elif settings.sentinels:
            self.sentinel = Sentinel(  # type: ignore[no-untyped-call]
                settings.sentinel_addresses(),
                sentinel_kwargs={
                    "password": settings.sentinel_password,
                    "socket_timeout": settings.socket_timeout,
                    "socket_connect_timeout": settings.connect_timeout,
                    "retry": _one_quick_retry(),
                },
                **common,
            )
            self.primary = self.sentinel.master_for(
                settings.service_name, max_connections=settings.pool_max
            )
        else:
            assert settings.url is not None
            self.primary = Redis.from_url(settings.url, max_connections=settings.pool_max, **common)

    async def revoked(self) -> None:
        """A revocation (ended session, key, membership, changed role) was written."""
        for listener in self.revocation_listeners:
            await listener()

    def on_recovery(self, callback: Callable[[float], Awaitable[None]]) -> None:
        """Run ``callback(since)`` after an outage; ``since`` is a wall-clock time before it."""
        self._recovery_callbacks.append(callback)

    def _on_breaker_change(self, old: BreakerState, new: BreakerState) -> None:
        if new != "closed" or old == "closed":
            return
        # Clocks of PostgreSQL and of this host may differ a little: look further back.
        since = (self.breaker.opened_wall_time or time.time()) - RESYNC_MARGIN_SECONDS
        self._resync_in_background(since, "outage")

    def start_resync(self, lookback_seconds: float) -> None:
        """At start: a previous process may have died between a revocation and its cache
        write; rewrite what changed within one cache lifetime, in the background."""
        self._resync_in_background(time.time() - lookback_seconds - RESYNC_MARGIN_SECONDS, "start")

    def _resync_in_background(self, since: float, reason: Literal["start", "outage"]) -> None:
        """Retried every second until it went through: Redis or PostgreSQL may still be
        flaky. ``reason`` only words the log line: at start nothing failed."""
        self.resync_pending = True

        async def resync() -> None:
            await self.resync(since)
            if reason == "start":
                log.info("caches checked against PostgreSQL at start", since=since)
            else:
                log.info("caches resynced after an outage", since=since)

        self._resyncs = [run for run in self._resyncs if run.running]
        run = Periodic.retry_until_done("cache resync", resync, 1.0)
        self._resyncs.append(run)
        run.start()

    async def resync(self, since: float) -> None:
        """Let every cache owner rewrite what changed since ``since`` (raises if one
        could not)."""
        self.resync_pending = True
        for callback in self._recovery_callbacks:
            await callback(since)
        await self.revoked()  # what the resync wrote back counts as revoked now
        self.resync_pending = False

    async def run(self, call: Callable[[Redis], Awaitable[T]]) -> T:
        """Run one call on the primary through the breaker (bounded by the socket timeouts).

        Raises RedisUnavailable at once while the breaker is open, and when the call
        fails for a connection reason; callers decide on the fallback.
        """
        if not self.breaker.allow():
            raise RedisUnavailable("redis is unavailable (circuit open)")
        started = time.perf_counter()
        try:
            result = await call(self.primary)
        except REDIS_DOWN_ERRORS as exc:
            self.breaker.record_failure()
            raise RedisUnavailable(f"redis is unavailable: {type(exc).__name__}") from exc
        except (RuntimeError, AttributeError) as exc:
            if not broken_connection(exc):
                self.breaker.release_trial()
                raise
            self.breaker.record_failure()
            raise RedisUnavailable(f"redis is unavailable: {type(exc).__name__}") from exc
        except BaseException:
            # Not Redis's fault (a bug, a cancellation): free the trial slot, keep the state.
            self.breaker.release_trial()
            raise
        self.breaker.record_success()
        if self.observers:
            elapsed = time.perf_counter() - started
            for observe in self.observers:
                observe(elapsed)
        return result

    async def primary_address(self) -> tuple[str, int] | None:
        if self.sentinel is None:
            return None
        try:
            host, port = await self.sentinel.discover_master(self.settings.service_name)
        except _DISCOVERY_ERRORS:
            return None
        return str(host), int(port)

    @property
    def mode(self) -> str:
        if self.cluster is not None:
            return "cluster"
        return "sentinel" if self.sentinel is not None else "single"

    def pool_stats(self) -> dict[str, int]:
        if self.cluster is not None:
            nodes: list[Any] = self.cluster.get_nodes()
            return {
                "in_use": sum(len(n._connections) - len(n._free) for n in nodes),
                "idle": sum(len(n._free) for n in nodes),
                "max": sum(int(n.max_connections) for n in nodes),
            }
        pool: Any = self.primary.connection_pool
        in_use = len(getattr(pool, "_in_use_connections", ()))
        idle = len(getattr(pool, "_available_connections", ()))
        return {"in_use": in_use, "idle": idle, "max": int(getattr(pool, "max_connections", 0))}

    async def close(self) -> None:
        for run in self._resyncs:
            await run.stop()
        await self.primary.aclose()
        if self.sentinel is not None:
            for client in self.sentinel.sentinels:
                await client.aclose()


async def unlink_matching(r: Redis, pattern: str) -> int:
    """Delete every key matching ``pattern`` (SCAN, then UNLINK: never blocks the server)."""
    removed = 0
    batch: list[bytes | str] = []
    async for name in r.scan_iter(match=pattern, count=1000):
        batch.append(name)
        if len(batch) == 1000:
            removed += int(await r.unlink(*batch))
            batch.clear()
    if batch:
        removed += int(await r.unlink(*batch))
    return removed
