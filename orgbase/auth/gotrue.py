"""GoTrue's API (Supabase Auth) over orgbase's accounts, sessions and codes: the shapes
Supabase's clients parse, the flows they drive (sign-up with confirmation, password and
refresh grants, /user, /logout scopes, /recover, /otp, /resend, /verify).

orgbase's rules stay: passwords checked the same way, sessions alive in PostgreSQL and
Redis, the session's assurance level carried into every token it gets.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import asyncpg
import structlog

from orgbase.auth.accounts import AccountService, normalize_email
from orgbase.auth.codes import CodeBook, Purpose, Verified
from orgbase.auth.gotrue_schemas import (
    GoTrueOtp,
    GoTrueResend,
    GoTrueSignUp,
    GoTrueUserUpdate,
    GoTrueVerify,
)
from orgbase.auth.grants import TokenGrants
from orgbase.auth.oidc_link import identities_json
from orgbase.auth.passwords import Passwords, check_password_rules
from orgbase.auth.schemas import Logout, PasswordGrant, RefreshGrant, SignUp, TokenResponse
from orgbase.auth.sessions import SessionStore
from orgbase.auth.user_sessions import UserSessions
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import Principal, RequestMeta
from orgbase.core.errors import Conflict, Forbidden, Invalid, OrgbaseError, Unauthorized
from orgbase.core.postgres import Connection, Database
from orgbase.core.ratelimit import RateLimiter
from orgbase.core.settings import AuthSettings

log = structlog.get_logger("orgbase.gotrue")

_USER = """
SELECT id, email, email_confirmed_at, last_sign_in_at, user_metadata, new_email,
       created_at, updated_at
FROM orgbase.users WHERE id = $1 AND deleted_at IS NULL
"""
_FACTORS = """
SELECT id, friendly_name, factor_type, status, created_at, updated_at
FROM orgbase.mfa_factors WHERE user_id = $1 ORDER BY created_at
"""
_SENT = """
SELECT purpose, max(created_at) AS sent_at FROM orgbase.auth_codes
WHERE user_id = $1 GROUP BY purpose
"""
METADATA_MAX_BYTES = 16384


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _metadata(data: dict[str, Any] | None) -> str:
    text = json.dumps(data or {})
    if len(text) > METADATA_MAX_BYTES:
        raise Invalid("the user metadata is too large", code="metadata_too_large")
    return text


async def user_json(connection: Connection, user_id: UUID) -> dict[str, Any]:
    """A user as GoTrue shows one."""
    row = await connection.fetchrow(_USER, user_id)
    if row is None:
        raise Unauthorized("the account no longer exists", code="session_revoked")
    factors = await connection.fetch(_FACTORS, user_id)
    identities = await identities_json(connection, user_id)
    sent = {r["purpose"]: r["sent_at"] for r in await connection.fetch(_SENT, user_id)}
    metadata = row["user_metadata"]
    confirmed = _iso(row["email_confirmed_at"])
    return {
        "id": str(row["id"]),
        "aud": "authenticated",
        "role": "authenticated",
        "email": row["email"],
        "phone": "",
        "email_confirmed_at": confirmed,
        "confirmed_at": confirmed,
        "confirmation_sent_at": _iso(sent.get("signup")),
        "recovery_sent_at": _iso(sent.get("recovery")),
        "email_change_sent_at": _iso(sent.get("email_change")),
        "new_email": row["new_email"],
        "last_sign_in_at": _iso(row["last_sign_in_at"]),
        "app_metadata": {
            "provider": "email",
            "providers": ["email", *sorted({i["provider"] for i in identities})],
        },
        "user_metadata": json.loads(metadata) if isinstance(metadata, str) else metadata,
        "identities": identities,
        "factors": [
            {
                "id": str(f["id"]),
                "friendly_name": f["friendly_name"],
                "factor_type": f["factor_type"],
                "status": f["status"],
                "created_at": _iso(f["created_at"]),
                "updated_at": _iso(f["updated_at"]),
            }
            for f in factors
        ],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "is_anonymous": False,
        "is_sso_user": False,
    }


def session_redirect(redirect: str, tokens: TokenResponse, kind: str) -> str:
    """Back to the app with the session in the fragment (never sent to a server), as
    GoTrue's implicit flow does."""
    fragment = urlencode(
        {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_in": tokens.expires_in,
            "expires_at": int(time.time()) + tokens.expires_in,
            "token_type": "bearer",
            "type": kind,
        }
    )
    return f"{redirect}#{fragment}"


def error_redirect(redirect: str, refused: OrgbaseError) -> str:
    """Back to the app with the error in the fragment, as GoTrue's redirects carry it."""
    fragment = urlencode(
        {"error": "access_denied", "error_code": refused.code, "error_description": refused.message}
    )
    return f"{redirect}#{fragment}"


def redirect_allowed(url: str, public_url: str, allowed: tuple[str, ...]) -> bool:
    """Only the deployment itself and the operator's allow-listed prefixes: anything else
    would turn a link of ours into an open redirect."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or "\\" in url:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    for prefix in (public_url, *allowed):
        base = urlsplit(prefix)
        same_origin = (parts.scheme, parts.netloc.lower()) == (base.scheme, base.netloc.lower())
        if same_origin and parts.path.startswith(base.path or "/"):
            return True
    return False


@dataclass
class GoTrue:
    db: Database
    settings: AuthSettings
    public_url: str
    accounts: AccountService
    grants: TokenGrants
    user_sessions: UserSessions
    passwords: Passwords
    sessions: SessionStore
    limiter: RateLimiter
    codes: CodeBook
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    # -- shapes ---------------------------------------------------------------------------

    async def user(self, user_id: UUID) -> dict[str, Any]:
        async with self.db.system_connection() as connection:
            return await user_json(connection, user_id)

    async def session_json(self, tokens: TokenResponse) -> dict[str, Any]:
        return {
            "access_token": tokens.access_token,
            "token_type": "bearer",
            "expires_in": tokens.expires_in,
            "expires_at": int(time.time()) + tokens.expires_in,
            "refresh_token": tokens.refresh_token,
            "user": await self.user(tokens.user.id),
        }

    def check_redirect(self, redirect_to: str | None) -> str | None:
        if redirect_to is None or redirect_to == "":
            return None
        if len(redirect_to) > 2000 or not redirect_allowed(
            redirect_to, self.public_url, self.settings.redirect_urls
        ):
            raise Invalid(
                "redirect_to is not an allowed URL",
                code="redirect_not_allowed",
                hint="the operator lists allowed URLs in ORGBASE_AUTH_REDIRECT_URLS",
            )
        return redirect_to

    # -- sign-up and sign-in --------------------------------------------------------------

    async def signup(
        self, body: GoTrueSignUp, meta: RequestMeta, redirect_to: str | None
    ) -> dict[str, Any]:
        redirect = self.check_redirect(redirect_to)
        data = body.data or {}
        name = data.get("display_name") or data.get("full_name") or data.get("name")
        metadata = _metadata(data)
        try:
            created = await self.accounts.sign_up(
                SignUp(body.email, body.password, name if isinstance(name, str) else None), meta
            )
        except Conflict:
            raise Invalid("a user with this email exists", code="user_already_exists") from None
        async with self.db.system_connection() as connection, connection.transaction():
            await connection.execute(
                "UPDATE orgbase.users SET user_metadata = $2::jsonb WHERE id = $1",
                created.id,
                metadata,
            )
            await self.codes.send(connection, created.id, "signup", created.email, redirect)
        if self.settings.allow_unconfirmed_sign_in:
            tokens = await self.grants.open_session(created.id, "password", meta)
            return await self.session_json(tokens)
        return await self.user(created.id)

    async def password_grant(self, email: str, password: str, meta: RequestMeta) -> dict[str, Any]:
        grant = PasswordGrant(email=email, password=password)
        tokens = await self.grants.token(grant, meta, last_org=True)
        return await self.session_json(tokens)

    async def refresh_grant(self, refresh_token: str, meta: RequestMeta) -> dict[str, Any]:
        tokens = await self.grants.token(RefreshGrant(refresh_token=refresh_token), meta)
        return await self.session_json(tokens)

    async def logout(self, principal: Principal, scope: str, meta: RequestMeta) -> None:
        if scope not in ("local", "global", "others"):
            raise Invalid("scope must be local, global or others", code="validation_failed")
        await self.user_sessions.logout(principal, Logout(scope=scope), meta)  # type: ignore[arg-type]

    # -- the user -------------------------------------------------------------------------

    async def update_user(
        self,
        principal: Principal,
        body: GoTrueUserUpdate,
        meta: RequestMeta,
        redirect_to: str | None,
    ) -> dict[str, Any]:
        """Metadata freely; a new password needs the current one unless this session came
        from a recovery (the point of a recovery); a new email is confirmed at the new
        address before it replaces the old one."""
        user_id, session_id = principal.require_user()
        redirect = self.check_redirect(redirect_to)
        async with self.db.system_connection() as connection:
            current = await connection.fetchrow(
                "SELECT u.email, u.password_hash, s.amr FROM orgbase.users u"
                " JOIN orgbase.sessions s ON s.user_id = u.id WHERE u.id = $1 AND s.id = $2",
                user_id,
                session_id,
            )
        if current is None:
            raise Unauthorized("the session has ended; sign in again", code="session_revoked")
        amr = json.loads(current["amr"]) if isinstance(current["amr"], str) else current["amr"]
        recovered = any(entry.get("method") == "recovery" for entry in amr)
        new_hash = None
        if body.password is not None:
            if not recovered and (
                body.current_password is None
                or not await self.passwords.verify(current["password_hash"], body.current_password)
            ):
                raise Forbidden(
                    "changing the password needs the current password",
                    code="current_password_invalid",
                )
            check_password_rules(body.password, current["email"], self.settings.password_min_length)
            new_hash = await self.passwords.hash(body.password)
        new_email = normalize_email(body.email) if body.email is not None else None
        revoked: list[UUID] = []
        async with self.db.system_connection() as connection, connection.transaction():
            if body.data is not None:
                await connection.execute(
                    "UPDATE orgbase.users SET user_metadata = user_metadata || $2::jsonb,"
                    " updated_at = now() WHERE id = $1",
                    user_id,
                    _metadata(body.data),
                )
            if new_hash is not None:
                await connection.execute(
                    "UPDATE orgbase.users SET password_hash = $2, password_changed_at = now(),"
                    " updated_at = now() WHERE id = $1",
                    user_id,
                    new_hash,
                )
                revoked = await self.sessions.revoke_for_user(
                    connection, user_id, "password_changed", keep=session_id
                )
            if new_email is not None and new_email != current["email"]:
                taken = await connection.fetchval(
                    "SELECT 1 FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL",
                    new_email,
                )
                if taken:
                    raise Invalid("a user with this email exists", code="email_exists")
                await connection.execute(
                    "UPDATE orgbase.users SET new_email = $2 WHERE id = $1", user_id, new_email
                )
                await self.codes.send(connection, user_id, "email_change", new_email, redirect)
            fields = [k for k in ("data", "password", "email") if getattr(body, k) is not None]
            details = {"fields": fields, "sessions_revoked": len(revoked)}
            event = AuditEvent.by_user(user_id, meta, "auth.user_updated", details=details)
            await audit.record(connection, event)
        await self.sessions.forget(revoked)
        return await self.user(user_id)

    # -- mailed codes ---------------------------------------------------------------------

    async def _mail_limits(self, email: str, meta: RequestMeta) -> None:
        # The limiter tags each bucket (core/keys.rate_limit): one slot per IP, per address.
        address = hashlib.sha256(email.encode()).hexdigest()[:32]
        await self.limiter.hit(f"mail:ip:{meta.ip}", self.settings.mail_per_ip_per_hour, 3600)
        await self.limiter.hit(
            f"mail:addr:{address}", self.settings.mail_per_address_per_hour, 3600
        )

    def _later(self, work: Any) -> None:
        """Mail work after the answer: the answer (and its timing) is the same whether the
        address has an account or not."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("mail not queued", error=repr(task.exception()))

    async def _send_to_account(
        self, email: str, purpose: Purpose, redirect: str | None, *, create: bool = False
    ) -> None:
        async with self.db.system_connection() as connection, connection.transaction():
            user_id = await connection.fetchval(
                "SELECT id FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL", email
            )
            if user_id is None and create:
                user_id = await connection.fetchval(
                    "INSERT INTO orgbase.users (email) VALUES ($1)"
                    " ON CONFLICT DO NOTHING RETURNING id",
                    email,
                )
            if user_id is None:
                return
            await self.codes.send(connection, user_id, purpose, email, redirect)

    async def recover(self, raw_email: str, meta: RequestMeta, redirect_to: str | None) -> None:
        redirect = self.check_redirect(redirect_to)
        email = normalize_email(raw_email)
        await self._mail_limits(email, meta)
        self._later(self._send_to_account(email, "recovery", redirect))

    async def otp(self, body: GoTrueOtp, meta: RequestMeta, redirect_to: str | None) -> None:
        redirect = self.check_redirect(redirect_to)
        email = normalize_email(body.email)
        await self._mail_limits(email, meta)
        self._later(self._send_to_account(email, "magiclink", redirect, create=body.create_user))

    async def resend(self, body: GoTrueResend, meta: RequestMeta, redirect_to: str | None) -> None:
        redirect = self.check_redirect(redirect_to)
        email = normalize_email(body.email)
        await self._mail_limits(email, meta)

        async def send() -> None:
            async with self.db.system_connection() as connection, connection.transaction():
                if body.type == "signup":
                    user_id = await connection.fetchval(
                        "SELECT id FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL"
                        " AND email_confirmed_at IS NULL",
                        email,
                    )
                    if user_id is not None:
                        await self.codes.send(connection, user_id, "signup", email, redirect)
                else:
                    user_id = await connection.fetchval(
                        "SELECT id FROM orgbase.users WHERE new_email = $1 AND deleted_at IS NULL",
                        email,
                    )
                    if user_id is not None:
                        await self.codes.send(connection, user_id, "email_change", email, redirect)

        self._later(send())

    async def verify(self, body: GoTrueVerify, meta: RequestMeta) -> dict[str, Any]:
        """A code (with the email) or a link's token: what it proves, then a session."""
        purposes: dict[str, tuple[str, ...]] = {
            "signup": ("signup",),
            "email": ("signup", "magiclink"),
            "magiclink": ("magiclink",),
            "recovery": ("recovery",),
            "email_change": ("email_change",),
            "invite": ("signup",),
        }
        async with self.db.system_connection() as connection:
            if body.token_hash is not None:
                verified = await self.codes.check_link(connection, body.token_hash)
                if verified.purpose not in purposes[body.type]:
                    raise Forbidden("the code has expired or is invalid", code="otp_expired")
            elif body.token is not None and body.email is not None:
                email = normalize_email(body.email)
                verified = await self.codes.check_code(
                    connection, email, purposes[body.type], body.token.strip()
                )
                verified = Verified(verified.user_id, verified.email, body.type)
            else:
                raise Invalid("send token and email, or token_hash", code="validation_failed")
        return await self.session_json(await self.complete(verified, meta))

    async def complete(self, verified: Verified, meta: RequestMeta) -> TokenResponse:
        """What a used code does: confirm the address (sign-up, magic link), swap in the new
        address (email change), end every other session (recovery); then sign in."""
        revoked: list[UUID] = []
        method = {"recovery": "recovery", "email_change": "email/change"}.get(
            verified.purpose, "otp"
        )
        async with self.db.system_connection() as connection, connection.transaction():
            if verified.purpose == "email_change":
                try:
                    await connection.execute(
                        "UPDATE orgbase.users SET email = new_email, new_email = NULL,"
                        " email_confirmed_at = now(), updated_at = now()"
                        " WHERE id = $1 AND new_email = $2",
                        verified.user_id,
                        verified.email,
                    )
                except asyncpg.UniqueViolationError:
                    raise Invalid("a user with this email exists", code="email_exists") from None
            else:
                await connection.execute(
                    "UPDATE orgbase.users SET email_confirmed_at = coalesce(email_confirmed_at,"
                    " now()) WHERE id = $1",
                    verified.user_id,
                )
            if verified.purpose == "recovery":
                revoked = await self.sessions.revoke_for_user(
                    connection, verified.user_id, "recovered"
                )
            details = {"purpose": verified.purpose}
            event = AuditEvent.by_user(verified.user_id, meta, "auth.verified", details=details)
            await audit.record(connection, event)
        await self.sessions.forget(revoked)
        return await self.grants.open_session(verified.user_id, method, meta)

    async def verify_link(
        self, token: str, type_: str, redirect_to: str | None, meta: RequestMeta
    ) -> str:
        """GET /verify (the mailed link): where to send the browser, with the session in
        the fragment as GoTrue does, or the error."""
        redirect = self.check_redirect(redirect_to) or self.public_url
        try:
            async with self.db.system_connection() as connection:
                verified = await self.codes.check_link(connection, token)
            tokens = await self.complete(verified, meta)
        except Forbidden as refused:
            return error_redirect(redirect, refused)
        return session_redirect(redirect, tokens, verified.purpose if type_ else "")

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
