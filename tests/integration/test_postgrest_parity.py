"""PostgREST behaviours beyond the basics, as its documentation and test suite state them:
CSV reads, 416 past the end, Prefer: missing=default, handling=strict|lenient,
max-affected and tx=rollback (when the operator allows it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.http import org_member
from tests.support.stack import with_overrides


@pytest.fixture
async def member(client: AsyncTestClient[OrgbaseApp]) -> dict[str, str]:
    _, _, headers = await org_member(client)
    rows = [{"title": t, "points": p} for t, p in (("alpha", 1), ("beta", 2), ("gamma", 3))]
    created = await client.post("/v1/db/tasks", headers=headers, json=rows)
    assert created.status_code == 201
    return headers


async def test_csv_reads(client: AsyncTestClient[OrgbaseApp], member: dict[str, str]) -> None:
    csv = await client.get(
        "/v1/db/tasks?select=title,points,tags&order=title&limit=2",
        headers={**member, "Accept": "text/csv"},
    )
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text == "title,points,tags\nalpha,1,\nbeta,2,\n"
    assert csv.headers["content-range"] == "0-1/*"
    empty = await client.get("/v1/db/tasks?title=eq.none", headers={**member, "Accept": "text/csv"})
    assert (empty.status_code, empty.text) == (200, "")
    # Writes answer JSON only, as PostgREST's do for their representation.
    write = await client.post(
        "/v1/db/tasks",
        headers={**member, "Accept": "text/csv", "Prefer": "return=representation"},
        json={"title": "x"},
    )
    assert (write.status_code, write.json()["code"]) == (406, "PGRST107")


async def test_a_range_past_the_end_is_416(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    exact = {**member, "Prefer": "count=exact"}
    past = await client.get("/v1/db/tasks?offset=10", headers=exact)
    assert past.status_code == 416
    body = past.json()
    assert (body["code"], body["message"]) == ("PGRST103", "Requested range not satisfiable")
    assert body["details"] == "An offset of 10 was requested, but there are only 3 rows."
    by_header = await client.get("/v1/db/tasks", headers={**exact, "Range": "5-9"})
    assert by_header.status_code == 416
    at_end = await client.get("/v1/db/tasks?offset=3", headers=exact)
    assert (at_end.status_code, at_end.json()) == (206, [])
    assert at_end.headers["content-range"] == "*/3"
    # Without a count the total is unknown: an empty page, as PostgREST answers.
    unknown = await client.get("/v1/db/tasks?offset=10", headers=member)
    assert (unknown.status_code, unknown.json()) == (200, [])


async def test_missing_default(client: AsyncTestClient[OrgbaseApp], member: dict[str, str]) -> None:
    rows = [{"title": "d1", "done": True}, {"title": "d2"}, {"title": "d3", "points": 7}]
    refused = await client.post("/v1/db/tasks", headers=member, json=rows)
    assert (refused.status_code, refused.json()["code"]) == (400, "PGRST102")
    created = await client.post(
        "/v1/db/tasks",
        headers={**member, "Prefer": "missing=default, return=representation"},
        json=rows,
    )
    assert created.status_code == 201, created.text
    assert "missing=default" in created.headers["preference-applied"]
    got = {r["title"]: (r["done"], r["points"]) for r in created.json()}
    assert got == {"d1": (True, None), "d2": (False, None), "d3": (False, 7)}
    # With columns=, keys outside it are ignored and missing ones take the default.
    with_columns = await client.post(
        "/v1/db/tasks?columns=title,done",
        headers={**member, "Prefer": "missing=default, return=representation"},
        json=[{"title": "c1", "points": 9}, {"title": "c2", "done": True}],
    )
    assert {(r["title"], r["done"], r["points"]) for r in with_columns.json()} == {
        ("c1", False, None),
        ("c2", True, None),
    }
    # All or nothing: one bad row and no row is written.
    bad = await client.post(
        "/v1/db/tasks",
        headers={**member, "Prefer": "missing=default"},
        json=[{"title": "ok"}, {"title": "bad", "points": "x"}],
    )
    assert bad.status_code == 400
    assert (await client.get("/v1/db/tasks?title=eq.ok", headers=member)).json() == []


async def test_handling_strict_and_lenient(
    client: AsyncTestClient[OrgbaseApp], member: dict[str, str]
) -> None:
    lenient = await client.get("/v1/db/tasks", headers={**member, "Prefer": "count=bogus"})
    assert lenient.status_code == 200
    strict = await client.get(
        "/v1/db/tasks", headers={**member, "Prefer": "handling=strict, count=bogus, x"}
    )
    assert (strict.status_code, strict.json()["code"]) == (400, "PGRST122")
    assert strict.json()["details"] == "Invalid preferences: count=bogus, x"
    fine = await client.get(
        "/v1/db/tasks", headers={**member, "Prefer": "handling=strict, count=exact"}
    )
    assert fine.status_code == 200
    assert fine.headers["preference-applied"] == "handling=strict, count=exact"


async def test_max_affected(client: AsyncTestClient[OrgbaseApp], member: dict[str, str]) -> None:
    strict = {**member, "Prefer": "handling=strict, max-affected=2"}
    too_many = await client.patch("/v1/db/tasks?points=gte.1", headers=strict, json={"done": True})
    assert too_many.status_code == 400
    body = too_many.json()
    assert (body["code"], body["details"]) == ("PGRST124", "The query affects 3 rows")
    done = await client.get("/v1/db/tasks?select=done", headers=member)
    assert {r["done"] for r in done.json()} == {False}, "nothing was changed"
    deleted = await client.delete("/v1/db/tasks?points=gte.1", headers=strict)
    assert deleted.status_code == 400
    within = await client.delete("/v1/db/tasks?points=gte.2", headers=strict)
    assert within.status_code == 204
    # Without handling=strict the preference is not applied (as PostgREST).
    ignored = await client.delete(
        "/v1/db/tasks?points=gte.0", headers={**member, "Prefer": "max-affected=0"}
    )
    assert ignored.status_code == 204
    assert (await client.get("/v1/db/tasks", headers=member)).json() == []


@pytest.fixture
async def rollback_client(settings: Settings) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    allowed = with_overrides(settings, data={"allow_tx_rollback": True})
    async with AsyncTestClient(app=create_app(allowed)) as client:
        yield client


async def test_tx_rollback_when_the_operator_allows_it(
    rollback_client: AsyncTestClient[OrgbaseApp],
) -> None:
    client = rollback_client
    _, _, headers = await org_member(client)
    trial = {**headers, "Prefer": "tx=rollback, return=representation"}
    inserted = await client.post("/v1/db/tasks", headers=trial, json={"title": "trial"})
    assert inserted.status_code == 201
    assert inserted.json()[0]["title"] == "trial"
    assert "tx=rollback" in inserted.headers["preference-applied"]
    assert (await client.get("/v1/db/tasks", headers=headers)).json() == []
    kept = await client.post("/v1/db/tasks", headers=headers, json={"title": "kept"})
    assert kept.status_code == 201
    updated = await client.patch("/v1/db/tasks?title=eq.kept", headers=trial, json={"done": True})
    assert updated.json()[0]["done"] is True
    removed = await client.delete("/v1/db/tasks?title=eq.kept", headers=trial)
    assert removed.json()[0]["title"] == "kept"
    called = await client.post("/v1/db/rpc/add_task", headers=trial, json={"title": "by rpc"})
    assert called.json()["title"] == "by rpc"
    left = await client.get("/v1/db/tasks?select=title,done", headers=headers)
    assert left.json() == [{"title": "kept", "done": False}]
