"""Migrations apply from empty, are idempotent, refuse edited files and serialise runners."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devstack import LocalStack
from orgbase.platform.migrations import MigrationError, default_directory, migrate
from tests.support.data import admin_url, recreate_database

SCRATCH_DATABASE = "orgbase_test_migrations"


@pytest.fixture
async def empty_database(stack: LocalStack) -> AsyncIterator[str]:
    await recreate_database(stack, SCRATCH_DATABASE)
    yield admin_url(stack, SCRATCH_DATABASE)
    connection = await asyncpg.connect(admin_url(stack))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)')
    finally:
        await connection.close()


async def _applied(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT name FROM orgbase.schema_migrations ORDER BY version")
    finally:
        await connection.close()
    return [r["name"] for r in rows]


async def test_apply_from_empty_then_nothing_to_do(empty_database: str) -> None:
    shipped = sorted(p.name for p in default_directory().glob("*.sql"))
    assert await migrate(empty_database) == shipped
    assert await migrate(empty_database) == []
    assert await _applied(empty_database) == shipped


async def test_an_edited_migration_is_refused(empty_database: str, tmp_path: Path) -> None:
    directory = tmp_path / "rls"
    shutil.copytree(default_directory(), directory)
    await migrate(empty_database, directory)
    edited = sorted(directory.glob("*.sql"))[1]
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    (directory / "9999_new.sql").write_text("CREATE TABLE api.should_not_exist (id int);")
    with pytest.raises(MigrationError, match=f"{edited.name} was changed after it was applied"):
        await migrate(empty_database, directory)
    connection = await asyncpg.connect(empty_database)
    try:
        exists = await connection.fetchval("SELECT to_regclass('api.should_not_exist')")
    finally:
        await connection.close()
    assert exists is None, "nothing after the refused file may be applied"


async def test_a_failing_migration_leaves_nothing_half_applied(
    empty_database: str, tmp_path: Path
) -> None:
    directory = tmp_path / "rls"
    shutil.copytree(default_directory(), directory)
    (directory / "9999_broken.sql").write_text(
        "CREATE TABLE api.half (id int); SELECT no_such_function();"
    )
    with pytest.raises(MigrationError, match="no_such_function"):
        await migrate(empty_database, directory)
    connection = await asyncpg.connect(empty_database)
    try:
        assert await connection.fetchval("SELECT to_regclass('api.half')") is None
        recorded = await connection.fetchval(
            "SELECT count(*) FROM orgbase.schema_migrations WHERE version = '9999'"
        )
    finally:
        await connection.close()
    assert recorded == 0


async def test_two_runners_at_once_apply_each_file_once(empty_database: str) -> None:
    first, second = await asyncio.gather(migrate(empty_database), migrate(empty_database))
    shipped = sorted(p.name for p in default_directory().glob("*.sql"))
    assert sorted(first + second) == shipped
    assert await _applied(empty_database) == shipped
