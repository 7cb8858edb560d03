"""TOTP second factors (RFC 6238) with recovery codes, as GoTrue's /factors API.

A factor is unverified until a first code proves the enrolment; a user has at most one
unverified factor (a new enrolment replaces an unfinished one). A verified challenge
raises its session to aal2 (kept in the session row, so a refresh keeps it and nothing
else can raise it). Who may enrol, finish an enrolment, remove a factor or replace the
recovery codes: ``mfa_rules``.

Guessing is bounded three ways: a challenge dies after ``auth.code_attempts`` wrong
guesses; every verification is a guess reserved (before the code is looked at) against
the factor's and the user's counters, across challenges and sessions, which lock after
``auth.mfa_lockout_failures`` / ``auth.mfa_user_lockout_failures`` without a right code;
and a time step is used once per factor: the factor's row is locked while a code is
checked, so parallel requests with one code (from any number of sessions) pass once.
"""

from __future__ import annotations

import io
import secrets
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pyotp
import segno

from orgbase.auth.attempts import GuessLimit
from orgbase.auth.claims import add_method
from orgbase.auth.gotrue import GoTrue
from orgbase.auth.gotrue_schemas import FactorEnroll, FactorVerify
from orgbase.auth.mfa_rules import (
    new_recovery_codes,
    require_aal2_once_verified,
    require_not_recovered,
    session_state,
    use_recovery_code,
)
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import Principal, RequestMeta
from orgbase.core.errors import Forbidden, Invalid, NotFound
from orgbase.core.postgres import Connection, Database
from orgbase.core.secret_compare import same_secret

CHALLENGE_SECONDS = 300
MAX_FACTORS = 10
_STEP = 30
_FACTOR = (
    "SELECT id, secret, status, last_step FROM orgbase.mfa_factors WHERE id = $1 AND user_id = $2"
)


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
        if same_secret(code, totp.at(step * _STEP)):
            return step
    return None


def _is_uuid(raw: str) -> bool:
    try:
        UUID(raw)
    except ValueError:
        return False
    return True


async def _factor(connection: Connection, user_id: UUID, raw_id: str, *, lock: bool) -> Any:
    """The user's factor of that id, its row locked if asked (an id that is no UUID names
    none)."""
    factor = None
    if _is_uuid(raw_id):
        query = _FACTOR + (" FOR UPDATE" if lock else "")
        factor = await connection.fetchrow(query, UUID(raw_id), user_id)
    if factor is None:
        raise NotFound("no such factor", code="mfa_factor_not_found")
    return factor


@dataclass(frozen=True)
class _Caller:
    user_id: UUID
    session_id: UUID
    meta: RequestMeta


async def _accept(
    connection: Connection, caller: _Caller, factor_id: UUID, step: int, *, first: bool
) -> list[str]:
    """A right code: the factor verified (its step used), the session at aal2; the
    recovery codes when this is the account's first factor."""
    await connection.execute(
        "UPDATE orgbase.mfa_factors SET status = 'verified', last_step = $2,"
        " updated_at = now() WHERE id = $1",
        factor_id,
        step,
    )
    await connection.execute(
        "UPDATE orgbase.sessions SET aal = 'aal2' WHERE id = $1", caller.session_id
    )
    await add_method(connection, caller.session_id, "mfa/totp")
    event = AuditEvent.by_user(caller.user_id, caller.meta, "auth.mfa_verified")
    await audit.record(connection, event)
    return await new_recovery_codes(connection, caller.user_id) if first else []


async def _factor_gone(
    connection: Connection, user_id: UUID, session_id: UUID, *, last: bool
) -> None:
    """A verified factor was removed. A session's aal2 may have come from it (which factor
    raised a session is not kept): every other session of the account drops to aal1 and
    verifies a remaining factor again; with the last factor gone, this session too (and the
    recovery codes go), so no refresh mints aal2 for an account without a second factor."""
    await connection.execute(
        "UPDATE orgbase.sessions SET aal = 'aal1'"
        " WHERE user_id = $1 AND aal = 'aal2' AND (id <> $2 OR $3)",
        user_id,
        session_id,
        last,
    )
    if last:
        await connection.execute(
            "DELETE FROM orgbase.mfa_recovery_codes WHERE user_id = $1", user_id
        )


@dataclass
class Factors:
    gotrue: GoTrue
    factor_guesses: GuessLimit
    user_guesses: GuessLimit

    @property
    def db(self) -> Database:
        return self.gotrue.db

    async def enroll(
        self, principal: Principal, body: FactorEnroll, meta: RequestMeta
    ) -> dict[str, Any]:
        user_id, session_id = principal.require_user()
        secret = pyotp.random_base32()
        async with self.db.system_connection() as connection, connection.transaction():
            state = await session_state(connection, user_id, session_id)
            require_not_recovered(state)
            require_aal2_once_verified(state, "enrolling another factor")
            # One unfinished enrolment at a time: this one replaces it.
            await connection.execute(
                "DELETE FROM orgbase.mfa_factors WHERE user_id = $1 AND status = 'unverified'",
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
            email = await connection.fetchval(
                "SELECT email FROM orgbase.users WHERE id = $1", user_id
            )
            await audit.record(connection, AuditEvent.by_user(user_id, meta, "auth.mfa_enrolled"))
        issuer = body.issuer or self.gotrue.settings.mfa_issuer
        uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)
        return {
            "id": str(factor_id),
            "type": "totp",
            "friendly_name": name,
            "totp": {"qr_code": qr_svg(uri), "secret": secret, "uri": uri},
        }

    async def challenge(self, principal: Principal, raw_id: str) -> dict[str, Any]:
        user_id, session_id = principal.require_user()
        async with self.db.system_connection() as connection:
            factor = await _factor(connection, user_id, raw_id, lock=False)
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
        caller = _Caller(user_id, session_id, meta)
        async with self.db.system_connection() as connection:
            factor_id = (await _factor(connection, user_id, raw_id, lock=False))["id"]
        # Reserved before the code is looked at: parallel guesses are counted one by one.
        keys = (f"mfa-factor-{factor_id}", f"mfa-user-{user_id}")
        await self.factor_guesses.reserve(keys[0], user_id, meta)
        await self.user_guesses.reserve(keys[1], user_id, meta)
        async with self.db.system_connection() as connection:
            first = await self._check(connection, caller, raw_id, body)
        if first is None:
            raise Forbidden("the code is wrong, used or expired", code="mfa_verification_failed")
        await self.factor_guesses.succeeded(keys[0], user_id, meta)
        await self.user_guesses.succeeded(keys[1], user_id, meta)
        opened = await self.gotrue.grants.opener.reissue(user_id, session_id, principal.org_id)
        session = await self.gotrue.session_json(opened)
        if first:
            session["recovery_codes"] = first  # shown once, with the account's first factor
        return session

    async def _check(
        self, connection: Connection, caller: _Caller, raw_id: str, body: FactorVerify
    ) -> list[str] | None:
        """One transaction, the factor's row locked: None for a wrong, used or expired code
        (counted against the challenge), else the new recovery codes (maybe none)."""
        async with connection.transaction():
            state = await session_state(connection, caller.user_id, caller.session_id)
            factor = await _factor(connection, caller.user_id, raw_id, lock=True)
            challenge = await connection.fetchrow(
                "SELECT id, attempts FROM orgbase.mfa_challenges"
                " WHERE id = $1::text::uuid AND factor_id = $2 AND session_id = $3"
                " AND verified_at IS NULL AND expires_at > now() FOR UPDATE",
                body.challenge_id if _is_uuid(body.challenge_id) else None,
                factor["id"],
                caller.session_id,
            )
            if challenge is None or challenge["attempts"] >= self.gotrue.settings.code_attempts:
                raise NotFound("no such challenge, or it expired", code="mfa_challenge_expired")
            enrolling = factor["status"] == "unverified"
            if enrolling:  # finishing an enrolment is enrolling
                require_not_recovered(state)
                require_aal2_once_verified(state, "verifying another factor")
            matched = _matching_step(factor["secret"], body.code.strip(), time.time())
            ok = matched is not None and matched > factor["last_step"]
            step: int = matched if ok and matched is not None else factor["last_step"]
            if not ok and not enrolling:
                ok = await use_recovery_code(connection, caller.user_id, body.code)
            if not ok:
                await connection.execute(
                    "UPDATE orgbase.mfa_challenges SET attempts = attempts + 1 WHERE id = $1",
                    challenge["id"],
                )
                return None
            await connection.execute(
                "UPDATE orgbase.mfa_challenges SET verified_at = now() WHERE id = $1",
                challenge["id"],
            )
            first = enrolling and not state.verified_factors
            return await _accept(connection, caller, factor["id"], step, first=first)

    async def unenroll(
        self, principal: Principal, raw_id: str, meta: RequestMeta
    ) -> dict[str, Any]:
        """A verified factor can be removed only from an aal2 session (else a stolen
        password alone could remove the second factor)."""
        user_id, session_id = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            state = await session_state(connection, user_id, session_id)
            factor = await _factor(connection, user_id, raw_id, lock=True)
            if factor["status"] == "verified":
                require_aal2_once_verified(state, "removing a verified factor")
            await connection.execute("DELETE FROM orgbase.mfa_factors WHERE id = $1", factor["id"])
            if factor["status"] == "verified":
                await _factor_gone(
                    connection, user_id, session_id, last=state.verified_factors == 1
                )
            event = AuditEvent.by_user(user_id, meta, "auth.mfa_unenrolled")
            await audit.record(connection, event)
        return {"id": str(factor["id"])}

    async def replace_recovery_codes(
        self, principal: Principal, meta: RequestMeta
    ) -> dict[str, Any]:
        """New recovery codes (the old ones stop working): an aal2 session only."""
        user_id, session_id = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            state = await session_state(connection, user_id, session_id)
            if not state.verified_factors:
                raise NotFound("there is no verified factor", code="mfa_factor_not_found")
            require_aal2_once_verified(state, "replacing the recovery codes")
            codes = await new_recovery_codes(connection, user_id)
            event = AuditEvent.by_user(user_id, meta, "auth.mfa_recovery_codes_replaced")
            await audit.record(connection, event)
        return {"recovery_codes": codes}
