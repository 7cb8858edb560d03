"""The org-scoped cache: values, TTLs, increments, limits, quotas, isolation, hot keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.data import make_platform_admin
from tests.support.http import bearer, member_tokens, new_user
from tests.support.redis_modes import both_modes_client, both_modes_settings  # noqa: F401 (fixtures)
from tests.support.stack import with_overrides
from tests.support.waiting import eventually

Client = AsyncTestClient[OrgbaseApp]


@pytest.fixture(scope="module")
async def orgs(client: Client) -> dict[str, Any]:
    org_a, a = await member_tokens(client, ("admin", "member", "viewer"))
    org_b, b = await member_tokens(client, ())
    return {"a": a, "b": b, "org_a": org_a, "org_b": org_b}


async def test_set_get_ttl_increment_delete(client: Client, orgs: dict[str, Any]) -> None:
    member = bearer(orgs["a"]["member"])
    put = await client.put(
        "/v1/kv/greeting", headers=member, json={"value": {"text": "hi", "n": [1, 2]}, "ttl": 60}
    )
    assert put.status_code == 200
    got = (await client.get("/v1/kv/greeting", headers=member)).json()
    assert got["value"] == {"text": "hi", "n": [1, 2]}
    assert 55 <= got["ttl"] <= 60
    forever = await client.put("/v1/kv/forever", headers=member, json={"value": "x"})
    assert (await client.get("/v1/kv/forever", headers=member)).json()["ttl"] is None
    assert forever.status_code == 200
    first = await client.post("/v1/kv/counter/increment", headers=member, json={"by": 5})
    second = await client.post("/v1/kv/counter/increment", headers=member, json={})
    assert (first.json()["value"], second.json()["value"]) == (5, 6)
    not_int = await client.post("/v1/kv/greeting/increment", headers=member, json={"by": 1})
    assert (not_int.status_code, not_int.json()["code"]) == (409, "not_an_integer")
    assert (await client.delete("/v1/kv/greeting", headers=member)).status_code == 204
    missing = await client.get("/v1/kv/greeting", headers=member)
    assert (missing.status_code, missing.json()["code"]) == (404, "key_not_found")
    assert (await client.delete("/v1/kv/greeting", headers=member)).status_code == 404


async def test_ttl_expires(client: Client, orgs: dict[str, Any]) -> None:
    member = bearer(orgs["a"]["member"])
    await client.put("/v1/kv/brief", headers=member, json={"value": 1, "ttl": 1})

    async def gone() -> bool:
        status = (await client.get("/v1/kv/brief", headers=member)).status_code
        assert status in (200, 404), status
        return status == 404

    await eventually(gone, within=5, what="the key's expiry")


async def test_orgs_have_separate_namespaces(client: Client, orgs: dict[str, Any]) -> None:
    await client.put("/v1/kv/shared-name", headers=bearer(orgs["a"]["owner"]), json={"value": "A"})
    assert (
        await client.get("/v1/kv/shared-name", headers=bearer(orgs["b"]["owner"]))
    ).status_code == 404
    await client.put("/v1/kv/shared-name", headers=bearer(orgs["b"]["owner"]), json={"value": "B"})
    assert (await client.get("/v1/kv/shared-name", headers=bearer(orgs["a"]["owner"]))).json()[
        "value"
    ] == "A"
    # Key names cannot climb out of the namespace.
    for name in ("..%2F..%2Fx", "t:other:kv:x", "*", "a b"):
        response = await client.get(f"/v1/kv/{name}", headers=bearer(orgs["a"]["owner"]))
        assert response.status_code in (400, 404), name


async def test_roles_and_limits(client: Client, orgs: dict[str, Any]) -> None:
    viewer, member = bearer(orgs["a"]["viewer"]), bearer(orgs["a"]["member"])
    assert (await client.put("/v1/kv/v", headers=viewer, json={"value": 1})).status_code == 403
    assert (await client.get("/v1/kv/forever", headers=viewer)).status_code in (200, 404)
    too_big = await client.put("/v1/kv/big", headers=member, json={"value": "x" * 70000})
    assert too_big.status_code == 413
    bad_key = await client.put("/v1/kv/" + "k" * 300, headers=member, json={"value": 1})
    assert (bad_key.status_code, bad_key.json()["code"]) == (400, "invalid_key")
    for body in (
        {"value": 1, "ttl": 0},
        {"value": 1, "ttl": "soon"},
        {"ttl": 5},
        {"value": 1, "extra": 1},
    ):
        assert (await client.put("/v1/kv/k", headers=member, json=body)).status_code == 400, body


@pytest.fixture
async def small_quota_client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(
        app=create_app(with_overrides(settings, kv={"max_keys_per_org": 3}))
    ) as client:
        yield client


async def test_quota_per_org(small_quota_client: Client) -> None:
    client = small_quota_client
    _, tokens = await member_tokens(client, ())
    headers = bearer(tokens["owner"])
    for n in range(3):
        assert (
            await client.put(f"/v1/kv/q{n}", headers=headers, json={"value": n})
        ).status_code == 200
    over = await client.put("/v1/kv/q3", headers=headers, json={"value": 3})
    assert (over.status_code, over.json()["code"]) == (409, "quota_exceeded")
    assert (
        await client.put("/v1/kv/q0", headers=headers, json={"value": "rewrite"})
    ).status_code == 200
    await client.delete("/v1/kv/q1", headers=headers)
    assert (await client.put("/v1/kv/q3", headers=headers, json={"value": 3})).status_code == 200


async def test_hot_keys(client: Client, orgs: dict[str, Any]) -> None:
    owner = bearer(orgs["a"]["owner"])
    await client.put("/v1/kv/hot-one", headers=owner, json={"value": 1})
    await client.put("/v1/kv/warm-one", headers=owner, json={"value": 1})
    for _ in range(30):
        await client.get("/v1/kv/hot-one", headers=owner)
    for _ in range(5):
        await client.get("/v1/kv/warm-one", headers=owner)

    async def both_listed() -> list[str] | None:
        keys = (await client.get(f"/v1/orgs/{orgs['org_a']}/hot-keys", headers=owner)).json()
        names = [k["key"] for k in keys]
        return names if {"hot-one", "warm-one"} <= set(names) else None

    # Each gateway flushes its counts every second.
    names = await eventually(both_listed, within=10, interval=0.2, what="the hot keys")
    assert names.index("hot-one") < names.index("warm-one")
    assert (
        await client.get(f"/v1/orgs/{orgs['org_a']}/hot-keys", headers=bearer(orgs["a"]["member"]))
    ).status_code == 403


async def test_the_dashboard_shows_the_redis_in_use(
    settings: Settings, client: Client, orgs: dict[str, Any]
) -> None:
    """Sentinel: the primary and its replicas; cluster: every node, and the primaries'
    totals (each primary serves a third of the slots, so each holds some keys)."""
    owner = bearer(orgs["a"]["owner"])
    for n in range(30):
        await client.put(f"/v1/kv/spread-{n}", headers=owner, json={"value": n})
    operator, tokens = await new_user(client)
    await make_platform_admin(settings, operator["id"])
    dashboard = (
        await client.get("/v1/platform/redis", headers=bearer(tokens["access_token"]))
    ).json()
    assert dashboard["status"] == "ok", dashboard
    if settings.redis.cluster_nodes:
        assert dashboard["mode"] == "cluster"
        roles = sorted(node["role"] for node in dashboard["nodes"])
        assert roles == ["master"] * 3 + ["slave"] * 3, dashboard["nodes"]
        primaries = [n for n in dashboard["nodes"] if n["role"] == "master"]
        assert dashboard["server"]["keyspace_hits"] == sum(n["keyspace_hits"] for n in primaries)
    else:
        assert dashboard["mode"] == "sentinel"
        assert dashboard["nodes"] == []
        assert dashboard["replication"]["role"] == "master"
