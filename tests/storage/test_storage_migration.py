"""sql/rls/0028_storage.sql on a database of the old layout: it adds the storage schema
and leaves what was there as it was: an org, its rows, and the webhook event names of
the events before it (the migration replaces the function that names them)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devstack import LocalStack
from orgbase.platform.migrations import migrate
from tests.support.data import migrations_before, scratch_database

SCRATCH = "orgbase_test_storage_migration"
STORAGE = 28


@pytest.fixture
async def scratch(stack: LocalStack) -> AsyncIterator[str]:
    async with scratch_database(stack, SCRATCH) as url:
        yield url


async def test_storage_migrates_an_old_database(scratch: str, tmp_path: Path) -> None:
    await migrate(scratch, migrations_before(STORAGE, tmp_path / "old"))
    connection = await asyncpg.connect(scratch)
    try:
        org = await connection.fetchval(
            "INSERT INTO orgbase.orgs (name) VALUES ('before storage') RETURNING id"
        )
        events_before = await connection.fetch(
            "SELECT a, orgbase.webhook_event_type(a, t) AS kind FROM (VALUES"
            " ('row.insert', 'api.items'), ('member.left', NULL), ('docs.x.insert', NULL),"
            " ('storage.object.created', 'storage')) AS v(a, t)"
        )
        applied = await migrate(scratch)
        assert [name for name in applied if name.startswith("0028")] == ["0028_storage.sql"]
        assert (
            await connection.fetchval("SELECT name FROM orgbase.orgs WHERE id = $1", org)
            == "before storage"
        )
        events_after = await connection.fetch(
            "SELECT a, orgbase.webhook_event_type(a, t) AS kind FROM (VALUES"
            " ('row.insert', 'api.items'), ('member.left', NULL), ('docs.x.insert', NULL),"
            " ('storage.object.created', 'storage')) AS v(a, t)"
        )
        before = {r["a"]: r["kind"] for r in events_before}
        after = {r["a"]: r["kind"] for r in events_after}
        assert before["storage.object.created"] is None
        assert after == {**before, "storage.object.created": "storage.object.created"}
        # The new tables take an org's bucket and object (as the owner: no context needed).
        await connection.execute(
            "INSERT INTO storage.buckets (org_id, id) VALUES ($1, 'avatars')", org
        )
        await connection.execute(
            "INSERT INTO storage.objects (org_id, bucket_id, name, blob_key, size, mimetype,"
            " sha256) VALUES ($1, 'avatars', 'a.png', $2, 3, 'image/png', $3)",
            org,
            f"{org}/{uuid.uuid4().hex}",
            b"\0" * 32,
        )
        usage = await connection.fetchrow(
            "SELECT bytes, objects FROM storage.usage WHERE org_id = $1", org
        )
        assert usage is not None
        assert (usage["bytes"], usage["objects"]) == (3, 1)
    finally:
        await connection.close()
