"""The request-scoped values every area's routes may ask for, by name:

``principal`` (who calls; 401 otherwise), ``ctx`` (the OrgContext of the path's org_id),
``active_ctx`` (the OrgContext of the token's active org) and ``meta`` (ip, user agent,
request id). The platform wires them from the auth and tenants areas, so the areas never
import each other.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from orgbase.auth.principal import Authenticator
from orgbase.core.context import OrgContext, Principal, RequestMeta
from orgbase.tenants.context import OrgContextResolver

PRINCIPAL = "principal"
"""The dependency every credential-checking route asks for, directly or through another."""


def provide_meta(request: Request[Any, Any, Any]) -> RequestMeta:
    state = request.scope.get("state", {})
    user_agent = request.headers.get("user-agent")
    return RequestMeta(
        ip=state.get("client_ip"),
        user_agent=user_agent[:400] if user_agent else None,
        request_id=state.get("request_id", ""),
    )


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    headers = request.headers
    principal = await authenticator.authenticate(
        headers.get("authorization"), headers.get("apikey")
    )
    state = request.scope["state"]
    state["user_id"] = principal.user_id or principal.key_id
    state["org_id"] = principal.org_id
    return principal


async def provide_org_context(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal], org_id: FromPath[UUID]
) -> OrgContext:
    resolver: OrgContextResolver = request.app.state.org_contexts
    ctx = await resolver.resolve(principal, org_id, request.scope["state"]["request_id"])
    request.scope["state"]["org_id"] = ctx.org_id
    return ctx


async def provide_active_context(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal]
) -> OrgContext:
    resolver: OrgContextResolver = request.app.state.org_contexts
    return await resolver.resolve(principal, None, request.scope["state"]["request_id"])


def request_dependencies() -> dict[str, Provide]:
    return {
        "meta": Provide(provide_meta, sync_to_thread=False),
        PRINCIPAL: Provide(provide_principal),
        "ctx": Provide(provide_org_context),
        "active_ctx": Provide(provide_active_context),
    }
