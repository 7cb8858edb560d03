"""sql/rls/0031_api_key_creators.sql on a database of the old layout: a key whose creator is
unknown gets the person its creation's audit record names; every live key whose creator no
longer holds its role in the org (removed, demoted below the key, account deleted, or
unknown) is revoked, audited and mailed to the org's admins, as any later loss is; and a
pending invitation a key made for admin is lowered to member."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devstack import LocalStack
from tests.support.data import migrated_from, scratch_database

SCRATCH = "orgbase_test_api_key_creators"
CREATORS = 31
"""The migration's number: the old layout is every migration before it."""


@pytest.fixture
async def scratch(stack: LocalStack) -> AsyncIterator[str]:
    async with scratch_database(stack, SCRATCH) as url:
        yield url


async def _member(
    connection: asyncpg.Connection, org: uuid.UUID, name: str, role: str | None
) -> uuid.UUID:
    """A user, a member of ``org`` with ``role`` (None: not, or no longer, a member)."""
    user: uuid.UUID = await connection.fetchval(
        "INSERT INTO orgbase.users (email) VALUES ($1) RETURNING id", f"{name}@creators.test"
    )
    if role is not None:
        await connection.execute(
            "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, $3)",
            org,
            user,
            role,
        )
    return user


async def _key(
    connection: asyncpg.Connection,
    org: uuid.UUID,
    role: str,
    created_by: uuid.UUID | None,
    audited_creator: uuid.UUID | None = None,
) -> uuid.UUID:
    """A key as the old code made it; ``audited_creator``: known from its audit record only."""
    key: uuid.UUID = await connection.fetchval(
        "INSERT INTO orgbase.api_keys (org_id, name, prefix, key_hash, role, created_by)"
        " VALUES ($1, 'ci', 'obk_', $2, $3, $4) RETURNING id",
        org,
        uuid.uuid4().bytes,
        role,
        created_by,
    )
    if audited_creator is not None:
        await connection.execute(
            "INSERT INTO orgbase.audit_events"
            " (org_id, actor_kind, actor_user_id, action, target_table, row_key)"
            " VALUES ($1, 'user', $2, 'api_key.created', 'orgbase.api_keys',"
            " jsonb_build_object('id', $3::text))",
            org,
            audited_creator,
            str(key),
        )
    return key


async def _old_layout(connection: asyncpg.Connection) -> dict[str, uuid.UUID]:
    org = await connection.fetchval("INSERT INTO orgbase.orgs (name) VALUES ('old') RETURNING id")
    admin = await _member(connection, org, "admin", "admin")
    demoted = await _member(connection, org, "demoted", "member")
    removed = await _member(connection, org, "removed", None)
    deleted = await _member(connection, org, "deleted", "admin")
    await connection.execute("UPDATE orgbase.users SET deleted_at = now() WHERE id = $1", deleted)
    keys = {
        "org": org,
        "admin's": await _key(connection, org, "admin", admin),
        "demoted's member key": await _key(connection, org, "member", demoted),
        "demoted's admin key": await _key(connection, org, "admin", demoted),
        "removed's": await _key(connection, org, "admin", removed),
        "deleted's": await _key(connection, org, "viewer", deleted),
        "audited admin's": await _key(connection, org, "admin", None, admin),
        "unknown": await _key(connection, org, "viewer", None),
    }
    await connection.execute(
        "INSERT INTO orgbase.invitations"
        " (org_id, email, role, token_hash, invited_by_key, expires_at)"
        " VALUES ($1, 'new@creators.test', 'admin', $2, $3, now() + interval '1 day')",
        org,
        uuid.uuid4().bytes,
        keys["admin's"],
    )
    return keys


async def test_keys_get_their_creators_and_orphans_are_revoked(
    scratch: str, tmp_path: Path
) -> None:
    keys = await migrated_from(scratch, CREATORS, tmp_path, _old_layout)
    org = keys.pop("org")
    connection = await asyncpg.connect(scratch)
    try:
        rows = await connection.fetch(
            "SELECT id, revoked_at IS NULL AS live, created_by FROM orgbase.api_keys"
        )
        audited = await connection.fetch(
            "SELECT row_key ->> 'id' AS id, actor_kind FROM orgbase.audit_events"
            " WHERE action = 'api_key.revoked' AND org_id = $1",
            org,
        )
        mailed = await connection.fetch(
            "SELECT recipient FROM orgbase.outbox WHERE kind = 'api_key_revoked' AND org_id = $1",
            org,
        )
        invitation_role = await connection.fetchval(
            "SELECT role FROM orgbase.invitations WHERE org_id = $1", org
        )
        admin = await connection.fetchval(
            "SELECT id FROM orgbase.users WHERE email = 'admin@creators.test'"
        )
    finally:
        await connection.close()
    live = {row["id"]: row["live"] for row in rows}
    assert {name: live[key] for name, key in keys.items()} == {
        "admin's": True,
        "demoted's member key": True,
        "demoted's admin key": False,
        "removed's": False,
        "deleted's": False,
        "audited admin's": True,
        "unknown": False,
    }
    creators = {row["id"]: row["created_by"] for row in rows}
    assert creators[keys["audited admin's"]] == admin
    revoked = {str(keys[n]) for n in ("demoted's admin key", "removed's", "deleted's", "unknown")}
    assert sorted(a["id"] for a in audited) == sorted(revoked)
    assert {a["actor_kind"] for a in audited} == {"system"}
    assert [m["recipient"] for m in mailed] == ["admin@creators.test"] * 4
    assert invitation_role == "member"
