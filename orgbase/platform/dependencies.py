"""The request-scoped values every area's routes may ask for, by name:

``principal`` (who calls; 401 otherwise), ``ctx`` (the OrgContext of the path's org_id),
``active_ctx`` (the OrgContext of the token's active org), ``identities`` (for sockets and
event streams: a ``LiveIdentitySource``) and ``meta`` (ip, user agent, request id). All of
them come from the one request-auth component (``request_auth.RequestAuth``), so the areas
never authenticate by themselves. (The data API's hot path asks the same component
directly: its service was given it at construction, as a ``core.postgres.DataAccessSource``;
no injection per request.)
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from orgbase.core.context import OrgContext, Principal, RequestMeta
from orgbase.platform.request_auth import REQUEST_AUTH, RequestAuth

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


def _auth(request: Request[Any, Any, Any]) -> RequestAuth:
    return REQUEST_AUTH.of(request)


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    return await _auth(request).principal(request)


async def provide_org_context(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal], org_id: FromPath[UUID]
) -> OrgContext:
    return await _auth(request).org_context(request, principal, org_id)


async def provide_active_context(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal]
) -> OrgContext:
    return await _auth(request).org_context(request, principal, None)


def request_dependencies() -> dict[str, Provide]:
    return {
        "meta": Provide(provide_meta, sync_to_thread=False),
        PRINCIPAL: Provide(provide_principal),
        "ctx": Provide(provide_org_context),
        "active_ctx": Provide(provide_active_context),
    }
