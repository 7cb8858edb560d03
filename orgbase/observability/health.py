"""Liveness and readiness.

Readiness checks every backing service concurrently, each bounded by a timeout, so a
hung service makes the answer slower by at most that timeout, never hangs it. PostgreSQL
is required (``down``, 503, without it); Redis and MongoDB are not (``degraded``, 200):
sessions fall back to PostgreSQL and only the document routes need MongoDB.

Outside dev and test the public answer has each check's status and latency only; the
details (pools, the Redis primary's address, error texts) need the metrics token, as
/metrics does (or ``ORGBASE_OBSERVABILITY_HEALTH_DETAILS_PUBLIC``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ControllerRouterHandler

from orgbase.core.resources import Resources
from orgbase.core.secret_compare import same_secret
from orgbase.core.settings import ObservabilitySettings

Status = Literal["ok", "degraded", "down"]
PUBLIC_FIELDS = frozenset({"status", "latency_ms"})


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


def bears_token(authorization: str | None, token: str | None) -> bool:
    """Does ``Authorization: Bearer <token>`` carry ``token`` (the metrics token)?"""
    if not token:
        return False
    given = (authorization or "").removeprefix("Bearer ").strip()
    return same_secret(given, token)


def public_view(checks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Statuses and latencies only: pool figures, addresses and error texts describe the
    inside of the deployment."""
    return {name: {k: v for k, v in c.items() if k in PUBLIC_FIELDS} for name, c in checks.items()}


@get("/health/ready", tags=["health"], summary="Readiness of every backing service")
async def ready(  # noqa: PLR0917 - one dependency each
    request: Request[Any, Any, Any],
    resources: NamedDependency[Resources],
    dependency_errors: NamedDependency[ErrorCounts],
    breaker_states: NamedDependency[BreakerStates],
    webhook_queue: NamedDependency[QueueFigures],
    observability: NamedDependency[ObservabilitySettings],
) -> Response[dict[str, Any]]:
    """Also the webhook outbox as this process last measured it: deliveries due now and
    the age of the oldest (a growing age means receivers or dispatchers fall behind).
    Outside dev and test, statuses and latencies only unless the metrics token is sent."""
    status, checks = await readiness(resources, dependency_errors, breaker_states)
    checks["webhooks"] = {"status": "ok", **webhook_queue()}
    shown = observability.health_details_public or bears_token(
        request.headers.get("authorization"), observability.metrics_token
    )
    code = HTTP_503_SERVICE_UNAVAILABLE if status == "down" else HTTP_200_OK
    body = {"status": status, "checks": checks if shown else public_view(checks)}
    return Response(body, status_code=code)


health_handlers: list[ControllerRouterHandler] = [live, ready]
