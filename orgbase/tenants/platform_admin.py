"""Platform operators: list orgs and users for support; read an org only through an
explicit, audited, time-limited, read-only impersonation (of an org that requires a second
factor: only from an aal2 session)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from orgbase.core import audit
from orgbase.core.accounts import Accounts, PlatformUser
from orgbase.core.audit import AuditEvent
from orgbase.core.context import IssuedToken, Principal, RequestMeta
from orgbase.core.errors import Forbidden, Invalid
from orgbase.core.pg_errors import mfa_required, org_not_found
from orgbase.core.postgres import Connection, Database
from orgbase.tenants.schemas import ImpersonationToken, Page, PlatformOrg

TokenIssuer = Callable[[UUID, UUID, UUID, UUID, int], IssuedToken]
"""(user_id, session_id, org_id, impersonation_id, lifetime) -> the access token and its
secret (kept hashed in the impersonation's row: PostgreSQL checks it at every entry)."""

# Bound to the admin's session that started it, and to its token's secret.
_INSERT = """
INSERT INTO orgbase.impersonations
    (id, admin_user_id, org_id, reason, expires_at, session_id, secret_hash, secret_expires_at)
VALUES ($1, $2, $3, $4, $5, $6, orgbase.secret_hash($7), to_timestamp($8))
"""


_MFA_REQUIRED = "SELECT mfa_required FROM orgbase.orgs WHERE id = $1 AND deleted_at IS NULL"


@dataclass(eq=False)
class PlatformService:
    db: Database
    issue_token: TokenIssuer
    impersonation_minutes: int
    accounts: Accounts

    async def require_admin(self, principal: Principal) -> UUID:
        user_id, _ = principal.require_user()
        if principal.impersonation_id is not None:
            raise Forbidden("not while impersonating", code="platform_admin_required")
        async with self.db.system_connection() as connection:
            admin = await self.accounts.is_platform_admin(connection, user_id)
        if not admin:
            raise Forbidden("this is for platform admins", code="platform_admin_required")
        return user_id

    async def orgs(self, principal: Principal, page: Page) -> list[PlatformOrg]:
        await self.require_admin(principal)
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                """
                SELECT o.id, o.name, o.created_at, o.deleted_at,
                       (SELECT count(*) FROM orgbase.memberships m WHERE m.org_id = o.id) AS members
                FROM orgbase.orgs o ORDER BY o.created_at DESC LIMIT $1 OFFSET $2
                """,
                page.limit,
                page.offset,
            )
        return [PlatformOrg(**dict(r)) for r in rows]

    async def users(self, principal: Principal, page: Page) -> list[PlatformUser]:
        await self.require_admin(principal)
        async with self.db.system_connection() as connection:
            return await self.accounts.page(connection, page.limit, page.offset)

    async def _enterable(self, connection: Connection, org_id: UUID, session_id: UUID) -> None:
        """A live org, and one requiring a second factor only from a session that verified
        one: the same rule as entering it (tenants/context.py, orgbase.enter_impersonation);
        an impersonation it would refuse at every use is refused now."""
        mfa = await connection.fetchval(_MFA_REQUIRED, org_id)
        if mfa is None:
            raise org_not_found()
        if mfa:
            standing = await self.accounts.session_standing(connection, session_id)
            if standing is None or standing.aal != "aal2":
                raise mfa_required()

    async def impersonate(
        self, principal: Principal, org_id: UUID, reason: str, meta: RequestMeta
    ) -> ImpersonationToken:
        admin_id = await self.require_admin(principal)
        assert principal.session_id is not None
        reason = reason.strip()
        if not 3 <= len(reason) <= 500:
            raise Invalid(
                "the reason is 3 to 500 characters (spaces around it do not count)",
                code="invalid_reason",
            )
        expires = datetime.now(UTC) + timedelta(minutes=self.impersonation_minutes)
        # The token first (its secret goes into the row), handed out once the row commits.
        impersonation_id = uuid4()
        issued = self.issue_token(
            admin_id,
            principal.session_id,
            org_id,
            impersonation_id,
            self.impersonation_minutes * 60,
        )
        async with self.db.system_connection() as connection, connection.transaction():
            await self._enterable(connection, org_id, principal.session_id)
            await connection.execute(
                _INSERT,
                impersonation_id,
                admin_id,
                org_id,
                reason,
                expires,
                principal.session_id,
                issued.secret,
                issued.secret_expires_at,
            )
            # Logged in the org's own audit trail: its admins see who looked, and why.
            await audit.record(
                connection,
                AuditEvent.by_user(
                    admin_id,
                    meta,
                    "platform.impersonation_started",
                    org_id=org_id,
                    details={"impersonation_id": str(impersonation_id), "reason": reason},
                ),
            )
        return ImpersonationToken(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            org_id=org_id,
            impersonation_id=impersonation_id,
        )
