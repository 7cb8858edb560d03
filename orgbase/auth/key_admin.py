"""An org's API keys, managed by its admins (users, not keys: a key cannot mint keys)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from orgbase.auth.apikeys import ApiKeyStore
from orgbase.auth.schemas import ApiKey, ApiKeyCreate, ApiKeyCreated, RequestMeta
from orgbase.core import audit, rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, Principal
from orgbase.core.errors import Forbidden, Invalid, NotFound
from orgbase.core.orgs import LiveOrgs
from orgbase.core.postgres import Database

_TABLE = "orgbase.api_keys"


def _require_key_admin(principal: Principal, ctx: OrgContext) -> None:
    principal.require_user()
    if not ctx.at_least("admin") or ctx.impersonated:
        raise Forbidden("managing API keys needs the admin role", code="role_too_low")


def _check_expiry(expires: datetime | None) -> None:
    if expires is None:
        return
    if expires.tzinfo is None:
        raise Invalid("expires_at needs a time zone", code="invalid_expiry")
    if expires <= datetime.now(UTC):
        raise Invalid("expires_at is in the past", code="invalid_expiry")


@dataclass
class ApiKeyAdmin:
    db: Database
    api_keys: ApiKeyStore
    orgs: LiveOrgs

    async def create_api_key(
        self, principal: Principal, ctx: OrgContext, body: ApiKeyCreate, meta: RequestMeta
    ) -> ApiKeyCreated:
        _require_key_admin(principal, ctx)
        rbac.require_can_grant(ctx, body.role)
        _check_expiry(body.expires_at)
        async with self.db.system_connection() as connection, connection.transaction():
            await self.orgs.hold(connection, ctx.org_id)
            row, plaintext = await self.api_keys.create(
                connection,
                org_id=ctx.org_id,
                name=body.name.strip() or "key",
                role=body.role,
                created_by=ctx.user_id,
                expires_at=body.expires_at,
            )
            event = AuditEvent.in_org(
                ctx,
                meta,
                "api_key.created",
                target_table=_TABLE,
                row_key={"id": str(row["id"])},
                details={"name": row["name"], "role": row["role"]},
            )
            await audit.record(connection, event)
        return ApiKeyCreated(**row, key=plaintext)

    async def list_api_keys(self, principal: Principal, ctx: OrgContext) -> list[ApiKey]:
        _require_key_admin(principal, ctx)
        async with self.db.system_connection() as connection:
            rows = await self.api_keys.list_for_org(connection, ctx.org_id)
        return [ApiKey(**row) for row in rows]

    async def revoke_api_key(
        self, principal: Principal, ctx: OrgContext, key_id: UUID, meta: RequestMeta
    ) -> None:
        _require_key_admin(principal, ctx)
        async with self.db.system_connection() as connection, connection.transaction():
            hashed = await self.api_keys.revoke(connection, ctx.org_id, key_id)
            if hashed is None:
                raise NotFound("no such active API key in this org", code="api_key_not_found")
            event = AuditEvent.in_org(
                ctx, meta, "api_key.revoked", target_table=_TABLE, row_key={"id": str(key_id)}
            )
            await audit.record(connection, event)
        await self.api_keys.forget([hashed])
        await self.api_keys.revoked(ctx.org_id, [key_id])
