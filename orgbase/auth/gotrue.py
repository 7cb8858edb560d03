"""GoTrue's API (Supabase Auth) over orgbase's accounts, sessions and codes: the shapes
Supabase's clients parse, the flows they drive (sign-up with confirmation, password and
refresh grants, /user, /logout scopes, /recover, /otp, /resend, /verify).

orgbase's rules stay: passwords checked the same way, sessions alive in PostgreSQL and
Redis, the session's assurance level carried into every token it gets.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import structlog

from orgbase.auth.accounts import SIGN_IN_CHANGE, AccountService, normalize_email, set_password
from orgbase.auth.codes import CodeBook, CodeFor, Purpose, expired_code, limit_mail_to
from orgbase.auth.email_change import EmailChanges
from orgbase.auth.gotrue_schemas import (
    GoTrueOtp,
    GoTrueResend,
    GoTrueSignUp,
    GoTrueUserUpdate,
    GoTrueVerify,
)
from orgbase.auth.gotrue_users import signed_up_json, user_json
from orgbase.auth.grants import TokenGrants
from orgbase.auth.metadata import metadata_json, stored_metadata
from orgbase.auth.mfa_rules import require_aal2_for_account
from orgbase.auth.passwords import Passwords, check_password_rules
from orgbase.auth.proofs import Proofs
from orgbase.auth.ratelimit import RateLimiter
from orgbase.auth.redirects import check_redirect
from orgbase.auth.schemas import (
    Logout,
    Opened,
    PasswordGrant,
    RefreshGrant,
    SignUp,
    TokenResponse,
)
from orgbase.auth.sessions import SessionStore
from orgbase.auth.signup import SignUps
from orgbase.auth.user_sessions import UserSessions
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import Principal, RequestMeta
from orgbase.core.errors import Conflict, Forbidden, Invalid, OrgbaseError, Unauthorized
from orgbase.core.postgres import Database
from orgbase.core.settings import AuthSettings
from orgbase.core.tasks import TaskSet

log = structlog.get_logger("orgbase.gotrue")


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


async def send_to_account(
    db: Database,
    codes: CodeBook,
    email: str,
    purpose: Purpose,
    redirect: str | None,
    *,
    create: bool = False,
) -> None:
    """A code for the account of ``email`` (made first when ``create``), if there is one."""
    async with db.system_connection() as connection, connection.transaction():
        user_id = await connection.fetchval(
            "SELECT id FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL", email
        )
        if user_id is None and create:
            user_id = await connection.fetchval(
                "INSERT INTO orgbase.users (email) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id",
                email,
            )
        if user_id is not None:
            await codes.send(connection, CodeFor(user_id, purpose, email, redirect))


async def resend_code(
    db: Database, codes: CodeBook, kind: str, email: str, redirect: str | None
) -> None:
    """The confirmation of an unconfirmed sign-up, or of a pending email change, again."""
    if kind == "signup":
        find = (
            "SELECT id FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL"
            " AND email_confirmed_at IS NULL"
        )
    else:
        # Not to an address another account has: that change never confirms.
        find = (
            "SELECT id FROM orgbase.users u WHERE new_email = $1 AND deleted_at IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM orgbase.users o"
            " WHERE o.email = u.new_email AND o.deleted_at IS NULL)"
        )
    purpose: Purpose = "signup" if kind == "signup" else "email_change"
    async with db.system_connection() as connection, connection.transaction():
        for row in await connection.fetch(find, email):
            await codes.send(connection, CodeFor(row["id"], purpose, email, redirect))


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
    signups: SignUps
    proofs: Proofs
    email_changes: EmailChanges
    tasks: TaskSet

    # -- shapes ---------------------------------------------------------------------------

    async def user(self, user_id: UUID, account: dict[str, Any] | None = None) -> dict[str, Any]:
        async with self.db.system_connection() as connection:
            return await user_json(connection, user_id, account)

    async def session_json(self, opened: Opened) -> dict[str, Any]:
        tokens = opened.tokens
        return {
            "access_token": tokens.access_token,
            "token_type": "bearer",
            "expires_in": tokens.expires_in,
            "expires_at": int(time.time()) + tokens.expires_in,
            "refresh_token": tokens.refresh_token,
            "user": await self.user(tokens.user.id, opened.account),
        }

    def check_redirect(self, redirect_to: str | None) -> str | None:
        return check_redirect(redirect_to, self.public_url, self.settings.redirect_urls)

    # -- sign-up and sign-in --------------------------------------------------------------

    async def signup(
        self, body: GoTrueSignUp, meta: RequestMeta, redirect_to: str | None
    ) -> dict[str, Any]:
        """As GoTrue with confirmation on: a user object, the same for a known address
        (whose owner is mailed). Where unconfirmed sign-in is allowed, a new address gets
        a session at once and a known one GoTrue's ``user_already_exists`` (that mode
        cannot hide it: a dev convenience)."""
        redirect = self.check_redirect(redirect_to)
        data = body.data or {}
        name = data.get("display_name") or data.get("full_name") or data.get("name")
        # Where unconfirmed sign-in is allowed, the session is opened in the sign-up's
        # transaction.
        with_session = self.settings.allow_unconfirmed_sign_in
        signed_up = await self.signups.sign_up(
            SignUp(body.email, body.password, name if isinstance(name, str) else None),
            meta,
            metadata=metadata_json(data),
            redirect_to=redirect,
            open_session=with_session,
        )
        if not with_session:
            return signed_up_json(signed_up.user, data)
        if signed_up.opened is None:
            raise Invalid("a user with this email exists", code="user_already_exists")
        return await self.session_json(signed_up.opened)

    async def password_grant(self, email: str, password: str, meta: RequestMeta) -> dict[str, Any]:
        grant = PasswordGrant(email=email, password=password)
        return await self.session_json(await self.grants.grant(grant, meta, last_org=True))

    async def refresh_grant(self, refresh_token: str, meta: RequestMeta) -> dict[str, Any]:
        grant = RefreshGrant(refresh_token=refresh_token)
        return await self.session_json(await self.grants.grant(grant, meta, last_org=True))

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
        """Metadata freely (checked as stored); a new password needs the current one
        unless the account has none or this session came from a recovery (the point of
        a recovery); a new email waits for its confirmation at the new address."""
        user_id, session_id = principal.require_user()
        redirect = self.check_redirect(redirect_to)
        signs_in = body.password is not None or body.email is not None
        if signs_in:  # a recovery session too: it verifies a factor first, as GoTrue's
            await self.accounts.require_level(user_id, session_id, SIGN_IN_CHANGE)
        new_hash = None
        if body.password is not None:
            new_hash = await self._new_password(user_id, session_id, body, meta)
        new_email = normalize_email(body.email) if body.email is not None else None
        revoked: list[UUID] = []
        async with self.db.system_connection() as connection, connection.transaction():
            if signs_in:
                await require_aal2_for_account(connection, user_id, session_id, SIGN_IN_CHANGE)
            if body.data is not None:
                with stored_metadata():  # the merged value, checked as stored
                    await connection.execute(
                        "UPDATE orgbase.users SET user_metadata = user_metadata || $2::jsonb,"
                        " updated_at = now() WHERE id = $1",
                        user_id,
                        metadata_json(body.data),
                    )
            if new_hash is not None:
                revoked = await set_password(
                    connection, self.sessions, user_id, new_hash, keep=session_id
                )
            if new_email is not None:
                await self.email_changes.request(connection, user_id, new_email, meta, redirect)
            fields = [k for k in ("data", "password", "email") if getattr(body, k) is not None]
            details = {"fields": fields, "sessions_revoked": len(revoked)}
            event = AuditEvent.by_user(user_id, meta, "auth.user_updated", details=details)
            await audit.record(connection, event)
        await self.sessions.forget(revoked)
        return await self.user(user_id)

    async def _new_password(
        self, user_id: UUID, session_id: UUID, body: GoTrueUserUpdate, meta: RequestMeta
    ) -> str:
        assert body.password is not None
        async with self.db.system_connection() as connection:
            amr = await connection.fetchval(
                "SELECT amr FROM orgbase.sessions WHERE id = $1 AND user_id = $2",
                session_id,
                user_id,
            )
        methods = json.loads(amr) if isinstance(amr, str) else amr or []
        if any(entry.get("method") == "recovery" for entry in methods):
            email = await self._email_of(user_id)
        else:
            email = await self.accounts.check_current_password(user_id, body.current_password, meta)
        check_password_rules(body.password, email, self.settings.password_min_length)
        return await self.passwords.hash(body.password)

    async def _email_of(self, user_id: UUID) -> str:
        async with self.db.system_connection() as connection:
            email = await connection.fetchval(
                "SELECT email FROM orgbase.users WHERE id = $1 AND deleted_at IS NULL", user_id
            )
        if email is None:
            raise Unauthorized("the account no longer exists", code="session_revoked")
        return str(email)

    # -- mailed codes ---------------------------------------------------------------------

    async def _mail_limits(self, email: str, meta: RequestMeta) -> None:
        await self.limiter.hit(f"mail:ip:{meta.ip}", self.settings.mail_per_ip_per_hour, 3600)
        await limit_mail_to(self.limiter, self.settings, email)

    def _later(self, work: Any) -> None:
        """Mail work after the answer: the answer (and its timing) is the same whether the
        address has an account or not."""
        self.tasks.spawn(work, "queueing mail")  # a failure is logged there

    async def recover(self, raw_email: str, meta: RequestMeta, redirect_to: str | None) -> None:
        redirect = self.check_redirect(redirect_to)
        email = normalize_email(raw_email)
        await self._mail_limits(email, meta)
        self._later(send_to_account(self.db, self.codes, email, "recovery", redirect))

    async def otp(self, body: GoTrueOtp, meta: RequestMeta, redirect_to: str | None) -> None:
        redirect = self.check_redirect(redirect_to)
        email = normalize_email(body.email)
        await self._mail_limits(email, meta)
        self._later(
            send_to_account(
                self.db, self.codes, email, "magiclink", redirect, create=body.create_user
            )
        )

    async def resend(self, body: GoTrueResend, meta: RequestMeta, redirect_to: str | None) -> None:
        redirect = self.check_redirect(redirect_to)
        email = normalize_email(body.email)
        await self._mail_limits(email, meta)

        self._later(resend_code(self.db, self.codes, body.type, email, redirect))

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
                    raise expired_code()
            elif body.token is not None and body.email is not None:
                email = normalize_email(body.email)
                verified = await self.codes.check_code(
                    connection, email, purposes[body.type], body.token.strip()
                )
            else:
                raise Invalid("send token and email, or token_hash", code="validation_failed")
        return await self.session_json(await self.proofs.complete(verified, meta))

    async def verify_link(
        self, token: str, type_: str, redirect_to: str | None, meta: RequestMeta
    ) -> str:
        """GET /verify (the mailed link): where to send the browser, with the session in
        the fragment as GoTrue does, or the error."""
        redirect = self.check_redirect(redirect_to) or self.public_url
        try:
            async with self.db.system_connection() as connection:
                verified = await self.codes.check_link(connection, token)
            opened = await self.proofs.complete(verified, meta)
        except (Forbidden, Conflict) as refused:
            return error_redirect(redirect, refused)
        return session_redirect(redirect, opened.tokens, verified.purpose if type_ else "")
