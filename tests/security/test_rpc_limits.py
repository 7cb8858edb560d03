"""Limits on functions and on written representations, attacked through the gateway:

- ``Prefer: handling=strict, max-affected=N`` bounds the rows a function CHANGES, whatever
  its answer is filtered, limited or shaped into (``?id=eq.-1`` once let a function change
  5 rows under max-affected=1), and whatever it returns (void too);
- an org's ``rows_per_response`` bounds a function's rows (JSON and CSV, scalar sets too)
  as it bounds a table read, and a write's ``return=representation``: a write whose
  representation would be longer is refused whole (nothing written), since a write's
  answer cannot be paged afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import make_platform_admin
from tests.support.http import bearer, member_tokens, new_user

Client = AsyncTestClient[OrgbaseApp]
STRICT_ONE = "handling=strict, max-affected=1"


async def _org(client: Client) -> dict[str, str]:
    _, tokens = await member_tokens(client, ())
    return bearer(tokens["owner"])


async def _items(client: Client, owner: dict[str, str], count: int) -> list[int]:
    made = await client.post(
        "/v1/db/items",
        headers={**owner, "Prefer": "return=representation"},
        json=[{"title": f"item {n}", "status": "open"} for n in range(count)],
    )
    assert made.status_code == 201, made.text
    return [row["id"] for row in made.json()]


async def _open_items(client: Client, owner: dict[str, str]) -> int:
    listed = await client.get("/v1/db/items?status=eq.open", headers=owner)
    return len(listed.json())


@pytest.mark.parametrize(
    "shaping", ["id=eq.-1", "offset=10", "select=id&limit=1", "status=eq.nothing&offset=3"]
)
async def test_max_affected_counts_rows_the_function_changed(client: Client, shaping: str) -> None:
    owner = await _org(client)
    ids = await _items(client, owner, 5)
    attack = await client.post(
        f"/v1/db/rpc/close_items?{shaping}",
        headers={**owner, "Prefer": STRICT_ONE},
        json={"ids": ids},
    )
    assert attack.status_code == 400, attack.text
    assert attack.json()["code"] == "PGRST124"
    assert "5 rows" in attack.json()["details"]
    assert await _open_items(client, owner) == 5  # nothing changed
    # Within the bound: the change goes through.
    one = await client.post(
        f"/v1/db/rpc/close_items?{shaping}",
        headers={**owner, "Prefer": STRICT_ONE},
        json={"ids": ids[:1]},
    )
    assert one.status_code == 200, one.text
    assert await _open_items(client, owner) == 4


async def test_max_affected_binds_a_function_that_returns_nothing(client: Client) -> None:
    owner = await _org(client)
    made = await client.post(
        "/v1/db/tasks", headers=owner, json=[{"title": f"t{n}"} for n in range(3)]
    )
    assert made.status_code == 201
    attack = await client.post(
        "/v1/db/rpc/touch_tasks", headers={**owner, "Prefer": STRICT_ONE}, json={}
    )
    assert (attack.status_code, attack.json()["code"]) == (400, "PGRST124"), attack.text
    done = await client.get("/v1/db/tasks?done=is.true", headers=owner)
    assert done.json() == []


@pytest.fixture(scope="module")
async def limited(client: Client, settings: Settings) -> dict[str, Any]:
    """An org with 5 tasks and rows_per_response = 2."""
    org_id, tokens = await member_tokens(client, ())
    owner = bearer(tokens["owner"])
    made = await client.post(
        "/v1/db/tasks", headers=owner, json=[{"title": f"t{n}", "points": n} for n in range(5)]
    )
    assert made.status_code == 201
    operator, operator_tokens = await new_user(client)
    await make_platform_admin(settings, operator["id"])
    limits = await client.put(
        f"/v1/platform/orgs/{org_id}/limits",
        headers=bearer(operator_tokens["access_token"]),
        json={"rows_per_response": 2},
    )
    assert limits.status_code == 200, limits.text
    return {"owner": owner}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/db/rpc/tasks_over?min_points=0", None),
        ("GET", "/v1/db/rpc/tasks_over?min_points=0&limit=50", None),
        ("POST", "/v1/db/rpc/tasks_over", {"min_points": 0}),
        ("GET", "/v1/db/rpc/task_titles", None),
        ("GET", "/v1/db/rpc/task_titles?limit=50", None),
        ("POST", "/v1/db/rpc/task_titles", {}),
    ],
)
async def test_function_rows_are_capped_like_reads(
    client: Client, limited: dict[str, Any], method: str, path: str, body: Any
) -> None:
    owner = limited["owner"]
    table = await client.get("/v1/db/tasks", headers=owner)
    assert len(table.json()) == 2  # what reads already did
    answer = await client.request(method, path, headers=owner, json=body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()) == 2, answer.text
    assert answer.headers["content-range"] == "0-1/*"


async def test_function_csv_is_capped(client: Client, limited: dict[str, Any]) -> None:
    answer = await client.get(
        "/v1/db/rpc/tasks_over?min_points=0&select=title&order=points",
        headers={**limited["owner"], "Accept": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.text.splitlines() == ["title", "t0", "t1"]


async def _count(client: Client, owner: dict[str, str], query: str = "") -> int:
    answer = await client.get(f"/v1/db/tasks?{query}", headers={**owner, "Prefer": "count=exact"})
    return int(answer.headers["content-range"].split("/")[1])


async def test_a_representation_over_the_limit_is_refused_whole(
    client: Client, limited: dict[str, Any]
) -> None:
    owner = limited["owner"]
    representation = {**owner, "Prefer": "return=representation"}
    assert await _count(client, owner) == 5
    insert = await client.post(
        "/v1/db/tasks", headers=representation, json=[{"title": f"n{n}"} for n in range(3)]
    )
    assert insert.status_code == 400, insert.text
    assert insert.json()["code"] == "rows_per_response_exceeded"
    assert await _count(client, owner) == 5  # nothing written
    update = await client.patch(
        "/v1/db/tasks?points=gte.0", headers=representation, json={"title": "changed"}
    )
    assert (update.status_code, update.json()["code"]) == (400, "rows_per_response_exceeded")
    assert await _count(client, owner, "title=eq.changed") == 0
    delete = await client.delete("/v1/db/tasks?points=gte.0", headers=representation)
    assert (delete.status_code, delete.json()["code"]) == (400, "rows_per_response_exceeded")
    assert await _count(client, owner) == 5
    upsert = await client.post(
        "/v1/db/tasks",
        headers={**representation, "Prefer": "return=representation, missing=default"},
        json=[{"title": "m1"}, {"title": "m2", "points": 1}, {"title": "m3"}],
    )
    assert (upsert.status_code, upsert.json()["code"]) == (400, "rows_per_response_exceeded")
    assert await _count(client, owner) == 5
    # Within the limit, or without a representation: as before.
    two = await client.post(
        "/v1/db/tasks", headers=representation, json=[{"title": "w1"}, {"title": "w2"}]
    )
    assert two.status_code == 201, two.text
    assert len(two.json()) == 2
    assert await _count(client, owner) == 7
    minimal = await client.patch("/v1/db/tasks?points=gte.0", headers=owner, json={"done": True})
    assert minimal.status_code == 204, minimal.text
