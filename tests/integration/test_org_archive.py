"""An org out and back in: `orgbase org export` (a real command) writes one archive; `orgbase
org import` restores it into a fresh deployment (another database, MongoDB database and
Redis database), and every store compares equal. An archive cut short, altered or of a
newer schema is refused before anything is written; an import that fails midway (ids taken)
leaves nothing behind."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from pymongo import AsyncMongoClient

from devstack import LocalStack
from orgbase.core.errors import Conflict, Invalid
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from orgbase.platform.migrations import migrate, sync_role_passwords
from orgbase.platform.org_archive import read_archive
from orgbase.platform.org_transfer import import_org, schema_version
from tests.support.data import (
    EXAMPLE_APP_MIGRATIONS,
    TEST_TABLES,
    flush_redis_db,
    recreate_database,
)
from tests.support.http import admin_at_aal2, bearer, org_member, save_settings
from tests.support.stack import server_env, stack_settings, with_overrides

ORGBASE = str(Path(sys.executable).parent / "orgbase")
FRESH = "orgbase_archive_fresh"
FRESH_REDIS_DB = 2


@pytest.fixture(scope="module")
async def fresh(stack: LocalStack, settings: Settings) -> Settings:
    """A second deployment's stores: a migrated database, a Mongo database, a Redis db."""
    await recreate_database(stack, FRESH)
    other = stack_settings(stack, FRESH)
    other = with_overrides(
        other,
        mongo={"database": f"{settings.mongo.database}_fresh"},
        redis={"db": FRESH_REDIS_DB},
    )
    await migrate(other.database.migration_url, app_directory=EXAMPLE_APP_MIGRATIONS)
    await sync_role_passwords(other.database)
    connection = await asyncpg.connect(other.database.migration_url)
    try:
        await connection.execute(TEST_TABLES)
    finally:
        await connection.close()
    await flush_redis_db(stack, FRESH_REDIS_DB)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(other.mongo.url)
    await mongo.drop_database(other.mongo.database)
    await mongo.close()
    return other


async def _filled_org(client: AsyncTestClient[OrgbaseApp], settings: Settings) -> str:
    user, org_id, headers = await org_member(client, "archived")
    person = await client.post(
        "/v1/db/people",
        headers={**headers, "Prefer": "return=representation"},
        json={"name": "Ada", "email": "ada@example.test"},
    )
    assert person.status_code == 201, person.text
    owner_id = person.json()[0]["id"]
    tasks = [
        {
            "title": f"task {i}",
            "points": i,
            "tags": ["a", "b"],
            "data": {"n": i, "s": "é"},
            "due": "2026-12-24",
            "owner_id": owner_id,
        }
        for i in range(25)
    ]
    assert (await client.post("/v1/db/tasks", headers=headers, json=tasks)).status_code == 201
    for i in range(3):
        doc = {"title": f"note {i}", "n": i, "nested": {"list": [1, 2.5, None, "x"]}}
        assert (await client.post("/v1/docs/notes", headers=headers, json=doc)).status_code == 201
    await client.put("/v1/kv/greeting", headers=headers, json={"value": {"hi": 1}, "ttl": 600})
    await client.put("/v1/kv/forever", headers=headers, json={"value": "x"})
    await save_settings(client, headers, org_id, {"theme": "dark"})
    await save_settings(client, headers, org_id, {"theme": "light", "seats": 3})
    async with _Connected(settings) as connection:
        await connection.execute(
            "INSERT INTO orgbase.webhook_endpoints (org_id, url, events, secret, owner_user_id)"
            " VALUES ($1, 'https://hooks.example.test/in', '{row.insert}', 'whsec_secret', $2)",
            uuid.UUID(org_id),
            uuid.UUID(user["id"]),
        )
    return org_id


class _Connected:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __aenter__(self) -> asyncpg.Connection:
        self.connection: asyncpg.Connection = await asyncpg.connect(
            self.settings.database.migration_url
        )
        return self.connection

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()


_ROWS = """
SELECT coalesce(jsonb_agg((to_jsonb(t) - 'org_id' - 'created_by')
    || jsonb_build_object('creator', (SELECT email FROM orgbase.users WHERE id = t.created_by))
    ORDER BY to_jsonb(t)::text), '[]')::text
FROM {table} t WHERE org_id = $1
"""
_PLATFORM = """
SELECT jsonb_build_object(
  'org', (SELECT name FROM orgbase.orgs WHERE id = $1 AND deleted_at IS NULL),
  'members', (SELECT jsonb_agg(jsonb_build_array(u.email, m.role) ORDER BY u.email)
              FROM orgbase.memberships m JOIN orgbase.users u ON u.id = m.user_id
              WHERE m.org_id = $1),
  'settings', (SELECT jsonb_build_array(version, settings) FROM orgbase.org_settings
               WHERE org_id = $1),
  'history', (SELECT jsonb_agg(jsonb_build_array(version, settings) ORDER BY version)
              FROM orgbase.org_settings_history WHERE org_id = $1),
  'webhooks', (SELECT jsonb_agg(jsonb_build_array(url, events)) FROM orgbase.webhook_endpoints
               WHERE org_id = $1),
  'audit', (SELECT jsonb_agg(jsonb_build_array(action, target_table, row_key, old_values - 'org_id'
                - 'created_by', new_values - 'org_id' - 'created_by', details) ORDER BY id)
            FROM orgbase.audit_events WHERE org_id = $1 AND action <> 'org.imported'))::text
"""


async def snapshot(settings: Settings, org: str) -> dict[str, Any]:
    """Everything of an org in every store, without what differs by deployment (ids of
    users, secrets)."""
    org_id = uuid.UUID(org)
    async with _Connected(settings) as connection:
        tables = await connection.fetch(
            "SELECT format('%I.%I', schema_name, table_name) AS t FROM orgbase.tenant_tables"
            " WHERE policy <> 'shared_read' ORDER BY 1"
        )
        rows = {
            r["t"]: msgspec.json.decode(
                await connection.fetchval(_ROWS.format(table=r["t"]), org_id)
            )
            for r in tables
        }
        # The org's rows per table; a table it has no row in (another test's app table,
        # absent from the fresh deployment) holds nothing to compare.
        rows = {table: found for table, found in rows.items() if found}
        platform = msgspec.json.decode(await connection.fetchval(_PLATFORM, org_id))
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo.url)
    database = mongo[settings.mongo.database]
    documents = {}
    for name in sorted(await database.list_collection_names()):
        if name.startswith(f"d{org_id.hex}_"):
            found = [d async for d in database[name].find({}, {"_owner": 0}).sort("_id", 1)]
            documents[name] = [dict(d.items()) for d in found]
    await mongo.close()
    return {"rows": rows, "platform": platform, "documents": documents}


async def cache_of(stack: LocalStack, settings: Settings, org: str) -> dict[str, Any]:
    from redis.asyncio import Redis

    redis = Redis(
        host="127.0.0.1",
        port=stack.redis.primary_port() or stack.layout.redis_ports[0],
        password=stack.secrets["redis"],
        db=settings.redis.db,
    )
    found = {}
    async for key in redis.scan_iter(match=f"t:{{{org}}}:*"):
        found[key] = (await redis.dump(key), await redis.pttl(key) > 0)
    await redis.aclose()
    return found


def _cli(*args: str, stack: LocalStack) -> subprocess.CompletedProcess[str]:
    env = server_env(stack)
    return subprocess.run(
        [ORGBASE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def _exported(
    client: AsyncTestClient[OrgbaseApp], settings: Settings, stack: LocalStack, tmp_path: Path
) -> tuple[str, Path]:
    """A filled org and its archive, written by the command."""
    org = await _filled_org(client, settings)
    archive = tmp_path / "org.tar.gz"
    exported = await asyncio.to_thread(
        _cli, "org", "export", org, "--out", str(archive), stack=stack
    )
    assert exported.returncode == 0, exported.stderr
    return org, archive


async def test_an_org_exported_and_imported_into_a_fresh_deployment_compares_equal(
    client: AsyncTestClient[OrgbaseApp],
    settings: Settings,
    fresh: Settings,
    stack: LocalStack,
    tmp_path: Path,
) -> None:
    org, archive = await _exported(client, settings, stack, tmp_path)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        text = b"".join(tar.extractfile(m).read() for m in tar if m.isfile())  # type: ignore[union-attr]
    assert "manifest.json" in names
    assert "tables/api.tasks.jsonl" in names
    assert b"whsec_secret" not in text  # webhook secrets stay behind
    assert b"$argon2" not in text  # no password hash
    assert b"password_hash" not in text

    summary = await import_org(fresh, archive)
    assert summary["org"] == org  # the id was free there: kept
    assert summary["rows"] == 26
    assert summary["documents"] == 3
    assert summary["cache_keys"] >= 2

    before, after = await snapshot(settings, org), await snapshot(fresh, org)
    assert after["rows"] == before["rows"]
    assert after["documents"] == before["documents"]
    assert after["platform"] == before["platform"]
    assert await cache_of(stack, fresh, org) == await cache_of(stack, settings, org)
    async with _Connected(fresh) as connection:
        enabled = await connection.fetchval(
            "SELECT enabled FROM orgbase.webhook_endpoints WHERE org_id = $1", uuid.UUID(org)
        )
        assert enabled is False  # a new secret: an admin turns it on again

    # A second import of the same archive there: the org gets a new id, the rows' ids are
    # taken: refused, and nothing of it stays.
    orgs_before = await _count(fresh, "SELECT count(*) FROM orgbase.orgs")
    with pytest.raises(Conflict) as clash:
        await import_org(fresh, archive)
    assert clash.value.code == "archive_id_clash"
    assert await _count(fresh, "SELECT count(*) FROM orgbase.orgs") == orgs_before
    assert await _count(fresh, "SELECT count(*) FROM api.tasks") == 25


async def _count(settings: Settings, query: str) -> int:
    async with _Connected(settings) as connection:
        return int(await connection.fetchval(query))


def _rewrite(source: Path, target: Path, change: Any) -> None:
    with tarfile.open(source) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile()]  # type: ignore[union-attr]
    with tarfile.open(target, "w:gz") as out:
        for member, data in members:
            changed = change(member.name, data)
            if changed is None:
                continue
            member.size = len(changed)
            out.addfile(member, io.BytesIO(changed))


async def test_a_cut_altered_or_newer_archive_is_refused_before_anything_is_written(
    client: AsyncTestClient[OrgbaseApp],
    settings: Settings,
    fresh: Settings,
    stack: LocalStack,
    tmp_path: Path,
) -> None:
    _, archive = await _exported(client, settings, stack, tmp_path)
    data = archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    altered = tmp_path / "altered.tar.gz"
    _rewrite(archive, altered, lambda n, d: d.replace(b"task 1", b"task 9") if "tasks" in n else d)
    dropped = tmp_path / "dropped.tar.gz"
    _rewrite(archive, dropped, lambda n, d: None if n == "tables/api.people.jsonl" else d)
    newer = tmp_path / "newer.tar.gz"
    _rewrite(
        archive,
        newer,
        lambda n, d: d.replace(b'"schema":"', b'"schema":"9') if n == "manifest.json" else d,
    )
    orgs_before = await _count(fresh, "SELECT count(*) FROM orgbase.orgs")
    for path, code in (
        (cut, "archive_invalid"),
        (altered, "archive_invalid"),
        (dropped, "archive_invalid"),
        (newer, "archive_version"),
    ):
        with pytest.raises(Invalid) as refused:
            await import_org(fresh, path)
        assert refused.value.code == code, (path.name, refused.value.message)
    assert await _count(fresh, "SELECT count(*) FROM orgbase.orgs") == orgs_before
    # Through the command: a clear message and exit 1, never a traceback.
    answered = await asyncio.to_thread(_cli, "org", "import", str(cut), stack=stack)
    assert answered.returncode == 1
    assert "archive_invalid" in answered.stderr
    assert "Traceback" not in answered.stderr


async def test_an_owner_at_aal2_downloads_the_archive_and_no_one_else_does(
    client: AsyncTestClient[OrgbaseApp], settings: Settings, tmp_path: Path
) -> None:
    owner, org, headers = await org_member(client, "downloaded")
    await client.post("/v1/db/tasks", headers=headers, json={"title": "in the archive"})
    url = f"/v1/orgs/{org}/exports"
    at_aal1 = await client.post(url, headers=headers)
    assert at_aal1.status_code == 403
    assert at_aal1.json()["code"] == "insufficient_aal"
    key = await client.post(
        f"/v1/orgs/{org}/api-keys", headers=headers, json={"name": "k", "role": "admin"}
    )
    by_key = await client.post(url, headers={"Authorization": f"Bearer {key.json()['key']}"})
    assert by_key.status_code == 403
    assert by_key.json()["code"] == "human_admin_required"
    _, _, outsider = await org_member(client, "elsewhere")
    assert (await client.post(url, headers=outsider)).status_code == 404

    raised = await admin_at_aal2(client, {"access_token": headers["Authorization"][7:]})
    answered = await client.post(url, headers=bearer(raised["access_token"]))
    assert answered.status_code == 200, answered.text
    assert answered.headers["content-type"] == "application/gzip"
    path = tmp_path / "downloaded.tar.gz"
    path.write_bytes(answered.content)
    archive = read_archive(path, schema_version())
    assert archive.manifest["org"]["id"] == org
    assert [line for line in archive.lines("tables/api.tasks.jsonl") if b"in the archive" in line]
    async with _Connected(settings) as connection:
        recorded = await connection.fetchval(
            "SELECT count(*) FROM orgbase.audit_events"
            " WHERE org_id = $1 AND action = 'org.exported' AND actor_user_id = $2",
            uuid.UUID(org),
            uuid.UUID(owner["id"]),
        )
    assert recorded == 1
