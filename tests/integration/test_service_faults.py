"""Faults with real processes: the Redis primary SIGKILLed under load (Sentinel fails
over, the gateway follows without a restart, no session is lost), MongoDB stopped (only
the document routes fail, quickly, then recover; an org deleted meanwhile is purged once it
is back)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient
from pymongo import AsyncMongoClient

from orgbase.core.settings import Settings
from orgbase.platform.app import create_app
from orgbase.platform.localstack import LocalStack
from orgbase.services.mongo.service import DocumentService
from orgbase.tenants import orgs as orgs_module
from tests.support.http import org_member
from tests.support.processes import free_port, start_server
from tests.support.stack import server_env

pytestmark = pytest.mark.slow


async def test_redis_primary_killed_under_load(
    fault_stack: LocalStack, fault_settings: Settings
) -> None:
    port = free_port()
    env = server_env(fault_stack, fault_stack.layout.database)
    server = start_server(env, port)
    killed_port = fault_stack.redis.primary_port()
    assert killed_port is not None
    outcomes: list[tuple[float, str, int]] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            _, _, headers = await org_member(http)
            assert (
                await http.put("/v1/kv/beat", headers=headers, json={"value": 0})
            ).status_code == 200
            stop = asyncio.Event()

            async def load(path: str) -> None:
                while not stop.is_set():
                    try:
                        status = (await http.get(path, headers=headers)).status_code
                    except httpx.TransportError:
                        status = 0
                    outcomes.append((time.monotonic(), path, status))
                    await asyncio.sleep(0.02)
                # (the loop ends when the test says so)

            workers = [
                asyncio.ensure_future(load(p))
                for p in ("/v1/auth/session", "/v1/kv/beat", "/v1/db/items")
            ]
            await asyncio.sleep(1.0)
            killed_at = time.monotonic()
            fault_stack.redis.kill_node(killed_port)
            # Wait until the cache answers again (Sentinel promoted a replica).
            deadline = killed_at + 30
            while True:
                beat = await http.put("/v1/kv/beat", headers=headers, json={"value": 1})
                if beat.status_code == 200:
                    recovered_at = time.monotonic()
                    break
                assert time.monotonic() < deadline, (
                    f"the gateway did not follow the failover: {beat.text}"
                )
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*workers)
            health = (await http.get("/health/ready")).json()
    finally:
        server.terminate()
        server.wait(30)
        # Back to three nodes, and wait until Sentinel sees them all again.
        await asyncio.to_thread(fault_stack.redis.start)
    by_path: dict[str, list[int]] = {}
    for _, path, status in outcomes:
        by_path.setdefault(path, []).append(status)
    failed = {path: sum(1 for s in statuses if s != 200) for path, statuses in by_path.items()}
    print(f"\nfailover: cache back after {recovered_at - killed_at:.1f}s; failed requests {failed}")
    # Sessions and tenant data never depended on Redis: no request of theirs failed.
    assert failed["/v1/auth/session"] == 0
    assert failed["/v1/db/items"] == 0
    # The cache may lose its last writes in a failover (Redis replicates asynchronously):
    # a 404 is a cache miss, not a failure; a 5xx other than 503 would be one.
    odd = [
        (round(t - killed_at, 2), st)
        for t, p, st in outcomes
        if p == "/v1/kv/beat" and st not in (200, 404, 503)
    ]
    assert not odd, odd[:20]
    assert health["checks"]["redis"]["status"] == "ok"
    assert health["checks"]["redis"]["failovers_seen"] >= 1


async def test_mongo_stopped_only_document_routes_fail(
    fault_stack: LocalStack, fault_settings: Settings
) -> None:
    async with AsyncTestClient(app=create_app(fault_settings)) as client:
        _, _, headers = await org_member(client)
        assert (
            await client.post("/v1/docs/items", headers=headers, json={"a": 1})
        ).status_code == 201
        await asyncio.to_thread(fault_stack.mongo.stop)
        try:
            for _ in range(4):
                response = await client.get("/v1/docs/items", headers=headers)
                assert (response.status_code, response.json()["code"]) == (503, "mongo_unavailable")
            # After the first failures the breaker answers without waiting for Mongo.
            ready = (await client.get("/health/ready")).json()
            assert ready["checks"]["mongo"]["breaker"] == "open", ready["checks"]["mongo"]
            assert (await client.get("/v1/db/items", headers=headers)).status_code == 200
            assert (await client.get("/v1/auth/session", headers=headers)).status_code == 200
            assert (
                await client.put("/v1/kv/k", headers=headers, json={"value": 1})
            ).status_code == 200
        finally:
            await asyncio.to_thread(fault_stack.mongo.start)
        deadline = time.monotonic() + 20
        while (await client.get("/v1/docs/items", headers=headers)).status_code != 200:
            assert time.monotonic() < deadline, "document routes did not recover"
            await asyncio.sleep(0.5)


async def test_deleting_an_org_while_mongo_is_down_finishes_when_it_is_back(
    fault_stack: LocalStack, fault_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The org is closed at once (204, its credentials end); its documents and its row go
    once MongoDB is back, without a restart."""
    monkeypatch.setattr(orgs_module, "SWEEP_AFTER_SECONDS", 0.5)
    async with AsyncTestClient(app=create_app(fault_settings)) as client:
        _, org_id, headers = await org_member(client)
        assert (
            await client.post("/v1/docs/notes", headers=headers, json={"a": 1})
        ).status_code == 201
        collection = DocumentService.physical(uuid.UUID(org_id), "notes")
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(fault_settings.mongo.url)
        database = mongo[fault_settings.mongo.database]
        assert collection in await database.list_collection_names()
        await asyncio.to_thread(fault_stack.mongo.stop)
        try:
            deleted = await client.delete(f"/v1/orgs/{org_id}", headers=headers)
            assert deleted.status_code == 204, deleted.text
            refused = await client.get("/v1/db/items", headers=headers)
            assert refused.status_code in (401, 403, 404), refused.text
        finally:
            await asyncio.to_thread(fault_stack.mongo.start)
        connection = await asyncpg.connect(fault_settings.database.migration_url)
        try:
            deadline = time.monotonic() + 30
            while await connection.fetchval(
                "SELECT count(*) FROM orgbase.orgs WHERE id = $1", uuid.UUID(org_id)
            ):
                assert time.monotonic() < deadline, "the purge did not finish"
                await asyncio.sleep(0.5)
        finally:
            await connection.close()
        assert collection not in await database.list_collection_names()
        await mongo.close()
