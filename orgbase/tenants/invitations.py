"""Invitations by email: a hashed token with an expiry, delivered through the outbox.

In dev mode the inviter's create response also carries the token, so the flow works
without a mail server. Accepting needs the invited email's account and creates the
membership; tokens are single-use and revocable.

An invitation grants at most what its inviter may still grant when it is accepted (an API
key: member at most, whatever its role): a demoted inviter's pending invitations are
capped at their new role, and revoked when they may no longer invite at all (below admin,
removed, or the API key revoked); accepting checks the inviter's authority again, in the
same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from orgbase.core import audit, rbac
from orgbase.core.accounts import Accounts
from orgbase.core.audit import AuditEvent, EventFields
from orgbase.core.context import ROLE_RANK, OrgContext, Principal, RequestMeta, Role
from orgbase.core.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from orgbase.core.mail import Mail, Outbox
from orgbase.core.postgres import Connection, Database
from orgbase.core.settings import Settings
from orgbase.tenants.directory import lock_live_org
from orgbase.tenants.memberships import MembershipCache
from orgbase.tenants.schemas import Accepted, Invitation

_TABLE = "orgbase.invitations"
_COLUMNS = """
id, org_id, email, role, invited_by, created_at, expires_at,
CASE WHEN accepted_at IS NOT NULL THEN 'accepted' WHEN revoked_at IS NOT NULL THEN 'revoked'
     WHEN expires_at <= now() THEN 'expired' ELSE 'pending' END AS status
"""


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_PENDING = "org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL"
_ONE_ADDRESS_AT_A_TIME = (
    "SELECT pg_advisory_xact_lock(hashtextextended('invite:' || $1::uuid::text || ':' || $2, 0))"
)


async def _revoke_pending(connection: Connection, org_id: UUID, column: str, value: Any) -> int:
    """Revoke the org's pending invitations whose ``column`` (a name of ours, never a
    caller's) is ``value``; how many."""
    status = await connection.execute(
        f"UPDATE orgbase.invitations SET revoked_at = now() WHERE {_PENDING}"  # noqa: S608
        f" AND {column} = $2",
        org_id,
        value,
    )
    return int(status.split()[-1])


def _about(invitation_id: UUID, **details: Any) -> EventFields:
    """What an invitation's audit event says: its row, and ``details`` when there are any."""
    fields: EventFields = {"target_table": _TABLE, "row_key": {"id": str(invitation_id)}}
    if details:
        fields["details"] = details
    return fields


async def cap_invitations(
    connection: Connection, org_id: UUID, inviter: UUID, role: Role | None, *, by_key: bool = False
) -> int:
    """After an inviter's role changed to ``role`` (None: removed, or the key revoked):
    revoke their pending invitations if they may no longer invite, else cap them at the new
    role. Returns how many changed."""
    column = "invited_by_key" if by_key else "invited_by"
    if role is None or not rbac.can_invite(role):
        return await _revoke_pending(connection, org_id, column, inviter)
    status = await connection.execute(
        f"UPDATE orgbase.invitations SET role = $3 WHERE {_PENDING}"  # noqa: S608
        f" AND {column} = $2 AND orgbase.role_rank(role) > orgbase.role_rank($3)",
        org_id,
        inviter,
        role,
    )
    return int(status.split()[-1])


def _invitation(row: asyncpg.Record, token: str | None = None) -> Invitation:
    return Invitation(**dict(row), token=token)


def _mail_body(org_name: str, role: str, link: str, token: str, expires: datetime) -> str:
    return (
        f"You have been invited to join {org_name} on orgbase as {role}.\n\n"
        f"Accept: {link}\n"
        f'or POST /v1/invitations/accept with {{"token": "{token}"}} while signed in.\n\n'
        f"The invitation expires on {expires:%Y-%m-%d %H:%M} UTC.\n"
    )


async def _record_acceptance(
    connection: Connection, user_id: UUID, meta: RequestMeta, invitation: dict[str, Any]
) -> None:
    """The acceptance, and the membership's own event (the audit trail's and webhooks'
    ``member.added``): accepting is the only way into an org besides its SSO provisioning."""
    org_id, role = invitation["org_id"], invitation["role"]
    events = (
        AuditEvent.by_user(
            user_id,
            meta,
            "member.added",
            org_id=org_id,
            row_key={"user_id": str(user_id)},
            details={"role": role, "invitation_id": str(invitation["id"])},
        ),
        AuditEvent.by_user(
            user_id,
            meta,
            "invitation.accepted",
            org_id=org_id,
            **_about(invitation["id"], role=role),
        ),
    )
    for event in events:
        await audit.record(connection, event)


@dataclass(eq=False)
class InvitationService:
    db: Database
    memberships: MembershipCache
    settings: Settings
    accounts: Accounts
    outbox: Outbox

    async def create(
        self, ctx: OrgContext, email: str, role: Role, meta: RequestMeta
    ) -> Invitation:
        rbac.require_admin_granting(ctx, role, "inviting members")
        address = email.strip().lower()
        if "@" not in address or len(address) > 320:
            raise Invalid("that is not an email address", code="invalid_email")
        token = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(days=self.settings.tenancy.invitation_days)
        async with self.db.system_connection() as connection, connection.transaction():
            await lock_live_org(connection, ctx.org_id)
            org_name = await connection.fetchval(
                "SELECT name FROM orgbase.orgs WHERE id = $1", ctx.org_id
            )
            # Only the newest invitation of an address works: one invitation of an address
            # at a time (a double-submitted form), so each revokes the one before it.
            await connection.execute(_ONE_ADDRESS_AT_A_TIME, ctx.org_id, address)
            await _revoke_pending(connection, ctx.org_id, "email", address)
            row = await connection.fetchrow(
                f"""
                INSERT INTO orgbase.invitations
                    (org_id, email, role, token_hash, invited_by, invited_by_key, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}
                """,  # noqa: S608 - constant columns
                ctx.org_id,
                address,
                role,
                _hash(token),
                ctx.user_id,
                ctx.key_id,
                expires,
            )
            assert row is not None
            link = f"{self.settings.tenancy.public_url.rstrip('/')}/studio/#/accept?token={token}"
            body = _mail_body(str(org_name), role, link, token, expires)
            mail = Mail("invitation", address, f"Join {org_name} on orgbase", body, ctx.org_id)
            await self.outbox.queue(connection, mail)
            about = _about(row["id"], email=address, role=role)
            event = AuditEvent.in_org(ctx, meta, "invitation.created", **about)
            await audit.record(connection, event)
        # Outside production the inviter sees the token (dev tools, tests).
        return _invitation(row, token if self.settings.env != "prod" else None)

    async def revoke_by_key(self, org_id: UUID, key_id: UUID) -> int:
        """The pending invitations an API key made, after the key was revoked."""
        async with self.db.system_connection() as connection:
            return await cap_invitations(connection, org_id, key_id, None, by_key=True)

    async def list_for_org(self, ctx: OrgContext) -> list[Invitation]:
        rbac.require(ctx, "admin", "listing invitations")
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                f"SELECT {_COLUMNS} FROM orgbase.invitations WHERE org_id = $1"  # noqa: S608
                " ORDER BY created_at DESC LIMIT 500",
                ctx.org_id,
            )
        return [_invitation(r) for r in rows]

    async def revoke(self, ctx: OrgContext, invitation_id: UUID, meta: RequestMeta) -> None:
        rbac.require(ctx, "admin", "revoking invitations")
        async with self.db.system_connection() as connection, connection.transaction():
            if not await _revoke_pending(connection, ctx.org_id, "id", invitation_id):
                raise NotFound("no such pending invitation", code="invitation_not_found")
            event = AuditEvent.in_org(ctx, meta, "invitation.revoked", **_about(invitation_id))
            await audit.record(connection, event)

    async def accept(self, principal: Principal, token: str, meta: RequestMeta) -> Accepted:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            invitation = await self._claim(connection, token, user_id)
            await lock_live_org(connection, invitation["org_id"])
            invitation["role"] = await self._grantable(connection, invitation)
            joined = await connection.fetchval(
                "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING true",
                invitation["org_id"],
                user_id,
                invitation["role"],
            )
            if joined:
                await connection.execute(
                    "UPDATE orgbase.invitations SET accepted_at = now(), accepted_by = $2"
                    " WHERE id = $1",
                    invitation["id"],
                    user_id,
                )
                await _record_acceptance(connection, user_id, meta, invitation)
            # A member has no use for the address's other invitations (nor, already a
            # member, for this one): left pending, they would bring them back once removed.
            await _revoke_pending(connection, invitation["org_id"], "email", invitation["email"])
        if not joined:
            raise Conflict("you are already a member of this org", code="already_member")
        await self.memberships.changed(invitation["org_id"], user_id, invitation["role"])
        return Accepted(org_id=invitation["org_id"], role=invitation["role"])

    async def _grantable(self, connection: Connection, invitation: dict[str, Any]) -> Role:
        """The role the invitation grants now: at most what its inviter may still grant
        (their membership, or their API key), refused when they may no longer invite.

        No lock on the inviter's membership: a role change caps this very invitation row,
        which the caller holds, so a concurrent demotion either waits for this acceptance
        or has already capped the row read here."""
        inviter_role: Role | None
        if invitation["invited_by_key"] is not None:
            inviter_role = await self.accounts.key_role(
                connection, invitation["invited_by_key"], invitation["org_id"]
            )
        elif invitation["invited_by"] is not None:
            # (A deleted account has no membership left.)
            inviter_role = await connection.fetchval(
                "SELECT role FROM orgbase.memberships WHERE org_id = $1 AND user_id = $2",
                invitation["org_id"],
                invitation["invited_by"],
            )
        else:
            inviter_role = None
        if inviter_role is None or not rbac.can_invite(inviter_role):
            raise Gone(
                "whoever sent this invitation may no longer invite", code="invitation_revoked"
            )
        # A key grants at most member, whatever its own role (invitations made before).
        ceiling = rbac.grant_ceiling(inviter_role, by_key=invitation["invited_by_key"] is not None)
        role: Role = invitation["role"]
        return role if ROLE_RANK[role] <= ROLE_RANK[ceiling] else ceiling

    async def _claim(self, connection: Connection, token: str, user_id: UUID) -> dict[str, Any]:
        row = await connection.fetchrow(
            """
            SELECT i.id, i.org_id, i.email, i.role, i.accepted_at, i.revoked_at,
                   i.invited_by, i.invited_by_key,
                   i.expires_at <= now() AS expired, o.deleted_at IS NOT NULL AS org_gone
            FROM orgbase.invitations i JOIN orgbase.orgs o ON o.id = i.org_id
            WHERE i.token_hash = $1
            FOR UPDATE OF i
            """,
            _hash(token),
        )
        if row is None or row["org_gone"]:
            raise NotFound("no such invitation", code="invitation_not_found")
        if row["accepted_at"] is not None:
            raise Conflict("this invitation was already used", code="invitation_used")
        if row["revoked_at"] is not None:
            raise Gone("this invitation was revoked", code="invitation_revoked")
        if row["expired"]:
            raise Gone("this invitation has expired", code="invitation_expired")
        # Held: the account's deletion waits for this acceptance, then ends its membership.
        account = await self.accounts.hold(connection, user_id)
        if account is None or account.email != row["email"]:
            raise Forbidden(
                "this invitation is for another email address", code="invitation_email_mismatch"
            )
        return dict(row)
