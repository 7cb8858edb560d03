"""sql/rls/0037_one_pending_invitation.sql on a database of the old layout, where
invitations of one address made at once left several pending: the newest of each address
stays pending and the others are revoked, a member's own pending invitation is revoked,
accepted and other addresses' invitations are untouched, and a second pending invitation
of an address is refused from then on."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from devstack import LocalStack
from tests.support.data import migrated_from, scratch_database

ONE_PENDING = 37
"""The migration's number: the old layout is every migration before it."""


async def _invite(
    connection: asyncpg.Connection, org: uuid.UUID, email: str, age: int, accepted: bool = False
) -> uuid.UUID:
    """An invitation of ``email`` made ``age`` minutes ago (pending unless ``accepted``)."""
    invitation: uuid.UUID = await connection.fetchval(
        "INSERT INTO orgbase.invitations (org_id, email, role, token_hash, created_at,"
        " expires_at, accepted_at) VALUES ($1, $2, 'member', $3,"
        " now() - make_interval(mins => $4), now() + interval '1 day',"
        " CASE WHEN $5 THEN now() END) RETURNING id",
        org,
        email,
        uuid.uuid4().bytes,
        age,
        accepted,
    )
    return invitation


async def _old_layout(connection: asyncpg.Connection) -> dict[str, uuid.UUID]:
    org = await connection.fetchval("INSERT INTO orgbase.orgs (name) VALUES ('old') RETURNING id")
    other_org = await connection.fetchval(
        "INSERT INTO orgbase.orgs (name) VALUES ('other') RETURNING id"
    )
    member = await connection.fetchval(
        "INSERT INTO orgbase.users (email) VALUES ('member@pending.test') RETURNING id"
    )
    await connection.execute(
        "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, 'member')",
        org,
        member,
    )
    return {
        "org": org,
        "oldest duplicate": await _invite(connection, org, "u@pending.test", 3),
        "older duplicate": await _invite(connection, org, "u@pending.test", 2),
        "newest duplicate": await _invite(connection, org, "u@pending.test", 1),
        "accepted": await _invite(connection, org, "u@pending.test", 9, accepted=True),
        "alone": await _invite(connection, org, "alone@pending.test", 2),
        "another org's": await _invite(connection, other_org, "u@pending.test", 5),
        "a member's": await _invite(connection, org, "member@pending.test", 1),
    }


async def test_duplicate_pending_invitations_keep_the_newest(
    stack: LocalStack, tmp_path: Path
) -> None:
    async with scratch_database(stack, "orgbase_test_one_pending_invitation") as scratch:
        invitations = await migrated_from(scratch, ONE_PENDING, tmp_path, _old_layout)
        await _check(scratch, invitations)


async def _check(scratch: str, invitations: dict[str, uuid.UUID]) -> None:
    org = invitations.pop("org")
    connection = await asyncpg.connect(scratch)
    try:
        rows = await connection.fetch(
            "SELECT id, revoked_at IS NULL AS live, accepted_at IS NOT NULL AS accepted"
            " FROM orgbase.invitations"
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await _invite(connection, org, "u@pending.test", 0)
    finally:
        await connection.close()
    state = {
        row["id"]: "accepted" if row["accepted"] else "pending" if row["live"] else "revoked"
        for row in rows
    }
    assert {name: state[i] for name, i in invitations.items()} == {
        "oldest duplicate": "revoked",
        "older duplicate": "revoked",
        "newest duplicate": "pending",
        "accepted": "accepted",
        "alone": "pending",
        "another org's": "pending",
        "a member's": "revoked",
    }
