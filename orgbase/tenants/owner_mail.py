"""Mail to every owner of an org, through the outbox, in the caller's transaction.

A change of how people sign in to the org (its SSO provider, its domains, an SSO-bound
membership released) is told to all of its owners: one who did not make it learns of it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from orgbase.core.accounts import Accounts
from orgbase.core.context import OrgContext, Role
from orgbase.core.mail import Mail, Outbox
from orgbase.core.postgres import Connection


class OwnerMail:
    def __init__(self, accounts: Accounts, outbox: Outbox) -> None:
        self.accounts = accounts
        self.outbox = outbox

    async def tell(
        self, connection: Connection, ctx: OrgContext | None, org_id: UUID, kind: str, what: str
    ) -> None:
        """Queue one mail per owner: what changed, who changed it, when. ``ctx`` is None
        when a platform admin made the change."""
        org_name = await connection.fetchval("SELECT name FROM orgbase.orgs WHERE id = $1", org_id)
        who = "a platform admin"
        if ctx is not None and ctx.user_id is not None:
            found = await self.accounts.profiles(connection, [ctx.user_id])
            who = found[ctx.user_id].email if found else "an account deleted since"
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        body = (
            f"The sign-in settings of {org_name} changed: {what}.\n\n"
            f"By: {who}\nWhen: {when}\n\n"
            "If you did not expect this, check the org's sign-in policy and audit log now."
        )
        subject = f"Sign-in settings of {org_name} changed"
        owners: tuple[Role, ...] = ("owner",)
        await self.outbox.to_members(
            connection, org_id, owners, Mail(kind, "", subject, body, org_id)
        )
