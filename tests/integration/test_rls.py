"""Row-level security holds in PostgreSQL itself, for the role the tenant pool logs in as,
and the org context is one the tenant role cannot forge: it is entered only through the
entry functions, which check a credential, and a context set by hand reads nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from orgbase.core.context import OrgContext, Role
from orgbase.core.postgres import Database, TenantEntry
from orgbase.core.settings import Settings

TABLE = "api.rls_probe"


@pytest.fixture(scope="module")
async def orgs(settings: Settings) -> AsyncIterator[dict[str, uuid.UUID]]:
    """Two orgs with an owner each (with a live session), and a tenant table holding rows of
    both; org A also has a member of every other role."""
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
            org = await connection.fetchval(
                "INSERT INTO orgbase.orgs (name) VALUES ($1) RETURNING id", f"org {name}"
            )
            ids[f"org_{name}"] = org
            roles: tuple[Role, ...] = (
                ("owner", "admin", "member", "viewer") if name == "a" else ("owner",)
            )
            for role in roles:
                user, session = await _member(connection, org, role)
                ids[f"user_{name}_{role}"], ids[f"session_{name}_{role}"] = user, session
            await connection.executemany(
                f"INSERT INTO {TABLE} (org_id, created_by, label) VALUES ($1, $2, $3)",
                [(org, ids[f"user_{name}_owner"], f"{name}-{n}") for n in range(3)],
            )
        yield ids
    finally:
        await connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await connection.close()


async def _member(
    connection: asyncpg.Connection, org: uuid.UUID, role: str
) -> tuple[uuid.UUID, uuid.UUID]:
    user = await connection.fetchval(
        "INSERT INTO orgbase.users (email) VALUES ($1) RETURNING id",
        f"rls-{role}-{uuid.uuid4().hex[:8]}@example.test",
    )
    await connection.execute(
        "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, $3)",
        org,
        user,
        role,
    )
    session = await connection.fetchval(
        "INSERT INTO orgbase.sessions (user_id, expires_at) VALUES ($1, now() + interval '1 day')"
        " RETURNING id",
        user,
    )
    # As a token issued for it would (its secret, live for a day).
    await connection.execute(
        "UPDATE orgbase.sessions SET secret_hashes = ARRAY[orgbase.secret_hash($2)],"
        " secret_expires_at = ARRAY[now() + interval '1 day'] WHERE id = $1",
        session,
        secret_for(session),
    )
    return user, session


def secret_for(session: uuid.UUID) -> str:
    """The secret of the fixture's sessions' one token."""
    return f"secret-of-{session}"


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.database)
    await db.open()
    yield db
    await db.close()


def ctx(ids: dict[str, uuid.UUID], org: str, role: Role = "owner") -> OrgContext:
    """The context of org ``org``'s member of ``role`` (PostgreSQL checks the session)."""
    return OrgContext(
        org_id=ids[f"org_{org}"],
        user_id=ids[f"user_{org}_{role}"],
        role=role,
        request_id="test-rls",
        session_id=ids[f"session_{org}_{role}"],
        session_secret=secret_for(ids[f"session_{org}_{role}"]),
    )


def entry(ids: dict[str, uuid.UUID], org: str, role: Role = "owner") -> TenantEntry:
    return TenantEntry.for_context(ctx(ids, org, role))


SELECT_LABELS = (
    f"SELECT label, org_id FROM {TABLE} WHERE ctx.role IS NOT NULL ORDER BY id LIMIT 100"
)


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
    rows_a = await database.tenant_fetch(entry(orgs, "a", "viewer"), SELECT_LABELS)
    rows_b = await database.tenant_fetch(entry(orgs, "b"), SELECT_LABELS)
    assert [r["label"] for r in rows_a] == ["a-0", "a-1", "a-2"]
    assert {r["org_id"] for r in rows_a} == {orgs["org_a"]}
    assert [r["label"] for r in rows_b] == ["b-0", "b-1", "b-2"]


async def test_a_row_for_another_org_cannot_be_written(
    database: Database, orgs: dict[str, uuid.UUID]
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with database.tenant_transaction(ctx(orgs, "a")) as c:
            await c.execute(
                f"INSERT INTO {TABLE} (org_id, label) VALUES ($1, 'smuggled')", orgs["org_b"]
            )
    # Updating B's rows from A's context touches nothing, and moving A's row to B fails.
    async with database.tenant_transaction(ctx(orgs, "a")) as c:
        assert await c.execute(f"UPDATE {TABLE} SET label = 'x' WHERE label = 'b-0'") == "UPDATE 0"
        assert await c.execute(f"DELETE FROM {TABLE} WHERE label LIKE 'b-%'") == "DELETE 0"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with database.tenant_transaction(ctx(orgs, "a")) as c:
            await c.execute(f"UPDATE {TABLE} SET org_id = $1 WHERE label = 'a-0'", orgs["org_b"])


async def test_roles_limit_writes(database: Database, orgs: dict[str, uuid.UUID]) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with database.tenant_transaction(ctx(orgs, "a", "viewer")) as c:
            await c.execute(f"INSERT INTO {TABLE} (label) VALUES ('by a viewer')")
    # A member changes only rows they created.
    member = orgs["user_a_member"]
    async with database.tenant_transaction(ctx(orgs, "a", "member")) as c:
        assert await c.execute(f"UPDATE {TABLE} SET label = label") == "UPDATE 0"
        new_id = await c.fetchval(f"INSERT INTO {TABLE} (label) VALUES ('mine') RETURNING id")
        assert await c.fetchval(f"SELECT created_by FROM {TABLE} WHERE id = $1", new_id) == member
        assert await c.execute(f"DELETE FROM {TABLE} WHERE id = $1", new_id) == "DELETE 1"
    # An admin changes every row of the org.
    async with database.tenant_transaction(ctx(orgs, "a", "admin")) as c:
        assert await c.execute(f"UPDATE {TABLE} SET label = label") == "UPDATE 3"


async def test_the_role_comes_from_postgresql_not_from_the_caller(
    database: Database, orgs: dict[str, uuid.UUID]
) -> None:
    """A context claiming a role its session's membership does not have gets the real one."""
    claimed_owner = ctx(orgs, "a", "viewer").with_role("owner")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with database.tenant_transaction(claimed_owner) as c:
            await c.execute(f"INSERT INTO {TABLE} (label) VALUES ('escalated')")


async def test_created_by_names_a_member_of_the_org(
    database: Database, orgs: dict[str, uuid.UUID]
) -> None:
    outsider = orgs["user_b_owner"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with database.tenant_transaction(ctx(orgs, "a", "admin")) as c:
            await c.execute(
                f"INSERT INTO {TABLE} (label, created_by) VALUES ('theirs?', $1)", outsider
            )
    with pytest.raises(asyncpg.CheckViolationError, match="member of the org"):
        async with database.tenant_transaction(ctx(orgs, "a", "admin")) as c:
            await c.execute(f"UPDATE {TABLE} SET created_by = $1 WHERE label = 'a-0'", outsider)
    # Another member of the org is fine.
    async with database.tenant_transaction(ctx(orgs, "a", "admin")) as c:
        changed = await c.execute(
            f"UPDATE {TABLE} SET created_by = $1 WHERE label = 'a-1'", orgs["user_a_viewer"]
        )
    assert changed == "UPDATE 1"


FORGERIES = {
    "the old settings": [
        "set_config('orgbase.org_id', $1, true)",
        "set_config('orgbase.role', 'owner', true)",
    ],
    "a context with a made-up proof": [
        "set_config('orgbase.context', 'session|' || $1 || '||owner||'"
        " || orgbase.context_binding() || '|' || repeat('0', 64), true)",
    ],
    "a context signed by another key": [
        "set_config('orgbase.context', orgbase.context_text('session', $1::uuid, NULL,"
        " 'owner', NULL) || '|' || orgbase.context_proof('\\x00'::bytea, '\\x00'::bytea,"
        " orgbase.context_text('session', $1::uuid, NULL, 'owner', NULL)), true)",
    ],
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
async def test_a_hand_set_context_reads_and_writes_nothing(
    settings: Settings, orgs: dict[str, uuid.UUID], forgery: str
) -> None:
    """As SQL injected through some future bug would: set org B's context by hand."""
    connection = await asyncpg.connect(settings.database.api_url)
    try:
        async with connection.transaction():
            await connection.execute(f"SELECT {', '.join(FORGERIES[forgery])}", str(orgs["org_b"]))
            assert await connection.fetchval(f"SELECT count(*) FROM {TABLE}") == 0
            assert await connection.fetchval("SELECT orgbase.current_org_id()") is None
            assert await connection.execute(f"UPDATE {TABLE} SET label = 'x'") == "UPDATE 0"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(f"INSERT INTO {TABLE} (label) VALUES ('forged')")
    finally:
        await connection.close()


async def test_a_real_context_cannot_be_switched_or_replayed(
    settings: Settings, orgs: dict[str, uuid.UUID]
) -> None:
    """Entered as org A's owner: switching the org setting to B, or carrying A's proof into
    another transaction, reads nothing."""
    a = entry(orgs, "a")
    connection = await asyncpg.connect(settings.database.api_url)
    try:
        async with connection.transaction():
            await connection.execute(a.statement(), *a.args)
            assert await connection.fetchval(f"SELECT count(*) FROM {TABLE}") == 3
            signed = await connection.fetchval("SELECT current_setting('orgbase.context')")
            assert str(orgs["org_a"]) in signed
            switched = signed.replace(str(orgs["org_a"]), str(orgs["org_b"]))
            await connection.execute("SELECT set_config('orgbase.context', $1, true)", switched)
            assert await connection.fetchval(f"SELECT count(*) FROM {TABLE}") == 0
        async with connection.transaction():
            # The very same signed context, one transaction later: bound to the other.
            await connection.execute("SELECT set_config('orgbase.context', $1, true)", signed)
            assert await connection.fetchval(f"SELECT count(*) FROM {TABLE}") == 0
    finally:
        await connection.close()


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM orgbase.context_key",
        "SELECT orgbase.set_context('x', 'y', 'z')",
    ],
)
async def test_the_key_and_the_context_setters_are_out_of_reach(
    settings: Settings, statement: str
) -> None:
    connection = await asyncpg.connect(settings.database.api_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.fetch(statement)
    finally:
        await connection.close()


async def test_entries_check_their_credential(
    settings: Settings, orgs: dict[str, uuid.UUID]
) -> None:
    """A session of org A cannot enter org B; an unknown session or key enters nowhere; a
    live org is not purged."""
    connection = await asyncpg.connect(settings.database.api_url)
    attempts = [
        (
            "SELECT orgbase.enter_session($1, $2, $3, 'x')",
            (orgs["session_a_owner"], secret_for(orgs["session_a_owner"]), orgs["org_b"]),
            "OB404",
        ),
        (
            "SELECT orgbase.enter_session($1, $2, $3, 'x')",
            (uuid.uuid4(), secret_for(orgs["session_a_owner"]), orgs["org_a"]),
            "OB401",
        ),
        (
            "SELECT orgbase.enter_api_key($1, NULL, $2, 'x')",
            (b"\x00" * 32, orgs["org_a"]),
            "OB411",
        ),
        ("SELECT orgbase.enter_org_purge($1, 'x')", (orgs["org_a"],), "OB404"),
    ]
    try:
        for statement, args, sqlstate in attempts:
            with pytest.raises(asyncpg.PostgresError) as refused:
                await connection.fetchval(statement, *args)
            assert refused.value.sqlstate == sqlstate, statement
    finally:
        await connection.close()


async def test_a_reused_pooled_connection_carries_no_context(
    settings: Settings, orgs: dict[str, uuid.UUID]
) -> None:
    pool = await asyncpg.create_pool(settings.database.api_url, min_size=1, max_size=1)
    a = entry(orgs, "a")
    try:
        async with pool.acquire() as connection:
            backend = await connection.fetchval("SELECT pg_backend_pid()")
            async with connection.transaction():
                await connection.execute(a.statement(), *a.args)
                assert await connection.fetchval(f"SELECT count(*) FROM {TABLE}") == 3
        async with pool.acquire() as connection:
            assert await connection.fetchval("SELECT pg_backend_pid()") == backend
            context = await connection.fetchval("SELECT current_setting('orgbase.context', true)")
            assert context == ""
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
        rows = await db.tenant_fetch(entry(orgs, "b"), SELECT_LABELS)
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
        # A live org's trail is not purged either.
        org = await connection.fetchval(
            "INSERT INTO orgbase.orgs (name) VALUES ('kept') RETURNING id"
        )
        with pytest.raises(asyncpg.PostgresError):
            await connection.fetchval("SELECT orgbase.purge_org_audit($1)", org)
    finally:
        await connection.close()
