"""An org's sign-in policy: "members must use MFA" (GET/PUT /v1/orgs/{org_id}/auth-policy).

Every member (and API key) reads it. Changing it, either way, is a security setting: an
admin in person at aal2 (``rbac.require_security_admin``), never an API key (a leaked key
must not turn MFA off) or an impersonation; the admin's own second factor also means they
cannot lock everyone out, themselves included, by accident. Once on, the org's routes refuse
aal1 credentials (403 ``mfa_required``) at once: the data API in PostgreSQL (read
replicas serve nothing until they have replayed the change), the other org routes and
open sockets on every gateway process as the change travels like a revocation.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, put
from litestar.params import JSONBody

from orgbase.core import audit, rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import PolicyChange
from orgbase.tenants.route_parts import Ctx, Meta, Tenancy


class AuthPolicy(msgspec.Struct, forbid_unknown_fields=True):
    mfa_required: bool


class AuthPolicyController(Controller):
    path = "/v1/orgs/{org_id:uuid}/auth-policy"
    tags = ["orgs"]  # noqa: RUF012 - Litestar's declaration style

    @get("/", summary="The org's sign-in policy (members)")
    async def read(self, ctx: Ctx, tenancy: Tenancy) -> AuthPolicy:
        async with tenancy.orgs.db.system_connection() as connection:
            required = await connection.fetchval(
                "SELECT mfa_required FROM orgbase.orgs WHERE id = $1", ctx.org_id
            )
        return AuthPolicy(mfa_required=bool(required))

    @put("/", summary="Require a second factor of every member (an admin in person, at aal2)")
    async def change(
        self,
        data: JSONBody[AuthPolicy],
        ctx: Ctx,
        tenancy: Tenancy,
        meta: Meta,
    ) -> AuthPolicy:
        rbac.require_security_admin(ctx, "changing the org's sign-in policy")
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
