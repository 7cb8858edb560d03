"""Supabase's Python PostgREST client, unchanged, against /v1/db."""

from __future__ import annotations

from typing import Any, cast

import pytest
from litestar.testing import AsyncTestClient
from postgrest import AsyncPostgrestClient
from postgrest.exceptions import APIError
from postgrest.types import CountMethod

from orgbase.platform.app import OrgbaseApp
from tests.support.http import create_org, new_user, sign_in


@pytest.fixture
async def postgrest(client: AsyncTestClient[OrgbaseApp]) -> AsyncPostgrestClient:
    user, tokens = await new_user(client)
    org_id = await create_org(client, tokens)
    access = (await sign_in(client, user["email"], org_id))["access_token"]
    # The client's own httpx session is replaced by the in-process app's (also httpx).
    return AsyncPostgrestClient(
        "http://testserver.local/v1/db",
        headers={"Authorization": f"Bearer {access}"},
        http_client=client,
    )


def rows(response: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = response.data
    return data


async def test_the_supabase_client_works_unchanged(postgrest: AsyncPostgrestClient) -> None:
    inserted = (
        await postgrest.table("tasks")
        .insert(
            [
                {"title": "alpha", "points": 1, "tags": ["x"]},
                {"title": "beta", "points": 2, "tags": ["y"]},
                {"title": "gamma", "points": 3, "tags": ["x", "y"]},
            ]
        )
        .execute()
    )
    assert [r["title"] for r in rows(inserted)] == ["alpha", "beta", "gamma"]
    selected = (
        await postgrest.table("tasks")
        .select("id,title")
        .gte("points", 2)
        .order("points", desc=True)
        .execute()
    )
    assert [r["title"] for r in rows(selected)] == ["gamma", "beta"]
    filtered = (
        await postgrest.table("tasks")
        .select("title")
        .in_("title", ["alpha", "gamma"])
        .order("title")
        .execute()
    )
    assert [r["title"] for r in rows(filtered)] == ["alpha", "gamma"]
    liked = await postgrest.table("tasks").select("title").ilike("title", "%ET%").execute()
    assert [r["title"] for r in rows(liked)] == ["beta"]
    contains = (
        await postgrest.table("tasks")
        .select("title")
        .contains("tags", ["x"])
        .order("title")
        .execute()
    )
    assert [r["title"] for r in rows(contains)] == ["alpha", "gamma"]
    either = (
        await postgrest.table("tasks")
        .select("title")
        .or_("points.eq.1,title.eq.beta")
        .order("title")
        .execute()
    )
    assert [r["title"] for r in rows(either)] == ["alpha", "beta"]
    counted = (
        await postgrest.table("tasks").select("title", count=CountMethod.exact).limit(1).execute()
    )
    assert counted.count == 3
    assert len(rows(counted)) == 1
    single = await postgrest.table("tasks").select("title").eq("title", "beta").single().execute()
    assert single.data == {"title": "beta"}
    updated = await postgrest.table("tasks").update({"done": True}).eq("title", "alpha").execute()
    assert rows(updated)[0]["done"] is True
    alpha_id = rows(updated)[0]["id"]
    upserted = await postgrest.table("tasks").upsert({"id": alpha_id, "title": "alpha 2"}).execute()
    assert rows(upserted)[0]["title"] == "alpha 2"
    deleted = await postgrest.table("tasks").delete().eq("id", alpha_id).execute()
    assert [r["id"] for r in rows(deleted)] == [alpha_id]
    left = await postgrest.table("tasks").select("title").order("title").execute()
    assert [r["title"] for r in rows(left)] == ["beta", "gamma"]


async def test_errors_reach_the_client_as_api_errors(postgrest: AsyncPostgrestClient) -> None:
    with pytest.raises(APIError) as caught:
        await postgrest.table("tasks").insert({"title": None}).execute()
    assert caught.value.code == "23502"
    with pytest.raises(APIError) as missing:
        await postgrest.table("no_such_table").select("*").execute()
    assert missing.value.code == "PGRST205"


def params(values: dict[str, Any]) -> dict[str, str]:
    """The client's stubs type arguments as strings; it sends any JSON."""
    return cast("dict[str, str]", values)


async def test_rpc_through_the_supabase_client(postgrest: AsyncPostgrestClient) -> None:
    await (
        postgrest.table("tasks")
        .insert([{"title": "alpha", "points": 1}, {"title": "beta", "points": 5}])
        .execute()
    )
    scalar = await postgrest.rpc("add", params({"a": 1, "b": 2})).execute()
    assert scalar.data == 3
    by_get = await postgrest.rpc("add", params({"a": 5}), get=True).execute()
    assert by_get.data == 6
    filtered = (
        await postgrest.rpc("tasks_over", params({"min_points": 0}))
        .select("title")
        .eq("title", "beta")
        .execute()
    )
    assert rows(filtered) == [{"title": "beta"}]
    ordered = (
        await postgrest.rpc("tasks_over", params({"min_points": 0}))
        .select("title")
        .order("title")
        .execute()
    )
    assert [r["title"] for r in rows(ordered)] == ["alpha", "beta"]
    created = await postgrest.rpc("add_task", {"title": "from rpc"}).execute()
    assert cast("dict[str, Any]", created.data)["title"] == "from rpc"
    with pytest.raises(APIError) as raised:
        await postgrest.rpc("fail", {"message": "nope"}).execute()
    assert (raised.value.code, raised.value.message) == ("P0001", "nope")
    assert raised.value.hint == "try a smaller one"
    with pytest.raises(APIError) as unknown:
        await postgrest.rpc("no_such_function", {}).execute()
    assert unknown.value.code == "PGRST202"


async def test_csv_and_a_range_past_the_end(postgrest: AsyncPostgrestClient) -> None:
    new_rows: list[dict[str, Any]] = [
        {"title": "alpha", "points": 1},
        {"title": "b,eta", "points": None},
    ]
    await postgrest.table("tasks").insert(new_rows).execute()
    csv = await postgrest.table("tasks").select("title,points").order("title").csv().execute()
    assert csv.data == 'title,points\nalpha,1\n"b,eta",\n'
    with pytest.raises(APIError) as past:
        await (
            postgrest.table("tasks").select("title", count=CountMethod.exact).range(5, 9).execute()
        )
    assert past.value.code == "PGRST103"
    assert past.value.details == "An offset of 5 was requested, but there are only 2 rows."
