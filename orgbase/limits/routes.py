"""Routes of the limits area: an org's limits (platform admins), its usage (org admins) and
every org's usage for billing (platform admins; JSON or CSV)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.types import ControllerRouterHandler

from orgbase.core import rbac
from orgbase.core.context import OrgContext, Principal
from orgbase.core.csv_text import MEDIA_TYPE as CSV_MEDIA_TYPE
from orgbase.core.errors import Invalid, OrgbaseError
from orgbase.limits.area import LimitsArea
from orgbase.limits.usage import Granularity, as_csv, time_range

Limits = NamedDependency[LimitsArea]
Caller = NamedDependency[Principal]
Ctx = NamedDependency[OrgContext]
TimeParam = Annotated[str | None, QueryParameter(max_length=40)]
FormatParam = Annotated[str | None, QueryParameter(name="format", max_length=10)]
LIMITS = "/v1/platform/orgs/{org_id:uuid}/limits"


async def _platform_admin(limits: LimitsArea, principal: Principal) -> UUID:
    return await limits.require_platform_admin(principal)


@get(LIMITS, tags=["platform"], summary="An org's effective limits, one flat object")
async def read_limits(org_id: FromPath[UUID], limits: Limits, principal: Caller) -> dict[str, int]:
    await _platform_admin(limits, principal)
    return msgspec.structs.asdict(await limits.store.effective(org_id))


@put(
    LIMITS,
    tags=["platform"],
    summary="Set an org's limits (the same flat object; absent or null names: defaults)",
    opt={"request_body": {"type": "object", "additionalProperties": {"type": "integer"}}},
)
async def write_limits(
    request: Request[Any, Any, Any], org_id: FromPath[UUID], limits: Limits, principal: Caller
) -> dict[str, int]:
    admin = await _platform_admin(limits, principal)
    try:
        body = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise Invalid("the body is not JSON", code="malformed_body") from None
    return msgspec.structs.asdict(await limits.store.replace(org_id, body, admin))


def _granularity(value: str | None) -> Granularity:
    if value in (None, ""):
        return "hour"
    if value not in ("hour", "day", "month"):
        raise Invalid("granularity is hour, day or month", code="invalid_granularity")
    return value  # type: ignore[return-value]


async def _flushed(limits: LimitsArea) -> None:
    """This process's counts first, so an answer includes the requests just made."""
    with contextlib.suppress(OrgbaseError, OSError):
        await limits.flusher.flush()


@get("/v1/orgs/{org_id:uuid}/usage", tags=["orgs"], summary="The org's usage (admins)")
async def org_usage(
    limits: Limits,
    ctx: Ctx,
    from_: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
    to: TimeParam = None,
    granularity: Annotated[str | None, QueryParameter(max_length=10)] = None,
) -> dict[str, Any]:
    rbac.require(ctx, "admin", "reading the org's usage")
    since, until = time_range(from_, to)
    step = _granularity(granularity)
    await _flushed(limits)
    rows = await limits.usage.series(ctx.org_id, since, until, step)
    return {
        "org_id": str(ctx.org_id),
        "from": since.isoformat(),
        "to": until.isoformat(),
        "granularity": step,
        "usage": rows,
    }


@get("/v1/platform/usage", tags=["platform"], summary="Every org's usage, JSON or CSV (billing)")
async def platform_usage(  # noqa: PLR0917 - one parameter per query option
    request: Request[Any, Any, Any],
    limits: Limits,
    principal: Caller,
    from_: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
    to: TimeParam = None,
    granularity: Annotated[str | None, QueryParameter(max_length=10)] = None,
    format_: FormatParam = None,
) -> Response[Any]:
    await _platform_admin(limits, principal)
    if format_ not in (None, "", "json", "csv"):
        raise Invalid("format is json or csv", code="invalid_format")
    since, until = time_range(from_, to)
    step = _granularity(granularity)
    await _flushed(limits)
    rows = await limits.usage.series(None, since, until, step)
    wants_csv = format_ == "csv" or (
        not format_ and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        return Response(as_csv(rows), media_type=CSV_MEDIA_TYPE)
    body = {"from": since.isoformat(), "to": until.isoformat(), "granularity": step, "usage": rows}
    return Response(body)


limits_handlers: list[ControllerRouterHandler] = [
    read_limits,
    write_limits,
    org_usage,
    platform_usage,
]
