"""Readiness tells the truth when a backing service is stopped for real, and recovers.

These tests stop and start services, so they run against a private stack (its own ports
and state folder) and leave the shared one alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import create_app
from orgbase.platform.localstack import LocalStack
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
async def fault_client(fault_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(fault_settings)) as client:
        yield client


async def ready(client: AsyncTestClient[Litestar]) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    response = await client.get("/health/ready")
    return response.status_code, response.json(), time.perf_counter() - started


async def wait_for_status(
    client: AsyncTestClient[Litestar], wanted: str, within: float = 30.0
) -> dict[str, Any]:
    async def in_state() -> dict[str, Any] | None:
        _, body, _ = await ready(client)
        return body if body["status"] == wanted else None

    body: dict[str, Any] = await eventually(
        in_state, within=within, interval=0.25, what=f"readiness {wanted}"
    )
    return body


async def test_redis_down_is_degraded_then_recovers(
    fault_stack: LocalStack, fault_client: AsyncTestClient[Litestar]
) -> None:
    assert (await wait_for_status(fault_client, "ok"))["status"] == "ok"
    await asyncio.to_thread(fault_stack.redis.stop_nodes)
    try:
        code, body, _ = await ready(fault_client)
        assert code == 200
        assert body["status"] == "degraded"
        assert body["checks"]["redis"]["status"] == "down"
        assert "error" in body["checks"]["redis"]
        assert body["checks"]["postgres"]["status"] == "ok"
        assert body["checks"]["mongo"]["status"] == "ok"
    finally:
        await asyncio.to_thread(fault_stack.redis.start)
    body = await wait_for_status(fault_client, "ok")
    assert body["checks"]["redis"]["status"] == "ok", body


async def test_mongo_down_is_degraded_then_recovers(
    fault_stack: LocalStack, fault_client: AsyncTestClient[Litestar]
) -> None:
    await asyncio.to_thread(fault_stack.mongo.stop)
    try:
        code, body, _ = await ready(fault_client)
        assert (code, body["status"]) == (200, "degraded")
        assert body["checks"]["mongo"]["status"] == "down"
        assert body["checks"]["redis"]["status"] == "ok"
    finally:
        await asyncio.to_thread(fault_stack.mongo.start)
    body = await wait_for_status(fault_client, "ok")
    assert body["checks"]["mongo"]["status"] == "ok", body


async def test_postgres_down_is_down_then_recovers(
    fault_stack: LocalStack, fault_client: AsyncTestClient[Litestar]
) -> None:
    await wait_for_status(fault_client, "ok")
    await asyncio.to_thread(fault_stack.postgres.stop)
    try:
        code, body, _ = await ready(fault_client)
        assert (code, body["status"]) == (503, "down")
        assert body["checks"]["postgres"]["status"] == "down"
    finally:
        await asyncio.to_thread(fault_stack.postgres.start)
    body = await wait_for_status(fault_client, "ok")
    assert body["checks"]["postgres"]["status"] == "ok", body


async def test_the_gateway_starts_without_its_services(
    fault_stack: LocalStack, fault_settings: Settings
) -> None:
    await asyncio.to_thread(fault_stack.postgres.stop)
    await asyncio.to_thread(fault_stack.mongo.stop)
    try:
        async with AsyncTestClient(app=create_app(fault_settings)) as client:
            code, body, _ = await ready(client)
            assert (code, body["status"]) == (503, "down")
            assert body["checks"]["postgres"]["status"] == "down"
            assert body["checks"]["mongo"]["status"] == "down"
            assert (await client.get("/health/live")).status_code == 200
            await asyncio.to_thread(fault_stack.postgres.start)
            await asyncio.to_thread(fault_stack.mongo.start)
            body = await wait_for_status(client, "ok")
            assert body["status"] == "ok", body
    finally:
        await asyncio.to_thread(fault_stack.postgres.start)
        await asyncio.to_thread(fault_stack.mongo.start)
