"""Reads on a real PostgreSQL streaming replica (started once per session with
`pg_basebackup -R`), with read-your-writes.

With the replica's replay paused, the writer still reads its own row (the primary answers:
the replica has not replayed the write's commit LSN, kept in Redis for the writer's
session) while another member's read is served by the replica, which does not have the
row yet: the answer itself proves where it was read, and the replica's own
pg_stat_database counters confirm it. A replica SIGKILLed under load costs no read.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from devstack.layout import PG_SUPERUSER
from orgbase.core.replicas import parse_lsn
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.integration.test_mfa import step_up
from tests.support.http import bearer, org_with_roles, session_of, sign_in
from tests.support.processes import serving
from tests.support.stack import TEST_DATABASE, server_env, stack_settings
from tests.support.traffic import FIGURES_DIR, Traffic, report
from tests.support.waiting import eventually

Client = AsyncTestClient[OrgbaseApp]


def _replica_env(stack: LocalStack, max_lag: str) -> dict[str, str]:
    return {
        "ORGBASE_DATABASE_REPLICA_URLS": stack.database_replica_url(
            stack.secrets["pg_api"], TEST_DATABASE
        ),
        "ORGBASE_DATABASE_REPLICA_POLL_SECONDS": "0.1",
        "ORGBASE_DATABASE_REPLICA_MAX_LAG_SECONDS": max_lag,
    }


@pytest.fixture(scope="session")
async def replica_stack(stack: LocalStack, base_settings: Settings) -> LocalStack:
    """The shared stack with its streaming replica (made and started once)."""
    await asyncio.to_thread(stack.start_pg_replica)
    # Only these tests' gateways read from it (they pass its URL themselves).
    stack.use_pg_replica = False
    return stack


@pytest.fixture(scope="session")
async def replica_client(replica_stack: LocalStack) -> AsyncIterator[Client]:
    # A generous lag bound: the tests pause replay and still want the replica used.
    settings = stack_settings(replica_stack, TEST_DATABASE, **_replica_env(replica_stack, "120"))
    async with AsyncTestClient(app=create_app(settings)) as client:
        # GoTrue's routes (a second factor's enrolment) want the publishable key.
        client.headers.update({"apikey": replica_stack.secrets["publishable"]})
        yield client


async def _replica_connection(stack: LocalStack) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1",
        port=stack.pg_replica.port,
        user=PG_SUPERUSER,
        password=stack.secrets["pg_superuser"],
        database=TEST_DATABASE,
    )


async def _replica_transactions(stack: LocalStack) -> int:
    """Committed transactions in the test database, as the replica counts them."""
    connection = await _replica_connection(stack)
    try:
        return int(
            await connection.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", TEST_DATABASE
            )
        )
    finally:
        await connection.close()


async def _replica_ready(client: httpx.AsyncClient) -> dict[str, Any]:
    async def ok() -> dict[str, Any] | None:
        check = (await client.get("/health/ready")).json()["checks"].get("postgres_replicas")
        return check if check and check["status"] == "ok" else None

    return await eventually(ok, within=20, what="the replica in use")


async def _router_caught_up(client: httpx.AsyncClient, stack: LocalStack) -> None:
    """Wait until the gateway has seen the replica replay everything the primary wrote so
    far: the sign-ins may also have recorded a revocation position after their sessions,
    and a replica paused before it would rightly serve no read."""
    primary = await asyncpg.connect(
        host="127.0.0.1",
        port=stack.layout.pg_port,
        user=PG_SUPERUSER,
        password=stack.secrets["pg_superuser"],
        database=TEST_DATABASE,
    )
    try:
        target = parse_lsn(await primary.fetchval("SELECT pg_current_wal_insert_lsn()::text"))
    finally:
        await primary.close()

    async def seen() -> bool:
        check = (await client.get("/health/ready")).json()["checks"].get("postgres_replicas")
        views = check.get("replicas", []) if check else []
        return bool(views) and all(int(v.get("replayed_lsn") or 0) >= target for v in views)

    await eventually(seen, within=20, interval=0.1, what="the replica past the sign-ins")


async def _replica_has_session(stack: LocalStack, headers: dict[str, str]) -> None:
    """Wait until the replica has replayed the session of ``headers`` (and so everything
    written before it: the org, the membership)."""
    session = session_of(headers["Authorization"].removeprefix("Bearer "))
    connection = await _replica_connection(stack)
    try:

        async def replayed() -> bool:
            found = await connection.fetchval(
                "SELECT true FROM orgbase.sessions WHERE id = $1", session
            )
            return bool(found)

        await eventually(replayed, within=20, what="the session on the replica")
    finally:
        await connection.close()


@pytest.fixture
async def paused_replay(replica_stack: LocalStack) -> AsyncIterator[asyncpg.Connection]:
    connection = await _replica_connection(replica_stack)
    try:
        yield connection
    finally:
        await connection.execute("SELECT pg_wal_replay_resume()")
        await connection.close()


async def test_the_writer_reads_its_row_while_the_replica_is_behind(
    replica_stack: LocalStack, replica_client: Client, paused_replay: asyncpg.Connection
) -> None:
    client = replica_client
    org_id, people = await org_with_roles(client, ("member",))
    writer = bearer((await sign_in(client, people["owner"][0]["email"], org_id))["access_token"])
    other = bearer((await sign_in(client, people["member"][0]["email"], org_id))["access_token"])
    await _replica_ready(client)

    await _replica_has_session(replica_stack, other)
    await _router_caught_up(client, replica_stack)
    await paused_replay.execute("SELECT pg_wal_replay_pause()")
    created = await client.post(
        "/v1/db/items",
        headers={**writer, "Prefer": "return=representation"},
        json={"title": "read your writes"},
    )
    assert created.status_code == 201, created.text
    row_id = created.json()[0]["id"]
    path = f"/v1/db/items?id=eq.{row_id}"

    before = await _replica_transactions(replica_stack)
    mine = await client.get(path, headers=writer)
    assert mine.status_code == 200
    assert [r["id"] for r in mine.json()] == [row_id], "the writer missed its own write"

    # Another member's reads go to the replica, which has not replayed the insert.
    for _ in range(5):
        theirs = await client.get(path, headers=other)
        assert theirs.status_code == 200
        assert theirs.json() == [], "the other member's read did not come from the replica"

    # The replica's own statistics counted those reads (flushed within about a second).
    async def counted() -> int | None:
        now = await _replica_transactions(replica_stack)
        return now if now >= before + 5 else None

    await eventually(counted, within=15, interval=0.3, what="the replica's counters")
    # The audit log follows the same rule: the writer sees its insert's record.
    audit = await client.get(
        f"/v1/orgs/{org_id}/audit", headers=writer, params={"table": "api.items"}
    )
    assert audit.status_code == 200
    assert any(e["row_key"] == {"id": row_id} for e in audit.json()["items"]), audit.json()

    await paused_replay.execute("SELECT pg_wal_replay_resume()")

    async def replayed() -> bool:
        rows: list[Any] = (await client.get(path, headers=other)).json()
        return rows != []

    await eventually(replayed, within=20, what="the replica catching up")


async def test_a_revocation_acts_at_once_while_the_replica_is_behind(
    replica_stack: LocalStack, replica_client: Client, paused_replay: asyncpg.Connection
) -> None:
    """A removed member's next read is refused although the replica still has the
    membership: no replica serves reads until it has replayed the newest revocation."""
    client = replica_client
    org_id, people = await org_with_roles(client, ("member",))
    owner = bearer(people["owner"][1]["access_token"])
    member_user = people["member"][0]
    member = bearer((await sign_in(client, member_user["email"], org_id))["access_token"])
    await _replica_ready(client)
    await _replica_has_session(replica_stack, member)
    assert (await client.get("/v1/db/items", headers=member)).status_code == 200
    await paused_replay.execute("SELECT pg_wal_replay_pause()")
    removed = await client.delete(f"/v1/orgs/{org_id}/members/{member_user['id']}", headers=owner)
    assert removed.status_code == 204, removed.text
    after = await client.get("/v1/db/items", headers=member)
    assert after.status_code in (401, 403, 404), after.text


async def test_a_policy_change_acts_at_once_while_the_replica_is_behind(
    replica_stack: LocalStack, replica_client: Client, paused_replay: asyncpg.Connection
) -> None:
    """A password-only member's read right after the org turned mfa_required on is
    refused although the replica still has the old policy: a tightened policy moves the
    revocation position like a removal does."""
    client = replica_client
    org_id, people = await org_with_roles(client, ("member",))
    owner = await step_up(client, await sign_in(client, people["owner"][0]["email"], org_id))
    member = bearer((await sign_in(client, people["member"][0]["email"], org_id))["access_token"])
    await _replica_ready(client)
    await _replica_has_session(replica_stack, member)
    await _router_caught_up(client, replica_stack)
    assert (await client.get("/v1/db/items", headers=member)).status_code == 200
    await paused_replay.execute("SELECT pg_wal_replay_pause()")
    required = await client.put(
        f"/v1/orgs/{org_id}/auth-policy",
        headers=bearer(owner["access_token"]),
        json={"mfa_required": True},
    )
    assert required.status_code == 200, required.text
    after = await client.get("/v1/db/items", headers=member)
    assert after.status_code == 403, after.text
    assert after.json()["code"] == "mfa_required"


async def test_a_replica_too_far_behind_is_skipped(
    replica_stack: LocalStack, paused_replay: asyncpg.Connection
) -> None:
    settings = stack_settings(replica_stack, TEST_DATABASE, **_replica_env(replica_stack, "1"))
    async with AsyncTestClient(app=create_app(settings)) as client:
        org_id, people = await org_with_roles(client, ("member",))
        writer = bearer(
            (await sign_in(client, people["owner"][0]["email"], org_id))["access_token"]
        )
        other = bearer(
            (await sign_in(client, people["member"][0]["email"], org_id))["access_token"]
        )
        await _replica_ready(client)
        await _replica_has_session(replica_stack, other)
        await paused_replay.execute("SELECT pg_wal_replay_pause()")
        created = await client.post(
            "/v1/db/items",
            headers={**writer, "Prefer": "return=representation"},
            json={"title": "lagging"},
        )
        row_id = created.json()[0]["id"]

        async def skipped() -> dict[str, Any] | None:
            check = (await client.get("/health/ready")).json()["checks"]["postgres_replicas"]
            return check if check["replicas"][0]["status"] == "lagging" else None

        # The primary keeps writing (the poller's own reads are enough): lag grows.
        health = await eventually(skipped, within=20, what="the replica reported lagging")
        assert health["status"] == "degraded"
        theirs = await client.get(f"/v1/db/items?id=eq.{row_id}", headers=other)
        assert [r["id"] for r in theirs.json()] == [row_id], "a lagging replica was read"


@pytest.fixture
def restart_replica(replica_stack: LocalStack) -> Iterator[None]:
    yield
    replica_stack.pg_replica.start()


async def test_a_replica_killed_under_load_costs_no_read(
    replica_stack: LocalStack, restart_replica: None
) -> None:
    env = server_env(replica_stack, TEST_DATABASE, **_replica_env(replica_stack, "5"))
    with serving(env, log_file=FIGURES_DIR / "replica_killed.log") as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            org_id, people = await org_with_roles(http, ())
            tokens = await sign_in(http, people["owner"][0]["email"], org_id)
            headers = bearer(tokens["access_token"])
            await _replica_ready(http)
            await _replica_has_session(replica_stack, headers)
            traffic = Traffic(http)
            traffic.start(
                "read",
                functools.partial(_get, path="/v1/db/items?limit=5", headers=headers),
                loops=4,
            )
            await traffic.flowing()

            async def replica_serving() -> int | None:
                check = (await http.get("/health/ready")).json()["checks"]["postgres_replicas"]
                reads = int(check["replicas"][0]["reads"])
                return reads if reads >= 20 else None

            reads_before = await eventually(replica_serving, what="reads served by the replica")
            await asyncio.to_thread(replica_stack.pg_replica.kill)
            killed_at = time.monotonic()

            async def reported_down() -> dict[str, Any] | None:
                check = (await http.get("/health/ready")).json()["checks"]["postgres_replicas"]
                return check if check["replicas"][0]["status"] == "down" else None

            health = await eventually(reported_down, within=10, what="the replica reported down")
            await traffic.flowing(since=killed_at)
            await traffic.stop()
    reads = traffic.of("read")
    failed = traffic.failed("read")
    report(
        "replica_killed",
        {
            "reads": len(reads),
            "replica_reads_before_the_kill": reads_before,
            "failed_reads": len(failed),
            "outcomes": dict(traffic.outcomes("read")),
            "slowest_read_s": traffic.slowest(),
            "health": health,
        },
    )
    assert not failed, [(a.status, a.code) for a in failed[:20]]


async def _get(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
    return await http.get(path, headers=headers)
