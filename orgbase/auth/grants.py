"""Token grants: a password sign-in opens a session; a refresh token rotates (a rotated
token that comes back after the grace window ends its session: it was stolen or replayed).
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from uuid import UUID

import asyncpg

from orgbase.auth.accounts import (
    ACCOUNT_COLUMNS,
    ACCOUNT_FIELDS,
    normalize_email,
)
from orgbase.auth.attempts import GuessLimit, account_key
from orgbase.auth.opening import Opening, SessionOpener, hash_token
from orgbase.auth.passwords import Passwords
from orgbase.auth.ratelimit import RateLimiter
from orgbase.auth.refresh_chain import next_in_chain
from orgbase.auth.schemas import Opened, PasswordGrant, RequestMeta, TokenRequest, TokenResponse
from orgbase.auth.sessions import SessionStore
from orgbase.auth.tokens import TokenService
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.errors import Forbidden, Invalid, RateLimited, Unauthorized
from orgbase.core.orgs import Memberships
from orgbase.core.postgres import Connection, Database
from orgbase.core.settings import AuthSettings

# The one read of the account at a sign-in: the session's claims and GoTrue's user shape
# are made from it.
_USER_FOR_SIGN_IN = (
    f"SELECT {ACCOUNT_COLUMNS}, password_hash, last_org_id"  # noqa: S608
    " FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL"
)
_REFRESH_ROW = """
SELECT t.id, t.session_id, t.org_id, t.rotated_at, t.child_sealed,
       t.expires_at <= now() AS expired,
       extract(epoch FROM now() - t.rotated_at)::float8 AS rotated_ago,
       extract(epoch FROM s.expires_at)::float8 AS session_expires_at,
       s.user_id, s.revoked_at IS NOT NULL OR s.expires_at <= now() AS ended, u.last_org_id
FROM orgbase.refresh_tokens t
JOIN orgbase.sessions s ON s.id = t.session_id
JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
WHERE t.token_hash = $1
FOR UPDATE OF t
"""
_INVALID_CREDENTIALS = "the email or password is wrong"


def _not_a_member() -> Forbidden:
    return Forbidden("you are not a member of that org", code="not_a_member")


@dataclass
class TokenGrants:
    db: Database
    settings: AuthSettings
    tokens: TokenService
    passwords: Passwords
    sessions: SessionStore
    limiter: RateLimiter
    attempts: GuessLimit
    memberships: Memberships
    """The tenancy area's: a token names an org only while its user is a member."""
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    """Sign-in and refresh outcomes (copied into the metrics)."""
    sso_refresh: Callable[[UUID, str | None], Awaitable[str | None]] | None = None
    """Asks an org's provider again at each refresh of a session it signed in."""
    opener: SessionOpener = field(init=False)

    def __post_init__(self) -> None:
        self.opener = SessionOpener(self.db, self.settings, self.tokens, self.sessions)

    async def token(
        self, body: TokenRequest, meta: RequestMeta, *, last_org: bool = False
    ) -> TokenResponse:
        return (await self.grant(body, meta, last_org=last_org)).tokens

    async def grant(
        self, body: TokenRequest, meta: RequestMeta, *, last_org: bool = False
    ) -> Opened:
        """``last_org`` (GoTrue's sign-ins and refreshes, which name no org): a sign-in
        without ``org_id`` enters the user's usual org (``usual_org``); so does a refresh of
        a session that has no org (or lost it)."""
        if isinstance(body, PasswordGrant):
            return await self._password_grant(
                body.email, body.password, body.org_id, meta, last_org=last_org
            )
        return await self._refresh_grant(body.refresh_token, body.org_id, meta, last_org)

    async def usual_org(
        self, user_id: UUID, last: UUID | None, connection: Connection | None = None
    ) -> UUID | None:
        """The org a sign-in that names none enters: the last used one while the user is a
        member of it, else the only org the user is a member of."""
        if last is not None and await self.memberships.role(last, user_id, connection):
            return last
        return await self.memberships.only_org(user_id, connection)

    async def usual_org_of(self, user_id: UUID) -> UUID | None:
        """``usual_org``, the last used org read from the account."""
        async with self.db.system_connection() as connection:
            last = await connection.fetchval(
                "SELECT last_org_id FROM orgbase.users WHERE id = $1", user_id
            )
            return await self.usual_org(user_id, last, connection)

    async def _password_grant(
        self,
        raw_email: str,
        password: str,
        org_id: UUID | None,
        meta: RequestMeta,
        *,
        last_org: bool = False,
    ) -> Opened:
        await self.limiter.hit(f"signin:ip:{meta.ip}", self.settings.signin_per_ip_per_minute, 60)
        try:
            email: str | None = normalize_email(raw_email)
        except Invalid:
            email = None
        account = account_key(email or raw_email)
        row = None
        if email is not None:
            async with self.db.system_connection() as connection:
                row = await connection.fetchrow(_USER_FOR_SIGN_IN, email)
        try:
            await self.attempts.reserve(account, row["id"] if row else None, meta)
        except RateLimited:
            self.outcomes["account_locked"] += 1
            raise
        if not await self.passwords.verify(row["password_hash"] if row else None, password):
            await self._failed(row, meta)
        assert row is not None
        if row["email_confirmed_at"] is None and not self.settings.allow_unconfirmed_sign_in:
            # Only after the password was right: a wrong one learns nothing about the account.
            raise Invalid("confirm your email address first", code="email_not_confirmed")
        self.outcomes["signin"] += 1
        await self.attempts.succeeded(account)
        user_id: UUID = row["id"]
        if org_id is None and last_org:
            org_id = await self.usual_org(user_id, row["last_org_id"])
        if self.passwords.needs_rehash(row["password_hash"]):
            new_hash = await self.passwords.hash(password)
            async with self.db.system_connection() as connection:
                await connection.execute(
                    "UPDATE orgbase.users SET password_hash = $2 WHERE id = $1", user_id, new_hash
                )
        details = {"account": account}
        known = {name: row[name] for name in ACCOUNT_FIELDS}
        return await self.open_session(
            user_id, "password", meta, org_id, details=details, account=known
        )

    async def open_session(
        self,
        user_id: UUID,
        method: str,
        meta: RequestMeta,
        org_id: UUID | None = None,
        *,
        details: dict[str, str] | None = None,
        sso: tuple[UUID, str | None] | None = None,
        account: Mapping[str, Any] | None = None,
    ) -> Opened:
        """A new session for a user who just proved who they are by ``method`` (password,
        otp, recovery, oauth...): its tokens, with the claims GoTrue's clients read.
        ``sso``: the org whose provider signed the user in, and its refresh token;
        ``account``: the user's row, when the caller read it."""
        if org_id is not None and await self.memberships.role(org_id, user_id) is None:
            raise _not_a_member()
        if org_id is None and self.settings.personal_org:
            org_id = await self.memberships.personal_org(user_id, meta)
        opening = Opening(user_id, method, meta, org_id, details, sso)
        return await self.opener.open(opening, account)

    async def _failed(self, row: asyncpg.Record | None, meta: RequestMeta) -> NoReturn:
        reason = "wrong_password" if row else "unknown_email"
        event = AuditEvent.by_user(
            row["id"] if row else None, meta, "auth.signin_failed", details={"reason": reason}
        )
        async with self.db.system_connection() as connection:
            await audit.record(connection, event)
        self.outcomes["signin_failed"] += 1
        raise Unauthorized(_INVALID_CREDENTIALS, code="invalid_credentials")

    async def _refresh_grant(
        self, token: str, org_id: UUID | None, meta: RequestMeta, last_org: bool = False
    ) -> Opened:
        await self.limiter.hit(f"refresh:ip:{meta.ip}", self.settings.refresh_per_ip_per_minute, 60)
        invalid = Unauthorized("the refresh token is invalid", code="invalid_refresh_token")
        if not (20 <= len(token) <= 200) or not token.isascii():
            raise invalid
        await self._still_at_provider(token, meta)
        async with self.db.system_connection() as connection, connection.transaction():
            row = await connection.fetchrow(_REFRESH_ROW, hash_token(token))
            if row is None or row["ended"]:
                raise invalid
            if row["expired"]:
                raise Unauthorized("the refresh token has expired", code="refresh_token_expired")
            grace = self.settings.refresh_grace_seconds
            if row["rotated_at"] is not None and row["rotated_ago"] > grace:
                await self._end_reused(connection, row["session_id"], row["user_id"], meta)
                opened = None
            else:  # a first use, or a concurrent refresh inside the grace: the same child
                opened = await self._rotate(connection, token, row, org_id, last_org)
        if opened is None:
            self.outcomes["refresh_reused"] += 1
            await self.sessions.forget([row["session_id"]])
            raise Unauthorized(
                "this refresh token was already used; the session has been ended",
                code="refresh_token_reused",
            )
        self.outcomes["refresh"] += 1
        return opened

    async def _rotate(
        self,
        connection: Connection,
        token: str,
        row: asyncpg.Record,
        org_id: UUID | None,
        last_org: bool,
    ) -> Opened:
        """The refresh token's successor, and new tokens of its session (in the refresh's
        transaction)."""
        session_id: UUID = row["session_id"]
        user_id: UUID = row["user_id"]
        active_org = await self._active_org(connection, org_id, row["org_id"], user_id)
        if active_org is None and org_id is None and last_org:
            active_org = await self.usual_org(user_id, row["last_org_id"], connection)
        new_token = await next_in_chain(self.opener, connection, token, row, active_org)
        if org_id is not None:
            await connection.execute(
                "UPDATE orgbase.users SET last_org_id = $2 WHERE id = $1", user_id, org_id
            )
        return await self.opener.renewed(connection, user_id, session_id, active_org, new_token)

    async def _still_at_provider(self, token: str, meta: RequestMeta) -> None:
        """A session an org's provider signed in lives as long as the provider still
        signs the user in: asked at every refresh (outside the refresh's transaction)."""
        if self.sso_refresh is None:
            return
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(
                "SELECT s.id, s.user_id, s.sso_org_id, s.sso_refresh_token"
                " FROM orgbase.refresh_tokens t JOIN orgbase.sessions s ON s.id = t.session_id"
                " WHERE t.token_hash = $1 AND s.sso_org_id IS NOT NULL AND s.revoked_at IS NULL",
                hash_token(token),
            )
        if row is None:
            return
        try:
            renewed = await self.sso_refresh(row["sso_org_id"], row["sso_refresh_token"])
        except Unauthorized:
            async with self.db.system_connection() as connection, connection.transaction():
                await self.sessions.revoke(connection, [row["id"]], "sso_ended")
                event = AuditEvent.by_user(row["user_id"], meta, "auth.sso_session_ended")
                await audit.record(connection, event)
            await self.sessions.forget([row["id"]])
            raise
        async with self.db.system_connection() as connection:
            await connection.execute(
                "UPDATE orgbase.sessions SET sso_refresh_token = $2 WHERE id = $1",
                row["id"],
                renewed,
            )

    async def _end_reused(
        self, connection: Connection, session_id: UUID, user_id: UUID, meta: RequestMeta
    ) -> None:
        """A rotated token came back: it was stolen or replayed. End the session."""
        await self.sessions.revoke(connection, [session_id], "refresh_token_reused")
        details = {"session_id": str(session_id)}
        event = AuditEvent.by_user(user_id, meta, "auth.refresh_token_reused", details=details)
        await audit.record(connection, event)

    async def _active_org(
        self, connection: Connection, asked: UUID | None, previous: UUID | None, user_id: UUID
    ) -> UUID | None:
        """The org asked for (the caller must be a member), else the token's org while the
        user is still a member of it."""
        role = self.memberships.role
        if asked is not None:
            if await role(asked, user_id, connection) is None:
                raise _not_a_member()
            return asked
        if previous is not None and await role(previous, user_id, connection) is None:
            return None  # removed from the org since: no org any more
        return previous
