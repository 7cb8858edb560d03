"""sql/rls/0034 and 0035 on a database of the old layout: accounts made before them appear
in auth.users (without any credential), a tenant table made before them keeps its policies
and still takes enable_tenancy, and an app table made restrictive by 0034 gets the
export/import policy of 0035."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devstack import LocalStack
from orgbase.platform.migrations import migrate
from tests.support.data import migrations_before, scratch_database

SCRATCH = "orgbase_test_supabase_sql_migration"


@pytest.fixture
async def scratch(stack: LocalStack) -> AsyncIterator[str]:
    async with scratch_database(stack, SCRATCH) as url:
        yield url


async def test_old_accounts_and_tables_come_through(scratch: str, tmp_path: Path) -> None:
    await migrate(scratch, migrations_before(34, tmp_path))
    connection = await asyncpg.connect(scratch)
    try:
        user = await connection.fetchval(
            "INSERT INTO orgbase.users (email, password_hash, user_metadata)"
            " VALUES ('old@layout.test', '$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA',"
            ' \'{"name": "Old"}\') RETURNING id'
        )
        await connection.execute(
            "CREATE TABLE api.legacy (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " body text); SELECT orgbase.enable_tenancy('api.legacy');"
        )
        await migrate(scratch, migrations_before(35, tmp_path / "34"))
        await connection.execute(
            "CREATE TABLE public.shared_notes (id bigint PRIMARY KEY, body text);"
            " ALTER TABLE public.shared_notes ENABLE ROW LEVEL SECURITY;"
            " SELECT orgbase.enable_tenancy('public.shared_notes');"
        )
        await migrate(scratch)

        mirrored = await connection.fetchrow(
            "SELECT email, raw_user_meta_data::text AS meta FROM auth.users WHERE id = $1", user
        )
        assert mirrored is not None
        assert (mirrored["email"], mirrored["meta"]) == ("old@layout.test", '{"name": "Old"}')
        columns = await connection.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'auth' AND table_name = 'users'"
        )
        assert not [c for c in columns if "password" in c["column_name"]]
        policies = {
            (r["tablename"], r["policyname"]): r["permissive"]
            for r in await connection.fetch(
                "SELECT tablename, policyname, permissive FROM pg_policies"
                " WHERE tablename IN ('legacy', 'shared_notes')"
            )
        }
        assert policies[("legacy", "tenant_select")] == "PERMISSIVE"
        assert policies[("shared_notes", "tenant_org")] == "RESTRICTIVE"
        assert ("shared_notes", "tenant_purge") in policies
        purge = await connection.fetchval(
            "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy"
            " WHERE polname = 'tenant_purge' AND polrelid = 'public.shared_notes'::regclass"
        )
        assert "export" in purge  # 0035 widened 0034's purge-only policy
        await connection.execute("SELECT orgbase.enable_tenancy('api.legacy')")  # still works
    finally:
        await connection.close()
