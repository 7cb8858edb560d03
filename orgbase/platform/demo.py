"""Demo data for ``make run``: a user, an org and rows of the example tenant table
``api.items`` (made by the example app migration ``migrations/0001_items.sql``)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from orgbase.auth.passwords import new_hasher


class DemoError(RuntimeError):
    pass


async def require_items_table(connection: asyncpg.Connection) -> None:
    if await connection.fetchval("SELECT to_regclass('api.items')") is None:
        raise DemoError(
            "api.items does not exist: run `orgbase migrate` with the example app migrations"
            " (ORGBASE_APP_MIGRATIONS_DIR, default migrations/ in the working directory)"
        )


async def seed(migration_url: str, email: str, password: str) -> UUID:
    """Idempotent: the user's password is reset, the org and items are made once, and the
    org is the user's last used one (where a Supabase client's sign-in lands)."""
    password_hash = new_hasher().hash(password)
    connection = await asyncpg.connect(migration_url)
    try:
        async with connection.transaction():
            await require_items_table(connection)
            user_id: UUID = await connection.fetchval(
                """
                INSERT INTO orgbase.users
                    (email, password_hash, display_name, password_changed_at, email_confirmed_at)
                VALUES ($1, $2, 'Demo User', now(), now())
                ON CONFLICT (email) WHERE deleted_at IS NULL
                DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now(),
                    email_confirmed_at = coalesce(orgbase.users.email_confirmed_at, now())
                RETURNING id
                """,
                email.lower(),
                password_hash,
            )
            org_id: UUID | None = await connection.fetchval(
                "SELECT org_id FROM orgbase.memberships WHERE user_id = $1 AND role = 'owner'"
                " ORDER BY created_at LIMIT 1",
                user_id,
            )
            if org_id is None:
                org_id = await connection.fetchval(
                    "INSERT INTO orgbase.orgs (name, created_by) VALUES ('Demo Org', $1)"
                    " RETURNING id",
                    user_id,
                )
                await connection.execute(
                    "INSERT INTO orgbase.memberships (org_id, user_id, role)"
                    " VALUES ($1, $2, 'owner')",
                    org_id,
                    user_id,
                )
                await connection.execute(
                    "INSERT INTO orgbase.org_settings (org_id, updated_by) VALUES ($1, $2)",
                    org_id,
                    user_id,
                )
                await connection.executemany(
                    "INSERT INTO api.items (org_id, created_by, title, status)"
                    " VALUES ($1, $2, $3, $4)",
                    [
                        (org_id, user_id, f"Demo item {n}", "open" if n % 3 else "done")
                        for n in range(1, 26)
                    ],
                )
            assert org_id is not None
            # A Supabase client's sign-in enters the last used org: the demo org, from the start.
            await connection.execute(
                "UPDATE orgbase.users SET last_org_id = $2 WHERE id = $1", user_id, org_id
            )
            return org_id
    finally:
        await connection.close()
