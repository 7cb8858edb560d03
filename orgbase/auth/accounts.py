"""Accounts: sign-up, reading, changing and deleting one's own user. PostgreSQL is the
source of truth; a password or account change ends the sessions it must."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from orgbase.auth import addresses
from orgbase.auth.attempts import GuessLimit, account_key
from orgbase.auth.email_change import EmailChanges
from orgbase.auth.mfa_rules import require_aal2_for_account
from orgbase.auth.passwords import Passwords, check_password_rules
from orgbase.auth.ratelimit import RateLimiter
from orgbase.auth.schemas import RequestMeta, User, UserUpdate
from orgbase.auth.sessions import SessionStore
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import Principal
from orgbase.core.errors import Conflict, Forbidden, Invalid, Unauthorized
from orgbase.core.orgs import Memberships
from orgbase.core.postgres import Connection, Database
from orgbase.core.settings import AuthSettings

normalize_email = addresses.normalize_email  # where the other modules import it from
MAX_DISPLAY_NAME = 200
USER_COLUMNS = "id, email, display_name, is_platform_admin, created_at, updated_at, new_email"
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM orgbase.users WHERE id = $1"  # noqa: S608 - constant
ACCOUNT_COLUMNS = USER_COLUMNS + ", email_confirmed_at, last_sign_in_at, user_metadata"
"""A user, and what its tokens' claims and GoTrue's user shape show of it."""
ACCOUNT_BY_ID = f"SELECT {ACCOUNT_COLUMNS} FROM orgbase.users WHERE id = $1"  # noqa: S608
ACCOUNT_FIELDS = tuple(name.strip() for name in ACCOUNT_COLUMNS.split(","))
_LIVE_USER_BY_ID = USER_BY_ID + " AND deleted_at IS NULL"
SIGN_IN_CHANGE = "changing the email or the password"


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


def user_from_row(row: Mapping[str, Any] | asyncpg.Record) -> User:
    return User(**{k: row[k] for k in User.__struct_fields__})


async def set_password(
    connection: Connection,
    sessions: SessionStore,
    user_id: UUID,
    password_hash: str,
    keep: UUID | None,
) -> list[UUID]:
    """A new password (in the caller's transaction): every other session ends (``forget``
    them once it commits)."""
    await connection.execute(
        "UPDATE orgbase.users SET password_hash = $2, password_changed_at = now(),"
        " updated_at = now() WHERE id = $1",
        user_id,
        password_hash,
    )
    return await sessions.revoke_for_user(connection, user_id, "password_changed", keep=keep)


@dataclass
class _Changes:
    display_name: str | msgspec.UnsetType | None = msgspec.UNSET
    email: str | None = None
    password_hash: str | None = None
    fields: list[str] = field(default_factory=list)


@dataclass
class AccountService:
    db: Database
    settings: AuthSettings
    passwords: Passwords
    sessions: SessionStore
    limiter: RateLimiter
    attempts: GuessLimit
    email_changes: EmailChanges
    memberships: Memberships
    creator_gone: Callable[[UUID], Awaitable[None]]
    """Told (after commit) about a deleted account: the API keys it made were revoked
    (``ApiKeyStore.creator_changed``)."""

    async def get_user(self, principal: Principal) -> User:
        user_id, _ = principal.require_user()
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(_LIVE_USER_BY_ID, user_id)
        if row is None:
            raise Unauthorized("the account no longer exists", code="session_revoked")
        return user_from_row(row)

    async def update_user(self, principal: Principal, body: UserUpdate, meta: RequestMeta) -> User:
        """The email and the password need the current password (when the account has
        one); a new email waits for its confirmation; a new password ends the other
        sessions."""
        user_id, session_id = principal.require_user()
        signs_in = body.email is not msgspec.UNSET or body.password is not msgspec.UNSET
        if signs_in:  # refused before the current password is checked (and counted)
            await self.require_level(user_id, session_id, SIGN_IN_CHANGE)
        changes = await self._changes(user_id, body, meta)
        revoked: list[UUID] = []
        async with self.db.system_connection() as connection, connection.transaction():
            if signs_in:  # again, with the user's row locked until the change commits
                await require_aal2_for_account(connection, user_id, session_id, SIGN_IN_CHANGE)
            if changes.display_name is not msgspec.UNSET:
                await connection.execute(
                    "UPDATE orgbase.users SET display_name = $2, updated_at = now() WHERE id = $1",
                    user_id,
                    changes.display_name,
                )
            if changes.password_hash is not None:
                revoked = await set_password(
                    connection, self.sessions, user_id, changes.password_hash, keep=session_id
                )
            if changes.email is not None:
                await self.email_changes.request(connection, user_id, changes.email, meta)
            details = {"fields": changes.fields, "sessions_revoked": len(revoked)}
            event = AuditEvent.by_user(user_id, meta, "auth.user_updated", details=details)
            await audit.record(connection, event)
            row = await connection.fetchrow(USER_BY_ID, user_id)
        await self.sessions.forget(revoked)
        assert row is not None
        return user_from_row(row)

    async def _changes(self, user_id: UUID, body: UserUpdate, meta: RequestMeta) -> _Changes:
        changes = _Changes()
        if body.display_name is not msgspec.UNSET:
            changes.display_name = clean_display_name(body.display_name)
            changes.fields.append("display_name")
        if body.email is msgspec.UNSET and body.password is msgspec.UNSET:
            return changes
        given = None if body.current_password is msgspec.UNSET else body.current_password
        email = await self.check_current_password(user_id, given, meta)
        if body.email is not msgspec.UNSET:
            changes.email = normalize_email(body.email)
            changes.fields.append("email")
        if body.password is not msgspec.UNSET:
            check_password_rules(body.password, email, self.settings.password_min_length)
            changes.password_hash = await self.passwords.hash(body.password)
            changes.fields.append("password")
        return changes

    async def require_level(self, user_id: UUID, session_id: UUID, action: str) -> None:
        """403 ``insufficient_aal`` when the account has a verified factor and the session
        is not at aal2 (the authoritative check runs again in the change's transaction)."""
        async with self.db.system_connection() as connection:
            await require_aal2_for_account(connection, user_id, session_id, action)

    async def check_current_password(
        self, user_id: UUID, given: str | None, meta: RequestMeta
    ) -> str:
        """Refuse (403 ``current_password_invalid``) unless ``given`` is the account's
        password, or the account has none; the account's email. Each check is a guess
        counted by the sign-in lockout (the same counter, reserved before the check)."""
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(
                "SELECT email, password_hash FROM orgbase.users WHERE id = $1", user_id
            )
        if row is None:
            raise Unauthorized("the account no longer exists", code="session_revoked")
        if row["password_hash"] is None:
            return str(row["email"])
        wrong = Forbidden("this needs the current password", code="current_password_invalid")
        if given is None:
            raise wrong
        account = account_key(row["email"])
        await self.attempts.reserve(account, user_id, meta)
        if not await self.passwords.verify(row["password_hash"], given):
            raise wrong
        await self.attempts.succeeded(account, user_id, meta)
        return str(row["email"])

    async def delete_user(self, principal: Principal, password: str, meta: RequestMeta) -> None:
        """Delete my account (soft: the row stays for the audit trail); ends every session."""
        user_id, session_id = principal.require_user()
        await self.require_level(user_id, session_id, "deleting the account")
        await self.check_current_password(user_id, password, meta)
        event = AuditEvent.by_user(user_id, meta, "auth.user_deleted")
        await self.erase(user_id, event, by_session=session_id)

    async def erase(
        self, user_id: UUID, event: AuditEvent, *, by_session: UUID | None = None
    ) -> None:
        """Delete the account (its memberships end, its sessions too), audited as ``event``;
        refused while it is the last owner of an org. ``by_session``: the account's own
        session asking, which must stand at aal2 if the account has a factor (checked again
        in the deletion's transaction: a factor enrolled meanwhile counts)."""
        async with self.db.system_connection() as connection, connection.transaction():
            if by_session is not None:
                await require_aal2_for_account(
                    connection, user_id, by_session, "deleting the account"
                )
            if await self.memberships.orgs_left_ownerless(connection, user_id):
                raise Conflict(
                    "the account is the last owner of an org: hand it over or delete it first",
                    code="last_owner",
                )
            await connection.execute(
                "UPDATE orgbase.users SET deleted_at = now(), updated_at = now() WHERE id = $1",
                user_id,
            )
            left = await self.memberships.leave_all(connection, user_id)
            revoked = await self.sessions.revoke_for_user(connection, user_id, "user_deleted")
            await audit.record(connection, event)
        await self.sessions.forget(revoked)
        await left()
        await self.creator_gone(user_id)
