"""Migration 0021 on a database made by the migrations before it: a user's unfinished
factor enrolments collapse to the newest one (verified factors untouched), and from then
on PostgreSQL holds a user to one unverified factor."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devstack import LocalStack
from orgbase.platform.migrations import default_directory, migrate
from tests.support.data import scratch_database

SCRATCH = "orgbase_test_migration_0021"
MIGRATION = "0021_identity_proofs.sql"


@pytest.fixture
async def database(stack: LocalStack) -> AsyncIterator[str]:
    async with scratch_database(stack, SCRATCH) as url:
        yield url


async def test_unfinished_enrolments_collapse_to_the_newest(database: str, tmp_path: Path) -> None:
    before = tmp_path / "rls"
    shutil.copytree(default_directory(), before)
    for later in sorted(before.glob("*.sql")):
        if later.name >= MIGRATION:
            later.unlink()
    await migrate(database, before)
    connection = await asyncpg.connect(database)
    try:
        user = await connection.fetchval(
            "INSERT INTO orgbase.users (email) VALUES ('old@example.test') RETURNING id"
        )
        for n, status in enumerate(("verified", "unverified", "unverified", "unverified")):
            await connection.execute(
                "INSERT INTO orgbase.mfa_factors (user_id, friendly_name, secret, status,"
                " created_at) VALUES ($1, $2, 'SECRET', $3, now() + make_interval(secs => $4))",
                user,
                f"factor {n}",
                status,
                float(n),
            )
        assert MIGRATION in await migrate(database)
        left = await connection.fetch(
            "SELECT friendly_name, status FROM orgbase.mfa_factors WHERE user_id = $1"
            " ORDER BY friendly_name",
            user,
        )
        assert [(r["friendly_name"], r["status"]) for r in left] == [
            ("factor 0", "verified"),
            ("factor 3", "unverified"),
        ]
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute(
                "INSERT INTO orgbase.mfa_factors (user_id, friendly_name, secret)"
                " VALUES ($1, 'another', 'SECRET')",
                user,
            )
    finally:
        await connection.close()
