"""Readiness tells the truth when a backing service is stopped for real, and recovers.

These tests stop and start services, so they run against a private stack (its own ports
and state folder) and leave the shared one alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
async def fault_client(fault_settings: Settings) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    async with AsyncTestClient(app=create_app(fault_settings)) as client:
        yield client


async def ready(client: AsyncTestClient[OrgbaseApp]) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    response = await client.get("/health/ready")
    return response.status_code, response.json(), time.perf_counter() - started


async def wait_for_status(
    client: AsyncTestClient[OrgbaseApp], wanted: str, within: float = 30.0
) -> dict[str, Any]:
    async def in_state() -> dict[str, Any] | None:
        _, body, _ = await ready(client)
        return body if body["status"] == wanted else None

    body: dict[str, Any] = await eventually(
        in_state, within=within, interval=0.25, what=f"readiness {wanted}"
    )
    return body


def _stop_and_start(
    stack: LocalStack, service: str
) -> tuple[Callable[[], object], Callable[[], object]]:
    if service == "redis":  # the nodes only: Sentinel stays to see them back
        return stack.redis.stop_nodes, stack.redis.start
    if service == "mongo":
        return stack.mongo.stop, stack.mongo.start
    return stack.postgres.stop, stack.postgres.start


@pytest.mark.parametrize(
    ("service", "code", "status", "unaffected"),
    [
        ("redis", 200, "degraded", ("postgres", "mongo")),
        ("mongo", 200, "degraded", ("redis",)),
        ("postgres", 503, "down", ()),
    ],
)
async def test_a_service_down_then_back(
    fault_stack: LocalStack,
    fault_client: AsyncTestClient[OrgbaseApp],
    service: str,
    code: int,
    status: str,
    unaffected: tuple[str, ...],
) -> None:
    """Only PostgreSQL down makes the gateway unready; the others degrade it."""
    await wait_for_status(fault_client, "ok")
    stop, start = _stop_and_start(fault_stack, service)
    await asyncio.to_thread(stop)
    try:
        got, body, _ = await ready(fault_client)
        assert (got, body["status"]) == (code, status)
        assert body["checks"][service]["status"] == "down"
        assert "error" in body["checks"][service]
        for other in unaffected:
            assert body["checks"][other]["status"] == "ok", other
    finally:
        await asyncio.to_thread(start)
    body = await wait_for_status(fault_client, "ok")
    assert body["checks"][service]["status"] == "ok", body


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
