"""Sign-up, for both APIs (``POST /v1/auth/signup`` and GoTrue's ``/auth/v1/signup``).

It tells nobody whether an address has an account: a known address gets the answer a
new one gets (a user object, with a stand-in id), after the same work (the password is
hashed either way), and its owner is mailed instead ("you already have an account",
with a sign-in code). A new account, its metadata and its confirmation code are written
in one transaction: refused metadata leaves no account behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from orgbase.auth.accounts import (
    ACCOUNT_COLUMNS,
    clean_display_name,
    normalize_email,
    user_from_row,
)
from orgbase.auth.codes import CodeBook, CodeFor, Notice, limit_mail_to
from orgbase.auth.metadata import check_stored_size, stored_metadata
from orgbase.auth.opening import Opening, SessionOpener
from orgbase.auth.passwords import Passwords, check_password_rules
from orgbase.auth.ratelimit import RateLimiter
from orgbase.auth.schemas import Opened, RequestMeta, SignUp, User
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.postgres import Connection, Database
from orgbase.core.settings import AuthSettings

# ON CONFLICT DO NOTHING: a sign-up racing another for the same address gets no row
# (and the answer every known address gets), not a unique violation.
_INSERT = (
    "INSERT INTO orgbase.users"  # noqa: S608 - constant column list
    " (email, password_hash, display_name, user_metadata, password_changed_at)"
    " VALUES ($1, $2, $3, $4::jsonb, now()) ON CONFLICT DO NOTHING"
    f" RETURNING {ACCOUNT_COLUMNS}"
)
ALREADY_REGISTERED = Notice(
    subject="You already have an account",
    lead=(
        "Someone (perhaps you) tried to create an account with this address, which already"
        " has one. To sign in to it, use the code or the link below. If it was not you,"
        " ignore this mail: nothing was changed."
    ),
)


@dataclass(frozen=True)
class SignedUp:
    user: User
    created: bool
    """False: the address had an account; ``user`` is a stand-in and its owner was mailed."""
    opened: Opened | None = None
    """The new account's first session, when one was asked for."""


def stand_in(email: str, display_name: str | None) -> User:
    """What a new account would look like: the answer for an address that has one."""
    now = datetime.now(UTC)
    return User(uuid.uuid4(), email, display_name, False, now, now)


@dataclass
class SignUps:
    db: Database
    settings: AuthSettings
    passwords: Passwords
    limiter: RateLimiter
    codes: CodeBook
    opener: SessionOpener

    async def sign_up(
        self,
        body: SignUp,
        meta: RequestMeta,
        *,
        metadata: str = "{}",
        redirect_to: str | None = None,
        open_session: bool = False,
    ) -> SignedUp:
        """``open_session``: a new account gets its first session in the same transaction
        (where unconfirmed sign-in is allowed)."""
        await self.limiter.hit(f"signup:ip:{meta.ip}", self.settings.signup_per_ip_per_hour, 3600)
        email = normalize_email(body.email)
        check_password_rules(body.password, email, self.settings.password_min_length)
        display_name = clean_display_name(body.display_name)
        await limit_mail_to(self.limiter, self.settings, email)
        # The same work for a known address as for a new one: the timing tells nothing.
        password_hash = await self.passwords.hash(body.password)
        async with self.db.system_connection() as connection, connection.transaction():
            await check_stored_size(connection, metadata)
            owner: UUID | None = await connection.fetchval(
                "SELECT id FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL"
                " FOR NO KEY UPDATE",
                email,
            )
            row = None
            if owner is None:
                with stored_metadata():
                    row = await connection.fetchrow(
                        _INSERT, email, password_hash, display_name, metadata
                    )
            else:
                await self._tell_owner(connection, owner, email, meta, redirect_to)
            if row is None:
                return SignedUp(stand_in(email, display_name), created=False)
            event = AuditEvent.by_user(row["id"], meta, "auth.signup")
            await audit.record(connection, event)
            await self.codes.send(connection, CodeFor(row["id"], "signup", email, redirect_to))
            if open_session:
                opening = Opening(row["id"], "password", meta)
                opened, expires_at = await self.opener.open_in(connection, opening, row)
        if not open_session:
            return SignedUp(user_from_row(row), created=True)
        await self.opener.cached(opened, expires_at)
        return SignedUp(opened.tokens.user, created=True, opened=opened)

    async def _tell_owner(
        self,
        connection: Connection,
        owner: UUID,
        email: str,
        meta: RequestMeta,
        redirect_to: str | None,
    ) -> None:
        await audit.record(connection, AuditEvent.by_user(owner, meta, "auth.signup_repeated"))
        sign_in = CodeFor(owner, "magiclink", email, redirect_to)
        await self.codes.send(connection, sign_in, notice=ALREADY_REGISTERED)
