"""Token grants: a password sign-in opens a session; a refresh token rotates (a rotated
token that comes back after the grace window ends its session: it was stolen or replayed).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NoReturn
from uuid import UUID

import asyncpg

from orgbase.auth.accounts import USER_BY_ID, USER_COLUMNS, normalize_email, user_from_row
from orgbase.auth.attempts import GuessLimit, account_key
from orgbase.auth.claims import record_sign_in, session_claims
from orgbase.auth.passwords import Passwords
from orgbase.auth.refresh_chain import hash_token, new_token, seal, unseal
from orgbase.auth.schemas import PasswordGrant, RequestMeta, TokenRequest, TokenResponse
from orgbase.auth.sessions import SessionStore
from orgbase.auth.tokens import TokenService
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import IssuedToken, Role
from orgbase.core.errors import Forbidden, Invalid, RateLimited, Unauthorized
from orgbase.core.postgres import Connection, Database
from orgbase.core.ratelimit import RateLimiter
from orgbase.core.settings import AuthSettings

_USER_FOR_SIGN_IN = (
    f"SELECT {USER_COLUMNS}, password_hash, email_confirmed_at, last_org_id"  # noqa: S608
    " FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL"
)
_REFRESH_ROW = """
SELECT t.id, t.session_id, t.org_id, t.rotated_at, t.child_sealed,
       t.expires_at <= now() AS expired,
       extract(epoch FROM now() - t.rotated_at)::float8 AS rotated_ago,
       extract(epoch FROM s.expires_at)::float8 AS session_expires_at,
       s.user_id, s.revoked_at IS NOT NULL OR s.expires_at <= now() AS ended
FROM orgbase.refresh_tokens t
JOIN orgbase.sessions s ON s.id = t.session_id
JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
WHERE t.token_hash = $1
FOR UPDATE OF t
"""
_INSERT_REFRESH = """
INSERT INTO orgbase.refresh_tokens (session_id, token_hash, parent_id, org_id, expires_at)
VALUES ($1, $2, $3, $4, to_timestamp($5))
"""
_INVALID_CREDENTIALS = "the email or password is wrong"


async def _role(connection: Connection, org_id: UUID, user_id: UUID) -> Role | None:
    """The user's role in the org, straight from PostgreSQL (token issuance is rare)."""
    role: Role | None = await connection.fetchval(
        "SELECT role FROM orgbase.memberships WHERE org_id = $1 AND user_id = $2", org_id, user_id
    )
    return role


async def _require_member(connection: Connection, org_id: UUID, user_id: UUID) -> None:
    if await _role(connection, org_id, user_id) is None:
        raise Forbidden("you are not a member of that org", code="not_a_member")


@dataclass
class TokenGrants:
    db: Database
    settings: AuthSettings
    tokens: TokenService
    passwords: Passwords
    sessions: SessionStore
    limiter: RateLimiter
    attempts: GuessLimit
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    """Sign-in and refresh outcomes (copied into the metrics)."""
    sso_refresh: Callable[[UUID, str | None], Awaitable[str | None]] | None = None
    """Asks an org's provider again at each refresh of a session it signed in."""

    async def token(
        self, body: TokenRequest, meta: RequestMeta, *, last_org: bool = False
    ) -> TokenResponse:
        """``last_org``: a sign-in without ``org_id`` enters the user's last used org (as
        GoTrue-style sign-ins do), when the user is still a member of it."""
        if isinstance(body, PasswordGrant):
            return await self._password_grant(
                body.email, body.password, body.org_id, meta, last_org=last_org
            )
        return await self._refresh_grant(body.refresh_token, body.org_id, meta)

    async def _password_grant(
        self,
        raw_email: str,
        password: str,
        org_id: UUID | None,
        meta: RequestMeta,
        *,
        last_org: bool = False,
    ) -> TokenResponse:
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
        if org_id is None and last_org and row["last_org_id"] is not None:
            async with self.db.system_connection() as connection:
                if await _role(connection, row["last_org_id"], user_id) is not None:
                    org_id = row["last_org_id"]
        if self.passwords.needs_rehash(row["password_hash"]):
            new_hash = await self.passwords.hash(password)
            async with self.db.system_connection() as connection:
                await connection.execute(
                    "UPDATE orgbase.users SET password_hash = $2 WHERE id = $1", user_id, new_hash
                )
        details = {"account": account}
        return await self.open_session(user_id, "password", meta, org_id, details=details)

    async def open_session(
        self,
        user_id: UUID,
        method: str,
        meta: RequestMeta,
        org_id: UUID | None = None,
        *,
        details: dict[str, str] | None = None,
        sso: tuple[UUID, str | None] | None = None,
    ) -> TokenResponse:
        """A new session for a user who just proved who they are by ``method`` (password,
        otp, recovery, oauth...): its tokens, with the claims GoTrue's clients read.
        ``sso``: the org whose provider signed the user in, and its refresh token."""
        async with self.db.system_connection() as connection, connection.transaction():
            if org_id is not None:
                await _require_member(connection, org_id, user_id)
            session_id, expires_at = await self.sessions.create(
                connection, user_id, meta.user_agent, meta.ip
            )
            if sso is not None:
                await connection.execute(
                    "UPDATE orgbase.sessions SET sso_org_id = $2, sso_refresh_token = $3"
                    " WHERE id = $1",
                    session_id,
                    *sso,
                )
            refresh, _ = await self._new_refresh_token(connection, session_id, org_id, expires_at)
            details = {**(details or {}), "session_id": str(session_id), "method": method}
            event = AuditEvent.by_user(user_id, meta, "auth.signin", org_id=org_id, details=details)
            await audit.record(connection, event)
            await record_sign_in(connection, user_id, session_id, method, org_id)
            extra = await session_claims(connection, session_id)
            row = await connection.fetchrow(USER_BY_ID, user_id)
            issued = self.tokens.issue(user_id, session_id, org_id, extra=extra)
            await self.sessions.add_secret(connection, session_id, issued)
        assert row is not None
        await self.sessions.cache_new(session_id, user_id, expires_at)
        return TokenResponse(
            issued.access_token, refresh, issued.expires_in, user_from_row(row), org_id
        )

    async def _failed(self, row: asyncpg.Record | None, meta: RequestMeta) -> NoReturn:
        reason = "wrong_password" if row else "unknown_email"
        event = AuditEvent.by_user(
            row["id"] if row else None, meta, "auth.signin_failed", details={"reason": reason}
        )
        async with self.db.system_connection() as connection:
            await audit.record(connection, event)
        self.outcomes["signin_failed"] += 1
        raise Unauthorized(_INVALID_CREDENTIALS, code="invalid_credentials")

    async def _new_refresh_token(
        self,
        connection: Connection,
        session_id: UUID,
        org_id: UUID | None,
        session_expires_at: float,
        parent_id: UUID | None = None,
    ) -> tuple[str, bytes]:
        """A new refresh token of the session: (the token, its raw bytes)."""
        token, raw = new_token()
        expires_at = min(time.time() + self.settings.refresh_token_seconds, session_expires_at)
        await connection.execute(
            _INSERT_REFRESH, session_id, hash_token(token), parent_id, org_id, expires_at
        )
        return token, raw

    async def _refresh_grant(
        self, token: str, org_id: UUID | None, meta: RequestMeta
    ) -> TokenResponse:
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
            if row["rotated_at"] is not None and row["rotated_ago"] > (
                self.settings.refresh_grace_seconds
            ):
                await self._end_reused(connection, row["session_id"], row["user_id"], meta)
                reused = True
            else:
                reused = False
                active_org = await self._active_org(
                    connection, org_id, row["org_id"], row["user_id"]
                )
                child = await self._child(connection, token, row, active_org)
                answer = await self._issue(connection, row, active_org, asked=org_id)
        if reused:
            self.outcomes["refresh_reused"] += 1
            await self.sessions.forget([row["session_id"]])
            raise Unauthorized(
                "this refresh token was already used; the session has been ended",
                code="refresh_token_reused",
            )
        self.outcomes["refresh"] += 1
        issued, user_row = answer
        return TokenResponse(
            issued.access_token, child, issued.expires_in, user_from_row(user_row), active_org
        )

    async def _child(
        self, connection: Connection, token: str, row: asyncpg.Record, active_org: UUID | None
    ) -> str:
        """The token that follows ``token`` in its session's chain: made (and sealed in the
        parent's row) at its first presentation; the same one again inside the grace
        window (a concurrent refresh)."""
        if row["rotated_at"] is not None:
            sealed: bytes | None = row["child_sealed"]
            if sealed is None:  # rotated before children were kept: never a second chain
                raise Unauthorized("the refresh token is invalid", code="invalid_refresh_token")
            return unseal(token, sealed)
        child, raw = await self._new_refresh_token(
            connection, row["session_id"], active_org, row["session_expires_at"], row["id"]
        )
        await connection.execute(
            "UPDATE orgbase.refresh_tokens SET rotated_at = now(), child_sealed = $2 WHERE id = $1",
            row["id"],
            seal(token, raw),
        )
        return child

    async def _issue(
        self,
        connection: Connection,
        row: asyncpg.Record,
        active_org: UUID | None,
        *,
        asked: UUID | None,
    ) -> tuple[IssuedToken, asyncpg.Record]:
        """A new access token of the refreshed session (in the refresh's transaction), and
        its user's row."""
        user_id: UUID = row["user_id"]
        session_id: UUID = row["session_id"]
        user_row = await connection.fetchrow(USER_BY_ID, user_id)
        assert user_row is not None
        if asked is not None:
            await connection.execute(
                "UPDATE orgbase.users SET last_org_id = $2 WHERE id = $1", user_id, asked
            )
        # The session's level, not the old token's: a refresh cannot raise it.
        extra = await session_claims(connection, session_id)
        # A new secret for the new token; the previous tokens' keep working until they
        # expire (a concurrent refresh, a request in flight).
        issued = self.tokens.issue(user_id, session_id, active_org, extra=extra)
        await self.sessions.add_secret(connection, session_id, issued)
        return issued, user_row

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

    @staticmethod
    async def _active_org(
        connection: Connection, asked: UUID | None, previous: UUID | None, user_id: UUID
    ) -> UUID | None:
        """The org asked for (the caller must be a member), else the token's org while the
        user is still a member of it."""
        if asked is not None:
            await _require_member(connection, asked, user_id)
            return asked
        if previous is not None and await _role(connection, previous, user_id) is None:
            return None  # removed from the org since: no org any more
        return previous


async def reissue(
    grants: TokenGrants, user_id: UUID, session_id: UUID, org_id: UUID | None
) -> TokenResponse:
    """New tokens for a live session whose level just changed (a second factor verified):
    the claims come from the session row, as on every refresh."""
    async with grants.db.system_connection() as connection, connection.transaction():
        expires_at = await connection.fetchval(
            "SELECT extract(epoch FROM expires_at)::float8 FROM orgbase.sessions"
            " WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now()",
            session_id,
            user_id,
        )
        if expires_at is None:
            raise Unauthorized("the session has ended; sign in again", code="session_revoked")
        refresh, _ = await grants._new_refresh_token(connection, session_id, org_id, expires_at)
        extra = await session_claims(connection, session_id)
        row = await connection.fetchrow(USER_BY_ID, user_id)
        issued = grants.tokens.issue(user_id, session_id, org_id, extra=extra)
        await grants.sessions.add_secret(connection, session_id, issued)
    assert row is not None
    return TokenResponse(
        issued.access_token, refresh, issued.expires_in, user_from_row(row), org_id
    )
