"""Finding 3: open sockets kept the past. A member's open WebSocket still published after
the member became a viewer (REST said 403 role_too_low), and a revoked API key's socket
published until the periodic re-check (30 s).

Every change reaches open sockets and event streams at once, on every replica: here the
socket is held by one gateway process (``live_server``) and the change is made through
another (the in-process ``client``), so it can only arrive through Redis. A wait of a few
seconds, far below the 30 s re-check, tells "at once" from "at the next re-check".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from litestar.testing import AsyncTestClient
from websockets.asyncio.client import ClientConnection

from orgbase.platform.app import OrgbaseApp
from tests.support.http import PASSWORD, bearer, member_tokens, next_sse_data, sign_in

Client = AsyncTestClient[OrgbaseApp]
AT_ONCE = 5.0


async def connect(live_server: str, credential: str) -> ClientConnection:
    socket = await websockets.connect(
        live_server.replace("http", "ws") + f"/v1/realtime?access_token={credential}"
    )
    await socket.send(json.dumps({"type": "subscribe", "channel": "chat"}))
    reply = json.loads(await asyncio.wait_for(socket.recv(), AT_ONCE))
    assert reply["type"] == "subscribed", reply
    return socket


async def publish(socket: ClientConnection) -> dict[str, Any]:
    await socket.send(json.dumps({"type": "publish", "channel": "chat", "event": "e"}))
    while True:
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), AT_ONCE))
        if reply["type"] != "message":
            return reply


async def closed_with(socket: ClientConnection) -> int:
    """The close code, which must come at once."""

    async def drain() -> None:
        while True:
            await socket.recv()

    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(drain(), AT_ONCE)
    assert closed.value.rcvd is not None, "the socket was not closed by the server"
    return closed.value.rcvd.code


@pytest.fixture
async def org(client: Client) -> dict[str, Any]:
    org_id, tokens = await member_tokens(client, ("member",))
    members = (
        await client.get(f"/v1/orgs/{org_id}/members", headers=bearer(tokens["owner"]))
    ).json()
    member_id = next(m["user_id"] for m in members if m["role"] == "member")
    return {"id": org_id, "tokens": tokens, "member_id": member_id}


async def test_a_demoted_member_cannot_publish_from_an_open_socket(
    live_server: str, client: Client, org: dict[str, Any]
) -> None:
    socket = await connect(live_server, org["tokens"]["member"])
    try:
        assert (await publish(socket))["type"] == "published"
        demoted = await client.patch(
            f"/v1/orgs/{org['id']}/members/{org['member_id']}",
            headers=bearer(org["tokens"]["owner"]),
            json={"role": "viewer"},
        )
        assert demoted.status_code == 200
        refused = await publish(socket)
        assert (refused["type"], refused["code"]) == ("error", "role_too_low")
        # Still a viewer: the socket stays open for reading.
        await socket.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(socket.recv(), AT_ONCE))["type"] == "pong"
    finally:
        await socket.close()


async def test_a_revoked_keys_socket_closes_at_once(
    live_server: str, client: Client, org: dict[str, Any]
) -> None:
    owner = bearer(org["tokens"]["owner"])
    key = (
        await client.post(f"/v1/orgs/{org['id']}/api-keys", headers=owner, json={"name": "rt"})
    ).json()
    socket = await connect(live_server, key["key"])
    assert (await publish(socket))["type"] == "published"
    revoked = await client.delete(f"/v1/orgs/{org['id']}/api-keys/{key['id']}", headers=owner)
    assert revoked.status_code == 204
    assert await closed_with(socket) == 4401


async def test_a_removed_members_socket_closes_at_once(
    live_server: str, client: Client, org: dict[str, Any]
) -> None:
    socket = await connect(live_server, org["tokens"]["member"])
    removed = await client.delete(
        f"/v1/orgs/{org['id']}/members/{org['member_id']}", headers=bearer(org["tokens"]["owner"])
    )
    assert removed.status_code == 204
    assert await closed_with(socket) == 4403


async def test_deleting_the_org_closes_every_socket(
    live_server: str, client: Client, org: dict[str, Any]
) -> None:
    sockets = [await connect(live_server, org["tokens"][who]) for who in ("owner", "member")]
    deleted = await client.delete(f"/v1/orgs/{org['id']}", headers=bearer(org["tokens"]["owner"]))
    assert deleted.status_code == 204
    for socket in sockets:
        assert await closed_with(socket) == 4403


async def test_a_password_change_closes_the_other_sessions_sockets(
    live_server: str, client: Client
) -> None:
    org_id, tokens = await member_tokens(client, ())
    me = (await client.get("/v1/auth/user", headers=bearer(tokens["owner"]))).json()
    other_session = (await sign_in(client, me["email"], org_id))["access_token"]
    socket = await connect(live_server, other_session)
    changed = await client.patch(
        "/v1/auth/user",
        headers=bearer(tokens["owner"]),
        json={"password": "another horse battery staple", "current_password": PASSWORD},
    )
    assert changed.status_code == 200
    assert await closed_with(socket) == 4401


@pytest.fixture
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        yield client


async def test_an_event_stream_ends_when_the_member_is_removed(
    http: httpx.AsyncClient, client: Client, org: dict[str, Any]
) -> None:
    async with http.stream(
        "GET",
        "/v1/realtime/sse",
        params={"channels": "chat"},
        headers=bearer(org["tokens"]["member"]),
    ) as stream:
        lines = stream.aiter_lines()
        assert (await next_sse_data(lines))["type"] == "subscribed"
        removed = await client.delete(
            f"/v1/orgs/{org['id']}/members/{org['member_id']}",
            headers=bearer(org["tokens"]["owner"]),
        )
        assert removed.status_code == 204
        ended = await next_sse_data(lines, within=AT_ONCE)
        assert ended == {"type": "closed", "reason": "the membership has ended"}


async def test_an_event_stream_takes_the_token_as_a_query_parameter(
    http: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    """Browsers' EventSource cannot set headers."""
    async with http.stream(
        "GET",
        "/v1/realtime/sse",
        params={"channels": "chat", "access_token": org["tokens"]["member"]},
    ) as stream:
        assert stream.status_code == 200
        assert (await next_sse_data(stream.aiter_lines()))["type"] == "subscribed"
