"""Demo data for ``make run``: a user, an org and rows of the example tenant table
``api.items`` (made by the example app migration ``migrations/0001_items.sql``). The user
and the org are made by their owners' functions (auth's, the tenancy area's)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from orgbase.auth.operator_accounts import enter_org_next, seed_user
from orgbase.auth.passwords import new_hasher
from orgbase.tenants.orgs import first_owned_org, found_org


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
            user_id = await seed_user(connection, email.lower(), password_hash, "Demo User")
            org_id = await first_owned_org(connection, user_id)
            if org_id is None:
                org_id = (await found_org(connection, "Demo Org", user_id))["id"]
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
            await enter_org_next(connection, user_id, org_id)
            return org_id
    finally:
        await connection.close()
