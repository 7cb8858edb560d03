"""Who may change an account's second factors, and the one-use codes that go with them.

As GoTrue: once an account has a verified factor, enrolling another (or finishing the
enrolment of one), removing a verified one and replacing the recovery codes need a
session at aal2: a password alone never raises itself. A session that came from a
recovery (a mailed link or code) enrols nothing; an impersonation changes no account.
The same level guards the account itself: once a factor is verified, changing the email
or the password and deleting the account need aal2 too (a recovery session is aal1: it
verifies a factor first). The checks read the session and the factors in the transaction
that makes the change, with the user's row locked, so two changes of one user's factors
are never interleaved.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from uuid import UUID

from orgbase.core.errors import Forbidden, Unauthorized
from orgbase.core.postgres import Connection

RECOVERY_CODES = 10
_STATE = """
SELECT s.aal, s.amr,
       (SELECT count(*) FROM orgbase.mfa_factors f
        WHERE f.user_id = u.id AND f.status = 'verified') AS verified
FROM orgbase.users u JOIN orgbase.sessions s ON s.user_id = u.id
WHERE u.id = $1 AND s.id = $2 AND u.deleted_at IS NULL
  AND s.revoked_at IS NULL AND s.expires_at > now()
FOR NO KEY UPDATE OF u
"""


@dataclass(frozen=True)
class SessionState:
    aal: str
    recovered: bool
    """The session was opened by a recovery link or code."""
    verified_factors: int


async def session_state(connection: Connection, user_id: UUID, session_id: UUID) -> SessionState:
    """The session's level and the account's verified factors (locks the user's row)."""
    row = await connection.fetchrow(_STATE, user_id, session_id)
    if row is None:
        raise Unauthorized("the session has ended; sign in again", code="session_revoked")
    amr = json.loads(row["amr"]) if isinstance(row["amr"], str) else row["amr"]
    recovered = any(entry.get("method") == "recovery" for entry in amr)
    return SessionState(row["aal"], recovered, row["verified"])


def require_aal2_once_verified(state: SessionState, action: str) -> None:
    if state.verified_factors and state.aal != "aal2":
        raise Forbidden(  # GoTrue's code and status
            f"{action} needs a session verified with a second factor (aal2)",
            code="insufficient_aal",
            hint="challenge and verify one of your factors, then use the new token",
        )


async def require_aal2_for_account(
    connection: Connection, user_id: UUID, session_id: UUID, action: str
) -> None:
    """``action`` changes what signs the account in (its email, its password) or deletes
    it: once the account has a verified factor, only a session at aal2 may (a password, or
    a mailed recovery link, alone never defeats the second factor). Locks the user's row."""
    require_aal2_once_verified(await session_state(connection, user_id, session_id), action)


def require_not_recovered(state: SessionState) -> None:
    if state.recovered:
        raise Forbidden(
            "a session opened by a recovery cannot enrol a factor: sign in again first",
            code="reauthentication_needed",
        )


# -- recovery codes ----------------------------------------------------------------------


def _recovery_hash(user_id: UUID, code: str) -> bytes:
    normalized = code.replace("-", "").strip().lower()
    return hashlib.sha256(f"{user_id}:{normalized}".encode()).digest()


async def new_recovery_codes(connection: Connection, user_id: UUID) -> list[str]:
    """Replace the user's recovery codes (shown once, stored hashed)."""
    await connection.execute("DELETE FROM orgbase.mfa_recovery_codes WHERE user_id = $1", user_id)
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    await connection.executemany(
        "INSERT INTO orgbase.mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)",
        [(user_id, _recovery_hash(user_id, code)) for code in codes],
    )
    return codes


async def use_recovery_code(connection: Connection, user_id: UUID, code: str) -> bool:
    """Atomic: a code is used once, however many requests bring it at once."""
    used = await connection.fetchval(
        "UPDATE orgbase.mfa_recovery_codes SET used_at = now()"
        " WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING id",
        user_id,
        _recovery_hash(user_id, code),
    )
    return used is not None
