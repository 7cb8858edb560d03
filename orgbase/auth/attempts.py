"""Sign-in attempts per account: reserved before the password is checked, so parallel
guesses cannot all pass a lock check made before any of them was counted. Redis counts
(one Lua round trip); when Redis is down, PostgreSQL does, through the audit log."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from uuid import UUID

from orgbase.auth.schemas import RequestMeta
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.errors import RateLimited
from orgbase.core.postgres import Database
from orgbase.core.ratelimit import Lockout
from orgbase.core.redis import RedisUnavailable
from orgbase.core.settings import AuthSettings

# Attempts since the account's last successful sign-in, within the window.
_ATTEMPTS_SINCE_SUCCESS = """
SELECT count(*) FROM orgbase.audit_events
WHERE details ->> 'account' = $1 AND action = 'auth.signin_attempt'
  AND occurred_at > now() - make_interval(secs => $2)
  AND id > coalesce((
      SELECT max(id) FROM orgbase.audit_events
      WHERE details ->> 'account' = $1 AND action = 'auth.signin'), 0)
"""


def account_key(email: str) -> str:
    """What the lockout counts by: the address (hashed: counters and audit details never
    hold it)."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


@dataclass
class SignInAttempts:
    db: Database
    settings: AuthSettings
    lockout: Lockout

    async def reserve(self, account: str, user_id: UUID | None, meta: RequestMeta) -> None:
        """Count one attempt, or refuse it (429 ``account_locked``) while the account is
        locked."""
        try:
            locked_for = await self.lockout.reserve(account)
        except RedisUnavailable:
            locked_for = await self._reserve_in_postgres(account, user_id, meta)
        if locked_for:
            raise RateLimited(
                "too many failed sign-ins; this account is locked for a while",
                code="account_locked",
                retry_after=locked_for,
            )

    async def succeeded(self, account: str) -> None:
        await self.lockout.succeeded(account)

    async def _reserve_in_postgres(
        self, account: str, user_id: UUID | None, meta: RequestMeta
    ) -> int | None:
        """Serialised per account by a transaction-level advisory lock."""
        window = self.settings.lockout_window_seconds
        async with self.db.system_connection() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('signin:' || $1, 0))", account
            )
            attempts = await connection.fetchval(_ATTEMPTS_SINCE_SUCCESS, account, float(window))
            if attempts >= self.settings.lockout_failures:
                return window
            event = AuditEvent.by_user(
                user_id, meta, "auth.signin_attempt", details={"account": account}
            )
            await audit.record(connection, event)
        return None
