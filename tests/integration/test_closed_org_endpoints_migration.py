"""sql/rls/0027_closed_org_endpoints.sql on a database of the old layout: the endpoints of
an org closed (being deleted) before it are stopped, as closing an org now does; a live
org's endpoints and their deliveries are left as they were."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devstack import LocalStack
from orgbase.platform.migrations import migrate
from tests.support.data import migrations_before, scratch_database

SCRATCH = "orgbase_test_closed_org_endpoints"
CLOSED = 27
"""The migration's number: the old layout is every migration before it."""
SECRET = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
async def scratch(stack: LocalStack) -> AsyncIterator[str]:
    async with scratch_database(stack, SCRATCH) as url:
        yield url


async def _org_with_endpoint(
    connection: asyncpg.Connection, name: str, *, closed: bool
) -> tuple[uuid.UUID, uuid.UUID]:
    """An org whose admin registered an endpoint, with one delivery owed to it."""
    org: uuid.UUID = await connection.fetchval(
        "INSERT INTO orgbase.orgs (name) VALUES ($1) RETURNING id", name
    )
    admin = await connection.fetchval(
        "INSERT INTO orgbase.users (email) VALUES ($1) RETURNING id", f"{name}@closed.test"
    )
    await connection.execute(
        "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')",
        org,
        admin,
    )
    endpoint: uuid.UUID = await connection.fetchval(
        "INSERT INTO orgbase.webhook_endpoints"
        " (org_id, url, events, secret, created_by, owner_user_id)"
        " VALUES ($1, 'http://93.184.216.34/hook', '{*}', $2, $3, $3) RETURNING id",
        org,
        SECRET,
        admin,
    )
    await connection.execute(
        "INSERT INTO orgbase.webhook_deliveries"
        " (endpoint_id, org_id, message_id, event_type, payload)"
        " VALUES ($1, $2, 'msg_' || gen_random_uuid(), 'row.inserted', '{}')",
        endpoint,
        org,
    )
    if closed:
        await connection.execute("UPDATE orgbase.orgs SET deleted_at = now() WHERE id = $1", org)
    return org, endpoint


async def test_a_closed_orgs_endpoints_stop(scratch: str, tmp_path: Path) -> None:
    await migrate(scratch, migrations_before(CLOSED, tmp_path))
    connection = await asyncpg.connect(scratch)
    try:
        _, closed = await _org_with_endpoint(connection, "closed", closed=True)
        _, live = await _org_with_endpoint(connection, "live", closed=False)
    finally:
        await connection.close()

    applied = await migrate(scratch)
    assert any(name.startswith(f"00{CLOSED}_") for name in applied)

    connection = await asyncpg.connect(scratch)
    try:
        endpoints = {
            row["id"]: (row["enabled"], row["disabled_reason"])
            for row in await connection.fetch(
                "SELECT id, enabled, disabled_reason FROM orgbase.webhook_endpoints"
            )
        }
        pending = await connection.fetchval(
            "SELECT count(*) FROM orgbase.webhook_deliveries WHERE status = 'pending'"
        )
    finally:
        await connection.close()
    assert endpoints == {closed: (False, "its org was deleted"), live: (True, None)}
    assert pending == 2  # nothing deleted: the closed org's go with its purge
