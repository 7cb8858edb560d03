"""Attacks on the data API: injection strings in every parameter, other orgs' rows through
every verb, revoked sessions and removed members on the very next request."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import owner_connection
from tests.support.http import add_member, bearer, create_org, new_user, sign_in

Client = AsyncTestClient[OrgbaseApp]

INJECTIONS = [
    "'; DROP TABLE api.tasks; --",
    "1 OR 1=1",
    "1) OR (1=1",
    '" OR ""="',
    'x"; SELECT pg_sleep(5); --',
    "$1",
    "$$; DROP TABLE api.tasks; $$",
    "id) UNION SELECT * FROM orgbase.users --",
    "title,(select password_hash from orgbase.users limit 1)",
    "org_id=eq.00000000-0000-0000-0000-000000000000",
    "*/pg_sleep(5)/*",
    "\\x00",
    "%00",
    "ä' || (SELECT current_user) || '",
    "${jndi:ldap://x}",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "a" * 5000,
]


@pytest.fixture(scope="module")
async def orgs(client: Client) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in ("a", "b"):
        owner, owner_tokens = await new_user(client)
        org_id = await create_org(client, owner_tokens, name)
        member, _ = await new_user(client)
        await add_member(client, owner_tokens, org_id, member, "member")
        token = (await sign_in(client, owner["email"], org_id))["access_token"]
        rows = await client.post(
            "/v1/db/tasks",
            headers={**bearer(token), "Prefer": "return=representation"},
            json=[{"title": f"{name}-1", "points": 1}, {"title": f"{name}-2", "points": 2}],
        )
        assert rows.status_code == 201
        result[name] = {
            "org": org_id,
            "token": token,
            "owner_tokens": owner_tokens,
            "member": member,
            "member_token": (await sign_in(client, member["email"], org_id))["access_token"],
            "ids": [r["id"] for r in rows.json()],
        }
    return result


async def counts(settings: Settings) -> dict[str, int]:
    async with owner_connection(settings) as connection:
        return {
            table: await connection.fetchval(f"SELECT count(*) FROM api.{table}")
            for table in ("tasks", "people", "comments", "items")
        }


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_injection_in_every_parameter(
    settings: Settings, client: Client, orgs: dict[str, Any], payload: str
) -> None:
    before = await counts(settings)
    headers = bearer(orgs["a"]["token"])
    value = quote(payload, safe="")
    requests: list[tuple[str, str, dict[str, str], Any]] = [
        ("GET", f"/v1/db/{value}", {}, None),
        ("GET", f"/v1/db/tasks?select={value}", {}, None),
        ("GET", f"/v1/db/tasks?title=eq.{value}", {}, None),
        ("GET", f"/v1/db/tasks?{value}=eq.1", {}, None),
        ("GET", f"/v1/db/tasks?title={value}", {}, None),
        ("GET", f"/v1/db/tasks?order={value}", {}, None),
        ("GET", f"/v1/db/tasks?limit={value}", {}, None),
        ("GET", f"/v1/db/tasks?offset={value}", {}, None),
        ("GET", f"/v1/db/tasks?or=({value})", {}, None),
        ("GET", f"/v1/db/tasks?or=(title.eq.{value},points.eq.1)", {}, None),
        ("GET", f"/v1/db/tasks?points=in.({value})", {}, None),
        ("GET", f"/v1/db/tasks?data->>{value}=eq.1", {}, None),
        ("GET", "/v1/db/tasks", {"Prefer": payload[:500]}, None),
        ("GET", "/v1/db/tasks", {"Range": payload[:500]}, None),
        ("GET", "/v1/db/tasks", {"Accept": payload[:500]}, None),
        (
            "POST",
            f"/v1/db/tasks?on_conflict={value}",
            {"Prefer": "resolution=merge-duplicates"},
            {"title": "x"},
        ),
        ("POST", f"/v1/db/tasks?columns={value}", {}, {"title": "x"}),
        ("POST", "/v1/db/tasks", {}, {payload[:60]: "x"}),
        ("PATCH", f"/v1/db/tasks?id=eq.{value}", {}, {"title": payload}),
        ("DELETE", f"/v1/db/tasks?title=eq.{value}", {}, None),
        ("DELETE", f"/v1/db/tasks?{value}=eq.1", {}, None),
    ]
    for method, url, extra, body in requests:
        sent = [(k.encode(), v.encode()) for k, v in {**headers, **extra}.items()]
        response = await client.request(method, url, headers=sent, json=body)
        assert response.status_code < 500, (method, url, response.text)
        if response.status_code >= 400:
            assert {"code", "message"} <= set(response.json()), response.text
        else:
            for row in response.json() if response.content else []:
                assert row.get("org_id") in (None, orgs["a"]["org"])
    # Only the benign title-with-payload inserts/patches of org A may have changed rows of A.
    after = await counts(settings)
    assert after["people"] == before["people"]
    assert after["comments"] == before["comments"]
    assert after["items"] == before["items"]
    assert abs(after["tasks"] - before["tasks"]) <= 3


async def test_no_verb_reaches_another_orgs_rows(
    settings: Settings, client: Client, orgs: dict[str, Any]
) -> None:
    a, b = orgs["a"], orgs["b"]
    headers = {**bearer(a["token"]), "Prefer": "return=representation"}
    b_ids = ",".join(str(i) for i in b["ids"])
    read = await client.get(f"/v1/db/tasks?id=in.({b_ids})", headers=headers)
    assert read.json() == []
    everything = await client.get("/v1/db/tasks?select=org_id", headers=headers)
    assert {r["org_id"] for r in everything.json()} == {a["org"]}
    patched = await client.patch(
        f"/v1/db/tasks?id=in.({b_ids})", headers=headers, json={"title": "pwned"}
    )
    assert (patched.status_code, patched.json()) == (200, [])
    deleted = await client.delete(f"/v1/db/tasks?id=in.({b_ids})", headers=headers)
    assert (deleted.status_code, deleted.json()) == (200, [])
    moved = await client.patch(
        f"/v1/db/tasks?id=eq.{a['ids'][0]}", headers=headers, json={"org_id": b["org"]}
    )
    assert moved.status_code == 400
    upsert_into_b = await client.post(
        "/v1/db/tasks",
        headers={**headers, "Prefer": "return=representation,resolution=merge-duplicates"},
        json={"id": b["ids"][0], "title": "taken over"},
    )
    assert upsert_into_b.status_code in (403, 409), upsert_into_b.text
    embedded = await client.get("/v1/db/people?select=name,tasks(title,org_id)", headers=headers)
    for person in embedded.json():
        assert all(t["org_id"] == a["org"] for t in person["tasks"])
    async with owner_connection(settings) as connection:
        titles = await connection.fetch(
            "SELECT title FROM api.tasks WHERE id = ANY($1::bigint[])", b["ids"]
        )
    assert sorted(r["title"] for r in titles) == ["b-1", "b-2"]


async def test_logout_and_removal_act_on_the_next_data_request(
    client: Client, orgs: dict[str, Any]
) -> None:
    a = orgs["a"]
    member_headers = bearer(a["member_token"])
    assert (await client.get("/v1/db/tasks", headers=member_headers)).status_code == 200
    removed = await client.delete(
        f"/v1/orgs/{a['org']}/members/{a['member']['id']}",
        headers=bearer(a["owner_tokens"]["access_token"]),
    )
    assert removed.status_code == 204
    after_removal = await client.get("/v1/db/tasks", headers=member_headers)
    assert (after_removal.status_code, after_removal.json()["code"]) == (404, "org_not_found")
    write_after = await client.post("/v1/db/tasks", headers=member_headers, json={"title": "late"})
    assert write_after.status_code == 404
    # Logout: the same token is refused on the next request, for reads and writes.
    token = (await sign_in(client, orgs["b"]["member"]["email"], orgs["b"]["org"]))["access_token"]
    assert (await client.get("/v1/db/tasks", headers=bearer(token))).status_code == 200
    assert (await client.post("/v1/auth/logout", headers=bearer(token))).status_code == 204
    for method in ("GET", "POST"):
        response = await client.request(
            method, "/v1/db/tasks", headers=bearer(token), json={"title": "x"}
        )
        assert (response.status_code, response.json()["code"]) == (401, "session_revoked")


async def test_api_keys_on_the_data_api(client: Client, orgs: dict[str, Any]) -> None:
    a = orgs["a"]
    owner = bearer(a["owner_tokens"]["access_token"])
    reader = (
        await client.post(
            f"/v1/orgs/{a['org']}/api-keys", headers=owner, json={"name": "r", "role": "viewer"}
        )
    ).json()
    writer = (
        await client.post(
            f"/v1/orgs/{a['org']}/api-keys", headers=owner, json={"name": "w", "role": "admin"}
        )
    ).json()
    rows = await client.get("/v1/db/tasks?select=org_id", headers={"apikey": reader["key"]})
    assert rows.status_code == 200
    assert {r["org_id"] for r in rows.json()} == {a["org"]}
    refused = await client.post(
        "/v1/db/tasks", headers={"apikey": reader["key"]}, json={"title": "no"}
    )
    assert refused.status_code == 403
    created = await client.post(
        "/v1/db/tasks",
        headers={"Authorization": f"Bearer {writer['key']}", "Prefer": "return=representation"},
        json={"title": "by key"},
    )
    assert created.status_code == 201
    assert created.json()[0]["created_by"] is None
    await client.delete(f"/v1/orgs/{a['org']}/api-keys/{writer['id']}", headers=owner)
    revoked = await client.get("/v1/db/tasks", headers={"apikey": writer["key"]})
    assert revoked.status_code == 401


async def test_nul_bytes_anywhere_are_a_400(client: Client, orgs: dict[str, Any]) -> None:
    headers = bearer(orgs["a"]["token"])
    for method, url, body in (
        ("GET", "/v1/db/tasks?title=eq.a%00b", None),
        ("GET", "/v1/db/tasks?points=in.(1,%00)", None),
        ("GET", "/v1/db/tasks?title=like.%00*", None),
        ("PATCH", "/v1/db/tasks?title=eq.%00", {"title": "x"}),
        ("POST", "/v1/db/tasks", {"title": "a\u0000b"}),
    ):
        response = await client.request(method, url, headers=headers, json=body)
        assert response.status_code == 400, (url, response.text)


async def test_lone_surrogates_are_a_400_not_an_outage(
    client: Client, orgs: dict[str, Any]
) -> None:
    headers = {**bearer(orgs["a"]["token"]), "content-type": "application/json"}
    body = b'{"title": "bad \\ud800 text"}'
    insert = await client.post("/v1/db/tasks", headers=headers, content=body)
    assert insert.status_code == 400, insert.text
    signup = await client.post(
        "/v1/auth/signup",
        headers={"content-type": "application/json"},
        content=b'{"email": "x\\ud800@example.test", "password": "long enough password 1"}',
    )
    assert signup.status_code == 400, signup.text
    document = await client.post("/v1/docs/notes", headers=headers, content=body)
    assert document.status_code == 400, document.text
