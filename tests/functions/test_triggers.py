"""Functions run by events, through the transactional outbox: at least once with an
idempotency key, in the event's org only, retried, then dead (the dead-letter view); and a
delivery survives a SIGKILL of the gateway mid-run. One gateway process of this module runs
events (two would share the outbox)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.functions.conftest import Client, functions_env, person
from tests.support.data import make_platform_admin
from tests.support.http import bearer, new_user
from tests.support.processes import free_port, start_server, stop_server
from tests.support.receivers import Answer, Receiver
from tests.support.stack import STATE_DIR, server_env
from tests.support.waiting import eventually


class EventsGateway:
    """The one gateway process that runs events here; killed and started again at will."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_server(
            self.env, self.port, log_file=STATE_DIR / "functions_events_server.log"
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_server(self.process)
            self.process = None


@pytest.fixture(scope="module")
def events_gateway(
    stack: LocalStack, base_settings: Settings, functions_dir: Path, secrets_file: Path
) -> Iterator[EventsGateway]:
    del base_settings  # the test database, migrated
    env = server_env(
        stack,
        **functions_env(functions_dir, secrets_file),
        ORGBASE_FUNCTIONS_EVENTS="true",
        ORGBASE_FUNCTIONS_EVENT_RETRY_SCHEDULE="0.2,0.2",
        ORGBASE_FUNCTIONS_EVENT_POLL_SECONDS="0.2",
    )
    gateway = EventsGateway(env)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


async def delivery(settings: Settings, function: str, item: int) -> asyncpg.Record | None:
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        return await connection.fetchrow(
            "SELECT * FROM orgbase.function_deliveries"
            " WHERE function = $1 AND (payload -> 'data' -> 'row' ->> 'id')::bigint = $2",
            function,
            item,
        )
    finally:
        await connection.close()


async def add_item(http: httpx.AsyncClient, who: dict[str, Any], title: str) -> int:
    made = await http.post(
        "/v1/db/items",
        headers={**who["headers"], "Prefer": "return=representation"},
        json={"title": title},
    )
    assert made.status_code == 201, made.text
    item: int = made.json()[0]["id"]
    return item


async def test_an_insert_runs_the_subscribed_function_in_its_org(
    fclient: Client, events_gateway: EventsGateway, base_settings: Settings
) -> None:
    alice, bob = await person(fclient), await person(fclient)
    async with (
        Receiver(Answer(body=b"go")) as receiver,
        httpx.AsyncClient(base_url=events_gateway.url) as http,
    ):
        await add_item(http, bob, "bob's own")
        await add_item(http, alice, "first")
        item = await add_item(http, alice, f"http://localhost:{receiver.port}/hook")
        [seen] = await receiver.wait_for(1, within=15)
        told = json.loads(seen.body)
        assert told["org"] == alice["org"]
        assert told["kind"] == "event"
        assert told["role"] == "member"
        assert told["event"] == "db.items.insert"
        assert told["item"] == item
        assert told["count"] == 2  # alice's two items: never bob's
        assert told["key"] == told["header"]
        assert told["key"].startswith("evt_")

        async def delivered() -> bool:
            row = await delivery(base_settings, "on_item", item)
            return row is not None and row["status"] == "delivered"

        await eventually(delivered, within=10, what="the delivery recorded as delivered")


async def test_a_failing_function_is_retried_then_dead(
    fclient: Client,
    events_gateway: EventsGateway,
    base_settings: Settings,
    functions_settings: Settings,
) -> None:
    alice = await person(fclient)
    async with httpx.AsyncClient(base_url=events_gateway.url) as http:
        item = await add_item(http, alice, "fail-me")

        async def dead() -> bool:
            row = await delivery(base_settings, "on_item_fails", item)
            return row is not None and row["status"] == "dead"

        await eventually(dead, within=20, what="the failing delivery dead")
        row = await delivery(base_settings, "on_item_fails", item)
        assert row is not None
        assert row["attempts"] == 3  # the first and two retries (0.2 s apart)
        assert row["last_status"] == 500

        operator, tokens = await new_user(fclient)
        await make_platform_admin(functions_settings, operator["id"])
        admin = bearer(tokens["access_token"])
        dead_letters = await http.get(
            "/v1/platform/functions/deliveries?status=dead&function=on_item_fails", headers=admin
        )
        assert dead_letters.status_code == 200, dead_letters.text
        ids = [d["id"] for d in dead_letters.json()["deliveries"]]
        assert row["id"] in ids
        retried = await http.post(
            f"/v1/platform/functions/deliveries/{row['id']}/retry", headers=admin
        )
        assert retried.status_code == 200, retried.text

        async def dead_again() -> bool:
            again = await delivery(base_settings, "on_item_fails", item)
            return again is not None and again["status"] == "dead" and again["attempts"] == 3

        await eventually(dead_again, within=20, what="the retried delivery dead again")


async def test_a_delivery_survives_a_sigkill_of_the_gateway_mid_run(
    fclient: Client, events_gateway: EventsGateway, base_settings: Settings
) -> None:
    alice = await person(fclient)
    async with Receiver(Answer(body=b"sleep")) as receiver:
        async with httpx.AsyncClient(base_url=events_gateway.url) as http:
            item = await add_item(http, alice, f"http://localhost:{receiver.port}/hook")
        [first] = await receiver.wait_for(1, within=15)
        events_gateway.kill()  # mid-run: the function sleeps, its delivery is claimed
        row = await delivery(base_settings, "on_item", item)
        assert row is not None
        assert (row["status"], row["attempts"]) == ("pending", 1)
        receiver.set_mode(Answer(body=b"go"))
        events_gateway.start()
        seen = await receiver.wait_for(2, within=30)
        assert json.loads(seen[1].body)["key"] == json.loads(first.body)["key"]

        async def delivered() -> bool:
            after = await delivery(base_settings, "on_item", item)
            return after is not None and after["status"] == "delivered"

        await eventually(delivered, within=15, what="the delivery recorded after the restart")
