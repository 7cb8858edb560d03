"""Guesses at a secret, counted per account: reserved before the secret is checked, so
parallel guesses cannot all pass a lock check made before any of them was counted, and
cleared by a right answer. Redis counts (one Lua round trip); when Redis is down,
PostgreSQL does, through the audit log.

Two secrets are guarded this way: the password (sign-in and every ``current_password``
check share one counter per address) and the second factor (TOTP codes and recovery
codes, counted per factor and per user across challenges).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from orgbase.auth.ratelimit import Lockout
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.audit_reads import attempts_since_cleared
from orgbase.core.context import RequestMeta
from orgbase.core.errors import RateLimited
from orgbase.core.postgres import Database
from orgbase.core.redis import RedisUnavailable

CLEARED = "auth.guesses_cleared"


def _sign_in_locked(retry_after: int) -> RateLimited:
    return RateLimited(
        "too many failed sign-ins; this account is locked for a while",
        code="account_locked",
        retry_after=retry_after,
    )


def _second_factor_locked(retry_after: int) -> RateLimited:
    return RateLimited(
        "too many wrong codes; verifying a second factor is locked for a while",
        code="mfa_locked",
        retry_after=retry_after,
    )


@dataclass(frozen=True)
class Guarded:
    """What a limit guards: the audit actions PostgreSQL counts by when Redis is down
    (``attempt`` records since the last of ``cleared``), and the refusal once locked (for
    so many seconds)."""

    attempt: str
    cleared: tuple[str, ...]
    locked: Callable[[int], RateLimited]


SIGN_IN = Guarded("auth.signin_attempt", ("auth.signin", CLEARED), _sign_in_locked)
SECOND_FACTOR = Guarded("auth.mfa_attempt", (CLEARED,), _second_factor_locked)


def account_key(email: str) -> str:
    """What the password lockout counts by: the address (hashed: counters and audit
    details never hold it)."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


@dataclass
class GuessLimit:
    db: Database
    lockout: Lockout
    guarded: Guarded

    async def reserve(self, account: str, user_id: UUID | None, meta: RequestMeta) -> None:
        """Count one attempt, or refuse it (429 with the guarded code) while locked."""
        try:
            locked_for = await self.lockout.reserve(account)
        except RedisUnavailable:
            locked_for = await self._reserve_in_postgres(account, user_id, meta)
        if locked_for:
            raise self.guarded.locked(locked_for)

    async def succeeded(
        self, account: str, user_id: UUID | None = None, meta: RequestMeta | None = None
    ) -> None:
        """A right answer: the attempts counted so far are forgiven (in PostgreSQL too
        when Redis is down and ``meta`` says who)."""
        if await self.lockout.succeeded(account) or meta is None:
            return
        async with self.db.system_connection() as connection:
            event = AuditEvent.by_user(user_id, meta, CLEARED, details={"account": account})
            await audit.record(connection, event)

    async def _reserve_in_postgres(
        self, account: str, user_id: UUID | None, meta: RequestMeta
    ) -> int | None:
        """Serialised per account by a transaction-level advisory lock."""
        window = self.lockout.window_seconds
        async with self.db.system_connection() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($2 || ':' || $1, 0))",
                account,
                self.guarded.attempt,
            )
            guarded = self.guarded
            attempts = await attempts_since_cleared(
                connection, account, guarded.attempt, guarded.cleared, float(window)
            )
            if attempts >= self.lockout.max_failures:
                return self.lockout.lock_seconds
            details = {"account": account}
            event = AuditEvent.by_user(user_id, meta, self.guarded.attempt, details=details)
            await audit.record(connection, event)
        return None
