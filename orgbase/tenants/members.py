"""An org's members: listing, adding, changing roles, removing (and leaving).

No one grants a role above their own or changes someone above them; an org keeps at least
one owner. A member's lower role or removal caps or revokes the invitations they sent,
and takes effect on their next request (the membership cache is rewritten).
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from orgbase.core import audit, rbac
from orgbase.core.accounts import Accounts
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, RequestMeta, Role
from orgbase.core.errors import Conflict, NotFound
from orgbase.core.postgres import Connection, Database
from orgbase.tenants.invitations import cap_invitations
from orgbase.tenants.memberships import MembershipCache
from orgbase.tenants.schemas import Member

_MEMBERS = """
SELECT user_id, role, created_at, updated_at, sso_bound FROM orgbase.memberships
WHERE org_id = $1 AND ($2::uuid IS NULL OR user_id = $2) ORDER BY created_at
"""
# Of these bound members' addresses, those that left the org's verified domains.
_SUSPENDED = """
SELECT coalesce(array_agg(email), '{}') FROM unnest($2::text[]) AS email
WHERE orgbase.sso_suspended($1, true, email)
"""


def _changed(invitations: int) -> dict[str, int]:
    """Audit details: how many of the member's pending invitations were capped or revoked."""
    return {"invitations_changed": invitations} if invitations else {}


async def _record_change(
    connection: Connection,
    ctx: OrgContext,
    meta: RequestMeta,
    action: str,
    *,
    user_id: UUID,
    details: dict[str, Any],
) -> None:
    """Audit a change of one membership, in the change's transaction."""
    event = AuditEvent.in_org(ctx, meta, action, row_key={"user_id": str(user_id)}, details=details)
    await audit.record(connection, event)


class MemberService:
    def __init__(self, db: Database, memberships: MembershipCache, accounts: Accounts) -> None:
        self.db = db
        self.memberships = memberships
        self.accounts = accounts

    async def members(self, ctx: OrgContext) -> list[Member]:
        async with self.db.system_connection() as connection:
            return await self._members(connection, ctx.org_id)

    async def _members(
        self, connection: Connection, org_id: UUID, user_id: UUID | None = None
    ) -> list[Member]:
        """The org's members (or one), with their accounts' addresses and names."""
        rows = await connection.fetch(_MEMBERS, org_id, user_id)
        profiles = await self.accounts.profiles(connection, [r["user_id"] for r in rows])
        bound = [
            profiles[r["user_id"]].email
            for r in rows
            if r["sso_bound"] and r["user_id"] in profiles
        ]
        suspended = set(await connection.fetchval(_SUSPENDED, org_id, bound)) if bound else set()
        return [
            Member(
                **dict(row),
                email=profile.email,
                display_name=profile.display_name,
                sso_suspended=profile.email in suspended,
            )
            for row in rows
            if (profile := profiles.get(row["user_id"])) is not None
        ]

    async def _member(self, connection: Connection, org_id: UUID, user_id: UUID) -> Member:
        found = await self._members(connection, org_id, user_id)
        assert found
        return found[0]

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
        rbac.require_admin_granting(ctx, role, "changing roles")
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
                # Their pending invitations grant no more than they now may.
                capped = await cap_invitations(connection, ctx.org_id, user_id, role)
                await _record_change(
                    connection,
                    ctx,
                    meta,
                    "member.role_changed",
                    user_id=user_id,
                    details={"from": current, "to": role} | _changed(capped),
                )
            member = await self._member(connection, ctx.org_id, user_id)
        await self.memberships.changed(ctx.org_id, user_id, role)
        return member

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
            revoked = await cap_invitations(connection, ctx.org_id, user_id, None)
            await _record_change(
                connection,
                ctx,
                meta,
                "member.left" if leaving else "member.removed",
                user_id=user_id,
                details={"role": current} | _changed(revoked),
            )
        await self.memberships.changed(ctx.org_id, user_id, None)
