"""The data API, verb by verb and operator by operator, against PostgreSQL through RLS."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, member_tokens, new_user

Client = AsyncTestClient[OrgbaseApp]


@pytest.fixture(scope="module")
async def world(client: Client) -> dict[str, Any]:
    org_a, a = await member_tokens(client, ("admin", "member", "viewer"))
    org_b, b = await member_tokens(client, ("member",))
    owner = bearer(a["owner"])
    people = await client.post(
        "/v1/db/people",
        headers={**owner, "Prefer": "return=representation"},
        json=[{"name": "Ada", "email": "ada@a.test"}, {"name": "Bob", "email": "bob@a.test"}],
    )
    assert people.status_code == 201, people.text
    ada, bob = people.json()
    tasks = [
        {
            "title": "write docs",
            "done": False,
            "points": 3,
            "tags": ["docs"],
            "data": {"k": "v", "n": 1},
            "due": "2026-12-01",
            "owner_id": ada["id"],
        },
        {
            "title": "fix bug",
            "done": True,
            "points": 5,
            "tags": ["bug", "urgent"],
            "data": {"k": "w", "n": 2},
            "due": "2026-11-30",
            "owner_id": bob["id"],
        },
        {
            "title": "Plan release",
            "done": False,
            "points": None,
            "tags": [],
            "data": None,
            "due": None,
            "owner_id": ada["id"],
        },
        {
            "title": "review, merge",
            "done": True,
            "points": 1,
            "tags": ["review"],
            "data": {"k": "x", "n": 3},
            "due": "2026-12-24",
            "owner_id": None,
        },
    ]
    made = await client.post(
        "/v1/db/tasks", headers={**owner, "Prefer": "return=representation"}, json=tasks
    )
    assert made.status_code == 201, made.text
    first = made.json()[0]["id"]
    comments = await client.post(
        "/v1/db/comments",
        headers=owner,
        json=[{"task_id": first, "body": "c1"}, {"task_id": first, "body": "c2"}],
    )
    assert comments.status_code == 201
    other = await client.post(
        "/v1/db/tasks",
        headers={**bearer(b["owner"]), "Prefer": "return=representation"},
        json={"title": "B's secret", "points": 99},
    )
    assert other.status_code == 201
    return {
        "a": a,
        "b": b,
        "org_a": org_a,
        "org_b": org_b,
        "ada": ada,
        "bob": bob,
        "tasks": made.json(),
        "b_task": other.json()[0],
    }


async def get(client: Client, token: str, query: str, **headers: str) -> Any:
    return await client.get(f"/v1/db/{query}", headers={**bearer(token), **headers})


def titles(response: Any) -> list[str]:
    assert response.status_code in (200, 206), response.text
    return [row["title"] for row in response.json()]


async def test_select_columns_aliases_casts_and_json(client: Client, world: dict[str, Any]) -> None:
    token = world["a"]["member"]
    rows = (
        await get(
            client, token, "tasks?select=id,name:title,points::text,data->>k,data->n&order=id"
        )
    ).json()
    assert rows[0] == {
        "id": world["tasks"][0]["id"],
        "name": "write docs",
        "points": "3",
        "k": "v",
        "n": 1,
    }
    star = (await get(client, token, "tasks?order=id&limit=1")).json()[0]
    assert set(star) >= {
        "id",
        "title",
        "done",
        "points",
        "tags",
        "data",
        "due",
        "owner_id",
        "org_id",
        "created_by",
    }
    assert star["org_id"] == world["org_a"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("points=eq.3", ["write docs"]),
        ("points=neq.3", ["fix bug", "review, merge"]),
        ("points=gt.1", ["write docs", "fix bug"]),
        ("points=gte.3", ["write docs", "fix bug"]),
        ("points=lt.3", ["review, merge"]),
        ("points=lte.3", ["write docs", "review, merge"]),
        ("title=like.*bug*", ["fix bug"]),
        ("title=ilike.plan*", ["Plan release"]),
        ("title=match.^[a-z]%2B [a-z]%2B$", ["write docs", "fix bug"]),
        ("title=imatch.^PLAN", ["Plan release"]),
        ("points=in.(1,5)", ["fix bug", "review, merge"]),
        ('title=in.("review, merge",nothing)', ["review, merge"]),
        ("points=is.null", ["Plan release"]),
        ("points=not.is.null", ["write docs", "fix bug", "review, merge"]),
        ("done=is.true", ["fix bug", "review, merge"]),
        ("done=is.false", ["write docs", "Plan release"]),
        ("points=not.eq.3", ["fix bug", "review, merge"]),
        ("points=isdistinct.3", ["fix bug", "Plan release", "review, merge"]),
        ("tags=cs.{bug}", ["fix bug"]),
        ("tags=cd.{docs,review,x}", ["write docs", "Plan release", "review, merge"]),
        ("tags=ov.{urgent,review}", ["fix bug", "review, merge"]),
        ('data=cs.{"k":"w"}', ["fix bug"]),
        ("data->>k=eq.x", ["review, merge"]),
        ("due=gte.2026-12-01", ["write docs", "review, merge"]),
        ("title=fts.docs", ["write docs"]),
        ("title=wfts.bug", ["fix bug"]),
        ("or=(points.eq.1,title.eq.write docs)", ["write docs", "review, merge"]),
        ("and=(done.is.true,points.gt.2)", ["fix bug"]),
        ("or=(points.gt.4,and(done.is.false,points.is.null))", ["fix bug", "Plan release"]),
        ("not.or=(points.eq.1,points.is.null)", ["write docs", "fix bug"]),
        ("points=gt.0&points=lt.5", ["write docs", "review, merge"]),
        ("points=in.()", []),
    ],
)
async def test_filters(
    client: Client, world: dict[str, Any], query: str, expected: list[str]
) -> None:
    response = await get(client, world["a"]["viewer"], f"tasks?{query}&order=id")
    assert titles(response) == expected


async def test_order_limit_offset_and_range(client: Client, world: dict[str, Any]) -> None:
    token = world["a"]["viewer"]
    assert titles(await get(client, token, "tasks?order=points.desc.nullslast,id")) == [
        "fix bug",
        "write docs",
        "review, merge",
        "Plan release",
    ]
    assert titles(await get(client, token, "tasks?order=points.asc.nullsfirst")) == [
        "Plan release",
        "review, merge",
        "write docs",
        "fix bug",
    ]
    assert titles(await get(client, token, "tasks?order=data->>k.desc,id&limit=2")) == [
        "Plan release",
        "review, merge",
    ]
    page = await get(client, token, "tasks?order=id&limit=2&offset=1")
    assert titles(page) == ["fix bug", "Plan release"]
    assert page.headers["content-range"] == "1-2/*"
    ranged = await get(client, token, "tasks?order=id", Range="1-2", Prefer="count=exact")
    assert ranged.status_code == 206
    assert titles(ranged) == ["fix bug", "Plan release"]
    assert ranged.headers["content-range"] == "1-2/4"
    whole = await get(client, token, "tasks?order=id", Prefer="count=exact")
    assert (whole.status_code, whole.headers["content-range"]) == (200, "0-3/4")
    empty = await get(client, token, "tasks?title=eq.none", Prefer="count=exact")
    assert empty.headers["content-range"] == "*/0"
    planned = await get(client, token, "tasks?limit=1", Prefer="count=planned")
    assert planned.headers["content-range"].split("/")[1].isdigit()
    bad_range = await get(client, token, "tasks", Range="5-1")
    assert (bad_range.status_code, bad_range.json()["code"]) == (416, "PGRST103")
    head = await client.head(
        "/v1/db/tasks?limit=2", headers={**bearer(token), "Prefer": "count=exact"}
    )
    assert head.status_code == 206
    assert head.headers["content-range"] == "0-1/4"
    assert head.content == b""


async def test_embedding(client: Client, world: dict[str, Any]) -> None:
    token = world["a"]["member"]
    rows = (
        await get(client, token, "tasks?select=title,owner:people(name),comments(body)&order=id")
    ).json()
    assert rows[0] == {
        "title": "write docs",
        "owner": {"name": "Ada"},
        "comments": [{"body": "c1"}, {"body": "c2"}],
    }
    assert rows[3] == {"title": "review, merge", "owner": None, "comments": []}
    by_column = (await get(client, token, "tasks?select=title,owner(name)&order=id&limit=1")).json()
    assert by_column == [{"title": "write docs", "owner": {"name": "Ada"}}]
    reverse = (await get(client, token, "people?select=name,tasks(title)&order=id")).json()
    assert reverse[0] == {
        "name": "Ada",
        "tasks": [{"title": "write docs"}, {"title": "Plan release"}],
    }
    inner = (await get(client, token, "tasks?select=title,people!inner(name)&order=id")).json()
    assert [r["title"] for r in inner] == ["write docs", "fix bug", "Plan release"]
    nested = (
        await get(client, token, "comments?select=body,tasks(title,people(name))&order=id&limit=1")
    ).json()
    assert nested == [{"body": "c1", "tasks": {"title": "write docs", "people": {"name": "Ada"}}}]
    unknown = await get(client, token, "tasks?select=title,nothing(id)")
    assert (unknown.status_code, unknown.json()["code"]) == (400, "PGRST200")


async def test_singular_object(client: Client, world: dict[str, Any]) -> None:
    token = world["a"]["member"]
    one = await get(
        client,
        token,
        "tasks?title=eq.fix bug&select=title",
        Accept="application/vnd.pgrst.object+json",
    )
    assert one.status_code == 200
    assert one.json() == {"title": "fix bug"}
    many = await get(
        client, token, "tasks?select=title", Accept="application/vnd.pgrst.object+json"
    )
    assert (many.status_code, many.json()["code"]) == (406, "PGRST116")
    none = await get(
        client, token, "tasks?title=eq.zzz", Accept="application/vnd.pgrst.object+json"
    )
    assert none.status_code == 406


async def test_insert_return_and_atomic_bulk(client: Client, world: dict[str, Any]) -> None:
    headers = bearer(world["a"]["member"])
    minimal = await client.post("/v1/db/people", headers=headers, json={"name": "Cy"})
    assert (minimal.status_code, minimal.content) == (201, b"")
    full = await client.post(
        "/v1/db/people?select=id,name",
        headers={**headers, "Prefer": "return=representation"},
        json={"name": "Di"},
    )
    assert full.status_code == 201
    assert full.json()[0]["name"] == "Di"
    before = len((await get(client, world["a"]["member"], "people")).json())
    broken = await client.post(
        "/v1/db/people", headers=headers, json=[{"name": "ok 1"}, {"name": None}, {"name": "ok 2"}]
    )
    assert (broken.status_code, broken.json()["code"]) == (400, "23502")
    assert len((await get(client, world["a"]["member"], "people")).json()) == before, (
        "no partial writes"
    )
    mismatched = await client.post(
        "/v1/db/people", headers=headers, json=[{"name": "x"}, {"email": "y"}]
    )
    assert (mismatched.status_code, mismatched.json()["code"]) == (400, "PGRST102")


async def test_an_empty_object_is_a_row_of_defaults(client: Client, world: dict[str, Any]) -> None:
    """As in PostgREST: `{}` asks for every default, so the database judges it (here a
    NOT NULL column without a default refuses it); never a malformed statement."""
    headers = bearer(world["a"]["member"])
    bodies: list[Any] = [{}, [{}, {}]]
    for body in bodies:
        refused = await client.post("/v1/db/people", headers=headers, json=body)
        assert (refused.status_code, refused.json()["code"]) == (400, "23502"), refused.text


async def test_upsert(client: Client, world: dict[str, Any]) -> None:
    headers = {
        **bearer(world["a"]["owner"]),
        "Prefer": "return=representation,resolution=merge-duplicates",
    }
    created = await client.post(
        "/v1/db/people", headers=headers, json={"name": "Eve", "email": "eve@a.test"}
    )
    eve = created.json()[0]
    # A key unique per org names org_id as a conflict target (not as a value).
    merged = await client.post(
        "/v1/db/people?on_conflict=org_id,email",
        headers=headers,
        json={"name": "Eve Updated", "email": "eve@a.test"},
    )
    assert merged.status_code == 201, merged.text
    assert merged.json()[0] == {**eve, "name": "Eve Updated"}
    by_id = await client.post(
        "/v1/db/people", headers=headers, json={"id": eve["id"], "name": "Eve 2"}
    )
    assert by_id.status_code == 201
    assert by_id.json()[0] == {**eve, "name": "Eve 2"}
    ignored = await client.post(
        "/v1/db/people",
        headers={
            **bearer(world["a"]["owner"]),
            "Prefer": "return=representation,resolution=ignore-duplicates",
        },
        json={"id": eve["id"], "name": "ignored"},
    )
    assert ignored.status_code == 201
    assert ignored.json() == []
    assert (
        await get(client, world["a"]["owner"], f"people?id=eq.{eve['id']}&select=name")
    ).json() == [{"name": "Eve 2"}]
    unknown_key = await client.post(
        "/v1/db/people?on_conflict=nope", headers=headers, json={"name": "x"}
    )
    assert unknown_key.status_code == 400


async def test_update_and_delete_need_filters(client: Client, world: dict[str, Any]) -> None:
    headers = {**bearer(world["a"]["owner"]), "Prefer": "return=representation"}
    created = (
        await client.post("/v1/db/tasks", headers=headers, json={"title": "temp", "points": 7})
    ).json()[0]
    everything = await client.patch("/v1/db/tasks", headers=headers, json={"points": 0})
    assert (everything.status_code, everything.json()["code"]) == (400, "PGRST106")
    assert (await client.delete("/v1/db/tasks", headers=headers)).status_code == 400
    patched = await client.patch(
        f"/v1/db/tasks?id=eq.{created['id']}", headers=headers, json={"points": 8}
    )
    assert patched.status_code == 200
    assert patched.json()[0]["points"] == 8
    minimal = await client.patch(
        f"/v1/db/tasks?id=eq.{created['id']}",
        headers=bearer(world["a"]["owner"]),
        json={"done": True},
    )
    assert minimal.status_code == 204
    deleted = await client.delete(f"/v1/db/tasks?id=eq.{created['id']}", headers=headers)
    assert [r["id"] for r in deleted.json()] == [created["id"]]
    assert (await get(client, world["a"]["owner"], f"tasks?id=eq.{created['id']}")).json() == []


async def test_roles_through_rls(client: Client, world: dict[str, Any]) -> None:
    viewer = bearer(world["a"]["viewer"])
    refused = await client.post("/v1/db/tasks", headers=viewer, json={"title": "by viewer"})
    assert (refused.status_code, refused.json()["code"]) == (403, "42501")
    member = {**bearer(world["a"]["member"]), "Prefer": "return=representation"}
    mine = (await client.post("/v1/db/tasks", headers=member, json={"title": "mine"})).json()[0]
    assert (
        await client.patch(f"/v1/db/tasks?id=eq.{mine['id']}", headers=member, json={"points": 2})
    ).json()[0]["points"] == 2
    others = await client.patch(
        f"/v1/db/tasks?id=eq.{world['tasks'][0]['id']}", headers=member, json={"points": 0}
    )
    assert (others.status_code, others.json()) == (200, []), "a member changes only their own rows"
    admin = {**bearer(world["a"]["admin"]), "Prefer": "return=representation"}
    assert (
        len(
            (
                await client.patch(
                    f"/v1/db/tasks?id=eq.{mine['id']}", headers=admin, json={"points": 4}
                )
            ).json()
        )
        == 1
    )
    await client.delete(f"/v1/db/tasks?id=eq.{mine['id']}", headers=admin)


@pytest.mark.parametrize(
    ("method", "query", "body", "status", "code"),
    [
        ("GET", "nowhere", None, 404, "PGRST205"),
        ("GET", "tasks?select=nope", None, 400, "42703"),
        ("GET", "tasks?nope=eq.1", None, 400, "42703"),
        ("GET", "tasks?order=nope", None, 400, "42703"),
        ("GET", "tasks?points=foo.1", None, 400, "PGRST100"),
        ("GET", "tasks?points=eq.abc", None, 400, "22P02"),
        ("GET", "tasks?due=gt.someday", None, 400, "22007"),
        ("GET", "tasks?limit=-1", None, 400, "PGRST100"),
        ("GET", "tasks?limit=ten", None, 400, "PGRST100"),
        ("GET", "tasks?or=(points.eq.1", None, 400, "PGRST100"),
        ("GET", "tasks?select=title::regclass", None, 400, "PGRST100"),
        ("GET", "tasks?title->>x=eq.1", None, 400, "42883"),
        ("POST", "tasks", {"title": "x" * 300}, 400, "23514"),
        ("POST", "tasks", {"title": "t", "points": "many"}, 400, "22P02"),
        ("POST", "tasks", {"title": "t", "owner_id": 999999999}, 409, "23503"),
        ("POST", "tasks", {"title": "t", "nope": 1}, 400, "PGRST204"),
        (
            "POST",
            "tasks",
            {"title": "t", "org_id": "00000000-0000-0000-0000-000000000000"},
            400,
            "PGRST204",
        ),
        ("POST", "tasks", {"title": "nul\u0000byte"}, 400, "22P05"),
        ("POST", "tasks", [1, 2], 400, "PGRST102"),
        ("PATCH", "tasks?id=eq.1", [{"title": "x"}], 400, "PGRST102"),
    ],
)
async def test_errors_are_4xx_in_postgrest_shape(
    client: Client,
    world: dict[str, Any],
    method: str,
    query: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    response = await client.request(
        method, f"/v1/db/{query}", headers=bearer(world["a"]["owner"]), json=body
    )
    assert response.status_code == status, response.text
    error = response.json()
    assert error["code"] == code, error
    assert {"code", "message", "details", "hint"} <= set(error)


async def test_bodies_that_are_not_json(client: Client, world: dict[str, Any]) -> None:
    headers = bearer(world["a"]["owner"])
    garbled = await client.post(
        "/v1/db/tasks", headers={**headers, "content-type": "application/json"}, content=b"{nope"
    )
    assert (garbled.status_code, garbled.json()["code"]) == (400, "PGRST102")
    csv = await client.post(
        "/v1/db/tasks", headers={**headers, "content-type": "text/csv"}, content=b"title\nx"
    )
    assert csv.status_code == 415


async def test_max_rows_caps_every_response(client: Client, world: dict[str, Any]) -> None:
    headers = bearer(world["a"]["owner"])
    await client.post(
        "/v1/db/comments",
        headers=headers,
        json=[{"task_id": world["tasks"][1]["id"], "body": f"bulk {n}"} for n in range(30)],
    )
    # The test app keeps the default cap of 1000; a huge limit is cut to it, not refused.
    response = await get(client, world["a"]["owner"], "comments?limit=999999999&select=id")
    assert response.status_code == 200
    assert len(response.json()) <= 1000


async def test_no_active_org(client: Client) -> None:
    _, tokens = await new_user(client)
    response = await client.get("/v1/db/tasks", headers=bearer(tokens["access_token"]))
    assert (response.status_code, response.json()["code"]) == (403, "no_active_org")
