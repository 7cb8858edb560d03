"""What the functions did: an org's admins read their org's invocations (status, outcome,
time, their ``ctx.log`` lines); platform admins (the operator) read every org's, with the
tracebacks, the catalog's errors and the workers. Never the caller: a failure reaches the
caller as a code and a request id only."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
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
    area = _area(functions_area)
    if area.require_platform_admin is None:
        raise Forbidden("this is for platform admins", code="platform_admin_required")
    await area.require_platform_admin(principal)
    invocations = await area.invocations.recent(
        org=org, function=function, limit=limit, with_errors=True, failed=failed
    )
    return {
        "functions": area.describe(with_errors=True),
        "workers": area.workers(),
        "invocations": invocations,
    }


functions_admin_handlers: list[ControllerRouterHandler] = [org_functions, platform_functions]
