"""Accounts: sign-up, reading, changing and deleting one's own user. PostgreSQL is the
source of truth; a password or account change ends the sessions it must."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from orgbase.auth import addresses
from orgbase.auth.passwords import Passwords, check_password_rules
from orgbase.auth.schemas import RequestMeta, User, UserUpdate
from orgbase.auth.sessions import SessionStore
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import Principal
from orgbase.core.errors import Conflict, Forbidden, Invalid, Unauthorized
from orgbase.core.postgres import Database
from orgbase.core.ratelimit import RateLimiter
from orgbase.core.settings import AuthSettings

normalize_email = addresses.normalize_email  # where the other modules import it from
MAX_DISPLAY_NAME = 200
USER_COLUMNS = "id, email, display_name, is_platform_admin, created_at, updated_at"
_INSERT_USER = (
    "INSERT INTO orgbase.users (email, password_hash, display_name, password_changed_at)"  # noqa: S608
    f" VALUES ($1, $2, $3, now()) RETURNING {USER_COLUMNS}"
)
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM orgbase.users WHERE id = $1"  # noqa: S608 - constant
_LIVE_USER_BY_ID = USER_BY_ID + " AND deleted_at IS NULL"
_LAST_OWNER_OF = """
SELECT count(*) FROM orgbase.memberships m
WHERE m.user_id = $1 AND m.role = 'owner' AND NOT EXISTS (
    SELECT 1 FROM orgbase.memberships o
    WHERE o.org_id = m.org_id AND o.role = 'owner' AND o.user_id <> $1)
"""


def clean_display_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = " ".join(raw.split())
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise Invalid("the display name has control characters", code="invalid_display_name")
    if len(name) > MAX_DISPLAY_NAME:
        raise Invalid(
            f"the display name is over {MAX_DISPLAY_NAME} characters", code="invalid_display_name"
        )
    return name or None


def user_from_row(row: asyncpg.Record) -> User:
    return User(**{k: row[k] for k in User.__struct_fields__})


def _email_taken() -> Conflict:
    return Conflict("an account with this email exists", code="email_taken")


@dataclass
class AccountService:
    db: Database
    settings: AuthSettings
    passwords: Passwords
    sessions: SessionStore
    limiter: RateLimiter

    async def get_user(self, principal: Principal) -> User:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(_LIVE_USER_BY_ID, user_id)
        if row is None:
            raise Unauthorized("the account no longer exists", code="session_revoked")
        return user_from_row(row)

    async def update_user(self, principal: Principal, body: UserUpdate, meta: RequestMeta) -> User:
        user_id, session_id = principal.require_user()
        changes = await self._changes(user_id, body)
        if not changes:
            return await self.get_user(principal)
        assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(changes, start=2))
        if "password_hash" in changes:
            assignments += ", password_changed_at = now()"
        revoked: list[UUID] = []
        async with self.db.system_connection() as connection, connection.transaction():
            try:
                # Column names come from the fixed set of _changes; values are parameters.
                row = await connection.fetchrow(
                    f"UPDATE orgbase.users SET {assignments}, updated_at = now()"  # noqa: S608
                    f" WHERE id = $1 RETURNING {USER_COLUMNS}",
                    user_id,
                    *changes.values(),
                )
            except asyncpg.UniqueViolationError:
                raise _email_taken() from None
            if "password_hash" in changes:
                revoked = await self.sessions.revoke_for_user(
                    connection, user_id, "password_changed", keep=session_id
                )
            fields = sorted(k for k in changes if k != "password_hash")
            fields += ["password"] if "password_hash" in changes else []
            details = {"fields": fields, "sessions_revoked": len(revoked)}
            await audit.record(
                connection, AuditEvent.by_user(user_id, meta, "auth.user_updated", details=details)
            )
        await self.sessions.forget(revoked)
        assert row is not None
        return user_from_row(row)

    async def _changes(self, user_id: UUID, body: UserUpdate) -> dict[str, Any]:
        """The columns to set; the email and password need the current password."""
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
        return changes

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
            if await connection.fetchval(_LAST_OWNER_OF, user_id):
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
            await audit.record(connection, AuditEvent.by_user(user_id, meta, "auth.user_deleted"))
        await self.sessions.forget(revoked)
