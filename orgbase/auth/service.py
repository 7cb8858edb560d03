"""The auth use cases: sign-up, sign-in, refresh rotation, logout, the user, sessions and
API keys. PostgreSQL is the source of truth; Redis caches and counts."""

from __future__ import annotations

import collections
import hashlib
import re
import secrets
import time
import unicodedata
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import structlog

from orgbase.auth.apikeys import ApiKeyStore
from orgbase.auth.passwords import Passwords, check_password_rules
from orgbase.auth.schemas import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    Logout,
    PasswordGrant,
    RequestMeta,
    Session,
    SignUp,
    TokenRequest,
    TokenResponse,
    User,
    UserUpdate,
)
from orgbase.auth.sessions import SessionStore
from orgbase.auth.tokens import TokenService
from orgbase.core import audit, rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, Principal, Role
from orgbase.core.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from orgbase.core.postgres import Connection, Database, lock_live_org
from orgbase.core.ratelimit import Lockout, RateLimiter
from orgbase.core.redis import RedisUnavailable
from orgbase.core.settings import AuthSettings

log = structlog.get_logger("orgbase.auth")

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")
_USER_COLUMNS = "id, email, display_name, is_platform_admin, created_at, updated_at"
_INSERT_USER = (
    "INSERT INTO orgbase.users (email, password_hash, display_name, password_changed_at)"  # noqa: S608
    f" VALUES ($1, $2, $3, now()) RETURNING {_USER_COLUMNS}"
)
_USER_FOR_SIGN_IN = (
    f"SELECT {_USER_COLUMNS}, password_hash FROM orgbase.users"  # noqa: S608 - constant
    " WHERE email = $1 AND deleted_at IS NULL"
)
_USER_BY_ID = f"SELECT {_USER_COLUMNS} FROM orgbase.users WHERE id = $1"  # noqa: S608 - constant
_LIVE_USER_BY_ID = _USER_BY_ID + " AND deleted_at IS NULL"
_INVALID_CREDENTIALS = "the email or password is wrong"


def normalize_email(raw: str) -> str:
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise Invalid("that is not an email address", code="invalid_email")
    return email


def clean_display_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = " ".join(raw.split())
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise Invalid("the display name has control characters", code="invalid_display_name")
    return name or None


def _hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def _role(connection: Connection, org_id: UUID, user_id: UUID) -> Role | None:
    """The user's role in the org, straight from PostgreSQL (token issuance is rare)."""
    role: Role | None = await connection.fetchval(
        "SELECT role FROM orgbase.memberships WHERE org_id = $1 AND user_id = $2", org_id, user_id
    )
    return role


def _user(row: asyncpg.Record) -> User:
    return User(**{k: row[k] for k in User.__struct_fields__})


class AuthService:
    def __init__(
        self,
        *,
        db: Database,
        settings: AuthSettings,
        tokens: TokenService,
        passwords: Passwords,
        sessions: SessionStore,
        api_keys: ApiKeyStore,
        limiter: RateLimiter,
        lockout: Lockout,
    ) -> None:
        self.db = db
        self.settings = settings
        self.tokens = tokens
        self.passwords = passwords
        self.sessions = sessions
        self.api_keys = api_keys
        self.limiter = limiter
        self.lockout = lockout
        self.outcomes: collections.Counter[str] = collections.Counter()
        """Sign-in and refresh outcomes (copied into the metrics)."""

    # -- sign-up -------------------------------------------------------------------------

    async def sign_up(self, body: SignUp, meta: RequestMeta) -> User:
        await self.limiter.hit(f"signup:ip:{meta.ip}", self.settings.signup_per_ip_per_hour, 3600)
        email = normalize_email(body.email)
        check_password_rules(body.password, email, self.settings.password_min_length)
        display_name = clean_display_name(body.display_name)
        password_hash = await self.passwords.hash(body.password)
        async with self.db.system_connection() as connection, connection.transaction():
            try:
                row = await connection.fetchrow(
                    _INSERT_USER,
                    email,
                    password_hash,
                    display_name,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict("an account with this email exists", code="email_taken") from None
            assert row is not None
            await audit.record(
                connection,
                AuditEvent(
                    action="auth.signup",
                    actor_user_id=row["id"],
                    request_id=meta.request_id,
                    ip=meta.ip,
                ),
            )
        return _user(row)

    # -- tokens --------------------------------------------------------------------------

    async def token(self, body: TokenRequest, meta: RequestMeta) -> TokenResponse:
        if isinstance(body, PasswordGrant):
            return await self._password_grant(body.email, body.password, body.org_id, meta)
        return await self._refresh_grant(body.refresh_token, body.org_id, meta)

    async def _password_grant(
        self, raw_email: str, password: str, org_id: UUID | None, meta: RequestMeta
    ) -> TokenResponse:
        await self.limiter.hit(f"signin:ip:{meta.ip}", self.settings.signin_per_ip_per_minute, 60)
        try:
            email = normalize_email(raw_email)
        except Invalid:
            email = None
        account = hashlib.sha256((email or raw_email).encode()).hexdigest()[:32]
        row = None
        if email is not None:
            async with self.db.system_connection() as connection:
                row = await connection.fetchrow(_USER_FOR_SIGN_IN, email)
        # The attempt is counted before the password is checked: parallel guesses cannot
        # all pass a lock check made before any of them was counted.
        await self._reserve_attempt(account, row["id"] if row else None, meta)
        if not await self.passwords.verify(row["password_hash"] if row else None, password):
            async with self.db.system_connection() as connection:
                await audit.record(
                    connection,
                    AuditEvent(
                        action="auth.signin_failed",
                        actor_user_id=row["id"] if row else None,
                        actor_kind="user" if row else "anonymous",
                        details={"reason": "wrong_password" if row else "unknown_email"},
                        request_id=meta.request_id,
                        ip=meta.ip,
                    ),
                )
            self.outcomes["signin_failed"] += 1
            raise Unauthorized(_INVALID_CREDENTIALS, code="invalid_credentials")
        assert row is not None
        self.outcomes["signin"] += 1
        await self.lockout.succeeded(account)
        user_id: UUID = row["id"]
        if self.passwords.needs_rehash(row["password_hash"]):
            new_hash = await self.passwords.hash(password)
            async with self.db.system_connection() as connection:
                await connection.execute(
                    "UPDATE orgbase.users SET password_hash = $2 WHERE id = $1", user_id, new_hash
                )
        async with self.db.system_connection() as connection, connection.transaction():
            if org_id is not None:
                await self._require_member(connection, org_id, user_id)
            session_id, expires_at = await self.sessions.create(
                connection, user_id, meta.user_agent, meta.ip
            )
            refresh = await self._new_refresh_token(connection, session_id, org_id, expires_at)
            await audit.record(
                connection,
                AuditEvent(
                    action="auth.signin",
                    org_id=org_id,
                    actor_user_id=user_id,
                    details={"session_id": str(session_id), "account": account},
                    request_id=meta.request_id,
                    ip=meta.ip,
                ),
            )
        await self.sessions.cache_new(session_id, user_id, expires_at)
        access, expires_in = self.tokens.issue(user_id, session_id, org_id)
        return TokenResponse(access, refresh, expires_in, _user(row), org_id)

    async def _reserve_attempt(self, account: str, user_id: UUID | None, meta: RequestMeta) -> None:
        try:
            locked_for = await self.lockout.reserve(account)
        except RedisUnavailable:
            locked_for = await self._reserve_in_postgres(account, user_id, meta)
        if locked_for:
            self.outcomes["account_locked"] += 1
            raise RateLimited(
                "too many failed sign-ins; this account is locked for a while",
                code="account_locked",
                retry_after=locked_for,
            )

    async def _reserve_in_postgres(
        self, account: str, user_id: UUID | None, meta: RequestMeta
    ) -> int | None:
        """Redis is down: reserve the attempt in the audit log, serialised per account by an
        advisory lock (attempts since the account's last success, within the window)."""
        window = self.settings.lockout_window_seconds
        async with self.db.system_connection() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('signin:' || $1, 0))", account
            )
            attempts = await connection.fetchval(
                """
                SELECT count(*) FROM orgbase.audit_events
                WHERE details ->> 'account' = $1 AND action = 'auth.signin_attempt'
                  AND occurred_at > now() - make_interval(secs => $2)
                  AND id > coalesce((
                      SELECT max(id) FROM orgbase.audit_events
                      WHERE details ->> 'account' = $1 AND action = 'auth.signin'), 0)
                """,
                account,
                float(window),
            )
            if attempts >= self.settings.lockout_failures:
                return window
            await audit.record(
                connection,
                AuditEvent(
                    action="auth.signin_attempt",
                    actor_user_id=user_id,
                    actor_kind="user" if user_id else "anonymous",
                    details={"account": account},
                    request_id=meta.request_id,
                    ip=meta.ip,
                ),
            )
        return None

    async def _new_refresh_token(
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
            """
            INSERT INTO orgbase.refresh_tokens
                (session_id, token_hash, parent_id, org_id, expires_at)
            VALUES ($1, $2, $3, $4, to_timestamp($5))
            """,
            session_id,
            _hash_token(token),
            parent_id,
            org_id,
            expires_at,
        )
        return token

    async def _refresh_grant(
        self, token: str, org_id: UUID | None, meta: RequestMeta
    ) -> TokenResponse:
        await self.limiter.hit(f"refresh:ip:{meta.ip}", self.settings.refresh_per_ip_per_minute, 60)
        invalid = Unauthorized("the refresh token is invalid", code="invalid_refresh_token")
        if not (20 <= len(token) <= 200) or not token.isascii():
            raise invalid
        reused_session: UUID | None = None
        async with self.db.system_connection() as connection, connection.transaction():
            row = await connection.fetchrow(
                """
                SELECT t.id, t.session_id, t.org_id, t.rotated_at,
                       t.expires_at <= now() AS expired,
                       extract(epoch FROM now() - t.rotated_at)::float8 AS rotated_ago,
                       extract(epoch FROM s.expires_at)::float8 AS session_expires_at,
                       s.user_id, s.revoked_at IS NOT NULL OR s.expires_at <= now() AS ended
                FROM orgbase.refresh_tokens t
                JOIN orgbase.sessions s ON s.id = t.session_id
                JOIN orgbase.users u ON u.id = s.user_id AND u.deleted_at IS NULL
                WHERE t.token_hash = $1
                FOR UPDATE OF t
                """,
                _hash_token(token),
            )
            if row is None or row["ended"]:
                raise invalid
            if row["expired"]:
                raise Unauthorized("the refresh token has expired", code="refresh_token_expired")
            session_id: UUID = row["session_id"]
            user_id: UUID = row["user_id"]
            if row["rotated_at"] is not None:
                if row["rotated_ago"] > self.settings.refresh_grace_seconds:
                    # A rotated token came back: it was stolen or replayed. End the session.
                    await self.sessions.revoke(connection, [session_id], "refresh_token_reused")
                    await audit.record(
                        connection,
                        AuditEvent(
                            action="auth.refresh_token_reused",
                            actor_user_id=user_id,
                            details={"session_id": str(session_id)},
                            request_id=meta.request_id,
                            ip=meta.ip,
                        ),
                    )
                    reused_session = session_id
                # Inside the grace window: a concurrent refresh; issue a sibling token.
            else:
                await connection.execute(
                    "UPDATE orgbase.refresh_tokens SET rotated_at = now() WHERE id = $1", row["id"]
                )
            if reused_session is None:
                active_org = org_id if org_id is not None else row["org_id"]
                if org_id is not None:
                    await self._require_member(connection, org_id, user_id)
                elif (
                    active_org is not None and await _role(connection, active_org, user_id) is None
                ):
                    active_org = None  # removed from the org since: no org any more
                new_token = await self._new_refresh_token(
                    connection, session_id, active_org, row["session_expires_at"], row["id"]
                )
                user_row = await connection.fetchrow(_USER_BY_ID, user_id)
                await connection.execute(
                    "UPDATE orgbase.sessions SET last_seen_at = now() WHERE id = $1", session_id
                )
        if reused_session is not None:
            self.outcomes["refresh_reused"] += 1
            await self.sessions.forget([reused_session])
            raise Unauthorized(
                "this refresh token was already used; the session has been ended",
                code="refresh_token_reused",
            )
        assert user_row is not None
        self.outcomes["refresh"] += 1
        access, expires_in = self.tokens.issue(user_id, session_id, active_org)
        return TokenResponse(access, new_token, expires_in, _user(user_row), active_org)

    @staticmethod
    async def _require_member(connection: Connection, org_id: UUID, user_id: UUID) -> Role:
        role = await _role(connection, org_id, user_id)
        if role is None:
            raise Forbidden("you are not a member of that org", code="not_a_member")
        return role

    # -- logout, sessions --------------------------------------------------------------

    async def logout(self, principal: Principal, body: Logout, meta: RequestMeta) -> None:
        user_id, session_id = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            if body.scope == "local":
                revoked = await self.sessions.revoke(connection, [session_id], "logout")
            else:
                keep = session_id if body.scope == "others" else None
                revoked = await self.sessions.revoke_for_user(
                    connection, user_id, f"logout_{body.scope}", keep
                )
            await audit.record(
                connection,
                AuditEvent(
                    action="auth.logout",
                    actor_user_id=user_id,
                    details={"scope": body.scope, "sessions": len(revoked)},
                    request_id=meta.request_id,
                    ip=meta.ip,
                ),
            )
        await self.sessions.forget(revoked)

    async def list_sessions(self, principal: Principal) -> list[Session]:
        user_id, current = principal.require_user()
        rows = await self.sessions.list_for_user(user_id)
        return [Session(**row, current=row["id"] == current) for row in rows]

    async def revoke_session(
        self, principal: Principal, session_id: UUID, meta: RequestMeta
    ) -> None:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection, connection.transaction():
            owner = await connection.fetchval(
                "SELECT user_id FROM orgbase.sessions WHERE id = $1 AND revoked_at IS NULL",
                session_id,
            )
            if owner != user_id:
                raise NotFound("no such session", code="session_not_found")
            await self.sessions.revoke(connection, [session_id], "revoked_by_user")
            await audit.record(
                connection,
                AuditEvent(
                    action="auth.session_revoked",
                    actor_user_id=user_id,
                    details={"session_id": str(session_id)},
                    request_id=meta.request_id,
                    ip=meta.ip,
                ),
            )
        await self.sessions.forget([session_id])

    # -- the user ------------------------------------------------------------------------

    async def get_user(self, principal: Principal) -> User:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(_LIVE_USER_BY_ID, user_id)
        if row is None:
            raise Unauthorized("the account no longer exists", code="session_revoked")
        return _user(row)

    async def update_user(self, principal: Principal, body: UserUpdate, meta: RequestMeta) -> User:
        user_id, session_id = principal.require_user()
        changes: dict[str, Any] = {}
        if body.display_name is not msgspec.UNSET:
            changes["display_name"] = clean_display_name(body.display_name)
        sensitive = body.email is not msgspec.UNSET or body.password is not msgspec.UNSET
        async with self.db.system_connection() as connection:
            current = await connection.fetchrow(
                "SELECT email, password_hash FROM orgbase.users WHERE id = $1", user_id
            )
        assert current is not None
        if sensitive and (
            body.current_password is msgspec.UNSET
            or not await self.passwords.verify(current["password_hash"], body.current_password)
        ):
            raise Forbidden(
                "changing the email or password needs the current password",
                code="current_password_invalid",
            )
        if body.email is not msgspec.UNSET:
            changes["email"] = normalize_email(body.email)
        if body.password is not msgspec.UNSET:
            email = changes.get("email", current["email"])
            check_password_rules(body.password, email, self.settings.password_min_length)
            changes["password_hash"] = await self.passwords.hash(body.password)
        if not changes:
            return await self.get_user(principal)
        assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(changes, start=2))
        if "password_hash" in changes:
            assignments += ", password_changed_at = now()"
        revoked: list[UUID] = []
        async with self.db.system_connection() as connection, connection.transaction():
            try:
                # Column names come from the fixed set above; values are parameters.
                row = await connection.fetchrow(
                    f"UPDATE orgbase.users SET {assignments}, updated_at = now()"  # noqa: S608
                    f" WHERE id = $1 RETURNING {_USER_COLUMNS}",
                    user_id,
                    *changes.values(),
                )
            except asyncpg.UniqueViolationError:
                raise Conflict("an account with this email exists", code="email_taken") from None
            if "password_hash" in changes:
                revoked = await self.sessions.revoke_for_user(
                    connection, user_id, "password_changed", keep=session_id
                )
            await audit.record(
                connection,
                AuditEvent(
                    action="auth.user_updated",
                    actor_user_id=user_id,
                    details={
                        "fields": sorted(k for k in changes if k != "password_hash")
                        + (["password"] if "password_hash" in changes else []),
                        "sessions_revoked": len(revoked),
                    },
                    request_id=meta.request_id,
                    ip=meta.ip,
                ),
            )
        await self.sessions.forget(revoked)
        assert row is not None
        return _user(row)

    async def delete_user(self, principal: Principal, password: str, meta: RequestMeta) -> None:
        """Delete my account (soft: the row stays for the audit trail); ends every session."""
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection:
            stored = await connection.fetchval(
                "SELECT password_hash FROM orgbase.users WHERE id = $1", user_id
            )
        if not await self.passwords.verify(stored, password):
            raise Forbidden(
                "deleting the account needs the password", code="current_password_invalid"
            )
        async with self.db.system_connection() as connection, connection.transaction():
            owned = await connection.fetchval(
                """
                SELECT count(*) FROM orgbase.memberships m
                WHERE m.user_id = $1 AND m.role = 'owner' AND NOT EXISTS (
                    SELECT 1 FROM orgbase.memberships o
                    WHERE o.org_id = m.org_id AND o.role = 'owner' AND o.user_id <> $1)
                """,
                user_id,
            )
            if owned:
                raise Conflict(
                    "you are the last owner of an org: hand it over or delete it first",
                    code="last_owner",
                )
            await connection.execute(
                "UPDATE orgbase.users SET deleted_at = now(), updated_at = now() WHERE id = $1",
                user_id,
            )
            await connection.execute("DELETE FROM orgbase.memberships WHERE user_id = $1", user_id)
            revoked = await self.sessions.revoke_for_user(connection, user_id, "user_deleted")
            await audit.record(
                connection,
                AuditEvent(
                    action="auth.user_deleted",
                    actor_user_id=user_id,
                    request_id=meta.request_id,
                    ip=meta.ip,
                ),
            )
        await self.sessions.forget(revoked)

    # -- API keys ------------------------------------------------------------------------

    @staticmethod
    def _require_key_admin(principal: Principal, ctx: OrgContext) -> UUID:
        user_id, _ = principal.require_user()
        if not ctx.at_least("admin") or ctx.impersonated:
            raise Forbidden("managing API keys needs the admin role", code="role_too_low")
        return user_id

    async def create_api_key(
        self, principal: Principal, ctx: OrgContext, body: ApiKeyCreate, meta: RequestMeta
    ) -> ApiKeyCreated:
        user_id = self._require_key_admin(principal, ctx)
        org_id = ctx.org_id
        rbac.require_can_grant(ctx, body.role)
        if body.expires_at is not None:
            expires = body.expires_at
            if expires.tzinfo is None:
                raise Invalid("expires_at needs a time zone", code="invalid_expiry")
            if expires <= datetime.now(UTC):
                raise Invalid("expires_at is in the past", code="invalid_expiry")
        async with self.db.system_connection() as connection, connection.transaction():
            await lock_live_org(connection, org_id)
            row, plaintext = await self.api_keys.create(
                connection,
                org_id=org_id,
                name=body.name.strip() or "key",
                role=body.role,
                created_by=user_id,
                expires_at=body.expires_at,
            )
            await audit.record(
                connection,
                AuditEvent(
                    action="api_key.created",
                    org_id=org_id,
                    actor_user_id=user_id,
                    target_table="orgbase.api_keys",
                    row_key={"id": str(row["id"])},
                    details={"name": row["name"], "role": row["role"]},
                    request_id=meta.request_id,
                    ip=meta.ip,
                ),
            )
        return ApiKeyCreated(**row, key=plaintext)

    async def list_api_keys(self, principal: Principal, ctx: OrgContext) -> list[ApiKey]:
        self._require_key_admin(principal, ctx)
        async with self.db.system_connection() as connection:
            rows = await self.api_keys.list_for_org(connection, ctx.org_id)
        return [ApiKey(**row) for row in rows]

    async def revoke_api_key(
        self, principal: Principal, ctx: OrgContext, key_id: UUID, meta: RequestMeta
    ) -> None:
        user_id = self._require_key_admin(principal, ctx)
        org_id = ctx.org_id
        async with self.db.system_connection() as connection, connection.transaction():
            hashed = await self.api_keys.revoke(connection, org_id, key_id)
            if hashed is None:
                raise NotFound("no such active API key in this org", code="api_key_not_found")
            await audit.record(
                connection,
                AuditEvent(
                    action="api_key.revoked",
                    org_id=org_id,
                    actor_user_id=user_id,
                    target_table="orgbase.api_keys",
                    row_key={"id": str(key_id)},
                    request_id=meta.request_id,
                    ip=meta.ip,
                ),
            )
        await self.api_keys.forget([hashed])
        await self.api_keys.revoked(org_id, [key_id])
