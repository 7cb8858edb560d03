"""What a used mailed code or link proves, and what that ends.

A code reached the address's owner: the address is proven. The first proof of an
address ends what was set on the account before it, possibly by someone else who
registered the address first (pre-hijacking): every session (through the revocation
path, so open sockets close) and a pending email change; and, unless the proof is the
sign-up's own confirmation (the registration it confirms), the password and the second
factors, which nobody proven set. A recovery ends every session whenever it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from orgbase.auth.codes import Verified, expired_code
from orgbase.auth.email_change import EmailChanges
from orgbase.auth.grants import TokenGrants
from orgbase.auth.schemas import Opened
from orgbase.auth.sessions import SessionStore
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import RequestMeta
from orgbase.core.postgres import Connection, Database

# How the session a code opens says it was proven (its amr).
_METHODS = {"recovery": "recovery", "email_change": "email/change"}


async def first_proof(
    connection: Connection, sessions: SessionStore, user_id: UUID, purpose: str, meta: RequestMeta
) -> list[UUID]:
    """End what was set before the address was proven (in the caller's transaction);
    the sessions to ``forget`` once it commits."""
    revoked = await sessions.revoke_for_user(connection, user_id, "address_proven")
    endorsed = purpose == "signup"
    cleared = await connection.fetchval(
        "WITH before AS (SELECT password_hash IS NOT NULL AS had FROM orgbase.users"
        " WHERE id = $1)"
        " UPDATE orgbase.users SET email_confirmed_at = now(), new_email = NULL,"
        " password_hash = CASE WHEN $2 THEN password_hash END,"
        " password_changed_at = CASE WHEN $2 THEN password_changed_at ELSE now() END,"
        " updated_at = now()"
        " WHERE id = $1 RETURNING NOT $2 AND (SELECT had FROM before)",
        user_id,
        endorsed,
    )
    await connection.execute(
        "UPDATE orgbase.auth_codes SET used_at = now()"
        " WHERE user_id = $1 AND purpose = 'email_change' AND used_at IS NULL",
        user_id,
    )
    if not endorsed:
        await connection.execute("DELETE FROM orgbase.mfa_factors WHERE user_id = $1", user_id)
        await connection.execute(
            "DELETE FROM orgbase.mfa_recovery_codes WHERE user_id = $1", user_id
        )
    details = {"purpose": purpose, "sessions_ended": len(revoked), "password_cleared": cleared}
    event = AuditEvent.by_user(user_id, meta, "auth.address_proven", details=details)
    await audit.record(connection, event)
    return revoked


@dataclass
class Proofs:
    db: Database
    sessions: SessionStore
    grants: TokenGrants
    email_changes: EmailChanges

    async def complete(self, verified: Verified, meta: RequestMeta) -> Opened:
        """Apply a used code, then sign in (a new session, after any revocation)."""
        async with self.db.system_connection() as connection, connection.transaction():
            if verified.purpose == "email_change":
                await self.email_changes.confirm(connection, verified.user_id, verified.email, meta)
                revoked: list[UUID] = []
            else:
                revoked = await self._proven(connection, verified, meta)
            details = {"purpose": verified.purpose}
            event = AuditEvent.by_user(verified.user_id, meta, "auth.verified", details=details)
            await audit.record(connection, event)
        await self.sessions.forget(revoked)
        method = _METHODS.get(verified.purpose, "otp")
        org_id = await self.grants.usual_org_of(verified.user_id)
        return await self.grants.open_session(verified.user_id, method, meta, org_id)

    async def _proven(
        self, connection: Connection, verified: Verified, meta: RequestMeta
    ) -> list[UUID]:
        confirmed = await connection.fetchrow(
            "SELECT email_confirmed_at IS NOT NULL AS proven FROM orgbase.users"
            " WHERE id = $1 AND email = $2 AND deleted_at IS NULL FOR NO KEY UPDATE",
            verified.user_id,
            verified.email,
        )
        if confirmed is None:
            raise expired_code()  # the account's address changed since the code was sent
        if not confirmed["proven"]:
            return await first_proof(
                connection, self.sessions, verified.user_id, verified.purpose, meta
            )
        if verified.purpose == "recovery":
            return await self.sessions.revoke_for_user(connection, verified.user_id, "recovered")
        return []
