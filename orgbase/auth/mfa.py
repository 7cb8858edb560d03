"""TOTP second factors (RFC 6238) with recovery codes, as GoTrue's /factors API.

A factor is unverified until a first code proves the enrolment. A verified challenge
raises its session to aal2 (kept in the session row, so a refresh keeps it and nothing
else can raise it). A code is accepted once (its time step must move forward), a challenge
dies after ``auth.code_attempts`` wrong guesses (the guess locks the challenge's row), and
a challenge lives five minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pyotp
import segno

from orgbase.auth.claims import add_method
from orgbase.auth.gotrue import GoTrue
from orgbase.auth.gotrue_schemas import FactorEnroll, FactorVerify
from orgbase.auth.grants import reissue
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import Principal, RequestMeta
from orgbase.core.errors import Forbidden, Invalid, NotFound
from orgbase.core.postgres import Connection

CHALLENGE_SECONDS = 300
MAX_FACTORS = 10
RECOVERY_CODES = 10
_STEP = 30


def _factor_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound("no such factor", code="mfa_factor_not_found") from None


def _recovery_hash(user_id: UUID, code: str) -> bytes:
    normalized = code.replace("-", "").strip().lower()
    return hashlib.sha256(f"{user_id}:{normalized}".encode()).digest()


def qr_svg(uri: str) -> str:
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, scale=4)
    return out.getvalue().decode()


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (now, or one either side for clock drift) whose code this is."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // _STEP)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * _STEP), code):
            return step
    return None


@dataclass
class Factors:
    gotrue: GoTrue

    @property
    def db(self) -> Any:
        return self.gotrue.db

    async def enroll(
        self, principal: Principal, body: FactorEnroll, meta: RequestMeta
    ) -> dict[str, Any]:
        user_id, _ = principal.require_user()
        secret = pyotp.random_base32()
        async with self.db.system_connection() as connection, connection.transaction():
            email = await connection.fetchval(
                "SELECT email FROM orgbase.users WHERE id = $1", user_id
            )
            # Unverified enrolments that were never finished make room for this one.
            await connection.execute(
                "DELETE FROM orgbase.mfa_factors WHERE user_id = $1 AND status = 'unverified'"
                " AND created_at < now() - interval '1 hour'",
                user_id,
            )
            count = await connection.fetchval(
                "SELECT count(*) FROM orgbase.mfa_factors WHERE user_id = $1", user_id
            )
            if count >= MAX_FACTORS:
                raise Invalid("too many factors", code="too_many_enrolled_mfa_factors")
            name = (body.friendly_name or "").strip() or f"totp-{secrets.token_hex(3)}"
            factor_id = await connection.fetchval(
                "INSERT INTO orgbase.mfa_factors (user_id, friendly_name, secret)"
                " VALUES ($1, $2, $3) ON CONFLICT (user_id, friendly_name) DO NOTHING"
                " RETURNING id",
                user_id,
                name,
                secret,
            )
            if factor_id is None:
                raise Invalid(
                    "a factor with this friendly name exists", code="mfa_factor_name_conflict"
                )
            event = AuditEvent.by_user(user_id, meta, "auth.mfa_enrolled")
            await audit.record(connection, event)
        issuer = body.issuer or self.gotrue.settings.mfa_issuer
        uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)
        return {
            "id": str(factor_id),
            "type": "totp",
            "friendly_name": name,
            "totp": {"qr_code": qr_svg(uri), "secret": secret, "uri": uri},
        }

    async def _factor(self, connection: Connection, user_id: UUID, raw_id: str) -> Any:
        factor = await connection.fetchrow(
            "SELECT id, secret, status, last_step FROM orgbase.mfa_factors"
            " WHERE id = $1 AND user_id = $2",
            _factor_id(raw_id),
            user_id,
        )
        if factor is None:
            raise NotFound("no such factor", code="mfa_factor_not_found")
        return factor

    async def challenge(self, principal: Principal, raw_id: str) -> dict[str, Any]:
        user_id, session_id = principal.require_user()
        async with self.db.system_connection() as connection:
            factor = await self._factor(connection, user_id, raw_id)
            row = await connection.fetchrow(
                "INSERT INTO orgbase.mfa_challenges (factor_id, session_id, expires_at)"
                " VALUES ($1, $2, now() + make_interval(secs => $3))"
                " RETURNING id, extract(epoch FROM expires_at)::bigint AS expires_at",
                factor["id"],
                session_id,
                float(CHALLENGE_SECONDS),
            )
        assert row is not None
        return {"id": str(row["id"]), "type": "totp", "expires_at": row["expires_at"]}

    async def verify(
        self, principal: Principal, raw_id: str, body: FactorVerify, meta: RequestMeta
    ) -> dict[str, Any]:
        user_id, session_id = principal.require_user()
        refused = Forbidden("the code is wrong, used or expired", code="mfa_verification_failed")
        first: list[str] = []
        async with self.db.system_connection() as connection:
            async with connection.transaction():
                factor = await self._factor(connection, user_id, raw_id)
                challenge = await connection.fetchrow(
                    "SELECT id, attempts FROM orgbase.mfa_challenges"
                    " WHERE id = $1::text::uuid AND factor_id = $2 AND session_id = $3"
                    " AND verified_at IS NULL AND expires_at > now() FOR UPDATE",
                    body.challenge_id if _is_uuid(body.challenge_id) else None,
                    factor["id"],
                    session_id,
                )
                if challenge is None or challenge["attempts"] >= self.gotrue.settings.code_attempts:
                    raise NotFound("no such challenge, or it expired", code="mfa_challenge_expired")
                step = _matching_step(factor["secret"], body.code.strip(), time.time())
                ok = step is not None and step > factor["last_step"]
                if not ok and factor["status"] == "verified":
                    ok = await self._use_recovery_code(connection, user_id, body.code)
                    step = factor["last_step"] if ok else None
                if not ok:
                    await connection.execute(
                        "UPDATE orgbase.mfa_challenges SET attempts = attempts + 1 WHERE id = $1",
                        challenge["id"],
                    )
            if not ok:
                raise refused
            async with connection.transaction():
                await connection.execute(
                    "UPDATE orgbase.mfa_challenges SET verified_at = now() WHERE id = $1",
                    challenge["id"],
                )
                await connection.execute(
                    "UPDATE orgbase.mfa_factors SET status = 'verified', last_step = $2,"
                    " updated_at = now() WHERE id = $1",
                    factor["id"],
                    step,
                )
                await connection.execute(
                    "UPDATE orgbase.sessions SET aal = 'aal2' WHERE id = $1", session_id
                )
                await add_method(connection, session_id, "mfa/totp")
                if factor["status"] == "unverified":
                    first = await self._new_recovery_codes(connection, user_id)
                event = AuditEvent.by_user(user_id, meta, "auth.mfa_verified")
                await audit.record(connection, event)
        tokens = await reissue(self.gotrue.grants, user_id, session_id, principal.org_id)
        session = await self.gotrue.session_json(tokens)
        if first:
            session["recovery_codes"] = first  # shown once, on the first verification
        return session

    async def _new_recovery_codes(self, connection: Connection, user_id: UUID) -> list[str]:
        await connection.execute(
            "DELETE FROM orgbase.mfa_recovery_codes WHERE user_id = $1", user_id
        )
        codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
        await connection.executemany(
            "INSERT INTO orgbase.mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)",
            [(user_id, _recovery_hash(user_id, code)) for code in codes],
        )
        return codes

    async def _use_recovery_code(self, connection: Connection, user_id: UUID, code: str) -> bool:
        used = await connection.fetchval(
            "UPDATE orgbase.mfa_recovery_codes SET used_at = now()"
            " WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING id",
            user_id,
            _recovery_hash(user_id, code),
        )
        return used is not None

    async def unenroll(
        self, principal: Principal, raw_id: str, meta: RequestMeta
    ) -> dict[str, Any]:
        """A verified factor can be removed only from an aal2 session (else a stolen
        password alone could remove the second factor)."""
        user_id, session_id = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            factor = await self._factor(connection, user_id, raw_id)
            aal = await connection.fetchval(
                "SELECT aal FROM orgbase.sessions WHERE id = $1", session_id
            )
            if factor["status"] == "verified" and aal != "aal2":
                raise Forbidden(
                    "removing a verified factor needs an aal2 session",
                    code="insufficient_aal",
                )
            await connection.execute("DELETE FROM orgbase.mfa_factors WHERE id = $1", factor["id"])
            left = await connection.fetchval(
                "SELECT count(*) FROM orgbase.mfa_factors"
                " WHERE user_id = $1 AND status = 'verified'",
                user_id,
            )
            if not left:
                await connection.execute(
                    "DELETE FROM orgbase.mfa_recovery_codes WHERE user_id = $1", user_id
                )
            event = AuditEvent.by_user(user_id, meta, "auth.mfa_unenrolled")
            await audit.record(connection, event)
        return {"id": str(factor["id"])}


def _is_uuid(raw: str) -> bool:
    try:
        UUID(raw)
    except ValueError:
        return False
    return True
