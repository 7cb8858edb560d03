"""Fair by default: with no limits configured, one org flooding expensive reads on many
connections does not starve another org, and each org's database time is metered.

A real gateway process (one worker, the default tenant pool) on the real stack; the
bounds are generous (the machine may be shared): B's median read with A flooding stays
within 5x of B's median alone. Before the time share, A's reads (~10 ms each, under the
heavy-statement rule) took every connection and core, and B's reads waited behind them.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.data import owner_connection
from tests.support.http import bearer, member_tokens
from tests.support.processes import serving
from tests.support.stack import STATE_DIR, server_env

A_ROWS = 40_000
A_CONNECTIONS = 24
CHEAP = "/v1/db/items?order=id&limit=20"
EXPENSIVE = "/v1/db/items?title=like.*zz*&order=id&limit=20"
B_READS = 60


@pytest.fixture(scope="module")
def gateway(stack: LocalStack) -> Iterator[str]:
    env = server_env(stack, ORGBASE_LOG_LEVEL="warning")
    with serving(env, log_file=STATE_DIR / "fair_share_server.log") as base:
        yield base


async def b_latencies(client: httpx.AsyncClient, headers: dict[str, str]) -> list[float]:
    """B's reads one after another (one connection): seconds each."""
    out = []
    for _ in range(B_READS):
        started = time.perf_counter()
        response = await client.get(CHEAP, headers=headers)
        out.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return out


async def flood(client: httpx.AsyncClient, headers: dict[str, str], stop: asyncio.Event) -> int:
    """A's expensive reads back to back until ``stop``; how many were answered 200."""
    answered = 0
    while not stop.is_set():
        response = await client.get(EXPENSIVE, headers=headers)
        answered += response.status_code == 200
    return answered


async def test_an_unconfigured_flood_does_not_starve_another_org(
    gateway: str, settings: Settings
) -> None:
    limits = httpx.Limits(max_connections=A_CONNECTIONS + 4)
    async with httpx.AsyncClient(base_url=gateway, timeout=60, limits=limits) as client:
        org_a, tokens_a = await member_tokens(client, ())
        org_b, tokens_b = await member_tokens(client, ())
        a, b = bearer(tokens_a["owner"]), bearer(tokens_b["owner"])
        await seed(settings, org_a, org_b)
        try:
            await b_latencies(client, b)  # warm: B's plan and token cached
            alone = statistics.median(await b_latencies(client, b))
            stop = asyncio.Event()
            flooding = [asyncio.ensure_future(flood(client, a, stop)) for _ in range(A_CONNECTIONS)]
            await asyncio.sleep(1.5)  # A's flood under way, its time counted
            beside_a = statistics.median(await b_latencies(client, b))
            stop.set()
            answered_a = sum(await asyncio.gather(*flooding))
        finally:
            await unseed(settings, org_a)
        # A is served too (it is held to its share, not refused).
        assert answered_a > 0
        assert beside_a < 5 * alone, (
            f"B's median read {beside_a * 1000:.1f} ms beside A's flood,"
            f" {alone * 1000:.1f} ms alone"
        )
        usage_a = await day_usage(client, org_a, a)
        usage_b = await day_usage(client, org_b, b)
    # Each org's database time is metered: A's flood took far more than B's reads.
    assert usage_a["db_time_ms"] > 0
    assert usage_a["db_time_ms"] > usage_b["db_time_ms"]


async def day_usage(
    client: httpx.AsyncClient, org_id: str, headers: dict[str, str]
) -> dict[str, int]:
    response = await client.get(f"/v1/orgs/{org_id}/usage?granularity=day", headers=headers)
    assert response.status_code == 200, response.text
    periods = response.json()["usage"]
    assert len(periods) == 1
    return dict(periods[0])


async def seed(settings: Settings, org_a: str, org_b: str) -> None:
    """A's many rows (no triggers: no audit records or webhook fan-out), B's few."""
    async with owner_connection(settings) as connection:
        await connection.execute("SET session_replication_role = replica")
        for org, rows in ((org_a, A_ROWS), (org_b, 100)):
            await connection.execute(
                "INSERT INTO api.items (org_id, title, status)"
                " SELECT $1, 'item ' || n, 'open' FROM generate_series(1, $2) AS n",
                uuid.UUID(org),
                rows,
            )
        await connection.execute("ANALYZE api.items")


async def unseed(settings: Settings, org_a: str) -> None:
    async with owner_connection(settings) as connection:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("DELETE FROM api.items WHERE org_id = $1", uuid.UUID(org_a))


async def test_document_calls_go_through_the_gate_and_their_time_is_metered(
    client: httpx.AsyncClient,
) -> None:
    org_id, tokens = await member_tokens(client, ())
    owner = bearer(tokens["owner"])
    for n in range(10):
        inserted = await client.post("/v1/docs/notes", headers=owner, json={"n": n})
        assert inserted.status_code == 201, inserted.text
        assert (await client.get("/v1/docs/notes", headers=owner)).status_code == 200
    usage = await day_usage(client, org_id, owner)
    assert usage["requests_docs"] == 20
    assert usage["docs_time_ms"] > 0
