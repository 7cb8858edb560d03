"""sql/rls/0030_refresh_child.sql on a database made before it: refresh tokens keep their
rows (rotated ones without a child, the rest as they were), and a token rotated before the
column existed answers no second chain inside the grace window."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import asyncpg
from litestar.testing import AsyncTestClient

from orgbase.auth.grants import _REFRESH_ROW
from orgbase.auth.opening import hash_token
from orgbase.auth.refresh_chain import seal, unseal
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from orgbase.platform.migrations import migrate
from tests.integration.test_migrations import empty_database  # noqa: F401 - the fixture
from tests.support.data import migrations_before, owner_connection
from tests.support.http import bearer, new_user, session_of, user_status

MIGRATION = "0030_refresh_child.sql"
_INSERT = (
    "INSERT INTO orgbase.refresh_tokens (session_id, token_hash, org_id, expires_at, rotated_at)"
    " VALUES ($1, $2, NULL, now() + interval '1 day', CASE WHEN $3 THEN now() END) RETURNING id"
)


async def _old_layout(url: str, directory: Path) -> dict[str, uuid.UUID]:
    """Migrated up to just before the column, with a session whose first token was rotated
    (into the second) and the second not yet, written as the code of then wrote them."""
    await migrate(url, migrations_before(30, directory))
    connection = await asyncpg.connect(url)
    try:
        user = await connection.fetchval(
            "INSERT INTO orgbase.users (email) VALUES ('before@chain.test') RETURNING id"
        )
        session = await connection.fetchval(
            "INSERT INTO orgbase.sessions (user_id, expires_at)"
            " VALUES ($1, now() + interval '1 day') RETURNING id",
            user,
        )
        rotated = await connection.fetchval(_INSERT, session, hash_token("rotated" * 4), True)
        live = await connection.fetchval(_INSERT, session, hash_token("live" * 6), False)
    finally:
        await connection.close()
    return {"session": session, "rotated": rotated, "live": live}


async def test_tokens_from_before_read_back_without_a_child(
    empty_database: str,  # noqa: F811 - the fixture of test_migrations
    tmp_path: Path,
) -> None:
    ids = await _old_layout(empty_database, tmp_path / "before")
    assert MIGRATION in await migrate(empty_database)
    connection = await asyncpg.connect(empty_database)
    try:
        for name, token in (("rotated", "rotated" * 4), ("live", "live" * 6)):
            row = await connection.fetchrow(_REFRESH_ROW, hash_token(token))
            assert row is not None
            assert (row["id"], row["session_id"]) == (ids[name], ids["session"])
            assert row["child_sealed"] is None
            assert (row["rotated_at"] is None) == (name == "live")
        # The code of now seals a child into the column (32 bytes) and gets it back.
        child = secrets.token_urlsafe(32)  # as the code makes them
        await connection.execute(
            "UPDATE orgbase.refresh_tokens SET child_sealed = $2 WHERE id = $1",
            ids["live"],
            seal("live" * 6, child),
        )
        row = await connection.fetchrow(_REFRESH_ROW, hash_token("live" * 6))
        assert row is not None
        assert unseal("live" * 6, row["child_sealed"]) == child
    finally:
        await connection.close()


async def test_a_token_rotated_before_gives_no_second_chain(
    client: AsyncTestClient[OrgbaseApp], settings: Settings
) -> None:
    _, tokens = await new_user(client)
    session = session_of(tokens["access_token"])
    token = "rotated-before-the-migration-" + uuid.uuid4().hex
    async with owner_connection(settings) as connection:
        await connection.execute(_INSERT, session, hash_token(token), True)
    again = await client.post(
        "/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": token}
    )
    assert (again.status_code, again.json()["code"]) == (401, "invalid_refresh_token")
    # Not a theft: the session lives on.
    assert await user_status(client, bearer(tokens["access_token"])) == 200
