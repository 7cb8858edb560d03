"""/v1/db/rpc/{fn}: PostgREST's function calls, run as the tenant role in the caller's org."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.integration.test_realtime import command, next_message, two_orgs_on_sockets
from tests.support.data import owner_connection
from tests.support.http import org_member


@pytest.fixture
async def member(client: AsyncTestClient[OrgbaseApp]) -> dict[str, str]:
    _, _, headers = await org_member(client)
    for title, points in (("alpha", 1), ("beta", 5), ("gamma", 9)):
        created = await client.post(
            "/v1/db/tasks", headers=headers, json={"title": title, "points": points}
        )
        assert created.status_code == 201
    return headers


async def test_scalar_with_named_arguments_post_and_get(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    posted = await client.post("/v1/db/rpc/add", headers=member, json={"a": 2, "b": 40})
    assert (posted.status_code, posted.json()) == (200, 42)
    defaulted = await client.post("/v1/db/rpc/add", headers=member, json={"a": 2})
    assert defaulted.json() == 3
    got = await client.get("/v1/db/rpc/add?a=1&b=2", headers=member)
    assert (got.status_code, got.json()) == (200, 3)


async def test_set_returning_function_takes_filters_select_order_and_limit(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    rows = await client.get(
        "/v1/db/rpc/tasks_over?min_points=2&select=title,points&order=points.desc",
        headers=member,
    )
    assert rows.status_code == 200
    assert rows.json() == [{"title": "gamma", "points": 9}, {"title": "beta", "points": 5}]
    filtered = await client.post(
        "/v1/db/rpc/tasks_over?select=title&title=eq.beta",
        headers=member,
        json={"min_points": 0},
    )
    assert filtered.json() == [{"title": "beta"}]
    page = await client.post(
        "/v1/db/rpc/tasks_over?select=title&order=title&limit=1&offset=1",
        headers=member,
        json={"min_points": 0},
    )
    assert page.json() == [{"title": "beta"}]
    assert page.headers["content-range"] == "1-1/*"
    table = await client.get("/v1/db/rpc/task_stats?select=n", headers=member)
    assert table.json() == [{"n": 3}]
    scalars = await client.get("/v1/db/rpc/task_titles", headers=member)
    assert scalars.json() == ["alpha", "beta", "gamma"]
    single = await client.get(
        "/v1/db/rpc/tasks_over?min_points=9&select=title",
        headers={**member, "Accept": "application/vnd.pgrst.object+json"},
    )
    assert single.json() == {"title": "gamma"}
    csv = await client.get(
        "/v1/db/rpc/tasks_over?min_points=5&select=title,points&order=points",
        headers={**member, "Accept": "text/csv"},
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text == "title,points\nbeta,5\ngamma,9\n"


async def test_composite_result_is_one_object_and_volatile_needs_post(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    created = await client.post(
        "/v1/db/rpc/add_task", headers=member, json={"title": "delta", "points": 3}
    )
    assert created.status_code == 200
    body = created.json()
    assert (body["title"], body["points"]) == ("delta", 3)
    by_get = await client.get("/v1/db/rpc/add_task?title=nope", headers=member)
    assert (by_get.status_code, by_get.json()["code"]) == (405, "PGRST101")
    listed = await client.get("/v1/db/tasks?select=title&title=eq.nope", headers=member)
    assert listed.json() == []


async def test_void_function_answers_204(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    touched = await client.post("/v1/db/rpc/touch_tasks", headers=member)
    assert (touched.status_code, touched.content) == (204, b"")
    done = await client.get("/v1/db/tasks?select=done", headers=member)
    assert {r["done"] for r in done.json()} == {True}


async def test_json_body_arguments(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    payload = {"nested": {"list": [1, 2]}, "text": "é"}
    named = await client.post("/v1/db/rpc/echo", headers=member, json={"payload": payload})
    assert named.json() == payload
    whole = await client.post(
        "/v1/db/rpc/echo",
        headers={**member, "Prefer": "params=single-object"},
        json=payload,
    )
    assert whole.json() == payload
    assert whole.headers["preference-applied"] == "params=single-object"
    unnamed = await client.post("/v1/db/rpc/echo_body", headers=member, json=payload)
    assert unnamed.json() == payload


async def test_raised_exception_is_p0001_with_message_detail_and_hint(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    failed = await client.post("/v1/db/rpc/fail", headers=member, json={"message": "too big"})
    assert failed.status_code == 400
    body = failed.json()
    assert (body["code"], body["message"]) == ("P0001", "too big")
    assert (body["details"], body["hint"]) == ("it was too big", "try a smaller one")


@pytest.mark.parametrize(
    "name",
    [
        "nope",
        "api.add",
        "%22add%22",
        "add;select",
        "pg_catalog.now",
        "ADD",
        "a" * 300,
    ],
)
async def test_unknown_and_qualified_names_are_pgrst202(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str], name: str
) -> None:
    answer = await client.post(f"/v1/db/rpc/{name}", headers=member, json={"a": 1})
    assert (answer.status_code, answer.json()["code"]) == (404, "PGRST202")


async def test_wrong_argument_names_and_types(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    unknown = await client.post("/v1/db/rpc/add", headers=member, json={"a": 1, "c": 2})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "PGRST202")
    assert "api.add(a, c)" in unknown.json()["message"]
    missing = await client.post("/v1/db/rpc/add", headers=member, json={"b": 2})
    assert missing.json()["code"] == "PGRST202"
    mistyped = await client.post("/v1/db/rpc/add", headers=member, json={"a": "x"})
    assert (mistyped.status_code, mistyped.json()["code"]) == (400, "22P02")
    not_object = await client.post("/v1/db/rpc/add", headers=member, json=[1, 2])
    assert not_object.status_code == 400
    broken = await client.post(
        "/v1/db/rpc/add",
        headers={**member, "Content-Type": "application/json"},
        content=b'{"a": ',
    )
    assert (broken.status_code, broken.json()["code"]) == (400, "PGRST102")
    bad_utf8 = await client.post(
        "/v1/db/rpc/echo",
        headers={**member, "Content-Type": "application/json"},
        content=b'{"payload": "\xff"}',
    )
    assert bad_utf8.status_code == 400
    digits = await client.get("/v1/db/rpc/add?a=\u0661\u0662", headers=member)
    assert (digits.status_code, digits.json()["code"]) == (400, "22P02")


async def test_rls_applies_inside_functions(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    _, _, other = await org_member(client, "other")
    await client.post("/v1/db/tasks", headers=other, json={"title": "theirs", "points": 100})
    seen = await client.get("/v1/db/rpc/other_orgs_tasks", headers=member)
    assert seen.json() == 0
    mine = await client.get("/v1/db/rpc/tasks_over?min_points=0&select=title", headers=member)
    assert "theirs" not in {r["title"] for r in mine.json()}
    # A function's writes land in the caller's org, whatever the body says.
    added = await client.post("/v1/db/rpc/add_task", headers=other, json={"title": "t2"})
    assert added.status_code == 200
    theirs = await client.get("/v1/db/tasks?select=title&title=eq.t2", headers=member)
    assert theirs.json() == []


async def test_viewer_cannot_write_through_a_function(
    client: AsyncTestClient[OrgbaseApp], settings: Settings
) -> None:
    from tests.support.http import bearer, org_with_roles, sign_in

    org_id, people = await org_with_roles(client, ("viewer",))
    viewer = people["viewer"][0]
    headers = bearer((await sign_in(client, viewer["email"], org_id))["access_token"])
    refused = await client.post("/v1/db/rpc/add_task", headers=headers, json={"title": "v"})
    assert (refused.status_code, refused.json()["code"]) == (403, "42501")
    async with owner_connection(settings) as connection:
        count = await connection.fetchval(
            "SELECT count(*) FROM api.tasks WHERE org_id = $1::uuid", org_id
        )
    assert count == 0


async def test_row_events_of_rows_changed_inside_functions(live_server: str) -> None:
    """Rows a function changes reach the org's realtime db:{table} channel (and no other
    org's), as rows changed through /v1/db do."""
    async with two_orgs_on_sockets(live_server) as (http, a, _, sock_a, sock_b):
        await command(sock_a, type="subscribe", channel="db:tasks")
        await command(sock_b, type="subscribe", channel="db:tasks")
        added = await http.post(
            "/v1/db/rpc/add_task",
            headers={"Authorization": f"Bearer {a['token']}"},
            json={"title": "from a function"},
        )
        assert added.status_code == 200
        got = await next_message(sock_a)
        assert (got["channel"], got["event"], got["payload"]["key"]) == (
            "db:tasks",
            "insert",
            {"id": added.json()["id"]},
        )
        touched = await http.post(
            "/v1/db/rpc/touch_tasks", headers={"Authorization": f"Bearer {a['token']}"}
        )
        assert touched.status_code == 204
        assert (await next_message(sock_a))["event"] == "update"
        with pytest.raises(TimeoutError):
            await next_message(sock_b, within=0.7)


async def test_tx_rollback_needs_the_operator(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    ignored = await client.post(
        "/v1/db/rpc/add_task",
        headers={**member, "Prefer": "tx=rollback"},
        json={"title": "kept"},
    )
    assert ignored.status_code == 200
    assert "preference-applied" not in ignored.headers
    kept = await client.get("/v1/db/tasks?select=title&title=eq.kept", headers=member)
    assert kept.json() == [{"title": "kept"}]
    strict = await client.post(
        "/v1/db/rpc/add_task",
        headers={**member, "Prefer": "handling=strict, tx=rollback"},
        json={"title": "strict"},
    )
    assert (strict.status_code, strict.json()["code"]) == (400, "PGRST122")
