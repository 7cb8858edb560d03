"""A session's tokens: a new session for a user who just proved who they are (password,
code, provider), or new tokens for a live one whose level changed (a second factor).

The account's row is read once per opening, in its transaction (or handed in by the
sign-in that read it): the tokens' claims and GoTrue's user shape are made from it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from orgbase.auth.accounts import ACCOUNT_BY_ID, user_from_row
from orgbase.auth.claims import record_sign_in, session_claims
from orgbase.auth.schemas import Opened, RequestMeta, TokenResponse
from orgbase.auth.sessions import SessionStore
from orgbase.auth.tokens import TokenService
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.errors import Unauthorized
from orgbase.core.postgres import Connection, Database
from orgbase.core.settings import AuthSettings

_INSERT_REFRESH = """
INSERT INTO orgbase.refresh_tokens (session_id, token_hash, parent_id, org_id, expires_at)
VALUES ($1, $2, $3, $4, to_timestamp($5))
"""
_LIVE_SESSION_EXPIRY = """
SELECT extract(epoch FROM expires_at)::float8 FROM orgbase.sessions
WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now()
"""
_SSO = "UPDATE orgbase.sessions SET sso_org_id = $2, sso_refresh_token = $3 WHERE id = $1"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Opening:
    """What a new session is opened with (besides the account)."""

    user_id: UUID
    method: str
    """How the user proved who they are: password, otp, recovery, oauth, sso/oidc..."""
    meta: RequestMeta
    org_id: UUID | None = None
    details: Mapping[str, str] | None = None
    sso: tuple[UUID, str | None] | None = None
    """The org whose provider signed the user in, and the provider's refresh token."""


@dataclass
class SessionOpener:
    db: Database
    settings: AuthSettings
    tokens: TokenService
    sessions: SessionStore

    async def new_refresh_token(
        self,
        connection: Connection,
        session_id: UUID,
        org_id: UUID | None,
        session_expires_at: float,
        parent_id: UUID | None = None,
    ) -> str:
        token = secrets.token_urlsafe(32)
        expires_at = min(time.time() + self.settings.refresh_token_seconds, session_expires_at)
        await connection.execute(
            _INSERT_REFRESH, session_id, hash_token(token), parent_id, org_id, expires_at
        )
        return token

    async def open(self, opening: Opening, account: Mapping[str, Any] | None = None) -> Opened:
        """A new session, in its own transaction. ``account``: the user's row when the
        caller read it already (the sign-in did)."""
        async with self.db.system_connection() as connection, connection.transaction():
            opened, expires_at = await self.open_in(connection, opening, account)
        await self.cached(opened, expires_at)
        return opened

    async def open_in(
        self,
        connection: Connection,
        opening: Opening,
        account: Mapping[str, Any] | asyncpg.Record | None,
    ) -> tuple[Opened, float]:
        """A new session in the caller's transaction; ``cached`` once that committed."""
        user_id, org_id = opening.user_id, opening.org_id
        row = dict(account) if account is not None else await read_account(connection, user_id)
        session_id, expires_at = await self.sessions.create(
            connection, user_id, opening.meta.user_agent, opening.meta.ip
        )
        if opening.sso is not None:
            await connection.execute(_SSO, session_id, *opening.sso)
        refresh = await self.new_refresh_token(connection, session_id, org_id, expires_at)
        method = opening.method
        details = {**(opening.details or {}), "session_id": str(session_id), "method": method}
        event = AuditEvent.by_user(
            user_id, opening.meta, "auth.signin", org_id=org_id, details=details
        )
        await audit.record(connection, event)
        extra = await record_sign_in(connection, row, session_id, method, org_id)
        issued = self.tokens.issue(user_id, session_id, org_id, extra=extra)
        await self.sessions.add_secret(connection, session_id, issued)
        tokens = TokenResponse(
            issued.access_token, refresh, issued.expires_in, user_from_row(row), org_id
        )
        return Opened(tokens, session_id, row), expires_at

    async def cached(self, opened: Opened, expires_at: float) -> None:
        """A session opened by ``open_in``, once its transaction committed."""
        await self.sessions.cache_new(opened.session_id, opened.tokens.user.id, expires_at)

    async def reissue(self, user_id: UUID, session_id: UUID, org_id: UUID | None) -> Opened:
        """New tokens for a live session whose level just changed (a second factor
        verified): the claims come from the session row, as on every refresh."""
        async with self.db.system_connection() as connection, connection.transaction():
            expires_at = await connection.fetchval(_LIVE_SESSION_EXPIRY, session_id, user_id)
            if expires_at is None:
                raise Unauthorized("the session has ended; sign in again", code="session_revoked")
            refresh = await self.new_refresh_token(connection, session_id, org_id, expires_at)
            return await self.renewed(connection, user_id, session_id, org_id, refresh)

    async def renewed(
        self,
        connection: Connection,
        user_id: UUID,
        session_id: UUID,
        org_id: UUID | None,
        refresh_token: str,
    ) -> Opened:
        """New tokens of a live session (in the caller's transaction), with ``refresh_token``
        made for them. The claims carry the session's level, not an old token's: a refresh
        cannot raise it. The previous tokens' secrets keep working until they expire (a
        concurrent refresh, a request in flight)."""
        account = await read_account(connection, user_id)
        extra = await session_claims(connection, session_id, account)
        issued = self.tokens.issue(user_id, session_id, org_id, extra=extra)
        await self.sessions.add_secret(connection, session_id, issued)
        tokens = TokenResponse(
            issued.access_token, refresh_token, issued.expires_in, user_from_row(account), org_id
        )
        return Opened(tokens, session_id, account)


async def read_account(connection: Connection, user_id: UUID) -> dict[str, Any]:
    """The account's row (``ACCOUNT_COLUMNS``) of a user who holds a proof or a session."""
    row = await connection.fetchrow(ACCOUNT_BY_ID, user_id)
    assert row is not None  # the caller holds a proof of this account, or its session
    return dict(row)
