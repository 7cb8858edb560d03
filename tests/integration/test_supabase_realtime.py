"""Supabase Realtime's protocol at /realtime/v1/websocket, on a real gateway process: joins,
heartbeats, broadcast (self, ack, binary), presence, postgres_changes with filters and full
rows, the broadcast API, and one hub behind both protocols."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.support.http import bearer, member_tokens
from tests.support.phoenix import Phoenix, wait_changes


@pytest.fixture
def http(live_http: httpx.AsyncClient) -> httpx.AsyncClient:
    return live_http


@pytest.fixture
async def org(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """An org with an owner, an admin, two members and a viewer: (org, {role: token})."""
    return await member_tokens(http, ("admin", "member", "viewer"))


async def opened(base: str, key: str, vsn: str = "2.0.0") -> Phoenix:
    return await Phoenix.open(base, key, vsn)


async def test_heartbeat_join_and_errors(live_server: str, anon_key: str, org: Any) -> None:
    _, tokens = org
    client = await opened(live_server, anon_key)
    try:
        ref = await client.push("phoenix", "heartbeat", {})
        assert await client.reply(ref) == {"status": "ok", "response": {}}
        # No credential: the publishable key alone joins nothing.
        refused = await client.join("room", anon_key)
        assert refused["status"] == "error"
        assert refused["response"]["code"] == "auth_required"
        joined = await client.join("room", tokens["member"])
        assert joined == {"status": "ok", "response": {"postgres_changes": []}}
        ref = await client.push("realtime:elsewhere", "broadcast", {"event": "x"})
        assert (await client.reply(ref))["response"]["code"] == "unmatched_topic"
        private = await client.push(
            "realtime:secret", "phx_join", {"config": {"private": True}, "access_token": "x"}
        )
        assert (await client.reply(private))["response"]["code"] == "private_channels_unsupported"
        await client.socket.send("not json")
        await client.wait(lambda f: f.event == "phx_reply" and f.payload["status"] == "error")
    finally:
        await client.close()


async def test_no_per_message_compression(live_server: str, anon_key: str) -> None:
    """A broadcast is framed once per socket: compressing it per socket too would cost
    CPU per delivery (Phoenix serves no compression either)."""
    client = await opened(live_server, anon_key)
    try:
        assert client.socket.response is not None
        assert "Sec-WebSocket-Extensions" not in client.socket.response.headers
    finally:
        await client.close()


@pytest.mark.parametrize("vsn", ["1.0.0", "2.0.0"])
async def test_broadcast_self_and_ack(live_server: str, anon_key: str, org: Any, vsn: str) -> None:
    _, tokens = org
    sender, listener = await opened(live_server, anon_key, vsn), await opened(live_server, anon_key)
    try:
        await sender.join("room", tokens["member"], self_broadcast=True, ack=True)
        await listener.join("room", tokens["viewer"])
        ref = await sender.broadcast("room", "cursor", {"x": 1})
        assert (await sender.reply(ref))["status"] == "ok"  # ack
        for client in (sender, listener):  # self: the sender hears its own
            frame = await client.wait(lambda f: f.event == "broadcast")
            assert frame.payload == {"type": "broadcast", "event": "cursor", "payload": {"x": 1}}
            assert frame.topic == "realtime:room"
        # A viewer listens but does not send.
        ref = await listener.broadcast("room", "cursor", {"x": 2})
        assert (await listener.reply(ref))["response"]["code"] == "role_too_low"
    finally:
        await sender.close()
        await listener.close()


async def test_sender_does_not_hear_itself_by_default(
    live_server: str, anon_key: str, org: Any
) -> None:
    _, tokens = org
    sender, listener = await opened(live_server, anon_key), await opened(live_server, anon_key)
    try:
        await sender.join("quiet", tokens["member"])
        await listener.join("quiet", tokens["admin"])
        await sender.broadcast("quiet", "ping", {"n": 1})
        await listener.wait(lambda f: f.event == "broadcast")
        await asyncio.sleep(0.3)
        assert sender.events("realtime:quiet", "broadcast") == []
    finally:
        await sender.close()
        await listener.close()


async def test_binary_broadcast(live_server: str, anon_key: str, org: Any) -> None:
    """vsn 2.0.0's binary user broadcast: JSON and raw bytes payloads."""
    _, tokens = org
    sender, listener = await opened(live_server, anon_key), await opened(live_server, anon_key)
    try:
        join_ref = "1"
        await sender.join("bin", tokens["member"])
        await listener.join("bin", tokens["member"])
        topic, event = b"realtime:bin", b"blob"
        for encoding, body in ((1, b'{"a": [1, 2]}'), (0, bytes(range(10)))):
            header = bytes([3, len(join_ref), 1, len(topic), len(event), 0, encoding])
            await sender.socket.send(header + join_ref.encode() + b"9" + topic + event + body)
        text = await listener.wait(lambda f: f.event == "broadcast" and "type" in f.payload)
        assert text.payload == {"type": "broadcast", "event": "blob", "payload": {"a": [1, 2]}}
        raw = await listener.wait(lambda f: "binary" in f.payload)
        assert raw.payload == {"event": "blob", "binary": bytes(range(10))}
    finally:
        await sender.close()
        await listener.close()


async def test_presence_track_untrack_and_state(live_server: str, anon_key: str, org: Any) -> None:
    _, tokens = org
    a, b = await opened(live_server, anon_key), await opened(live_server, anon_key, "1.0.0")
    try:
        await a.join("lobby", tokens["member"], presence=True)
        await a.wait(lambda f: f.event == "presence_state")
        ref = await a.push("realtime:lobby", "presence", {"event": "track", "payload": {"me": "a"}})
        assert (await a.reply(ref))["status"] == "ok"
        diff = await a.wait(lambda f: f.event == "presence_diff")
        ((key, entry),) = diff.payload["joins"].items()
        assert entry["metas"][0]["me"] == "a"
        assert "phx_ref" in entry["metas"][0]
        # A later joiner is told who is there.
        await b.join("lobby", tokens["admin"], presence=True)
        state = await b.wait(lambda f: f.event == "presence_state")
        assert state.payload[key]["metas"][0]["me"] == "a"
        ref = await a.push("realtime:lobby", "presence", {"event": "untrack"})
        await a.reply(ref)
        left = await b.wait(lambda f: f.event == "presence_diff" and f.payload["leaves"])
        assert list(left.payload["leaves"]) == [key]
    finally:
        await a.close()
        await b.close()


async def test_presence_leaves_when_the_socket_closes(
    live_server: str, anon_key: str, org: Any
) -> None:
    _, tokens = org
    a, b = await opened(live_server, anon_key), await opened(live_server, anon_key)
    try:
        await b.join("room2", tokens["admin"], presence=True)
        await a.join("room2", tokens["member"], presence=True)
        await a.push("realtime:room2", "presence", {"event": "track", "payload": {"v": 1}})
        await b.wait(lambda f: f.event == "presence_diff" and f.payload["joins"])
        await a.close()
        await b.wait(lambda f: f.event == "presence_diff" and f.payload["leaves"])
    finally:
        await b.close()


def _tasks(table: str = "tasks", event: str = "*", **extra: Any) -> dict[str, Any]:
    return {"event": event, "schema": "public", "table": table, **extra}


async def test_postgres_changes_full_rows_and_filter(
    live_server: str, anon_key: str, org: Any, http: httpx.AsyncClient
) -> None:
    _, tokens = org
    client = await opened(live_server, anon_key)
    try:
        joined = await client.join(
            "db", tokens["member"], changes=[_tasks(), _tasks(event="INSERT", filter="points=gt.5")]
        )
        granted = joined["response"]["postgres_changes"]
        assert [g["event"] for g in granted] == ["*", "INSERT"]
        assert granted[1]["filter"] == "points=gt.5"
        every, filtered = granted[0]["id"], granted[1]["id"]
        system = await client.wait(lambda f: f.event == "system")
        assert system.payload["status"] == "ok"
        headers = bearer(tokens["member"]) | {"Prefer": "return=representation"}
        low = await http.post("/v1/db/tasks", headers=headers, json={"title": "low", "points": 1})
        high = await http.post("/v1/db/tasks", headers=headers, json={"title": "hi", "points": 9})
        assert low.status_code == high.status_code == 201
        high_id = high.json()[0]["id"]
        await http.patch(f"/v1/db/tasks?id=eq.{high_id}", headers=headers, json={"done": True})
        await http.delete(f"/v1/db/tasks?id=eq.{high_id}", headers=headers)
        frames = await wait_changes(client, "db", 4)
        inserts = [f for f in frames if f["data"]["type"] == "INSERT"]
        assert sorted(tuple(f["ids"]) for f in inserts) == sorted([(every,), (every, filtered)])
        data = next(f["data"] for f in inserts if f["data"]["record"]["title"] == "hi")
        assert data["schema"] == "public"
        assert data["table"] == "tasks"
        assert data["record"]["points"] == 9
        assert data["record"]["done"] is False
        assert {"name": "points", "type": "int4"} in data["columns"]
        assert data["commit_timestamp"].endswith("Z")
        update = next(f["data"] for f in frames if f["data"]["type"] == "UPDATE")
        assert update["record"]["done"] is True
        assert update["old_record"] == {"id": high_id}  # replica identity DEFAULT: the key
        delete = next(f["data"] for f in frames if f["data"]["type"] == "DELETE")
        assert delete["old_record"] == {"id": high_id}
        assert "record" not in delete
    finally:
        await client.close()


async def test_filters_of_several_conditions(
    live_server: str, anon_key: str, org: Any, http: httpx.AsyncClient
) -> None:
    """Conditions joined by commas must all hold; ``not.`` negates one; a NULL never
    matches."""
    _, tokens = org
    client = await opened(live_server, anon_key)
    try:
        both, negated = "points=gte.3,title=like.keep*", "title=not.in.(skip,drop)"
        joined = await client.join(
            "several",
            tokens["member"],
            changes=[_tasks(event="INSERT", filter=both), _tasks(event="INSERT", filter=negated)],
        )
        ids = [g["id"] for g in joined["response"]["postgres_changes"]]
        headers = bearer(tokens["member"])
        for title, points in (("keep1", 5), ("keep2", 1), ("skip", 9), ("other", 4)):
            made = await http.post(
                "/v1/db/tasks", headers=headers, json={"title": title, "points": points}
            )
            assert made.status_code == 201, made.text
        frames = await wait_changes(client, "several", 3)
        await asyncio.sleep(0.3)
        seen = {
            f["data"]["record"]["title"]: f["ids"]
            for f in client.events("realtime:several", "postgres_changes")
        }
        assert seen == {"keep1": ids, "keep2": ids[1:], "other": ids[1:]}, frames
        for bad in ("points=gt.1," * 9 + "points=gt.1", "points=gt.1,,title=eq.a"):
            answer = await client.join("bad", tokens["member"], changes=[_tasks(filter=bad)])
            assert answer["response"]["code"] == "invalid_filter", (bad, answer)
    finally:
        await client.close()


async def test_replica_identity_full_sends_old_rows(
    live_server: str, anon_key: str, org: Any, http: httpx.AsyncClient, admin_connection: Any
) -> None:
    _, tokens = org
    await admin_connection.execute("ALTER TABLE api.people REPLICA IDENTITY FULL")
    client = await opened(live_server, anon_key)
    try:
        await client.join("people", tokens["member"], changes=[_tasks("people")])
        headers = bearer(tokens["member"]) | {"Prefer": "return=representation"}
        made = await http.post("/v1/db/people", headers=headers, json={"name": "Ada"})
        person = made.json()[0]["id"]
        await http.patch(f"/v1/db/people?id=eq.{person}", headers=headers, json={"name": "Bo"})
        await http.delete(f"/v1/db/people?id=eq.{person}", headers=headers)
        frames = [f["data"] for f in await wait_changes(client, "people", 3)]
        update, delete = frames[1], frames[2]
        assert update["old_record"]["name"] == "Ada"
        assert update["record"]["name"] == "Bo"
        assert delete["old_record"]["name"] == "Bo"
    finally:
        await admin_connection.execute("ALTER TABLE api.people REPLICA IDENTITY DEFAULT")
        await client.close()


async def test_bad_bindings_are_refused(live_server: str, anon_key: str, org: Any) -> None:
    _, tokens = org
    client = await opened(live_server, anon_key)
    try:
        for change, code in (
            (_tasks("nope"), "invalid_join"),
            (_tasks(filter="nope=eq.1"), "42703"),
            (_tasks(filter="points=eq.abc"), "invalid_filter"),
            (_tasks(filter="points=fts.1"), "invalid_filter"),
            (_tasks(filter="data->a=eq.1"), "invalid_filter"),
            ({"event": "TRUNCATE", "schema": "public", "table": "tasks"}, "invalid_join"),
            ({"event": "*", "schema": "orgbase", "table": "users"}, "invalid_join"),
        ):
            answer = await client.join("bad", tokens["member"], changes=[change])
            assert answer["status"] == "error", change
            assert answer["response"]["code"] == code, (change, answer)
    finally:
        await client.close()


async def test_one_hub_two_protocols(
    live_server: str, anon_key: str, org: Any, http: httpx.AsyncClient
) -> None:
    """A /v1/realtime publish reaches Phoenix sockets as a broadcast, and a Phoenix
    broadcast reaches /v1/realtime sockets as a message; the broadcast API too."""
    _, tokens = org
    phoenix = await opened(live_server, anon_key)
    url = live_server.replace("http", "ws") + f"/v1/realtime?access_token={tokens['admin']}"
    async with websockets.connect(url) as plain:
        try:
            await phoenix.join("shared", tokens["member"], presence=True)
            await plain.send(json.dumps({"type": "subscribe", "channel": "shared"}))
            assert json.loads(await plain.recv())["type"] == "subscribed"
            await plain.send(
                json.dumps({"type": "publish", "channel": "shared", "event": "e1", "payload": 1})
            )
            got = await phoenix.wait(lambda f: f.event == "broadcast")
            assert got.payload == {"type": "broadcast", "event": "e1", "payload": 1}
            await phoenix.push("realtime:shared", "presence", {"event": "track", "payload": {}})
            await phoenix.broadcast("shared", "e2", {"v": 2})
            messages: list[dict[str, Any]] = []
            while len(messages) < 2:
                message = json.loads(await asyncio.wait_for(plain.recv(), 5))
                if message["type"] == "message":
                    messages.append(message)
            assert [m["event"] for m in messages] == ["e1", "e2"]  # no presence frames
            answer = await http.post(
                "/realtime/v1/api/broadcast",
                headers=bearer(tokens["member"]),
                json={"messages": [{"topic": "shared", "event": "e3", "payload": {"v": 3}}]},
            )
            assert answer.status_code == 202, answer.text
            await phoenix.wait(lambda f: f.event == "broadcast" and f.payload["event"] == "e3")
        finally:
            await phoenix.close()
