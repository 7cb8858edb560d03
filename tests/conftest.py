"""Shared fixtures: the real local stack (started by `make test`, reused here), a fresh
test database migrated from empty, and a gateway app with an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from orgbase.core.settings import Settings, settings_from_env
from orgbase.platform.app import create_app
from orgbase.platform.demo import ensure_items_table
from orgbase.platform.localstack import LocalStack, StackLayout
from orgbase.platform.localstack.layout import PG_SUPERUSER
from orgbase.platform.migrations import migrate, sync_role_passwords

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / ".orgbase"
TEST_DATABASE = "orgbase_test"
TEST_REDIS_DB = "1"


@pytest.fixture(scope="session")
def stack() -> LocalStack:
    """The shared local stack; running services are reused, missing ones started."""
    local = LocalStack(StackLayout(STATE_DIR))
    local.up()
    return local


def stack_settings(local: LocalStack, database: str, **overrides: str) -> Settings:
    env = local.env(database=database)
    env["ORGBASE_ENV"] = "test"
    env["ORGBASE_REDIS_DB"] = TEST_REDIS_DB
    env.update(overrides)
    return settings_from_env(env)


def admin_url(local: LocalStack, database: str = "postgres") -> str:
    return local.database_url(PG_SUPERUSER, local.secrets["pg_superuser"], database)


async def recreate_database(local: LocalStack, name: str) -> None:
    connection = await asyncpg.connect(admin_url(local))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def settings(stack: LocalStack) -> Settings:
    """Settings for a fresh, fully migrated test database (and clean Redis db / Mongo db)."""
    configured = stack_settings(stack, TEST_DATABASE)
    await recreate_database(stack, TEST_DATABASE)
    await migrate(configured.database.migration_url)
    await sync_role_passwords(configured.database)
    connection = await asyncpg.connect(configured.database.migration_url)
    try:
        await ensure_items_table(connection)
    finally:
        await connection.close()
    redis = Redis(
        host="127.0.0.1",
        port=stack.redis.primary_port() or stack.layout.redis_ports[0],
        password=stack.secrets["redis"],
        db=int(TEST_REDIS_DB),
    )
    await redis.flushdb()
    await redis.aclose()
    from pymongo import AsyncMongoClient

    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(configured.mongo.url)
    await mongo.drop_database(configured.mongo.database)
    await mongo.close()
    return configured


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def admin_connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """The migration owner (a superuser locally): sets up fixtures, bypasses RLS."""
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        yield connection
    finally:
        await connection.close()
