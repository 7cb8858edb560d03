"""sql/rls/0023_session_secrets.sql on a database made before it: sessions keep their
rows and enter nothing until a token is issued for them (their first refresh), and
impersonations in progress end."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import cast

import asyncpg
import pytest

from orgbase.auth.sessions import SessionStore
from orgbase.core.context import IssuedToken
from orgbase.core.postgres import Connection
from orgbase.platform.migrations import migrate
from tests.integration.test_migrations import empty_database  # noqa: F401 - the fixture
from tests.support.data import migrations_before


async def _old_layout(url: str, directory: Path) -> dict[str, uuid.UUID]:
    """Migrated up to just before session secrets, with a member's live session and a
    platform admin's impersonation in progress, written as the code of then wrote them."""
    await migrate(url, migrations_before(23, directory))
    connection = await asyncpg.connect(url)
    try:
        ids: dict[str, uuid.UUID] = {}
        ids["org"] = await connection.fetchval(
            "INSERT INTO orgbase.orgs (name) VALUES ('before') RETURNING id"
        )
        for who in ("member", "admin"):
            ids[who] = await connection.fetchval(
                "INSERT INTO orgbase.users (email, is_platform_admin) VALUES ($1, $2) RETURNING id",
                f"{who}@before.test",
                who == "admin",
            )
            ids[f"{who}_session"] = await connection.fetchval(
                "INSERT INTO orgbase.sessions (user_id, expires_at)"
                " VALUES ($1, now() + interval '1 day') RETURNING id",
                ids[who],
            )
        await connection.execute(
            "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, 'member')",
            ids["org"],
            ids["member"],
        )
        ids["impersonation"] = await connection.fetchval(
            "INSERT INTO orgbase.impersonations (admin_user_id, org_id, reason, expires_at)"
            " VALUES ($1, $2, 'support', now() + interval '1 hour') RETURNING id",
            ids["admin"],
            ids["org"],
        )
        # The old entry took ids alone.
        entered = await connection.fetchval(
            "SELECT orgbase.enter_session($1, $2, $3, 'before')",
            ids["member_session"],
            ids["member"],
            ids["org"],
        )
        assert entered == "member"
    finally:
        await connection.close()
    return ids


async def test_sessions_from_before_enter_only_once_a_token_gives_them_a_secret(
    empty_database: str,  # noqa: F811 - the fixture of test_migrations
    tmp_path: Path,
) -> None:
    ids = await _old_layout(empty_database, tmp_path / "before")
    assert "0023_session_secrets.sql" in await migrate(empty_database)
    connection = await asyncpg.connect(empty_database)
    try:
        row = await connection.fetchrow(
            "SELECT user_id, revoked_at, secret_hashes, secret_expires_at"
            " FROM orgbase.sessions WHERE id = $1",
            ids["member_session"],
        )
        assert row is not None
        assert (row["user_id"], row["revoked_at"]) == (ids["member"], None)
        assert (row["secret_hashes"], row["secret_expires_at"]) == ([], [])
        enter = "SELECT orgbase.enter_session($1, $2, $3, 'after')"
        for second in (str(ids["member"]), None, "anything"):
            with pytest.raises(asyncpg.PostgresError) as refused:
                await connection.fetchval(enter, ids["member_session"], second, ids["org"])
            assert refused.value.sqlstate == "OB401"
        ended = await connection.fetchval(
            "SELECT ended_at IS NOT NULL FROM orgbase.impersonations WHERE id = $1",
            ids["impersonation"],
        )
        assert ended is True

        # The first refresh issues a token: its secret enters (written as the code does).
        issued = IssuedToken("token", 900, "the-first-secret", time.time() + 900)
        async with connection.transaction():
            await SessionStore.add_secret(
                cast("Connection", connection), ids["member_session"], issued
            )
        role = await connection.fetchval(enter, ids["member_session"], issued.secret, ids["org"])
        assert role == "member"
    finally:
        await connection.close()
