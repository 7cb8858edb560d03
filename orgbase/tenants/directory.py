"""The tenancy area's answers to the other areas about orgs, memberships and SSO
(``core.orgs``: ``LiveOrgs``, ``Memberships``, ``OrgSso``)."""

from __future__ import annotations

from typing import cast
from uuid import UUID

from orgbase.core import audit
from orgbase.core.accounts import Accounts
from orgbase.core.audit import AuditEvent
from orgbase.core.context import RequestMeta, Role
from orgbase.core.orgs import AfterCommit, SsoProvider
from orgbase.core.pg_errors import org_not_found
from orgbase.core.postgres import Connection, Database
from orgbase.tenants.memberships import MembershipCache
from orgbase.tenants.orgs import found_org

_LIVE = "SELECT true FROM orgbase.orgs WHERE id = $1 AND deleted_at IS NULL"
_LEFT_OWNERLESS = """
SELECT count(*) FROM orgbase.memberships m
WHERE m.user_id = $1 AND m.role = 'owner' AND NOT EXISTS (
    SELECT 1 FROM orgbase.memberships o
    WHERE o.org_id = m.org_id AND o.role = 'owner' AND o.user_id <> $1)
"""
_FIRST_ORG = """
SELECT m.org_id FROM orgbase.memberships m
JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
WHERE m.user_id = $1 ORDER BY m.created_at LIMIT 1
"""
# One personal org per user, even for parallel first sign-ins.
_ONE_AT_A_TIME = "SELECT pg_advisory_xact_lock(hashtextextended('personal:' || $1::uuid::text, 0))"
_ONLY_ORG = """
SELECT m.org_id FROM orgbase.memberships m
JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
WHERE m.user_id = $1 LIMIT 2
"""
_LEAVE_ALL = "DELETE FROM orgbase.memberships WHERE user_id = $1 RETURNING org_id"
_PROVIDER = """
SELECT issuer, client_id, client_secret FROM orgbase.org_sso s
JOIN orgbase.orgs o ON o.id = s.org_id AND o.deleted_at IS NULL
WHERE s.org_id = $1
"""
_ORG_OF_DOMAIN = """
SELECT d.org_id FROM orgbase.org_sso_domains d
JOIN orgbase.org_sso s ON s.org_id = d.org_id
WHERE d.domain = $1 AND d.verified_at IS NOT NULL
"""
_SPEAKS_FOR = """
SELECT 1 FROM orgbase.org_sso_domains
WHERE domain = $1 AND org_id = $2 AND verified_at IS NOT NULL
"""
_PROVISION = """
INSERT INTO orgbase.memberships (org_id, user_id, role, sso_bound)
SELECT org_id, $2, default_role, true FROM orgbase.org_sso WHERE org_id = $1
ON CONFLICT DO NOTHING RETURNING role
"""


async def lock_live_org(connection: Connection, org_id: UUID) -> None:
    """In a platform transaction that writes into an org: hold the org (a deletion waits for
    it to commit) and make sure it is still there (404 org_not_found otherwise)."""
    if not await connection.fetchval(_LIVE + " FOR SHARE", org_id):
        raise org_not_found()


class LiveOrgRows:
    """Implements ``core.orgs.LiveOrgs``."""

    async def hold(self, connection: Connection, org_id: UUID) -> None:
        await lock_live_org(connection, org_id)

    async def is_live(self, connection: Connection, org_id: UUID) -> bool:
        return bool(await connection.fetchval(_LIVE, org_id))


class OrgDirectory:
    """Implements ``core.orgs.Memberships`` and ``OrgSso``."""

    def __init__(self, db: Database, memberships: MembershipCache, accounts: Accounts) -> None:
        self.db = db
        self.memberships = memberships
        self.accounts = accounts

    # -- memberships ----------------------------------------------------------------------

    async def role(
        self, org_id: UUID, user_id: UUID, connection: Connection | None = None
    ) -> Role | None:
        return await self.memberships.role(org_id, user_id, connection)

    async def only_org(self, user_id: UUID, connection: Connection | None = None) -> UUID | None:
        if connection is None:
            async with self.db.system_connection() as own:
                return await self.only_org(user_id, own)
        rows = await connection.fetch(_ONLY_ORG, user_id)
        return cast("UUID", rows[0]["org_id"]) if len(rows) == 1 else None

    async def orgs_left_ownerless(self, connection: Connection, user_id: UUID) -> int:
        return int(await connection.fetchval(_LEFT_OWNERLESS, user_id))

    async def leave_all(self, connection: Connection, user_id: UUID) -> AfterCommit:
        orgs = [r["org_id"] for r in await connection.fetch(_LEAVE_ALL, user_id)]

        async def forget() -> None:
            for org_id in orgs:
                await self.memberships.removed_all(org_id, [user_id])

        return forget

    async def personal_org(self, user_id: UUID, meta: RequestMeta) -> UUID | None:
        """The user's first org, or a personal one made now (owner); None when the account
        is gone."""
        async with self.db.system_connection() as connection, connection.transaction():
            await connection.execute(_ONE_AT_A_TIME, user_id)
            if await self.accounts.hold(connection, user_id) is None:
                return None
            found: UUID | None = await connection.fetchval(_FIRST_ORG, user_id)
            if found is not None:
                return found
            org_id: UUID = (await found_org(connection, "Personal", user_id))["id"]
            event = AuditEvent.by_user(
                user_id, meta, "org.created", org_id=org_id, details={"personal": True}
            )
            await audit.record(connection, event)
        await self.memberships.changed(org_id, user_id, "owner")
        return org_id

    # -- SSO ------------------------------------------------------------------------------

    async def provider(self, org_id: UUID) -> SsoProvider | None:
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(_PROVIDER, org_id)
        return None if row is None else SsoProvider(**dict(row))

    async def org_of_domain(self, domain: str) -> UUID | None:
        async with self.db.system_connection() as connection:
            found: UUID | None = await connection.fetchval(_ORG_OF_DOMAIN, domain)
        return found

    async def speaks_for(self, org_id: UUID, domain: str) -> bool:
        async with self.db.system_connection() as connection:
            return bool(await connection.fetchval(_SPEAKS_FOR, domain, org_id))

    async def provision(self, org_id: UUID, user_id: UUID, meta: RequestMeta) -> Role | None:
        async with self.db.system_connection() as connection, connection.transaction():
            if await self.accounts.hold(connection, user_id) is None:
                return None
            role = cast("Role | None", await connection.fetchval(_PROVISION, org_id, user_id))
            if role is not None:
                event = AuditEvent.by_user(
                    user_id, meta, "member.provisioned", org_id=org_id, details={"role": role}
                )
                await audit.record(connection, event)
        if role is not None:
            await self.memberships.changed(org_id, user_id, role)
        return role
