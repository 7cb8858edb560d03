"""Liveness and readiness.

Readiness checks every backing service concurrently, each bounded by a timeout, so a
hung service makes the answer slower by at most that timeout, never hangs it. PostgreSQL
is required (``down``, 503, without it); Redis and MongoDB are not (``degraded``, 200):
sessions fall back to PostgreSQL and only the document routes need MongoDB.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ControllerRouterHandler

from orgbase.core.resources import Resources

Status = Literal["ok", "degraded", "down"]


async def _timed(
    probe: Callable[[], Awaitable[dict[str, Any]]], limit_seconds: float
) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        details = await asyncio.wait_for(probe(), timeout=limit_seconds)
    except TimeoutError:
        result: dict[str, Any] = {"status": "down", "error": f"no answer within {limit_seconds:g}s"}
    except Exception as exc:  # any failure of a probe means "down"
        result = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    else:
        result = {"status": "ok", **details}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


async def check_postgres(resources: Resources) -> dict[str, Any]:
    await resources.db.ping()
    return {"pools": resources.db.pool_stats()}


async def check_redis(resources: Resources) -> dict[str, Any]:
    await resources.redis.primary.ping()
    details: dict[str, Any] = {
        "pool": resources.redis.pool_stats(),
        "breaker": resources.redis.breaker.state,
        "failovers_seen": resources.redis.failovers_seen,
    }
    address = await resources.redis.primary_address()
    if address is not None:
        details["primary"] = f"{address[0]}:{address[1]}"
    return details


async def check_mongo(resources: Resources) -> dict[str, Any]:
    await resources.mongo.client.admin.command("ping")
    pool = resources.mongo.pool
    return {"pool": {"open": pool.open, "in_use": pool.checked_out}}


ErrorCounts = Callable[[], Awaitable[dict[str, int]]]
BreakerStates = Callable[[], dict[str, str]]


async def readiness(
    resources: Resources,
    errors_24h: ErrorCounts | None = None,
    breakers: BreakerStates | None = None,
) -> tuple[Status, dict[str, dict[str, Any]]]:
    timeout = resources.settings.http.health_timeout_seconds
    # Breaker states are in the details of each check (set by their owners' statistics).
    postgres, redis, mongo = await asyncio.gather(
        _timed(lambda: check_postgres(resources), timeout),
        _timed(lambda: check_redis(resources), timeout),
        _timed(lambda: check_mongo(resources), timeout),
    )
    checks = {"postgres": postgres, "redis": redis, "mongo": mongo}
    # The breaker state is worth seeing when the service is down, too.
    redis.setdefault("breaker", resources.redis.breaker.state)
    redis.setdefault("failovers_seen", resources.redis.failovers_seen)
    for name, state in (breakers() if breakers else {}).items():
        checks[name]["breaker"] = state
    if errors_24h is not None:
        try:
            counts = await asyncio.wait_for(errors_24h(), timeout)
        except Exception:  # readiness never fails for want of a statistic
            counts = {}
        for name, check in checks.items():
            check["errors_24h"] = counts.get(name, 0)
    replicas_ok = True
    if resources.replicas.enabled:
        # Read replicas: a lagging or down one is skipped (its reads go to the primary).
        views = resources.replicas.health()
        replicas_ok = all(v["status"] == "ok" for v in views)
        checks["postgres_replicas"] = {
            "status": "ok" if replicas_ok else "degraded",
            "max_lag_seconds": resources.settings.database.replica_max_lag_seconds,
            "replicas": views,
            "reads_on_primary": resources.replicas.primary_reads,
        }
    status: Status
    if postgres["status"] != "ok":
        status = "down"
    elif redis["status"] != "ok" or mongo["status"] != "ok" or not replicas_ok:
        status = "degraded"
    else:
        status = "ok"
    return status, checks


QueueFigures = Callable[[], dict[str, Any]]


@get("/health/live", tags=["health"], summary="The process is up", cache=False)
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", tags=["health"], summary="Readiness of every backing service")
async def ready(
    resources: NamedDependency[Resources],
    dependency_errors: NamedDependency[ErrorCounts],
    breaker_states: NamedDependency[BreakerStates],
    webhook_queue: NamedDependency[QueueFigures],
) -> Response[dict[str, Any]]:
    """Also the webhook outbox as this process last measured it: deliveries due now and
    the age of the oldest (a growing age means receivers or dispatchers fall behind)."""
    status, checks = await readiness(resources, dependency_errors, breaker_states)
    checks["webhooks"] = {"status": "ok", **webhook_queue()}
    code = HTTP_503_SERVICE_UNAVAILABLE if status == "down" else HTTP_200_OK
    return Response({"status": status, "checks": checks}, status_code=code)


health_handlers: list[ControllerRouterHandler] = [live, ready]
