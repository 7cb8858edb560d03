"""The per-request org context: who acts in which org with which role.

For a user, the role comes from the membership cache (so a removal or a lowered role acts
on the next request); for an API key, from the key; for a platform admin's impersonation,
it is "viewer" for as long as the impersonation lasts. The context keeps the credential it
came from, so PostgreSQL checks it again when a statement enters the org.
"""

from __future__ import annotations

import time
from uuid import UUID

from orgbase.core.context import OrgContext, Principal
from orgbase.core.errors import Forbidden, NotFound
from orgbase.core.postgres import Database, impersonation_ended, mfa_required
from orgbase.tenants.memberships import MembershipCache

MFA_FLAG_SECONDS = 2.0
"""How long a process trusts its copy of an org's "members must use MFA" flag."""


def org_not_found() -> NotFound:
    # The same answer whether the org does not exist or is not yours: ids leak nothing.
    return NotFound("no such org", code="org_not_found")


def no_active_org() -> Forbidden:
    return Forbidden(
        "this call needs an active org",
        code="no_active_org",
        hint="sign in or refresh with org_id to choose one",
    )


class OrgContextResolver:
    def __init__(self, db: Database, memberships: MembershipCache) -> None:
        self.db = db
        self.memberships = memberships
        self._mfa_flags: dict[UUID, tuple[bool, float]] = {}

    async def resolve(
        self, principal: Principal, org_id: UUID | None, request_id: str
    ) -> OrgContext:
        """``org_id`` from the path, or None for the principal's active org."""
        target = org_id or principal.org_id
        if target is None:
            raise no_active_org()
        if principal.kind == "api_key":
            if target != principal.org_id or principal.key_role is None:
                raise org_not_found()
            return OrgContext(
                org_id=target,
                user_id=None,
                role=principal.key_role,
                request_id=request_id,
                key_id=principal.key_id,
                key_digest=principal.key_digest,
            )
        assert principal.user_id is not None
        if principal.aal != "aal2" and await self._short_of_mfa(target, principal):
            raise mfa_required()
        if principal.impersonation_id is not None:
            if target != principal.org_id:
                raise org_not_found()
            if not await self._impersonating(principal.impersonation_id, principal.user_id):
                raise impersonation_ended()
            return OrgContext(
                org_id=target,
                user_id=principal.user_id,
                role="viewer",
                request_id=request_id,
                session_id=principal.session_id,
                impersonation_id=principal.impersonation_id,
            )
        role = await self.memberships.role(target, principal.user_id)
        if role is None:
            raise org_not_found()
        return OrgContext(
            org_id=target,
            user_id=principal.user_id,
            role=role,
            request_id=request_id,
            session_id=principal.session_id,
        )

    async def _short_of_mfa(self, org_id: UUID, principal: Principal) -> bool:
        """Does the org require a second factor this credential has not shown? A user's
        token carries its session's level (signed; a refresh reads it from the session
        row), so only the org's flag is needed, cached for ``MFA_FLAG_SECONDS`` (the data
        API checks the session row itself, at once). An impersonation's token carries no
        level: the admin's session row answers."""
        if principal.impersonation_id is None and not await self._mfa_required(org_id):
            return False
        async with self.db.system_connection() as connection:
            short: bool | None = await connection.fetchval(
                "SELECT o.mfa_required AND s.aal <> 'aal2' FROM orgbase.orgs o"
                " JOIN orgbase.sessions s ON s.id = $2 WHERE o.id = $1",
                org_id,
                principal.session_id,
            )
        return bool(short)

    async def _mfa_required(self, org_id: UUID) -> bool:
        cached = self._mfa_flags.get(org_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self.db.system_connection() as connection:
            required = bool(
                await connection.fetchval(
                    "SELECT mfa_required FROM orgbase.orgs WHERE id = $1", org_id
                )
            )
        if len(self._mfa_flags) > 100_000:
            self._mfa_flags.clear()
        self._mfa_flags[org_id] = (required, now + MFA_FLAG_SECONDS)
        return required

    def forget_mfa_flag(self, org_id: UUID) -> None:
        self._mfa_flags.pop(org_id, None)

    async def _impersonating(self, impersonation_id: UUID, admin_id: UUID) -> bool:
        """Is the impersonation still on? (Its org being gone is an ended one too: the
        deletion ends it.)"""
        async with self.db.system_connection() as connection:
            alive: bool | None = await connection.fetchval(
                """
                SELECT true FROM orgbase.impersonations i
                JOIN orgbase.users u ON u.id = i.admin_user_id
                WHERE i.id = $1 AND i.admin_user_id = $2
                  AND i.ended_at IS NULL AND i.expires_at > now()
                  AND u.is_platform_admin AND u.deleted_at IS NULL
                """,
                impersonation_id,
                admin_id,
            )
        return bool(alive)
