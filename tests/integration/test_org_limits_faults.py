"""Per-org limits with real processes: Redis stopped (limits fail open and are counted,
usage stays in process and is flushed once Redis is back), and one org flooding a real
gateway's tenant pool without starving another org."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.data import make_platform_admin, owner_connection
from tests.support.http import bearer, member_tokens, new_user, org_member
from tests.support.processes import serving
from tests.support.stack import server_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
async def fault_client(fault_settings: Settings) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    async with AsyncTestClient(app=create_app(fault_settings)) as client:
        yield client


def failed_open(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("orgbase_org_limits_failed_open_total "):
            return float(line.split()[1])
    return 0.0


async def test_redis_down_limits_fail_open_and_usage_waits_in_process(
    fault_stack: LocalStack,
    fault_settings: Settings,
    fault_client: AsyncTestClient[OrgbaseApp],
) -> None:
    client = fault_client
    admin_user, admin_tokens = await new_user(client)
    await make_platform_admin(fault_settings, admin_user["id"])
    admin = bearer(admin_tokens["access_token"])
    org_id, tokens = await member_tokens(client, ())
    owner = bearer(tokens["owner"])
    limits = await client.put(
        f"/v1/platform/orgs/{org_id}/limits", headers=admin, json={"data_requests_per_minute": 6}
    )
    assert limits.status_code == 200
    before = failed_open((await client.get("/metrics")).text)

    await asyncio.to_thread(fault_stack.redis.stop_nodes)
    try:
        # Five reads in a row, over a bucket of one (6 a minute): with Redis down the
        # limit fails open and the data API goes on.
        for _ in range(5):
            response = await client.get("/v1/db/items", headers=owner)
            assert response.status_code == 200, response.text
        unlimited = await client.get(f"/v1/orgs/{org_id}/usage", headers=owner)
        assert unlimited.status_code == 200
        assert failed_open((await client.get("/metrics")).text) >= before + 5
    finally:
        await asyncio.to_thread(fault_stack.redis.start)

    async def counted() -> bool:
        response = await client.get(f"/v1/orgs/{org_id}/usage?granularity=day", headers=owner)
        assert response.status_code == 200
        usage = response.json()["usage"]
        return bool(usage) and usage[0]["requests_data"] == 5

    await eventually(counted, within=30, what="the usage counted during the outage, flushed")


async def test_one_orgs_flood_does_not_starve_another(
    stack: LocalStack, settings: Settings
) -> None:
    """Org A keeps 48 expensive reads in flight against a tenant pool of 4; org B reads
    one at a time. With one queue for everybody each of B's reads would wait behind
    A's backlog (dozens of A's reads finishing meanwhile); with the fair gate it waits for
    the next free connection. Counted, not timed: A's reads finished during each of B's."""
    env = server_env(stack, ORGBASE_DATABASE_API_POOL_MAX="4", ORGBASE_DATABASE_API_POOL_MIN="4")
    with serving(env) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            _, org_a, a_headers = await org_member(http)
            _, _, b_headers = await org_member(http)
            async with owner_connection(settings) as connection, connection.transaction():
                # Bulk rows without audit records and row events (a superuser here).
                await connection.execute("SET LOCAL session_replication_role = replica")
                await connection.execute(
                    "INSERT INTO api.items (org_id, title)"
                    " SELECT $1, 'row ' || n FROM generate_series(1, 200000) AS n",
                    uuid.UUID(org_a),
                )
            slow = {**a_headers, "prefer": "count=exact"}
            finished_a: list[float] = []
            a_statuses: list[int] = []
            stop = asyncio.Event()

            async def flood() -> None:
                while not stop.is_set():
                    response = await http.get("/v1/db/items?title=like.*zz*&limit=1", headers=slow)
                    a_statuses.append(response.status_code)
                    finished_a.append(time.monotonic())

            flooders = [asyncio.ensure_future(flood()) for _ in range(48)]
            try:
                await eventually(lambda: len(finished_a) >= 48, within=60, what="A's flood")
                overlaps = []
                for _ in range(10):
                    started = time.monotonic()
                    response = await http.get("/v1/db/items?limit=1", headers=b_headers)
                    ended = time.monotonic()
                    assert response.status_code == 200, response.text
                    overlaps.append(sum(1 for t in finished_a if started < t < ended))
            finally:
                stop.set()
                await asyncio.gather(*flooders, return_exceptions=True)
            assert a_statuses.count(200) >= 48
            # A FIFO queue would make B wait behind ~44 of A's reads each time.
            assert max(overlaps) < 20, overlaps
