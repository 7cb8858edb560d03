"""Two gateway processes on one stack: nothing a request depends on lives in one process.

Sessions, revocations, membership changes, rate limits, hot keys and realtime messages made
through gateway A are seen at once through gateway B.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets

from devstack import LocalStack
from tests.support.http import PASSWORD, bearer, join, unique_email
from tests.support.processes import free_port, start_server
from tests.support.stack import server_env
from tests.support.waiting import eventually, pause_to_stay_in_one_window

pytestmark = pytest.mark.slow


@dataclass
class Pair:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    base_a: str
    base_b: str


@pytest.fixture(scope="module")
def gateways(stack: LocalStack) -> Iterator[tuple[str, str]]:
    # The rate limit is low so the test reaches it; X-Forwarded-For (from a trusted proxy,
    # here the test itself) gives this test its own client address to count.
    env = server_env(
        stack,
        ORGBASE_AUTH_SIGNIN_PER_IP_PER_MINUTE="6",
        ORGBASE_HTTP_TRUSTED_PROXIES="127.0.0.1/32",
    )
    ports = free_port(), free_port()
    processes = [start_server(env, port) for port in ports]
    try:
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


@pytest.fixture
async def pair(gateways: tuple[str, str]) -> AsyncIterator[Pair]:
    # Each test looks like its own client machine to the rate limiter.
    address = f"198.51.{random.randrange(256)}.{random.randrange(1, 255)}"
    headers = {"X-Forwarded-For": address}
    async with (
        httpx.AsyncClient(base_url=gateways[0], headers=headers, timeout=10) as a,
        httpx.AsyncClient(base_url=gateways[1], headers=headers, timeout=10) as b,
    ):
        yield Pair(a, b, *gateways)


async def account(http: httpx.AsyncClient, org_id: str | None = None) -> dict[str, Any]:
    email = unique_email("scale")
    signup = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert signup.status_code == 201, signup.text
    return await token(http, email, org_id)


async def token(http: httpx.AsyncClient, email: str, org_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"grant_type": "password", "email": email, "password": PASSWORD}
    if org_id:
        body["org_id"] = org_id
    response = await http.post("/v1/auth/token", json=body)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    tokens["email"] = email
    return tokens


async def owner_with_org(http: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    tokens = await account(http)
    org = await http.post("/v1/orgs", headers=bearer(tokens["access_token"]), json={"name": "s"})
    assert org.status_code == 201, org.text
    org_id: str = org.json()["id"]
    return await token(http, tokens["email"], org_id), org_id


async def test_sessions_and_revocations_are_shared(pair: Pair) -> None:
    tokens = await account(pair.a)
    headers = bearer(tokens["access_token"])
    assert (await pair.b.get("/v1/auth/session", headers=headers)).status_code == 200
    assert (await pair.a.post("/v1/auth/logout", headers=headers)).status_code == 204
    refused = await pair.b.get("/v1/auth/session", headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (401, "session_revoked")


async def test_membership_changes_act_on_the_other_gateway(pair: Pair) -> None:
    owner, org_id = await owner_with_org(pair.a)
    member = await account(pair.a)
    await join(pair.a, bearer(owner["access_token"]), org_id, member["email"], "member")
    scoped = await token(pair.b, member["email"], org_id)
    headers = bearer(scoped["access_token"])
    assert (await pair.b.get("/v1/db/tasks", headers=headers)).status_code == 200
    # Demoted to viewer on A: B refuses a write at once.
    demoted = await pair.a.patch(
        f"/v1/orgs/{org_id}/members/{scoped['user']['id']}",
        headers=bearer(owner["access_token"]),
        json={"role": "viewer"},
    )
    assert demoted.status_code == 200
    write = await pair.b.post("/v1/db/tasks", headers=headers, json={"title": "as a viewer"})
    assert write.status_code in (401, 403), write.text
    # Removed on A: B refuses the next read.
    removed = await pair.a.delete(
        f"/v1/orgs/{org_id}/members/{scoped['user']['id']}",
        headers=bearer(owner["access_token"]),
    )
    assert removed.status_code == 204
    after = await pair.b.get("/v1/db/tasks", headers=headers)
    assert after.status_code in (401, 403, 404), after.text
    listed = await pair.b.get(f"/v1/orgs/{org_id}", headers=headers)
    assert listed.status_code in (401, 403, 404)


async def test_rate_limits_count_across_gateways(pair: Pair) -> None:
    email = unique_email("limited")
    (await pair.a.post("/v1/auth/signup", json={"email": email, "password": PASSWORD}))
    body = {"grant_type": "password", "email": email, "password": PASSWORD}
    await asyncio.sleep(pause_to_stay_in_one_window(60))
    statuses = []
    for n in range(8):
        http = pair.a if n % 2 == 0 else pair.b
        statuses.append((await http.post("/v1/auth/token", json=body)).status_code)
    # 6 per minute per client address, whichever gateway answers.
    assert statuses[:6] == [200] * 6
    assert statuses[6:] == [429, 429]


async def test_hot_keys_add_up_across_gateways(pair: Pair) -> None:
    owner, org_id = await owner_with_org(pair.a)
    headers = bearer(owner["access_token"])
    assert (await pair.a.put("/v1/kv/popular", headers=headers, json={"value": 1})).status_code in (
        200,
        201,
    )
    for n in range(10):
        http = pair.a if n % 2 == 0 else pair.b
        assert (await http.get("/v1/kv/popular", headers=headers)).status_code == 200

    async def popular_hits() -> bool:
        response = await pair.b.get(f"/v1/orgs/{org_id}/hot-keys", headers=headers)
        assert response.status_code == 200, response.text
        hits = {k["key"]: k["hits"] for k in response.json()}
        return int(hits.get("popular", 0)) >= 10

    # Each gateway flushes its counts every second; both gateways' reads are counted.
    await eventually(popular_hits, within=6, interval=0.2, what="10 hits of the popular key")


async def test_realtime_messages_cross_gateways(pair: Pair) -> None:
    owner, _ = await owner_with_org(pair.a)
    headers = bearer(owner["access_token"])
    url = pair.base_a.replace("http", "ws") + f"/v1/realtime?access_token={owner['access_token']}"
    async with websockets.connect(url) as socket:
        for channel in ("news", "db:tasks"):
            await socket.send(json.dumps({"type": "subscribe", "channel": channel}))
            reply = json.loads(await asyncio.wait_for(socket.recv(), 5))
            assert reply["type"] == "subscribed", reply
        published = await pair.b.post(
            "/v1/realtime/news", headers=headers, json={"event": "hello", "payload": {"n": 1}}
        )
        assert published.status_code in (200, 201, 202), published.text
        message = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert (message["channel"], message["event"], message["payload"]) == (
            "news",
            "hello",
            {"n": 1},
        )
        inserted = await pair.b.post("/v1/db/tasks", headers=headers, json={"title": "via B"})
        assert inserted.status_code == 201, inserted.text
        row_event = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert row_event["channel"] == "db:tasks"
        assert row_event["event"] == "insert"
