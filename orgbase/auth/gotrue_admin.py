"""GoTrue's admin API over orgbase's accounts (``auth.admin.*`` of Supabase's clients):
list, read, create, change and delete users, make sign-in links, invite by mail.

The caller was checked before (``platform/gotrue_admin_routes.py``): the platform's
service key reaches every account; an org admin's API key reaches only its org's members
(``only``), and only to read them, remove them from the org or invite. The service key
vouches for what it sets: an address it marks confirmed counts as proven, as the
operator's own accounts do (``operator_accounts.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from orgbase.auth.accounts import AccountService, normalize_email, set_password
from orgbase.auth.codes import CodeBook, CodeFor, Notice
from orgbase.auth.gotrue_users import user_json
from orgbase.auth.metadata import metadata_json, stored_metadata
from orgbase.auth.passwords import Passwords, check_password_rules
from orgbase.auth.schemas import Email, Password
from orgbase.auth.sessions import SessionStore
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import RequestMeta
from orgbase.core.errors import Conflict, NotFound, Unauthorized
from orgbase.core.postgres import Connection, Database
from orgbase.core.settings import AuthSettings

MAX_PER_PAGE = 1000
LinkType = Literal["signup", "magiclink", "recovery", "invite"]
_PAGE = """
SELECT id, count(*) OVER () AS total FROM orgbase.users
WHERE deleted_at IS NULL AND ($3::uuid[] IS NULL OR id = ANY($3::uuid[]))
ORDER BY created_at DESC, id LIMIT $1 OFFSET $2
"""
_COUNT = (
    "SELECT count(*) FROM orgbase.users"
    " WHERE deleted_at IS NULL AND ($1::uuid[] IS NULL OR id = ANY($1::uuid[]))"
)
_LIVE = "SELECT id FROM orgbase.users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"
_BY_EMAIL = "SELECT id, password_hash FROM orgbase.users WHERE email = $1 AND deleted_at IS NULL"
_CREATE = """
INSERT INTO orgbase.users (email, password_hash, user_metadata, password_changed_at,
                           email_confirmed_at)
VALUES ($1, $2::text, $3::jsonb, CASE WHEN $2::text IS NOT NULL THEN now() END,
        CASE WHEN $4::boolean THEN now() END)
ON CONFLICT DO NOTHING RETURNING id
"""
_SET_EMAIL = (
    "UPDATE orgbase.users SET email = $2, new_email = NULL, updated_at = now(),"
    " email_confirmed_at = CASE WHEN $3::boolean THEN now() END WHERE id = $1"
)
_CONFIRM = (
    "UPDATE orgbase.users SET email_confirmed_at = coalesce(email_confirmed_at, now()),"
    " updated_at = now() WHERE id = $1"
)
_METADATA = (
    "UPDATE orgbase.users SET user_metadata = user_metadata || $2::jsonb, updated_at = now()"
    " WHERE id = $1"
)
INVITED = Notice(
    subject="You are invited",
    lead="You have been invited to sign in. Use the code or the link below to accept.",
)


class AdminUserCreate(msgspec.Struct, kw_only=True):
    email: Email
    password: Password | None = None
    email_confirm: bool = False
    user_metadata: dict[str, Any] | None = None


class AdminUserUpdate(msgspec.Struct, kw_only=True):
    email: Email | None = None
    password: Password | None = None
    email_confirm: bool | None = None
    user_metadata: dict[str, Any] | None = None


class AdminLink(msgspec.Struct, kw_only=True):
    type: LinkType
    email: Email
    password: Password | None = None
    data: dict[str, Any] | None = None
    redirect_to: Annotated[str, Meta(max_length=2000)] | None = None


def user_not_found() -> NotFound:
    return NotFound("no such user", code="user_not_found")


def email_exists() -> Conflict:
    return Conflict(
        "a user with this email address has already been registered", code="email_exists"
    )


def _event(meta: RequestMeta, action: str, user_id: UUID) -> AuditEvent:
    """An action of the platform's service key on an account."""
    return AuditEvent(
        action=action,
        actor_kind="system",
        target_table="orgbase.users",
        row_key={"id": str(user_id)},
        details={"by": "service_key"},
        request_id=meta.request_id,
        ip=meta.ip,
    )


@dataclass
class AdminUsers:
    db: Database
    settings: AuthSettings
    passwords: Passwords
    sessions: SessionStore
    codes: CodeBook
    accounts: AccountService

    async def page(
        self, page: int, per_page: int, only: Sequence[UUID] | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Accounts newest first (``only`` these, when given), and how many there are."""
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        offset = (max(page, 1) - 1) * per_page
        picked = list(only) if only is not None else None
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_PAGE, per_page, offset, picked)
            total = rows[0]["total"] if rows else await connection.fetchval(_COUNT, picked)
            users = [await user_json(connection, r["id"]) for r in rows]
        return users, int(total)

    async def get(self, user_id: UUID) -> dict[str, Any]:
        async with self.db.system_connection() as connection:
            return await self._user(connection, user_id)

    async def _user(self, connection: Connection, user_id: UUID) -> dict[str, Any]:
        try:
            return await user_json(connection, user_id)
        except Unauthorized:  # no such live account
            raise user_not_found() from None

    async def create(self, body: AdminUserCreate, meta: RequestMeta) -> dict[str, Any]:
        email = normalize_email(body.email)
        password_hash = await self._hash(body.password, email)
        async with self.db.system_connection() as connection, connection.transaction():
            with stored_metadata():
                user_id = await connection.fetchval(
                    _CREATE,
                    email,
                    password_hash,
                    metadata_json(body.user_metadata or {}),
                    body.email_confirm,
                )
            if user_id is None:
                raise email_exists()
            await audit.record(connection, _event(meta, "auth.admin.user_created", user_id))
            return await self._user(connection, user_id)

    async def update(
        self, user_id: UUID, body: AdminUserUpdate, meta: RequestMeta
    ) -> dict[str, Any]:
        """A new password or address ends the account's sessions (who held them may not
        be who holds the account now)."""
        email = normalize_email(body.email) if body.email is not None else None
        password_hash = await self._hash(body.password, email or "")
        revoked: list[UUID] = []
        async with self.db.system_connection() as connection, connection.transaction():
            if await connection.fetchval(_LIVE, user_id) is None:
                raise user_not_found()
            if body.user_metadata is not None:
                with stored_metadata():
                    await connection.execute(_METADATA, user_id, metadata_json(body.user_metadata))
            if email is not None:
                await self._set_email(connection, user_id, email, bool(body.email_confirm))
                revoked = await self.sessions.revoke_for_user(connection, user_id, "email_changed")
            elif body.email_confirm:
                await connection.execute(_CONFIRM, user_id)
            if password_hash is not None:
                revoked += await set_password(
                    connection, self.sessions, user_id, password_hash, keep=None
                )
            await audit.record(connection, _event(meta, "auth.admin.user_updated", user_id))
            user = await self._user(connection, user_id)
        await self.sessions.forget(revoked)
        return user

    async def _set_email(
        self, connection: Connection, user_id: UUID, email: str, confirmed: bool
    ) -> None:
        holder = await connection.fetchrow(_BY_EMAIL, email)
        if holder is not None and holder["id"] != user_id:
            raise email_exists()
        await connection.execute(_SET_EMAIL, user_id, email, confirmed)

    async def delete(self, user_id: UUID, meta: RequestMeta) -> dict[str, Any]:
        user = await self.get(user_id)
        await self.accounts.erase(user_id, _event(meta, "auth.admin.user_deleted", user_id))
        return user

    async def link(self, body: AdminLink, meta: RequestMeta) -> dict[str, Any]:
        """A sign-in link and code, handed to the caller instead of mailed (GoTrue's
        ``generate_link``): signup and invite make the account when there is none."""
        email = normalize_email(body.email)
        purpose = {"signup": "signup", "invite": "signup"}.get(body.type, body.type)
        password_hash = await self._hash(body.password, email) if body.type == "signup" else None
        async with self.db.system_connection() as connection, connection.transaction():
            user_id = await self._account_for(connection, body, email, password_hash)
            code_for = CodeFor(
                user_id,
                purpose,  # type: ignore[arg-type]  # one of the Purpose names
                email,
                body.redirect_to,
            )
            issued = await self.codes.issue(connection, code_for)
            await audit.record(connection, _event(meta, f"auth.admin.link_{body.type}", user_id))
            user = await self._user(connection, user_id)
        return {
            **user,
            "action_link": issued.link,
            "email_otp": issued.code,
            "hashed_token": issued.link_token,
            "redirect_to": body.redirect_to or "",
            "verification_type": body.type,
        }

    async def _account_for(
        self, connection: Connection, body: AdminLink, email: str, password_hash: str | None
    ) -> UUID:
        row = await connection.fetchrow(_BY_EMAIL, email)
        if row is not None:
            if body.type in ("signup", "invite"):
                raise email_exists()
            return UUID(str(row["id"]))
        if body.type not in ("signup", "invite"):
            raise user_not_found()
        with stored_metadata():
            made = await connection.fetchval(
                _CREATE, email, password_hash, metadata_json(body.data or {}), False
            )
        if made is None:  # made by a racing request a moment ago
            raise email_exists()
        return UUID(str(made))

    async def invite(
        self, email: str, data: dict[str, Any] | None, redirect: str | None, meta: RequestMeta
    ) -> dict[str, Any]:
        """A new account for the address, and a mailed code and link that sign it in (the
        first proof of the address); an address that has an account is refused."""
        address = normalize_email(email)
        async with self.db.system_connection() as connection, connection.transaction():
            with stored_metadata():
                user_id = await connection.fetchval(
                    _CREATE, address, None, metadata_json(data or {}), False
                )
            if user_id is None:
                raise email_exists()
            invitation = CodeFor(user_id, "signup", address, redirect)
            await self.codes.send(connection, invitation, notice=INVITED)
            await audit.record(connection, _event(meta, "auth.admin.user_invited", user_id))
            return await self._user(connection, user_id)

    async def _hash(self, password: str | None, email: str) -> str | None:
        if password is None:
            return None
        check_password_rules(password, email, self.settings.password_min_length)
        return await self.passwords.hash(password)
