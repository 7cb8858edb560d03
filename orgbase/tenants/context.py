"""The per-request org context: who acts in which org with which role.

For a user, the role comes from the membership cache (so a removal or a lowered role acts
on the next request); for an API key, from the key; for a platform admin's impersonation,
it is "viewer" for as long as the impersonation lasts. The context keeps the credential it
came from, so PostgreSQL checks it again when a statement enters the org.
"""

from __future__ import annotations

from uuid import UUID

from orgbase.core.context import OrgContext, Principal
from orgbase.core.errors import Forbidden, NotFound
from orgbase.core.postgres import Database, impersonation_ended
from orgbase.tenants.memberships import MembershipCache


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
