"""Orgs and their members."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast
from uuid import UUID

import asyncpg

from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, Principal, RequestMeta, Role
from orgbase.core.errors import Conflict, Invalid, NotFound
from orgbase.core.postgres import Connection, Database
from orgbase.tenants import rbac
from orgbase.tenants.memberships import MembershipCache
from orgbase.tenants.schemas import Member, Org

OrgPurger = Callable[[OrgContext], Awaitable[object]]
"""Deletes an org's data outside PostgreSQL's platform tables (tenant rows, documents...)."""

_ORG_FOR_MEMBER = """
SELECT o.id, o.name, o.created_at, o.updated_at, m.role
FROM orgbase.orgs o JOIN orgbase.memberships m ON m.org_id = o.id
WHERE m.user_id = $1 AND o.deleted_at IS NULL
"""
_MEMBERS = """
SELECT m.user_id, u.email, u.display_name, m.role, m.created_at, m.updated_at
FROM orgbase.memberships m JOIN orgbase.users u ON u.id = m.user_id
WHERE m.org_id = $1 AND u.deleted_at IS NULL
"""


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise Invalid("the org needs a name", code="invalid_name")
    return cleaned


def _event(ctx: OrgContext, meta: RequestMeta, action: str, **fields: object) -> AuditEvent:
    return AuditEvent(
        action=action,
        org_id=ctx.org_id,
        actor_user_id=ctx.user_id,
        actor_kind="user" if ctx.user_id else "api_key",
        actor_key_id=ctx.key_id,
        request_id=meta.request_id,
        ip=meta.ip,
        **fields,  # type: ignore[arg-type]
    )


class OrgService:
    def __init__(self, db: Database, memberships: MembershipCache) -> None:
        self.db = db
        self.memberships = memberships
        self.purgers: list[OrgPurger] = []

    # -- orgs ---------------------------------------------------------------------------

    async def create(self, principal: Principal, name: str, meta: RequestMeta) -> Org:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            org = await connection.fetchrow(
                "INSERT INTO orgbase.orgs (name, created_by) VALUES ($1, $2)"
                " RETURNING id, name, created_at, updated_at",
                _clean_name(name),
                user_id,
            )
            assert org is not None
            await connection.execute(
                "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')",
                org["id"],
                user_id,
            )
            await connection.execute(
                """
                WITH doc AS (
                    INSERT INTO orgbase.org_settings (org_id, updated_by) VALUES ($1, $2)
                    RETURNING org_id, version, settings, updated_at, updated_by)
                INSERT INTO orgbase.org_settings_history
                SELECT org_id, version, settings, updated_at, updated_by FROM doc
                """,
                org["id"],
                user_id,
            )
            ctx = OrgContext(
                org_id=org["id"], user_id=user_id, role="owner", request_id=meta.request_id
            )
            await audit.record(
                connection, _event(ctx, meta, "org.created", details={"name": org["name"]})
            )
        await self.memberships.changed(org["id"], user_id, "owner")
        return Org(**dict(org), role="owner")

    async def list_mine(self, principal: Principal) -> list[Org]:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_ORG_FOR_MEMBER + " ORDER BY o.created_at", user_id)
        return [Org(**dict(r)) for r in rows]

    async def get(self, ctx: OrgContext) -> Org:
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(
                "SELECT id, name, created_at, updated_at FROM orgbase.orgs"
                " WHERE id = $1 AND deleted_at IS NULL",
                ctx.org_id,
            )
        if row is None:
            raise NotFound("no such org", code="org_not_found")
        return Org(**dict(row), role=ctx.role)

    async def rename(self, ctx: OrgContext, name: str, meta: RequestMeta) -> Org:
        rbac.require(ctx, "admin", "renaming the org")
        async with self.db.system_connection() as connection, connection.transaction():
            row = await connection.fetchrow(
                "UPDATE orgbase.orgs SET name = $2, updated_at = now()"
                " WHERE id = $1 AND deleted_at IS NULL RETURNING id, name, created_at, updated_at,"
                " (SELECT name FROM orgbase.orgs WHERE id = $1) AS old_name",
                ctx.org_id,
                _clean_name(name),
            )
            if row is None:
                raise NotFound("no such org", code="org_not_found")
            await audit.record(
                connection,
                _event(
                    ctx, meta, "org.renamed", details={"from": row["old_name"], "to": row["name"]}
                ),
            )
        return Org(
            id=row["id"],
            name=row["name"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            role=ctx.role,
        )

    async def delete(self, ctx: OrgContext, meta: RequestMeta) -> None:
        """Delete the org with its data: closed first (no one gets in), data purged, then the
        platform rows (memberships, keys, settings, invitations cascade). Audit rows stay."""
        rbac.require(ctx, "owner", "deleting the org")
        async with self.db.system_connection() as connection, connection.transaction():
            members = [
                r["user_id"]
                for r in await connection.fetch(
                    "SELECT user_id FROM orgbase.memberships WHERE org_id = $1", ctx.org_id
                )
            ]
            closed = await connection.execute(
                "UPDATE orgbase.orgs SET deleted_at = coalesce(deleted_at, now()) WHERE id = $1",
                ctx.org_id,
            )
            if closed == "UPDATE 0":
                raise NotFound("no such org", code="org_not_found")
        await self.memberships.removed_all(ctx.org_id, members)
        for purge in self.purgers:
            await purge(ctx)
        async with self.db.system_connection() as connection, connection.transaction():
            await connection.execute("DELETE FROM orgbase.orgs WHERE id = $1", ctx.org_id)
            await audit.record(
                connection, _event(ctx, meta, "org.deleted", details={"members": len(members)})
            )

    # -- members ------------------------------------------------------------------------

    async def members(self, ctx: OrgContext) -> list[Member]:
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_MEMBERS + " ORDER BY m.created_at", ctx.org_id)
        return [Member(**dict(r)) for r in rows]

    async def add_member(
        self, ctx: OrgContext, email: str, role: Role, meta: RequestMeta
    ) -> Member:
        rbac.require(ctx, "admin", "adding members")
        rbac.require_can_grant(ctx, role)
        async with self.db.system_connection() as connection, connection.transaction():
            user_id = await connection.fetchval(
                "SELECT id FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL",
                email.strip().lower(),
            )
            if user_id is None:
                raise NotFound(
                    "no account has this email",
                    code="user_not_found",
                    hint="invite them instead: POST /v1/orgs/{org_id}/invitations",
                )
            try:
                await connection.execute(
                    "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, $3)",
                    ctx.org_id,
                    user_id,
                    role,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict("already a member", code="already_member") from None
            await audit.record(
                connection,
                _event(
                    ctx,
                    meta,
                    "member.added",
                    row_key={"user_id": str(user_id)},
                    details={"role": role},
                ),
            )
            row = await connection.fetchrow(_MEMBERS + " AND m.user_id = $2", ctx.org_id, user_id)
        await self.memberships.changed(ctx.org_id, user_id, role)
        assert row is not None
        return Member(**dict(row))

    async def _locked_member(self, connection: Connection, ctx: OrgContext, user_id: UUID) -> Role:
        """Lock the org's owner rows (serialises last-owner checks) and read the member."""
        await connection.execute(
            "SELECT 1 FROM orgbase.memberships WHERE org_id = $1 AND role = 'owner' FOR UPDATE",
            ctx.org_id,
        )
        current = await connection.fetchval(
            "SELECT role FROM orgbase.memberships WHERE org_id = $1 AND user_id = $2 FOR UPDATE",
            ctx.org_id,
            user_id,
        )
        if current is None:
            raise NotFound("no such member", code="member_not_found")
        return cast("Role", current)

    @staticmethod
    async def _refuse_last_owner(connection: Connection, ctx: OrgContext, user_id: UUID) -> None:
        others = await connection.fetchval(
            "SELECT count(*) FROM orgbase.memberships WHERE org_id = $1 AND role = 'owner'"
            " AND user_id <> $2",
            ctx.org_id,
            user_id,
        )
        if not others:
            raise Conflict("an org must keep at least one owner", code="last_owner")

    async def change_role(
        self, ctx: OrgContext, user_id: UUID, role: Role, meta: RequestMeta
    ) -> Member:
        rbac.require(ctx, "admin", "changing roles")
        rbac.require_can_grant(ctx, role)
        async with self.db.system_connection() as connection, connection.transaction():
            current = await self._locked_member(connection, ctx, user_id)
            rbac.require_can_manage(ctx, current)
            if current == "owner" and role != "owner":
                await self._refuse_last_owner(connection, ctx, user_id)
            await connection.execute(
                "UPDATE orgbase.memberships SET role = $3, updated_at = now()"
                " WHERE org_id = $1 AND user_id = $2",
                ctx.org_id,
                user_id,
                role,
            )
            if current != role:
                await audit.record(
                    connection,
                    _event(
                        ctx,
                        meta,
                        "member.role_changed",
                        row_key={"user_id": str(user_id)},
                        details={"from": current, "to": role},
                    ),
                )
            row = await connection.fetchrow(_MEMBERS + " AND m.user_id = $2", ctx.org_id, user_id)
        await self.memberships.changed(ctx.org_id, user_id, role)
        assert row is not None
        return Member(**dict(row))

    async def remove_member(self, ctx: OrgContext, user_id: UUID, meta: RequestMeta) -> None:
        leaving = ctx.user_id == user_id
        if not leaving:
            rbac.require(ctx, "admin", "removing members")
        async with self.db.system_connection() as connection, connection.transaction():
            current = await self._locked_member(connection, ctx, user_id)
            if not leaving:
                rbac.require_can_manage(ctx, current)
            if current == "owner":
                await self._refuse_last_owner(connection, ctx, user_id)
            await connection.execute(
                "DELETE FROM orgbase.memberships WHERE org_id = $1 AND user_id = $2",
                ctx.org_id,
                user_id,
            )
            await audit.record(
                connection,
                _event(
                    ctx,
                    meta,
                    "member.left" if leaving else "member.removed",
                    row_key={"user_id": str(user_id)},
                    details={"role": current},
                ),
            )
        await self.memberships.changed(ctx.org_id, user_id, None)
