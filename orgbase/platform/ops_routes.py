"""Operations routes: /metrics, the SLO report and the Redis dashboard data.

Platform-wide figures are for platform admins; org admins read their own org's slice.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.types import ControllerRouterHandler

from orgbase.core import rbac
from orgbase.core.context import OrgContext, Principal
from orgbase.core.errors import NotFound, Unauthorized
from orgbase.core.settings import ObservabilitySettings
from orgbase.observability.health import bears_token
from orgbase.observability.metrics import Metrics
from orgbase.observability.slo import SloRecorder
from orgbase.services.redis.dashboard import RedisDashboard
from orgbase.tenants.area import TenancyArea

Tenancy = NamedDependency[TenancyArea]
Caller = NamedDependency[Principal]
Ctx = NamedDependency[OrgContext]
Slo = NamedDependency[SloRecorder]
Dashboard = NamedDependency[RedisDashboard]
OPS = ["operations"]


@get(
    "/metrics",
    tags=OPS,
    summary="Prometheus metrics (all worker processes)",
    include_in_schema=True,
    media_type=MediaType.TEXT,
)
async def metrics(
    request: Request[Any, Any, Any],
    metrics: NamedDependency[Metrics | None],
    observability: NamedDependency[ObservabilitySettings],
) -> Response[bytes]:
    if metrics is None:
        raise NotFound(
            "metrics are turned off (ORGBASE_OBSERVABILITY_METRICS_ENABLED)",
            code="metrics_disabled",
        )
    token = observability.metrics_token
    if token and not bears_token(request.headers.get("authorization"), token):
        raise Unauthorized(
            "metrics need the metrics token",
            code="metrics_token_required",
            bearer="missing",
        )
    body, content_type = metrics.render()
    # Litestar adds the charset to text types itself: keep one.
    return Response(body, media_type=content_type.replace("; charset=utf-8", ""))


@get(
    "/v1/platform/slo",
    tags=OPS,
    summary="Availability and latency SLOs, error budgets (platform admins)",
)
async def platform_slo(tenancy: Tenancy, principal: Caller, slo: Slo) -> dict[str, Any]:
    await tenancy.platform.require_admin(principal)
    return await slo.report("all")


@get("/v1/orgs/{org_id:uuid}/slo", tags=OPS, summary="The org's SLOs and error budgets (admins)")
async def org_slo(ctx: Ctx, slo: Slo) -> dict[str, Any]:
    rbac.require(ctx, "admin", "reading the org's service levels")
    return await slo.report(str(ctx.org_id))


@get("/v1/platform/redis", tags=OPS, summary="Redis dashboard data (platform admins)")
async def platform_redis(
    tenancy: Tenancy, principal: Caller, dashboard: Dashboard
) -> dict[str, Any]:
    await tenancy.platform.require_admin(principal)
    return await dashboard.platform()


@get(
    "/v1/orgs/{org_id:uuid}/redis",
    tags=OPS,
    summary="The org's slice of the Redis dashboard (admins)",
)
async def org_redis(ctx: Ctx, dashboard: Dashboard) -> dict[str, Any]:
    rbac.require(ctx, "admin", "reading the org's cache figures")
    return await dashboard.org(ctx.org_id)


ops_handlers: list[ControllerRouterHandler] = [
    metrics,
    platform_slo,
    org_slo,
    platform_redis,
    org_redis,
]
