"""Shared fixtures: the real local stack (started by `make test`, reused here), a fresh
test database migrated from empty, and a gateway app with an HTTP client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
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


# Cheap hashing and generous limits keep the suite fast; tests of the limits set their own.
TEST_OVERRIDES = {
    "ORGBASE_ENV": "test",
    "ORGBASE_REDIS_DB": TEST_REDIS_DB,
    "ORGBASE_AUTH_ARGON2_TIME_COST": "1",
    "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
    "ORGBASE_AUTH_SIGNIN_PER_IP_PER_MINUTE": "100000",
    "ORGBASE_AUTH_SIGNUP_PER_IP_PER_HOUR": "100000",
    "ORGBASE_AUTH_REFRESH_PER_IP_PER_MINUTE": "100000",
    "ORGBASE_AUTH_LOCKOUT_FAILURES": "1000",
}


def stack_settings(local: LocalStack, database: str, **overrides: str) -> Settings:
    env = {**local.env(database=database), **TEST_OVERRIDES, **overrides}
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


async def flush_redis_db(local: LocalStack, db: int) -> None:
    redis = Redis(
        host="127.0.0.1",
        port=local.redis.primary_port() or local.layout.redis_ports[0],
        password=local.secrets["redis"],
        db=db,
    )
    await redis.flushdb()
    await redis.aclose()


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
    await flush_redis_db(stack, int(TEST_REDIS_DB))
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


def with_overrides(settings: Settings, **sections: dict[str, object]) -> Settings:
    """A copy of ``settings`` with some fields of some sections replaced."""
    changes = {
        name: msgspec.structs.replace(getattr(settings, name), **fields)
        for name, fields in sections.items()
    }
    return msgspec.structs.replace(settings, **changes)


PASSWORD = "correct horse battery staple"


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.test"


async def sign_up(client: AsyncTestClient[Litestar], email: str | None = None) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/signup", json={"email": email or unique_email(), "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


async def sign_in(
    client: AsyncTestClient[Litestar], email: str, org_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"grant_type": "password", "email": email, "password": PASSWORD}
    if org_id is not None:
        body["org_id"] = org_id
    response = await client.post("/v1/auth/token", json=body)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_user(client: AsyncTestClient[Litestar]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sign up and sign in a fresh user: (user, tokens)."""
    user = await sign_up(client)
    return user, await sign_in(client, user["email"])


async def make_org(settings: Settings, members: dict[str, str], name: str = "org") -> str:
    """An org with the given {user_id: role} members, made directly in PostgreSQL."""
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        org_id = await connection.fetchval(
            "INSERT INTO orgbase.orgs (name) VALUES ($1) RETURNING id", name
        )
        await connection.executemany(
            "INSERT INTO orgbase.memberships (org_id, user_id, role) VALUES ($1, $2, $3)",
            [(org_id, uuid.UUID(user_id), role) for user_id, role in members.items()],
        )
    finally:
        await connection.close()
    return str(org_id)


@pytest.fixture
async def admin_connection(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """The migration owner (a superuser locally): sets up fixtures, bypasses RLS."""
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        yield connection
    finally:
        await connection.close()


FAULT_PORT_BASE = 56430


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[LocalStack]:
    """A private stack (own ports and folder) for tests that stop services for real."""
    local = LocalStack(StackLayout(STATE_DIR / "stacks" / "faults", FAULT_PORT_BASE))
    local.up()
    yield local
    local.down()


@pytest.fixture(scope="session")
async def fault_settings(fault_stack: LocalStack) -> Settings:
    configured = stack_settings(fault_stack, fault_stack.layout.database)
    await migrate(configured.database.migration_url)
    await sync_role_passwords(configured.database)
    return configured


async def create_org(
    client: AsyncTestClient[Litestar], tokens: dict[str, Any], name: str = "org"
) -> str:
    response = await client.post(
        "/v1/orgs", headers=bearer(tokens["access_token"]), json={"name": name}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def add_member(
    client: AsyncTestClient[Litestar],
    admin_tokens: dict[str, Any],
    org_id: str,
    user: dict[str, Any],
    role: str,
) -> None:
    response = await client.post(
        f"/v1/orgs/{org_id}/members",
        headers=bearer(admin_tokens["access_token"]),
        json={"email": user["email"], "role": role},
    )
    assert response.status_code == 201, response.text


async def org_with_roles(
    client: AsyncTestClient[Litestar], roles: tuple[str, ...] = ("admin", "member", "viewer")
) -> tuple[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]]:
    """An org made through the API, with an owner and one user per extra role.
    Returns (org_id, {role: (user, tokens)})."""
    owner = await new_user(client)
    org_id = await create_org(client, owner[1])
    people = {"owner": owner}
    for role in roles:
        person = await new_user(client)
        await add_member(client, owner[1], org_id, person[0], role)
        people[role] = person
    return org_id, people
