"""Queueing mail in the outbox (``core.mail.Outbox``), in the caller's transaction; the
sender is ``outbox.py``."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from orgbase.core.accounts import Accounts
from orgbase.core.context import Role
from orgbase.core.mail import Mail
from orgbase.core.postgres import Connection

_QUEUE = """
INSERT INTO orgbase.outbox (kind, recipient, subject, body, org_id)
SELECT $1, recipient, $3, $4, $5 FROM unnest($2::text[]) AS recipient
"""
_MEMBERS = "SELECT user_id FROM orgbase.memberships WHERE org_id = $1 AND role = ANY($2::text[])"


class MailQueue:
    """Implements ``core.mail.Outbox``."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def queue(self, connection: Connection, mail: Mail) -> None:
        await self._queue(connection, mail, [mail.recipient])

    async def to_members(
        self, connection: Connection, org_id: UUID, roles: Collection[Role], mail: Mail
    ) -> None:
        members = [r["user_id"] for r in await connection.fetch(_MEMBERS, org_id, list(roles))]
        profiles = await self.accounts.profiles(connection, members)
        # In membership order (the order the join gave before): one mail per address.
        addresses = [profiles[m].email for m in members if m in profiles]
        await self._queue(connection, mail, addresses)

    @staticmethod
    async def _queue(connection: Connection, mail: Mail, recipients: list[str]) -> None:
        if recipients:
            await connection.execute(
                _QUEUE, mail.kind, recipients, mail.subject, mail.body, mail.org_id
            )
