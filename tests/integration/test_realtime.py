"""Realtime over a real socket: org channels, row changes, revocations, SSE, and isolation
between many orgs under load."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support.http import PASSWORD, next_sse_data, password_grant, unique_email
from tests.support.redis_modes import both_modes_live_server  # noqa: F401 (fixtures)


async def member_of_new_org(http: httpx.AsyncClient) -> dict[str, Any]:
    email = unique_email("rt")
    (
        await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    ).raise_for_status()
    tokens = (await http.post("/v1/auth/token", json=password_grant(email))).json()
    org = (
        await http.post("/v1/orgs", headers=_auth(tokens["access_token"]), json={"name": "rt"})
    ).json()
    scoped = (
        await http.post(
            "/v1/auth/token",
            json={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "org_id": org["id"],
            },
        )
    ).json()
    return {
        "org": org["id"],
        "token": scoped["access_token"],
        "email": email,
        "user": tokens["user"]["id"],
        "refresh": scoped["refresh_token"],
    }


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def two_orgs_on_sockets(
    base: str,
) -> AsyncIterator[
    tuple[httpx.AsyncClient, dict[str, Any], dict[str, Any], ClientConnection, ClientConnection]
]:
    """Members of two new orgs, each with an open socket: (http, a, b, socket a, socket b)."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        a, b = await member_of_new_org(http), await member_of_new_org(http)
        sock_a = await connect(base, a["token"])
        try:
            sock_b = await connect(base, b["token"])
            try:
                yield http, a, b, sock_a, sock_b
            finally:
                await sock_b.close()
        finally:
            await sock_a.close()


async def connect(base: str, token: str) -> ClientConnection:
    return await websockets.connect(
        base.replace("http", "ws") + f"/v1/realtime?access_token={token}"
    )


async def command(socket: ClientConnection, **body: Any) -> dict[str, Any]:
    await socket.send(json.dumps(body))
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 5))
    return reply


async def next_message(socket: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), within))
    return message


async def test_channels_deliver_within_the_org_only(live_server: str) -> None:
    async with two_orgs_on_sockets(live_server) as (http, a, _, sock_a, sock_b):
        assert (await command(sock_a, type="subscribe", channel="chat"))["type"] == "subscribed"
        assert (await command(sock_b, type="subscribe", channel="chat"))["type"] == "subscribed"
        published = await http.post(
            "/v1/realtime/chat",
            headers=_auth(a["token"]),
            json={"event": "said", "payload": {"text": "hi A"}},
        )
        assert published.status_code == 202
        got = await next_message(sock_a)
        assert (got["channel"], got["event"], got["payload"]) == (
            "chat",
            "said",
            {"text": "hi A"},
        )
        with pytest.raises(TimeoutError):
            await next_message(sock_b, within=0.7)
        # Publishing over the socket works too, and db:* channels are the server's.
        reply = await command(sock_a, type="publish", channel="chat", event="e", payload=1)
        assert reply["type"] in ("published", "message")
        refused = await http.post(
            "/v1/realtime/db:tasks", headers=_auth(a["token"]), json={"event": "insert"}
        )
        assert (refused.status_code, refused.json()["code"]) == (400, "reserved_channel")
        bad = await command(sock_b, type="subscribe", channel="../x y")
        assert (bad["type"], bad["code"]) == ("error", "invalid_channel")


async def test_row_changes_reach_db_channels(live_server: str) -> None:
    async with two_orgs_on_sockets(live_server) as (http, a, _, sock_a, sock_b):
        await command(sock_a, type="subscribe", channel="db:tasks")
        await command(sock_b, type="subscribe", channel="db:tasks")
        created = await http.post(
            "/v1/db/tasks",
            headers={**_auth(a["token"]), "Prefer": "return=representation"},
            json={"title": "live"},
        )
        row = created.json()[0]
        got = await next_message(sock_a)
        assert (got["channel"], got["event"], got["payload"]["key"]) == (
            "db:tasks",
            "insert",
            {"id": row["id"]},
        )
        await http.patch(
            f"/v1/db/tasks?id=eq.{row['id']}",
            headers=_auth(a["token"]),
            json={"title": "changed"},
        )
        assert (await next_message(sock_a))["event"] == "update"
        with pytest.raises(TimeoutError):
            await next_message(sock_b, within=0.7)


async def test_revocations_close_sockets(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        a = await member_of_new_org(http)
        socket = await connect(live_server, a["token"])
        await command(socket, type="subscribe", channel="chat")
        await http.post("/v1/auth/logout", headers=_auth(a["token"]))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401
        refused = await connect(live_server, a["token"])
        error = await next_message(refused)
        assert (error["type"], error["code"]) == ("error", "session_revoked")


async def test_sse(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        a = await member_of_new_org(http)
        async with http.stream(
            "GET", "/v1/realtime/sse", params={"channels": "news,chat"}, headers=_auth(a["token"])
        ) as stream:
            lines = stream.aiter_lines()
            assert (await next_sse_data(lines))["type"] == "subscribed"
            await http.post(
                "/v1/realtime/news",
                headers=_auth(a["token"]),
                json={"event": "flash", "payload": 42},
            )
            message = await next_sse_data(lines)
            assert (message["channel"], message["payload"]) == ("news", 42)


async def test_many_orgs_under_load_never_cross(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as http:
        members = [await member_of_new_org(http) for _ in range(12)]
        sockets = [await connect(live_server, m["token"]) for m in members]
        for socket in sockets:
            await command(socket, type="subscribe", channel="load")
        per_org = 25

        async def publish_all(member: dict[str, Any]) -> None:
            for n in range(per_org):
                response = await http.post(
                    "/v1/realtime/load",
                    headers=_auth(member["token"]),
                    json={"event": "n", "payload": {"org": member["org"], "n": n}},
                )
                response.raise_for_status()

        async def collect(socket: ClientConnection) -> list[dict[str, Any]]:
            received: list[dict[str, Any]] = []
            while len(received) < per_org:
                received.append(await next_message(socket, within=15))
            return received

        collectors = [asyncio.ensure_future(collect(s)) for s in sockets]
        await asyncio.gather(*(publish_all(m) for m in members))
        results = await asyncio.gather(*collectors)
        for member, messages, socket in zip(members, results, sockets, strict=True):
            assert {m["payload"]["org"] for m in messages} == {member["org"]}
            assert sorted(m["payload"]["n"] for m in messages) == list(range(per_org))
            with pytest.raises(TimeoutError):
                await next_message(socket, within=0.3)
            await socket.close()
