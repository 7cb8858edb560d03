"""The per-request org context: who acts in which org with which role.

For a user, the role comes from the membership cache (so a removal or a lowered role acts
on the next request); for an API key, from the key; for a platform admin's impersonation,
it is "viewer" for as long as the impersonation lasts. The context keeps the credential it
came from, so PostgreSQL checks it again when a statement enters the org.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from orgbase.core.accounts import Accounts
from orgbase.core.context import OrgContext, PolicyChange, Principal
from orgbase.core.errors import Forbidden
from orgbase.core.events import EventBus, PolicyChanged
from orgbase.core.pg_errors import (
    impersonation_ended,
    mfa_required,
    org_not_found,
    sso_membership_suspended,
    sso_required,
)
from orgbase.core.postgres import Database
from orgbase.tenants.memberships import MembershipCache

# The user's session (its standing, from the auth area) and membership against the org's
# policy (the same rules as the SQL entry, orgbase.enter_session).
_POLICY_ROW = """
SELECT o.mfa_required AND $3::text <> 'aal2' AS short_of_mfa,
       orgbase.sso_needed(o.id, m.sso_bound, $4::text) AND $5::uuid IS DISTINCT FROM o.id
           AS outside_sso,
       orgbase.sso_suspended(o.id, m.sso_bound, $4::text) AS suspended
FROM orgbase.orgs o
LEFT JOIN orgbase.memberships m ON m.org_id = o.id AND m.user_id = $2
WHERE o.id = $1
"""
_IMPERSONATING = """
SELECT true FROM orgbase.impersonations
WHERE id = $1 AND admin_user_id = $2 AND ended_at IS NULL AND expires_at > now()
"""
# Does the org have a policy at all? (SSO: a verified domain, or a bound membership left.)
_POLICY_FLAGS = """
SELECT o.mfa_required,
       EXISTS (SELECT 1 FROM orgbase.org_sso_domains d
               WHERE d.org_id = o.id AND d.verified_at IS NOT NULL)
       OR EXISTS (SELECT 1 FROM orgbase.memberships m WHERE m.org_id = o.id AND m.sso_bound)
           AS sso
FROM orgbase.orgs o WHERE o.id = $1
"""
MFA_FLAG_SECONDS = 2.0
"""How long a process trusts its copy of an org's sign-in policy (MFA, SSO domains), when
no change was heard: a change is published (``policy_changed``) and every replica drops
its copy at once."""


def no_active_org() -> Forbidden:
    return Forbidden(
        "this call needs an active org",
        code="no_active_org",
        hint="sign in or refresh with org_id to choose one",
    )


@dataclass(eq=False)
class OrgContextResolver:
    db: Database
    memberships: MembershipCache
    accounts: Accounts
    events: EventBus
    """Told about every change of an org's sign-in policy (``PolicyChanged``, after it
    committed): it travels like a revocation, to every replica, its sockets and read
    replicas."""
    _mfa_flags: dict[UUID, tuple[tuple[bool, bool], float]] = field(
        init=False, default_factory=dict
    )

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
        if principal.impersonation_id is not None:
            if target != principal.org_id:
                raise org_not_found()
            if not await self._impersonating(principal.impersonation_id, principal.user_id):
                raise impersonation_ended()
            await self._check_policy(target, principal)
            return OrgContext(
                org_id=target,
                user_id=principal.user_id,
                role="viewer",
                request_id=request_id,
                session_id=principal.session_id,
                impersonation_id=principal.impersonation_id,
                session_secret=principal.session_secret,
            )
        role = await self.memberships.role(target, principal.user_id)
        if role is None:
            raise org_not_found()
        await self._check_policy(target, principal)
        return OrgContext(
            org_id=target,
            user_id=principal.user_id,
            role=role,
            request_id=request_id,
            session_id=principal.session_id,
            aal=principal.aal,
            session_secret=principal.session_secret,
        )

    async def _check_policy(self, org_id: UUID, principal: Principal) -> None:
        """The org's sign-in policy: a second factor (``mfa_required``), and its SSO for
        SSO-bound memberships and users of its verified email domains (a bound membership
        whose address left those domains is suspended). A user's token carries its session's level
        (signed; a refresh reads it from the session row), so an org without either policy
        costs nothing but its cached flags (``MFA_FLAG_SECONDS``; the data API checks the
        session row itself, at once). An impersonation's token carries no level: the
        admin's session row answers."""
        mfa, sso = await self._policy(org_id)
        impersonating = principal.impersonation_id is not None
        if not (sso and not impersonating) and not (
            mfa and (principal.aal != "aal2" or impersonating)
        ):
            return
        row = await self._standing(org_id, principal.session_id)
        if row is None:
            return
        if row["suspended"] and not impersonating:
            raise sso_membership_suspended()
        if row["outside_sso"] and not impersonating:
            raise sso_required()
        if row["short_of_mfa"]:
            raise mfa_required()

    async def _standing(self, org_id: UUID, session_id: UUID | None) -> asyncpg.Record | None:
        """The session and its membership against the org's policy (None: no session)."""
        if session_id is None:
            return None
        async with self.db.system_connection() as connection:
            session = await self.accounts.session_standing(connection, session_id)
            if session is None:
                return None
            row: asyncpg.Record | None = await connection.fetchrow(
                _POLICY_ROW, org_id, session.user_id, session.aal, session.email, session.sso_org_id
            )
        return row

    async def _policy(self, org_id: UUID) -> tuple[bool, bool]:
        cached = self._mfa_flags.get(org_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(_POLICY_FLAGS, org_id)
        flags = (bool(row["mfa_required"]), bool(row["sso"])) if row else (False, False)
        if len(self._mfa_flags) > 100_000:
            self._mfa_flags.clear()
        self._mfa_flags[org_id] = (flags, now + MFA_FLAG_SECONDS)
        return flags

    def forget_mfa_flag(self, org_id: UUID) -> None:
        self._mfa_flags.pop(org_id, None)

    async def policy_changed(self, org_id: UUID, change: PolicyChange) -> None:
        """Call after an org's sign-in policy changed (committed)."""
        self.forget_mfa_flag(org_id)
        await self.events.publish(PolicyChanged(org_id=org_id, change=change), must_succeed=True)

    async def _impersonating(self, impersonation_id: UUID, admin_id: UUID) -> bool:
        """Is the impersonation still on? (Its org being gone is an ended one too: the
        deletion ends it.)"""
        async with self.db.system_connection() as connection:
            alive = await connection.fetchval(_IMPERSONATING, impersonation_id, admin_id)
            return bool(alive) and await self.accounts.is_platform_admin(connection, admin_id)
