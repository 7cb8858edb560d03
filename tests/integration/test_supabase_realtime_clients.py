"""Supabase's published realtime clients, unchanged, on two gateway processes: supabase-js
2.119 under node (tests/supabase_js/realtime.mjs) and supabase-py's async client. Two
members of one org sign in with their passwords on different gateways; one listens to
postgres_changes with a filter, broadcasts and presence, the other tracks, broadcasts and
inserts rows: everything that crosses from one process to the other goes through
PostgreSQL's NOTIFY or Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from realtime.types import (
    PostgresChangesPayload,
    RealtimeChannelOptions,
    RealtimePostgresChangesListenEvent,
)
from supabase import AsyncClient, acreate_client

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.http import PASSWORD, add_member, create_org, new_user, sign_in
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import STATE_DIR, server_env
from tests.support.supabase_js import need_node, run_script
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateways(stack: LocalStack, settings: Settings) -> Iterator[tuple[str, str]]:
    del settings  # the test database, migrated
    ports = free_port(), free_port()
    processes = [
        start_server(server_env(stack), port, log_file=STATE_DIR / f"realtime_{n}.log")
        for n, port in enumerate(ports)
    ]
    try:
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        for process in processes:
            stop_server(process)


async def two_members(base: str) -> tuple[str, str]:
    """Alice owns an org and Bob is its member; each last signed in to it (so a GoTrue
    sign-in without an org enters it). Returns their emails."""
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        alice, alice_tokens = await new_user(http)
        org_id = await create_org(http, alice_tokens, "realtime clients")
        bob, _ = await new_user(http)
        await add_member(http, alice_tokens, org_id, bob, "member")
        for person in (alice, bob):
            await sign_in(http, person["email"], org_id)
        return alice["email"], bob["email"]


@pytest.mark.parametrize("vsn", ["2.0.0", "1.0.0"])
async def test_supabase_js_across_two_gateways(
    gateways: tuple[str, str], anon_key: str, vsn: str
) -> None:
    need_node()
    email_a, email_b = await two_members(gateways[0])
    seen = await run_script(
        "realtime.mjs",
        URL_A=gateways[0],
        URL_B=gateways[1],
        ANON_KEY=anon_key,
        EMAIL_A=email_a,
        EMAIL_B=email_b,
        PASSWORD=PASSWORD,
        VSN=vsn,
    )
    assert seen["changes"] == [{"type": "INSERT", "title": "high", "points": 9, "table": "tasks"}]
    assert seen["broadcasts"] == [{"n": 1}]
    assert seen["aliceSelf"] == 1  # broadcast self
    assert seen["bobSelf"] == 0  # not self
    assert seen["sendStatus"] == "ok"  # ack
    assert seen["trackStatus"] == seen["bobTrack"] == seen["untrackStatus"] == "ok"
    assert seen["alicePresence"] == "Alice"
    assert seen["presenceKeys"] == ["bob"]  # Alice untracked
    assert seen["removed"] == "ok"


async def signed_in(url: str, key: str, email: str) -> AsyncClient:
    client = await acreate_client(url, key)
    await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    return client


def presence_as(key: str) -> RealtimeChannelOptions:
    return {
        "config": {"broadcast": None, "presence": {"key": key, "enabled": True}, "private": False}
    }


async def test_supabase_py_across_two_gateways(gateways: tuple[str, str], anon_key: str) -> None:
    email_a, email_b = await two_members(gateways[0])
    alice = await signed_in(gateways[0], anon_key, email_a)
    bob = await signed_in(gateways[1], anon_key, email_b)
    changes: list[PostgresChangesPayload] = []
    broadcasts: list[Any] = []
    room = bob.channel("py-room", presence_as("bob"))
    room.on_postgres_changes(
        RealtimePostgresChangesListenEvent.Insert,
        changes.append,
        table="tasks",
        filter="points=gte.5",
    )
    room.on_broadcast("hello", lambda p: broadcasts.append(p["payload"]))
    room.on_presence_sync(lambda: None)
    await room.subscribe()
    await eventually(lambda: room.is_joined, what="Bob's channel joined")
    alice_room = alice.channel("py-room", presence_as("alice"))
    await alice_room.subscribe()
    await eventually(lambda: alice_room.is_joined, what="Alice's channel joined")
    try:
        await alice_room.track({"name": "Alice"})
        await eventually(lambda: "alice" in room.presence_state(), what="Alice present")
        await alice_room.send_broadcast("hello", {"n": 1})
        await eventually(lambda: broadcasts == [{"n": 1}], what="the broadcast")
        await alice.table("tasks").insert({"title": "low", "points": 1}).execute()
        await alice.table("tasks").insert({"title": "high", "points": 7}).execute()
        await eventually(lambda: changes, what="the filtered insert")
        await asyncio.sleep(0.5)
        assert len(changes) == 1
        data = changes[0]["data"]
        assert (data["type"], data["table"]) == ("INSERT", "tasks")
        assert data.get("record") == {**(data.get("record") or {}), "title": "high", "points": 7}
        await alice_room.untrack()
        await eventually(lambda: "alice" not in room.presence_state(), what="Alice gone")
    finally:
        await alice.remove_all_channels()
        await bob.remove_all_channels()
