"""An org's sign-in policy: "members must use MFA" (GET/PUT /v1/orgs/{org_id}/auth-policy).

Admins change it; turning it on needs the admin's own session at aal2 (an admin cannot
lock everyone out, themselves included, by accident). Once on, the org's routes refuse
aal1 credentials (403 ``mfa_required``) at once: the data API in PostgreSQL (read
replicas serve nothing until they have replayed the change), the other org routes and
open sockets on every gateway process as the change travels like a revocation.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from orgbase.core import audit, rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, PolicyChange, Principal, RequestMeta
from orgbase.core.errors import Forbidden
from orgbase.tenants.area import TenancyArea


class AuthPolicy(msgspec.Struct, forbid_unknown_fields=True):
    mfa_required: bool


class AuthPolicyController(Controller):
    path = "/v1/orgs/{org_id:uuid}/auth-policy"
    tags = ["orgs"]  # noqa: RUF012 - Litestar's declaration style

    @get("/", summary="The org's sign-in policy (members)")
    async def read(
        self, ctx: NamedDependency[OrgContext], tenancy: NamedDependency[TenancyArea]
    ) -> AuthPolicy:
        async with tenancy.orgs.db.system_connection() as connection:
            required = await connection.fetchval(
                "SELECT mfa_required FROM orgbase.orgs WHERE id = $1", ctx.org_id
            )
        return AuthPolicy(mfa_required=bool(required))

    @put("/", summary="Require a second factor of every member (admins, from an aal2 session)")
    async def change(
        self,
        data: JSONBody[AuthPolicy],
        ctx: NamedDependency[OrgContext],
        principal: NamedDependency[Principal],
        tenancy: NamedDependency[TenancyArea],
        meta: NamedDependency[RequestMeta],
    ) -> AuthPolicy:
        rbac.require(ctx, "admin", "change the org's sign-in policy")
        if data.mfa_required and principal.aal != "aal2":
            raise Forbidden(
                "verify a second factor yourself before requiring one of every member",
                code="mfa_required",
            )
        details: dict[str, Any] = {"mfa_required": data.mfa_required}
        async with tenancy.orgs.db.system_connection() as connection, connection.transaction():
            await connection.execute(
                "UPDATE orgbase.orgs SET mfa_required = $2 WHERE id = $1",
                ctx.org_id,
                data.mfa_required,
            )
            event = AuditEvent.in_org(ctx, meta, "org.auth_policy_changed", details=details)
            await audit.record(connection, event)
        change: PolicyChange = "mfa_required" if data.mfa_required else "relaxed"
        await tenancy.contexts.policy_changed(ctx.org_id, change)
        return data
