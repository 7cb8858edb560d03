"""sql/rls/0022_webhook_owners.sql on a database of the old layout: each endpoint gets the
owner who registered it (the person, or the API key its audit record names), and the
endpoints whose registrant already lost the org's authority (removed, key revoked, or
unknown) are disabled, audited and mailed to the org's admins, as any later loss is."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devstack import LocalStack
from orgbase.platform.migrations import migrate
from tests.support.data import migrations_before, scratch_database

SCRATCH = "orgbase_test_webhook_owners"
OWNERS = 22
"""The migration's number: the old layout is every migration before it."""
SECRET = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
async def scratch(stack: LocalStack) -> AsyncIterator[str]:
    async with scratch_database(stack, SCRATCH) as url:
        yield url


async def _user(connection: asyncpg.Connection, name: str) -> uuid.UUID:
    user: uuid.UUID = await connection.fetchval(
        "INSERT INTO orgbase.users (email) VALUES ($1) RETURNING id", f"{name}@owners.test"
    )
    return user


async def _key(
    connection: asyncpg.Connection, org: uuid.UUID, revoked: bool, created_by: uuid.UUID
) -> uuid.UUID:
    """An admin key made by ``created_by`` (a later migration revokes keys whose maker is
    no admin of the org: here the maker stays one)."""
    key: uuid.UUID = await connection.fetchval(
        "INSERT INTO orgbase.api_keys"
        " (org_id, name, prefix, key_hash, role, revoked_at, created_by)"
        " VALUES ($1, 'ci', 'ob_', $2, 'admin', CASE WHEN $3 THEN now() END, $4) RETURNING id",
        org,
        uuid.uuid4().bytes,
        revoked,
        created_by,
    )
    return key


async def _endpoint(
    connection: asyncpg.Connection,
    org: uuid.UUID,
    created_by: uuid.UUID | None,
    key: uuid.UUID | None = None,
) -> uuid.UUID:
    """An endpoint as the old code made it; a key's registration is known from its audit
    record only (created_by was NULL)."""
    endpoint: uuid.UUID = await connection.fetchval(
        "INSERT INTO orgbase.webhook_endpoints (org_id, url, events, secret, created_by)"
        " VALUES ($1, 'http://93.184.216.34/hook', '{*}', $2, $3) RETURNING id",
        org,
        SECRET,
        created_by,
    )
    if key is not None:
        await connection.execute(
            "INSERT INTO orgbase.audit_events"
            " (org_id, actor_kind, actor_key_id, action, target_table, row_key)"
            " VALUES ($1, 'api_key', $2, 'webhook.created', 'orgbase.webhook_endpoints',"
            " jsonb_build_object('id', $3::text))",
            org,
            key,
            str(endpoint),
        )
    return endpoint


async def test_existing_endpoints_get_owners_and_orphans_stop(scratch: str, tmp_path: Path) -> None:
    await migrate(scratch, migrations_before(OWNERS, tmp_path))
    connection = await asyncpg.connect(scratch)
    try:
        org = await connection.fetchval(
            "INSERT INTO orgbase.orgs (name) VALUES ('old') RETURNING id"
        )
        admin, gone = await _user(connection, "admin"), await _user(connection, "gone")
        await connection.execute(
            "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')",
            org,
            admin,
        )
        live_key = await _key(connection, org, False, admin)
        dead_key = await _key(connection, org, True, admin)
        by_admin = await _endpoint(connection, org, admin)
        by_gone = await _endpoint(connection, org, gone)  # its creator was removed before
        by_live_key = await _endpoint(connection, org, None, live_key)
        by_dead_key = await _endpoint(connection, org, None, dead_key)
        unknown = await _endpoint(connection, org, None)
    finally:
        await connection.close()

    applied = await migrate(scratch)
    assert any(name.startswith(f"00{OWNERS}_") for name in applied)

    connection = await asyncpg.connect(scratch)
    try:
        rows = {
            row["id"]: row
            for row in await connection.fetch(
                "SELECT id, enabled, owner_user_id, owner_key_id, disabled_reason"
                " FROM orgbase.webhook_endpoints"
            )
        }
        audited = await connection.fetch(
            "SELECT row_key ->> 'id' AS id FROM orgbase.audit_events"
            " WHERE action = 'webhook.disabled' AND org_id = $1",
            org,
        )
        mailed = await connection.fetch(
            "SELECT recipient FROM orgbase.outbox WHERE kind = 'webhook_disabled' AND org_id = $1",
            org,
        )
    finally:
        await connection.close()
    owners = {e: (r["enabled"], r["owner_user_id"], r["owner_key_id"]) for e, r in rows.items()}
    assert owners == {
        by_admin: (True, admin, None),
        by_gone: (False, gone, None),
        by_live_key: (True, None, live_key),
        by_dead_key: (False, None, dead_key),
        unknown: (False, None, None),
    }
    assert "authority" in rows[unknown]["disabled_reason"]
    stopped = {str(by_gone), str(by_dead_key), str(unknown)}
    assert sorted(a["id"] for a in audited) == sorted(stopped)
    assert [m["recipient"] for m in mailed] == ["admin@owners.test"] * 3
