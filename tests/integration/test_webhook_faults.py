"""Webhooks when things go wrong: a destination that turns internal after registration,
a gateway killed with deliveries in flight, PostgreSQL restarted. Real gateway processes,
real receivers on loopback; duplicates are allowed (receivers deduplicate by webhook-id),
losses are not."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import create_app
from tests.integration.test_webhooks import (
    FAST,
    deliveries,
    insert_item,
    owner_of_new_org,
    register,
)
from tests.support.http import admin_at_aal2, bearer, org_member
from tests.support.processes import free_port, start_server, stop_server
from tests.support.receivers import Answer, Receiver
from tests.support.stack import server_env, with_overrides
from tests.support.traffic import outage, report
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

DELIVERING = {
    "ORGBASE_WEBHOOKS_ENABLED": "true",
    "ORGBASE_WEBHOOKS_ALLOWED_HOSTS": "127.0.0.1",
    "ORGBASE_WEBHOOKS_POLL_SECONDS": "0.05",
    "ORGBASE_WEBHOOKS_RETRY_SCHEDULE": "0.3, 0.6, 1, 2",
    "ORGBASE_WEBHOOKS_TIMEOUT_SECONDS": "1",
    "ORGBASE_WEBHOOKS_BATCH": "4",
    "ORGBASE_WEBHOOKS_MAX_IN_FLIGHT": "4",
    "ORGBASE_WEBHOOKS_BREAKER_FAILURES": "1000",
}


async def strong_owner(http: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    """A new org and its owner's headers at aal2 (endpoints are security settings)."""
    _, org_id, headers = await org_member(http, name)
    token = headers["Authorization"].removeprefix("Bearer ")
    return org_id, bearer((await admin_at_aal2(http, {"access_token": token}))["access_token"])


def message_ids(receiver: Receiver) -> set[str]:
    return {request.headers["webhook-id"] for request in receiver.received}


@asynccontextmanager
async def gateway(env: dict[str, str]) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """A gateway process and a client of it; the process is stopped (if still alive)."""
    port = free_port()
    process = start_server(env, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield process, http
    finally:
        if process.poll() is None:
            stop_server(process)


async def test_internal_destinations_are_refused_outside_dev(settings: Settings) -> None:
    """Without an allow-list, loopback, private, link-local and metadata addresses are
    refused when registered, and again at every delivery: a name that resolved to a public
    address when it was registered may resolve to an internal one later (DNS rebinding)."""
    strict = with_overrides(settings, webhooks={**FAST, "allowed_hosts": ()})
    async with AsyncTestClient(app=create_app(strict)) as guarded, Receiver(Answer()) as receiver:
        org_id, headers = await owner_of_new_org(guarded)
        refused = "webhook_destination_refused"
        for url, code in (
            (receiver.url, refused),
            ("http://localhost/", refused),
            ("http://10.1.2.3/", refused),
            ("http://192.168.0.1/", refused),
            ("http://169.254.169.254/latest/meta-data/", refused),
            ("http://[::1]/", refused),
            ("http://2130706433/", "invalid_webhook_url"),  # 127.0.0.1 in another spelling
        ):
            response = await guarded.post(
                f"/v1/orgs/{org_id}/webhooks", headers=headers, json={"url": url, "events": ["*"]}
            )
            assert (response.status_code, response.json()["code"]) == (400, code), url
        # The endpoint as if its name now resolved to the receiver's loopback address.
        connection = await asyncpg.connect(settings.database.migration_url)
        try:
            endpoint_id = await connection.fetchval(
                "INSERT INTO orgbase.webhook_endpoints (org_id, url, events, secret, owner_user_id)"
                " SELECT $1, $2, '{db.items.insert}', 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',"
                " user_id FROM orgbase.memberships WHERE org_id = $1 AND role = 'owner'"
                " RETURNING id",
                org_id,
                receiver.url,
            )
        finally:
            await connection.close()
        await insert_item(guarded, headers, "never sent")

        async def refused_at_delivery() -> bool:
            log = await deliveries(guarded, org_id, headers, str(endpoint_id))
            return bool(log) and "webhook_destination_refused" in (log[0]["last_error"] or "")

        await eventually(refused_at_delivery, within=5, what="the delivery refused")
        assert receiver.received == [], "nothing may reach an internal address"


async def test_a_gateway_killed_mid_delivery_loses_nothing(stack: LocalStack) -> None:
    """SIGKILL while deliveries are in flight (the receiver is slow to answer): another
    gateway sends them once their claim lapses."""
    env = server_env(stack, **DELIVERING)
    async with Receiver(Answer(delay=0.6)) as receiver, gateway(env) as (doomed, http):
        org_id, headers = await strong_owner(http, "killed")
        endpoint = await register(http, org_id, headers, receiver.url, ["db.items.*"])
        for n in range(8):
            await insert_item(http, headers, f"row {n}")

        async def in_flight() -> bool:
            return len(receiver.received) >= 1  # received, its answer 0.6 s away

        await eventually(in_flight, within=10, what="a delivery in flight")
        doomed.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        doomed.wait(10)
        async with gateway(env) as (_, survivor):  # a second gateway finishes the work

            async def all_delivered() -> bool:
                log = await deliveries(survivor, org_id, headers, endpoint["id"])
                return len(log) == 8 and all(d["status"] == "delivered" for d in log)

            await eventually(all_delivered, within=30, what="every event delivered")
            done_at = time.monotonic()
    # Losses are not allowed; the deliveries the receiver had when the gateway died, their
    # answers never recorded, come again (at least once).
    assert len(receiver.received) > len(message_ids(receiver))
    report(
        "webhooks_sigkill",
        {
            "events": 8,
            "delivered_distinct": len(message_ids(receiver)),
            "duplicates": len(receiver.received) - len(message_ids(receiver)),
            "all_delivered_s_after_kill": round(done_at - killed_at, 2),
        },
    )


async def test_a_gateway_stopping_records_what_it_sent(
    stack: LocalStack, settings: Settings
) -> None:
    """SIGTERM lets the round under way finish: a delivery sent just before is recorded
    as delivered, not sent again when its claim lapses."""
    env = server_env(stack, **DELIVERING)
    async with Receiver(Answer(delay=0.5)) as receiver, gateway(env) as (process, http):
        org_id, headers = await strong_owner(http, "stopping")
        endpoint = await register(http, org_id, headers, receiver.url, ["db.items.*"])
        await insert_item(http, headers, "last words")
        await receiver.wait_for(1)  # sent; its answer half a second away
        await asyncio.to_thread(stop_server, process)
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        status = await connection.fetchval(
            "SELECT status FROM orgbase.webhook_deliveries WHERE endpoint_id = $1",
            uuid.UUID(endpoint["id"]),
        )
    finally:
        await connection.close()
    assert status == "delivered"


async def test_deliveries_survive_a_postgresql_restart(
    fault_stack: LocalStack, fault_settings: Settings
) -> None:
    env = server_env(fault_stack, fault_stack.layout.database, **DELIVERING)
    async with Receiver(Answer(delay=0.3)) as receiver, gateway(env) as (_, http):
        org_id, headers = await strong_owner(http, "restarted")
        await register(http, org_id, headers, receiver.url, ["db.items.*"])
        for n in range(5):
            await insert_item(http, headers, f"before {n}")
        # Stopped while those are being delivered: results not yet recorded are sent again.
        down = await outage(fault_stack.postgres.stop, fault_stack.postgres.start, 1.0)

        async def accepts_writes() -> bool:
            answer = await http.post("/v1/db/items", headers=headers, json={"title": "after"})
            return answer.status_code == 201

        await eventually(accepts_writes, within=30, what="writes accepted again")

        async def all_arrived() -> bool:
            return len(message_ids(receiver)) == 6

        await eventually(all_arrived, within=30, what="every event delivered")
        report(
            "webhooks_postgres_restart",
            {
                "events": 6,
                "delivered_distinct": len(message_ids(receiver)),
                "duplicates": len(receiver.received) - len(message_ids(receiver)),
                "postgres_down_s": round(down.seconds, 2),
                "all_delivered_s_after_restart": round(time.monotonic() - down.back_at, 2),
            },
        )
