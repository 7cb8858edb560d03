"""Row-level security holds in PostgreSQL itself, for the role the tenant pool logs in as."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from orgbase.core.context import OrgContext, Role
from orgbase.core.postgres import Database
from orgbase.core.settings import Settings

TABLE = "api.rls_probe"


@pytest.fixture(scope="module")
async def orgs(settings: Settings) -> AsyncIterator[dict[str, uuid.UUID]]:
    """Two orgs with a member each, and a tenant table holding rows of both."""
    connection = await asyncpg.connect(settings.database.migration_url)
    ids: dict[str, uuid.UUID] = {}
    try:
        await connection.execute(
            f"DROP TABLE IF EXISTS {TABLE};"
            f"CREATE TABLE {TABLE} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " label text NOT NULL);"
            f"SELECT orgbase.enable_tenancy('{TABLE}')"
        )
        for name in ("a", "b"):
            user = await connection.fetchval(
                "INSERT INTO orgbase.users (email) VALUES ($1) RETURNING id",
                f"rls-{name}-{uuid.uuid4().hex[:8]}@example.test",
            )
            org = await connection.fetchval(
                "INSERT INTO orgbase.orgs (name) VALUES ($1) RETURNING id", f"org {name}"
            )
            await connection.executemany(
                f"INSERT INTO {TABLE} (org_id, created_by, label) VALUES ($1, $2, $3)",
                [(org, user, f"{name}-{n}") for n in range(3)],
            )
            ids[f"org_{name}"], ids[f"user_{name}"] = org, user
        yield ids
    finally:
        await connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await connection.close()


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.database)
    await db.open()
    yield db
    await db.close()


def ctx(org: uuid.UUID, user: uuid.UUID, role: Role = "member") -> OrgContext:
    return OrgContext(org_id=org, user_id=user, role=role, request_id="test-rls")


SELECT_LABELS = f"SELECT label, org_id FROM {TABLE} WHERE ctx.org IS NOT NULL ORDER BY id LIMIT 100"


async def test_the_tenant_role_cannot_bypass_rls(settings: Settings) -> None:
    connection = await asyncpg.connect(settings.database.api_url)
    try:
        row = await connection.fetchrow(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        owned = await connection.fetchval(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles"
            " WHERE rolname = current_user)"
        )
    finally:
        await connection.close()
    assert row is not None
    assert (row["rolsuper"], row["rolbypassrls"], owned) == (False, False, 0)


async def test_no_context_means_no_rows(settings: Settings, orgs: dict[str, uuid.UUID]) -> None:
    connection = await asyncpg.connect(settings.database.api_url)
    try:
        assert await connection.fetchval(f"SELECT count(*) FROM {TABLE}") == 0
    finally:
        await connection.close()


async def test_a_context_shows_only_its_orgs_rows(
    database: Database, orgs: dict[str, uuid.UUID]
) -> None:
    rows_a = await database.tenant_fetch(
        ctx(orgs["org_a"], orgs["user_a"], "viewer"), SELECT_LABELS
    )
    rows_b = await database.tenant_fetch(
        ctx(orgs["org_b"], orgs["user_b"], "viewer"), SELECT_LABELS
    )
    assert [r["label"] for r in rows_a] == ["a-0", "a-1", "a-2"]
    assert {r["org_id"] for r in rows_a} == {orgs["org_a"]}
    assert [r["label"] for r in rows_b] == ["b-0", "b-1", "b-2"]


async def test_a_row_for_another_org_cannot_be_written(
    database: Database, orgs: dict[str, uuid.UUID]
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with database.tenant_transaction(ctx(orgs["org_a"], orgs["user_a"], "owner")) as c:
            await c.execute(
                f"INSERT INTO {TABLE} (org_id, label) VALUES ($1, 'smuggled')", orgs["org_b"]
            )
    # Updating B's rows from A's context touches nothing, and moving A's row to B fails.
    async with database.tenant_transaction(ctx(orgs["org_a"], orgs["user_a"], "owner")) as c:
        assert await c.execute(f"UPDATE {TABLE} SET label = 'x' WHERE label = 'b-0'") == "UPDATE 0"
        assert await c.execute(f"DELETE FROM {TABLE} WHERE label LIKE 'b-%'") == "DELETE 0"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with database.tenant_transaction(ctx(orgs["org_a"], orgs["user_a"], "owner")) as c:
            await c.execute(f"UPDATE {TABLE} SET org_id = $1 WHERE label = 'a-0'", orgs["org_b"])


async def test_roles_limit_writes(database: Database, orgs: dict[str, uuid.UUID]) -> None:
    org, user = orgs["org_a"], orgs["user_a"]
    stranger = uuid.uuid4()
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with database.tenant_transaction(ctx(org, user, "viewer")) as c:
            await c.execute(f"INSERT INTO {TABLE} (label) VALUES ('by a viewer')")
    # A member changes only rows they created.
    async with database.tenant_transaction(ctx(org, stranger, "member")) as c:
        assert await c.execute(f"UPDATE {TABLE} SET label = label") == "UPDATE 0"
        new_id = await c.fetchval(f"INSERT INTO {TABLE} (label) VALUES ('mine') RETURNING id")
        assert await c.fetchval(f"SELECT created_by FROM {TABLE} WHERE id = $1", new_id) == stranger
        assert await c.execute(f"DELETE FROM {TABLE} WHERE id = $1", new_id) == "DELETE 1"
    # An admin changes every row of the org.
    async with database.tenant_transaction(ctx(org, stranger, "admin")) as c:
        assert await c.execute(f"UPDATE {TABLE} SET label = label") == "UPDATE 3"


async def test_a_reused_pooled_connection_carries_no_context(
    settings: Settings, orgs: dict[str, uuid.UUID]
) -> None:
    pool = await asyncpg.create_pool(settings.database.api_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            backend = await connection.fetchval("SELECT pg_backend_pid()")
            async with connection.transaction():
                await connection.execute(
                    "SELECT set_config('orgbase.org_id', $1, true),"
                    " set_config('orgbase.role', 'owner', true)",
                    str(orgs["org_a"]),
                )
                assert await connection.fetchval(f"SELECT count(*) FROM {TABLE}") == 3
        async with pool.acquire() as connection:
            assert await connection.fetchval("SELECT pg_backend_pid()") == backend
            assert await connection.fetchval("SELECT current_setting('orgbase.org_id', true)") == ""
            assert await connection.fetchval("SELECT orgbase.current_org_id()") is None
            assert await connection.fetchval(f"SELECT count(*) FROM {TABLE}") == 0
    finally:
        await pool.close()


async def test_the_single_statement_read_leaves_no_context_behind(
    settings: Settings, orgs: dict[str, uuid.UUID]
) -> None:
    db = Database(settings.database)
    await db.open()
    try:
        rows = await db.tenant_fetch(ctx(orgs["org_b"], orgs["user_b"], "viewer"), SELECT_LABELS)
        assert len(rows) == 3
        async with db.api.acquire() as connection:
            assert await connection.fetchval(f"SELECT count(*) FROM {TABLE}") == 0
    finally:
        await db.close()


async def test_the_system_role_cannot_reach_tenant_tables(
    settings: Settings, orgs: dict[str, uuid.UUID]
) -> None:
    connection = await asyncpg.connect(settings.database.system_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.fetch(f"SELECT * FROM {TABLE}")
    finally:
        await connection.close()


async def test_audit_events_are_append_only(settings: Settings) -> None:
    connection = await asyncpg.connect(settings.database.system_url)
    try:
        await connection.execute(
            "INSERT INTO orgbase.audit_events (action, actor_kind) VALUES ('test.event', 'system')"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("UPDATE orgbase.audit_events SET action = 'rewritten'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("DELETE FROM orgbase.audit_events")
    finally:
        await connection.close()
