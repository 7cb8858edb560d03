"""Changing an account's address, on every route that can (``PATCH /v1/auth/user``,
GoTrue's ``PUT /auth/v1/user``): pending until confirmed at the new address.

A request stores the new address beside the current one (``new_email``), mails a code and
a link to it and tells the current address. An address another account has gets the same
answer (sign-up hides who has an account; so does this), and its owner a notice instead of
a code: the change stays pending and never confirms. Until the code is used the pending address
grants nothing: sign-in, invitations, org SSO domains and every other lookup read
``email``, which has not changed. At confirmation the address is swapped in and marked
proven; an address that another account took meanwhile is refused (409
``email_exists``), and the old address is told the change happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from orgbase.auth.codes import CodeBook, CodeFor, expired_code
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import RequestMeta
from orgbase.core.errors import Conflict
from orgbase.core.postgres import Connection

_CURRENT = (
    "SELECT email, new_email FROM orgbase.users WHERE id = $1 AND deleted_at IS NULL"
    " FOR NO KEY UPDATE"
)
_TAKEN = "SELECT 1 FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL AND id <> $2"


_TAKEN_NOTICE = (
    "Someone tried to move another account to your address",
    "Someone signed in to another account asked to change its address to this one, which"
    " already has an account here. Nothing was changed, and it cannot be: no code was sent."
    " If you did not expect this, you may ignore this mail.\n",
)


def _taken() -> Conflict:
    return Conflict("an account with this email exists", code="email_exists")


@dataclass
class EmailChanges:
    codes: CodeBook

    async def request(
        self,
        connection: Connection,
        user_id: UUID,
        new_email: str,
        meta: RequestMeta,
        redirect_to: str | None = None,
    ) -> None:
        """In the caller's transaction; ``new_email`` is normalised already."""
        current = await connection.fetchrow(_CURRENT, user_id)
        if current is None or new_email == current["email"]:
            return
        await connection.execute(
            "UPDATE orgbase.users SET new_email = $2, updated_at = now() WHERE id = $1",
            user_id,
            new_email,
        )
        if await connection.fetchval(_TAKEN, new_email, user_id):
            # The same answer as for a free address (the caller learns nothing about who
            # has an account); the address's owner is told, and no code can confirm it.
            await self.codes.mail(connection, "auth.email_change_taken", new_email, *_TAKEN_NOTICE)
        else:
            confirming = CodeFor(user_id, "email_change", new_email, redirect_to)
            await self.codes.send(connection, confirming)
        await self.codes.mail(
            connection,
            "auth.email_change_requested",
            current["email"],
            "A change of your account's address was asked for",
            f"Someone signed in to your account asked to change its address to {new_email}.\n\n"
            "Nothing changes until the change is confirmed from that address. If this was"
            " not you, change your password and sign out your other sessions.\n",
        )
        event = AuditEvent.by_user(user_id, meta, "auth.email_change_requested")
        await audit.record(connection, event)

    async def confirm(
        self, connection: Connection, user_id: UUID, new_email: str, meta: RequestMeta
    ) -> None:
        """The code mailed to ``new_email`` was used: swap it in (caller's transaction)."""
        current = await connection.fetchrow(_CURRENT, user_id)
        if current is None or current["new_email"] != new_email:
            raise expired_code()  # a newer request, or a proof of the address, voided it
        if await connection.fetchval(_TAKEN, new_email, user_id):
            raise _taken()
        try:
            await connection.execute(
                "UPDATE orgbase.users SET email = new_email, new_email = NULL,"
                " email_confirmed_at = now(), updated_at = now() WHERE id = $1",
                user_id,
            )
        except asyncpg.UniqueViolationError:  # taken by a concurrent confirmation
            raise _taken() from None
        await self.codes.mail(
            connection,
            "auth.email_changed",
            current["email"],
            "Your account's address was changed",
            f"Your account's address is now {new_email}; this one no longer signs in.\n\n"
            "If this was not you, contact the administrator of this service at once.\n",
        )
        event = AuditEvent.by_user(user_id, meta, "auth.email_changed")
        await audit.record(connection, event)
