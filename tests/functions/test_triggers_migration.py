"""sql/rls/0033_function_triggers_and_schedules.sql on a database of the old layout: the
audit log's rows stay as they were, and once functions subscribe, a new reportable change
writes its deliveries in its own transaction (a rolled-back one writes none)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from orgbase.platform.migrations import migrate
from tests.support.data import migrations_before

NUMBER = 33


async def _member_added(connection: asyncpg.Connection, org: object) -> None:
    await connection.execute(
        "INSERT INTO orgbase.audit_events (action, org_id, actor_kind)"
        " VALUES ('member.added', $1, 'system')",
        org,
    )


async def _added_then_failed(connection: asyncpg.Connection, org: object) -> None:
    async with connection.transaction():
        await _member_added(connection, org)
        await connection.execute("SELECT 1/0")


async def test_the_outbox_fills_after_the_migration(scratch: str, tmp_path: Path) -> None:
    await migrate(scratch, migrations_before(NUMBER, tmp_path))
    connection = await asyncpg.connect(scratch)
    try:
        org = await connection.fetchval(
            "INSERT INTO orgbase.orgs (name) VALUES ('old') RETURNING id"
        )
        await _member_added(connection, org)
        before = await connection.fetchval("SELECT count(*) FROM orgbase.audit_events")
    finally:
        await connection.close()
    applied = await migrate(scratch)
    assert any(name.startswith(f"00{NUMBER}_") for name in applied)
    connection = await asyncpg.connect(scratch)
    try:
        assert await connection.fetchval("SELECT count(*) FROM orgbase.audit_events") == before
        assert await connection.fetchval("SELECT count(*) FROM orgbase.function_deliveries") == 0
        await connection.execute(
            "INSERT INTO orgbase.function_subscriptions VALUES ('greet', 'member.*', 'member')"
        )
        await _member_added(connection, org)
        async with connection.transaction():
            await _member_added(connection, org)
        rows = await connection.fetch(
            "SELECT function, event_type, role, status FROM orgbase.function_deliveries"
        )
        assert [tuple(r) for r in rows] == [("greet", "member.added", "member", "pending")] * 2
        with pytest.raises(asyncpg.DivisionByZeroError):
            await _added_then_failed(connection, org)
        assert await connection.fetchval("SELECT count(*) FROM orgbase.function_deliveries") == 2
        await connection.execute(
            "INSERT INTO orgbase.function_schedule_runs (function, tick, status)"
            " VALUES ('nightly', now(), 'missed')"
        )
    finally:
        await connection.close()
