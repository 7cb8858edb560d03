"""Mail to every owner of an org, through the outbox, in the caller's transaction.

A change of how people sign in to the org (its SSO provider, its domains, an SSO-bound
membership released) is told to all of its owners: one who did not make it learns of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from orgbase.core.context import OrgContext
from orgbase.core.postgres import Connection

_TO_OWNERS = """
INSERT INTO orgbase.outbox (kind, recipient, subject, body, org_id)
SELECT $2, u.email, $3, $4, $1
FROM orgbase.memberships m JOIN orgbase.users u ON u.id = m.user_id AND u.deleted_at IS NULL
WHERE m.org_id = $1 AND m.role = 'owner'
"""


async def tell_owners(
    connection: Connection, ctx: OrgContext | None, org_id: UUID, kind: str, what: str
) -> None:
    """Queue one mail per owner: what changed, who changed it, when. ``ctx`` is None when a
    platform admin made the change."""
    org_name = await connection.fetchval("SELECT name FROM orgbase.orgs WHERE id = $1", org_id)
    who = "a platform admin"
    if ctx is not None and ctx.user_id is not None:
        email = await connection.fetchval(
            "SELECT email FROM orgbase.users WHERE id = $1", ctx.user_id
        )
        who = str(email)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"The sign-in settings of {org_name} changed: {what}.\n\n"
        f"By: {who}\nWhen: {when}\n\n"
        "If you did not expect this, check the org's sign-in policy and audit log now."
    )
    await connection.execute(
        _TO_OWNERS, org_id, kind, f"Sign-in settings of {org_name} changed", body
    )
