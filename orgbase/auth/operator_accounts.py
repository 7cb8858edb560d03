"""Accounts the operator makes from the command line: the demo user (``orgbase seed-demo``)
and platform admins (``orgbase admin create``). The operator vouches for these addresses:
they count as proven (production refuses unconfirmed sign-ins)."""

from __future__ import annotations

from uuid import UUID

from orgbase.core.postgres import AnyConnection

_DEMO_USER = """
INSERT INTO orgbase.users
    (email, password_hash, display_name, password_changed_at, email_confirmed_at)
VALUES ($1, $2, $3, now(), now())
ON CONFLICT (email) WHERE deleted_at IS NULL
DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now(),
    email_confirmed_at = coalesce(orgbase.users.email_confirmed_at, now())
RETURNING id
"""
_PROMOTE = (
    "UPDATE orgbase.users SET is_platform_admin = true, updated_at = now()"
    " WHERE email = $1 AND deleted_at IS NULL"
)
_ADMIN = (
    "INSERT INTO orgbase.users"
    " (email, password_hash, is_platform_admin, password_changed_at, email_confirmed_at)"
    " VALUES ($1, $2, true, now(), now())"
)


async def seed_user(
    connection: AnyConnection, email: str, password_hash: str, display_name: str
) -> UUID:
    """The account of ``email`` with this password (made, or its password reset)."""
    user_id: UUID = await connection.fetchval(_DEMO_USER, email, password_hash, display_name)
    return user_id


async def enter_org_next(connection: AnyConnection, user_id: UUID, org_id: UUID) -> None:
    """The org the user's next sign-in enters (a Supabase client names none)."""
    await connection.execute(
        "UPDATE orgbase.users SET last_org_id = $2 WHERE id = $1", user_id, org_id
    )


async def promote_admin(connection: AnyConnection, email: str) -> bool:
    """Make the live account of ``email`` a platform admin; False: there is none."""
    return await connection.execute(_PROMOTE, email) != "UPDATE 0"


async def create_admin(connection: AnyConnection, email: str, password_hash: str) -> None:
    """A new platform admin's account."""
    await connection.execute(_ADMIN, email, password_hash)
