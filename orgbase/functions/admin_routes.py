"""What the functions did: an org's admins read their org's invocations (status, outcome,
time, their ``ctx.log`` lines); platform admins (the operator) read every org's, with the
tracebacks, the catalog's errors and the workers. Never the caller: a failure reaches the
caller as a code and a request id only."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.types import ControllerRouterHandler

from orgbase.core import rbac
from orgbase.core.context import OrgContext, Principal
from orgbase.core.errors import Forbidden, NotFound
from orgbase.functions.area import FunctionsArea

Area = NamedDependency[FunctionsArea | None]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Name = Annotated[str | None, QueryParameter(max_length=63)]
Failed = Annotated[bool | None, QueryParameter()]
OrgParam = Annotated[UUID | None, QueryParameter()]


def _area(functions: FunctionsArea | None) -> FunctionsArea:
    if functions is None:
        raise NotFound("functions are turned off on this server", code="function_not_found")
    return functions


async def _operator(functions: FunctionsArea | None, principal: Principal) -> FunctionsArea:
    """The area, for a platform admin (the operator) only."""
    area = _area(functions)
    if area.require_platform_admin is None:
        raise Forbidden("this is for platform admins", code="platform_admin_required")
    await area.require_platform_admin(principal)
    return area


@get(
    "/v1/orgs/{org_id:uuid}/functions",
    tags=["functions"],
    summary="Functions and the org's invocations (admins)",
)
async def org_functions(
    functions_area: Area,
    ctx: NamedDependency[OrgContext],
    function: Name = None,
    failed: Failed = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    area = _area(functions_area)
    rbac.require(ctx, "admin", "reading the org's function invocations")
    invocations = await area.invocations.recent(
        org=ctx.org_id, function=function, limit=limit, with_errors=False, failed=failed
    )
    return {"functions": area.describe(), "invocations": invocations}


@get("/v1/platform/functions", tags=["platform"], summary="Functions, workers and every invocation")
async def platform_functions(  # noqa: PLR0917 - one parameter per query option
    functions_area: Area,
    principal: NamedDependency[Principal],
    org: OrgParam = None,
    function: Name = None,
    failed: Failed = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    area = await _operator(functions_area, principal)
    invocations = await area.invocations.recent(
        org=org, function=function, limit=limit, with_errors=True, failed=failed
    )
    schedules = area.schedules
    return {
        "functions": area.describe(with_errors=True),
        "workers": area.workers(),
        "invocations": invocations,
        "schedules": schedules.upcoming() if schedules is not None else {},
        "schedule_runs": await schedules.recent(limit) if schedules is not None else [],
    }


Status = Annotated[Literal["pending", "delivered", "dead"] | None, QueryParameter()]


@get(
    "/v1/orgs/{org_id:uuid}/functions/deliveries",
    tags=["functions"],
    summary="The org's events owed to functions (admins); status=dead: the dead letters",
)
async def org_deliveries(
    functions_area: Area,
    ctx: NamedDependency[OrgContext],
    status: Status = None,
    function: Name = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    area = _area(functions_area)
    rbac.require(ctx, "admin", "reading the org's function deliveries")
    listed = await area.deliveries.listed(
        status=status, org=ctx.org_id, function=function, limit=limit
    )
    return {"deliveries": listed}


@post(
    "/v1/orgs/{org_id:uuid}/functions/deliveries/{delivery_id:int}/retry",
    tags=["functions"],
    summary="A dead delivery of the org back in the outbox (admins)",
    status_code=200,
)
async def org_retry(
    functions_area: Area, ctx: NamedDependency[OrgContext], delivery_id: FromPath[int]
) -> dict[str, Any]:
    area = _area(functions_area)
    rbac.require(ctx, "admin", "retrying the org's function deliveries")
    await area.deliveries.retry(delivery_id, ctx.org_id)
    return {"id": delivery_id, "status": "pending"}


@get(
    "/v1/platform/functions/deliveries",
    tags=["platform"],
    summary="Every org's events owed to functions; status=dead: the dead letters",
)
async def platform_deliveries(  # noqa: PLR0917 - one parameter per query option
    functions_area: Area,
    principal: NamedDependency[Principal],
    status: Status = None,
    org: OrgParam = None,
    function: Name = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    area = await _operator(functions_area, principal)
    listed = await area.deliveries.listed(status=status, org=org, function=function, limit=limit)
    return {"deliveries": listed}


@post(
    "/v1/platform/functions/deliveries/{delivery_id:int}/retry",
    tags=["platform"],
    summary="A dead delivery back in the outbox",
    status_code=200,
)
async def platform_retry(
    functions_area: Area, principal: NamedDependency[Principal], delivery_id: FromPath[int]
) -> dict[str, Any]:
    area = await _operator(functions_area, principal)
    await area.deliveries.retry(delivery_id)
    return {"id": delivery_id, "status": "pending"}


functions_admin_handlers: list[ControllerRouterHandler] = [
    org_functions,
    platform_functions,
    org_deliveries,
    org_retry,
    platform_deliveries,
    platform_retry,
]
