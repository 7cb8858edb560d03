"""The auth area's answers to the other areas about accounts, sessions and API keys
(``core.accounts.Accounts``): the only SQL outside auth's own flows that reads its tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast
from uuid import UUID

from orgbase.core.accounts import PlatformUser, Profile, SessionStanding
from orgbase.core.context import Role
from orgbase.core.postgres import Connection

# FOR SHARE: an account's deletion (an UPDATE of its row) waits for the caller's
# transaction, then ends the memberships that transaction made.
_HOLD = (
    "SELECT id, email, display_name FROM orgbase.users"
    " WHERE id = $1 AND deleted_at IS NULL FOR SHARE"
)
_PROFILES = (
    "SELECT id, email, display_name FROM orgbase.users"
    " WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL"
)
_ADMIN = "SELECT is_platform_admin FROM orgbase.users WHERE id = $1 AND deleted_at IS NULL"
_PAGE = (
    "SELECT id, email, display_name, is_platform_admin, created_at, deleted_at"
    " FROM orgbase.users ORDER BY created_at DESC LIMIT $1 OFFSET $2"
)
_STANDING = """
SELECT s.user_id, s.aal, s.sso_org_id, u.email
FROM orgbase.sessions s JOIN orgbase.users u ON u.id = s.user_id
WHERE s.id = $1
"""
_KEY_ROLE = """
SELECT role FROM orgbase.api_keys
WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
"""

_LAST_ORG = "UPDATE orgbase.users SET last_org_id = $2 WHERE id = $1"
# The session's live refresh token (one not rotated yet) names the org its refresh enters.
_NEXT_REFRESH = (
    "UPDATE orgbase.refresh_tokens SET org_id = $2 WHERE session_id = $1 AND rotated_at IS NULL"
)


class AccountDirectory:
    """Implements ``core.accounts.Accounts``: every answer in the caller's transaction."""

    async def hold(self, connection: Connection, user_id: UUID) -> Profile | None:
        row = await connection.fetchrow(_HOLD, user_id)
        return None if row is None else Profile(row["id"], row["email"], row["display_name"])

    async def profiles(
        self, connection: Connection, user_ids: Iterable[UUID]
    ) -> dict[UUID, Profile]:
        rows = await connection.fetch(_PROFILES, list(user_ids))
        return {r["id"]: Profile(r["id"], r["email"], r["display_name"]) for r in rows}

    async def is_platform_admin(self, connection: Connection, user_id: UUID) -> bool:
        return bool(await connection.fetchval(_ADMIN, user_id))

    async def page(self, connection: Connection, limit: int, offset: int) -> list[PlatformUser]:
        rows = await connection.fetch(_PAGE, limit, offset)
        return [PlatformUser(**dict(r)) for r in rows]

    async def session_standing(
        self, connection: Connection, session_id: UUID
    ) -> SessionStanding | None:
        row = await connection.fetchrow(_STANDING, session_id)
        return None if row is None else SessionStanding(**dict(row))

    async def key_role(self, connection: Connection, key_id: UUID, org_id: UUID) -> Role | None:
        return cast("Role | None", await connection.fetchval(_KEY_ROLE, key_id, org_id))

    async def enter_next(
        self, connection: Connection, user_id: UUID, session_id: UUID, org_id: UUID
    ) -> None:
        await connection.execute(_LAST_ORG, user_id, org_id)
        await connection.execute(_NEXT_REFRESH, session_id, org_id)
