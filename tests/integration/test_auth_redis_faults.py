"""Sessions survive Redis outages (PostgreSQL answers), revocations stay effective across
them, and two gateways share every session fact."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from devstack import LocalStack
from orgbase.auth.sessions import CachedSession
from orgbase.core import keys
from orgbase.core.cache import TOMBSTONE
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.http import assert_revoked, bearer, new_user, sign_in, user_status
from tests.support.stack import TEST_REDIS_DB
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_two_gateways_share_sessions_and_revocations(settings: Settings) -> None:
    async with (
        AsyncTestClient(app=create_app(settings)) as first,
        AsyncTestClient(app=create_app(settings)) as second,
    ):
        user, tokens = await new_user(first)
        headers = bearer(tokens["access_token"])
        assert await user_status(second, headers) == 200
        assert (await first.post("/v1/auth/logout", headers=headers)).status_code == 204
        await assert_revoked(second, headers)
        # A session made on the second gateway is revoked everywhere by the first.
        other = await sign_in(second, user["email"])
        other_headers = bearer(other["access_token"])
        assert await user_status(first, other_headers) == 200
        assert (
            await first.post("/v1/auth/logout", headers=other_headers, json={"scope": "global"})
        ).status_code == 204
        assert await user_status(second, other_headers) == 401


@pytest.fixture
async def fault_client(fault_settings: Settings) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    async with AsyncTestClient(app=create_app(fault_settings)) as client:
        yield client


def primary(stack: LocalStack) -> Redis:
    port = stack.redis.primary_port()
    assert port is not None
    return Redis(
        host="127.0.0.1", port=port, password=stack.secrets["redis"], db=int(TEST_REDIS_DB)
    )


def session_id(tokens: dict[str, Any]) -> str:
    return str(jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"])


async def _holds(node: Redis, key: str) -> bool:
    cached = await node.get(key)
    return cached is not None and cached != TOMBSTONE


async def test_auth_works_without_redis_and_uses_it_again(
    fault_stack: LocalStack, fault_client: AsyncTestClient[OrgbaseApp]
) -> None:
    client = fault_client
    user, before = await new_user(client)
    await asyncio.to_thread(fault_stack.redis.stop_nodes)
    try:
        assert await user_status(client, bearer(before["access_token"])) == 200
        during = await sign_in(client, user["email"])
        headers = bearer(during["access_token"])
        assert await user_status(client, headers) == 200
        assert (await client.post("/v1/auth/logout", headers=headers)).status_code == 204
        assert await user_status(client, headers) == 401
    finally:
        await asyncio.to_thread(fault_stack.redis.start)
    redis = primary(fault_stack)
    key = keys.session_key(session_id(before))
    try:
        await redis.delete(key)

        async def cached_again() -> bool:
            response = await client.get("/v1/auth/user", headers=bearer(before["access_token"]))
            assert response.status_code == 200
            return bool(await redis.exists(key))

        await eventually(cached_again, within=20, what="the session cached again")
        # The session revoked during the outage stays revoked now that the cache is back.
        assert await user_status(client, headers) == 401
    finally:
        await redis.aclose()


async def test_a_revocation_redis_missed_is_resynced(
    fault_stack: LocalStack, fault_client: AsyncTestClient[OrgbaseApp]
) -> None:
    """The cache still says "alive" after Redis comes back (the tombstone write was lost
    while it was down); the gateway must not believe it."""
    client = fault_client
    _, tokens = await new_user(client)
    headers = bearer(tokens["access_token"])
    assert await user_status(client, headers) == 200
    key = keys.session_key(session_id(tokens))
    # Every node snapshots the "alive" entry, so whichever comes back as the primary after
    # the restart holds it: the stale entry the gateway must not believe. A gateway that
    # has just seen Redis come back (an earlier test restarts it) neither writes nor fills
    # the cache until its resync is done: reading again fills it then.

    async def held_after_a_read(node: Redis) -> bool:
        assert await user_status(client, headers) == 200
        return await _holds(node, key)

    for port in fault_stack.layout.redis_ports:
        node = Redis(
            host="127.0.0.1",
            port=port,
            password=fault_stack.secrets["redis"],
            db=int(TEST_REDIS_DB),
        )
        try:
            await eventually(
                functools.partial(held_after_a_read, node), within=20, what="the entry"
            )
            await node.save()
        finally:
            await node.aclose()
    await asyncio.to_thread(fault_stack.redis.stop_nodes)
    try:
        assert (await client.post("/v1/auth/logout", headers=headers)).status_code == 204
        assert await user_status(client, headers) == 401
    finally:
        await asyncio.to_thread(fault_stack.redis.start)
    redis = primary(fault_stack)
    try:
        stale = await redis.get(key)
        assert stale is not None, "the restarted primary should hold the stale entry"
        assert stale != TOMBSTONE
        import msgspec

        assert isinstance(stale, bytes)
        assert msgspec.msgpack.decode(stale, type=CachedSession).expires_at > time.time()

        async def refused_until_tombstoned() -> bool:
            response = await client.get("/v1/auth/user", headers=headers)
            assert response.status_code == 401, "a stale cache entry let a revoked session in"
            return bool(await redis.get(key) == TOMBSTONE)

        # The first request after the restart sees the stale entry; the gateway checks
        # PostgreSQL and writes the tombstone itself.
        await eventually(refused_until_tombstoned, within=20, what="the tombstone")
    finally:
        await redis.aclose()
