"""Per-org limits: set by platform admins (bad input refused), enforced per API family with
429 and the RateLimit headers, rows per response, storage quotas that refuse writes and
delete nothing, realtime connections; usage figures that match the requests sent."""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import make_platform_admin, owner_connection
from tests.support.http import bearer, member_tokens, new_user

Client = AsyncTestClient[OrgbaseApp]
POLICY = re.compile(r'^"(data|docs|kv|realtime)";q=(\d+);w=10$')
REMAINING = re.compile(r'^"(data|docs|kv|realtime)";r=(\d+);t=(\d+)$')


@pytest.fixture(scope="module")
async def platform_admin(client: Client, settings: Settings) -> dict[str, str]:
    user, tokens = await new_user(client)
    await make_platform_admin(settings, user["id"])
    return bearer(tokens["access_token"])


async def fresh_org(client: Client) -> tuple[str, dict[str, str]]:
    """A new org (its own allowances) and its owner's headers, the org active."""
    org_id, tokens = await member_tokens(client, ())
    return org_id, bearer(tokens["owner"])


async def set_limits(
    client: Client, admin: dict[str, str], org_id: str, **limits: int | None
) -> dict[str, Any]:
    response = await client.put(f"/v1/platform/orgs/{org_id}/limits", headers=admin, json=limits)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- setting limits ---------------------------------------------------------------------


async def test_limits_read_and_set_as_one_flat_object(
    client: Client, platform_admin: dict[str, str], settings: Settings
) -> None:
    org_id, owner = await fresh_org(client)
    path = f"/v1/platform/orgs/{org_id}/limits"
    before = (await client.get(path, headers=platform_admin)).json()
    assert before["data_requests_per_minute"] == settings.limits.data_requests_per_minute
    assert set(before) >= {"kv_requests_per_minute", "document_storage_bytes", "rows_per_response"}
    after = await set_limits(client, platform_admin, org_id, kv_requests_per_minute=77)
    assert after == {**before, "kv_requests_per_minute": 77}
    assert (await client.get(path, headers=platform_admin)).json() == after
    # null puts a limit back to its default; the others stay.
    await set_limits(client, platform_admin, org_id, rows_per_response=5)
    back = await set_limits(client, platform_admin, org_id, rows_per_response=None)
    assert back == before
    # Only platform admins: not even the org's owner.
    refused = await client.get(path, headers=owner)
    assert (refused.status_code, refused.json()["code"]) == (403, "platform_admin_required")
    refused = await client.put(path, headers=owner, json={"kv_requests_per_minute": 10**8})
    assert refused.status_code == 403
    missing = await client.get(
        "/v1/platform/orgs/00000000-0000-0000-0000-000000000000/limits", headers=platform_admin
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "org_not_found")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"data_requests_per_minute": -1}, "invalid_limit"),
        ({"data_requests_per_minute": 0}, "invalid_limit"),
        ({"concurrent_statements": 10**12}, "invalid_limit"),
        ({"document_storage_bytes": 2**80}, "invalid_limit"),
        ({"rows_per_response": 1.5}, "invalid_limit"),
        ({"rows_per_response": "10"}, "invalid_limit"),
        ({"rows_per_response": True}, "invalid_limit"),
        ({"requests_per_minute": 10}, "unknown_limit"),
        ({"kv_requests_per_minute": 10, "bogus": 1}, "unknown_limit"),
        ([1, 2], "invalid_limits"),
        ("limits", "invalid_limits"),
    ],
)
async def test_nonsense_limits_are_a_400_and_change_nothing(
    client: Client, platform_admin: dict[str, str], body: Any, code: str
) -> None:
    org_id, _ = await fresh_org(client)
    path = f"/v1/platform/orgs/{org_id}/limits"
    before = (await client.get(path, headers=platform_admin)).json()
    response = await client.put(path, headers=platform_admin, json=body)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert (await client.get(path, headers=platform_admin)).json() == before


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"rows_per_response": \xff}',
        b"[" * 200 + b"]" * 200,
        b'{"rows_per_response": \xd9\xa3}',
    ],
    ids=["truncated", "invalid utf-8", "deep nesting", "arabic-indic digit"],
)
async def test_limit_bodies_below_the_json_level_are_a_400(
    client: Client, platform_admin: dict[str, str], raw: bytes
) -> None:
    org_id, _ = await fresh_org(client)
    response = await client.put(
        f"/v1/platform/orgs/{org_id}/limits",
        headers={**platform_admin, "content-type": "application/json"},
        content=raw,
    )
    assert response.status_code == 400
    assert isinstance(response.json()["code"], str)


# -- requests per minute, per API family ------------------------------------------------


def check_headers(response: Any, family: str, limit: int) -> int:
    policy = POLICY.match(response.headers["ratelimit-policy"])
    remaining = REMAINING.match(response.headers["ratelimit"])
    assert policy is not None, response.headers["ratelimit-policy"]
    assert remaining is not None, response.headers["ratelimit"]
    assert (policy.group(1), int(policy.group(2))) == (family, limit)
    assert remaining.group(1) == family
    return int(remaining.group(2))


FAMILIES = [
    ("data", "data_requests_per_minute", "GET", "/v1/db/tasks", None),
    ("docs", "docs_requests_per_minute", "GET", "/v1/docs/notes", None),
    ("kv", "kv_requests_per_minute", "GET", "/v1/kv/some-key", None),
    ("realtime", "realtime_publishes_per_minute", "POST", "/v1/realtime/room", {"event": "x"}),
]


@pytest.mark.parametrize(("family", "limit_name", "method", "path", "body"), FAMILIES)
async def test_each_family_answers_429_with_the_headers(
    client: Client,
    platform_admin: dict[str, str],
    family: str,
    limit_name: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    org_id, owner = await fresh_org(client)
    # 18 a minute: a bucket of 3 (ten seconds' worth), refilled one every 3.3 s.
    await set_limits(client, platform_admin, org_id, **{limit_name: 18})
    remaining = []
    for _ in range(3):
        response = await client.request(method, path, headers=owner, json=body)
        assert response.status_code < 429, response.text
        remaining.append(check_headers(response, family, 3))
    assert remaining == [2, 1, 0]
    refused = await client.request(method, path, headers=owner, json=body)
    assert refused.status_code == 429
    assert refused.json()["code"] == "org_rate_limited"
    assert refused.json()["details"] == {"family": family, "limit_per_minute": 18}
    assert 1 <= int(refused.headers["retry-after"]) <= 4
    assert check_headers(refused, family, 3) == 0
    # Another org, and another family of the same org, are not affected.
    other_org, other = await fresh_org(client)
    assert (await client.request(method, path, headers=other, json=body)).status_code < 429
    other_family = "/v1/kv/x" if family != "kv" else "/v1/db/tasks"
    assert (await client.get(other_family, headers=owner)).status_code < 429
    del other_org


async def test_routes_outside_the_families_carry_no_rate_headers(client: Client) -> None:
    _, owner = await fresh_org(client)
    response = await client.get("/v1/auth/user", headers=owner)
    assert response.status_code == 200
    assert "ratelimit" not in response.headers


# -- rows, storage ----------------------------------------------------------------------


async def test_rows_per_response_caps_every_read(
    client: Client, platform_admin: dict[str, str]
) -> None:
    org_id, owner = await fresh_org(client)
    inserted = await client.post(
        "/v1/db/tasks", headers=owner, json=[{"title": f"t{n}"} for n in range(6)]
    )
    assert inserted.status_code == 201
    assert len((await client.get("/v1/db/tasks", headers=owner)).json()) == 6
    await set_limits(client, platform_admin, org_id, rows_per_response=4)
    assert len((await client.get("/v1/db/tasks", headers=owner)).json()) == 4
    assert len((await client.get("/v1/db/tasks?limit=2", headers=owner)).json()) == 2
    assert len((await client.get("/v1/db/tasks?limit=50", headers=owner)).json()) == 4


async def test_statement_timeout_stops_a_long_read(
    client: Client, platform_admin: dict[str, str], settings: Settings
) -> None:
    org_id, owner = await fresh_org(client)
    async with owner_connection(settings) as connection, connection.transaction():
        # Bulk rows without audit records and row events (the owner is a superuser here).
        await connection.execute("SET LOCAL session_replication_role = replica")
        await connection.execute(
            "INSERT INTO api.items (org_id, title)"
            " SELECT $1, 'row ' || n FROM generate_series(1, 200000) AS n",
            uuid.UUID(org_id),
        )
    slow = "/v1/db/items?title=like.*zz*&limit=1"
    assert (await client.get(slow, headers=owner)).status_code == 200
    await set_limits(client, platform_admin, org_id, statement_timeout_ms=1)
    stopped = await client.get(slow, headers=owner)
    assert (stopped.status_code, stopped.json()["code"]) == (504, "statement_timeout")
    # The org's next statements run as before (with a sane limit again).
    await set_limits(client, platform_admin, org_id, statement_timeout_ms=None)
    assert (await client.get(slow, headers=owner)).status_code == 200


async def test_cache_storage_quota_refuses_writes_and_deletes_nothing(
    client: Client, platform_admin: dict[str, str]
) -> None:
    org_id, owner = await fresh_org(client)
    await set_limits(client, platform_admin, org_id, cache_storage_bytes=300)
    assert (
        await client.put("/v1/kv/a", headers=owner, json={"value": "x" * 100})
    ).status_code == 200
    assert (
        await client.put("/v1/kv/b", headers=owner, json={"value": "y" * 100})
    ).status_code == 200
    over = await client.put("/v1/kv/c", headers=owner, json={"value": "z" * 100})
    assert (over.status_code, over.json()["code"]) == (409, "cache_storage_exceeded")
    assert over.json()["details"]["limit_bytes"] == 300
    # Lowered below what the org holds: writes that grow it are refused, nothing goes.
    await set_limits(client, platform_admin, org_id, cache_storage_bytes=50)
    for key in ("a", "b"):
        assert (await client.get(f"/v1/kv/{key}", headers=owner)).status_code == 200
    grow = await client.put("/v1/kv/a", headers=owner, json={"value": "x" * 150})
    assert (grow.status_code, grow.json()["code"]) == (409, "cache_storage_exceeded")
    counter = await client.post("/v1/kv/n/increment", headers=owner, json={"by": 1})
    assert (counter.status_code, counter.json()["code"]) == (409, "cache_storage_exceeded")
    assert (await client.get("/v1/kv/a", headers=owner)).json()["value"] == "x" * 100
    # Deleting frees room: with the limit back up, the write goes through.
    assert (await client.delete("/v1/kv/b", headers=owner)).status_code == 204
    await set_limits(client, platform_admin, org_id, cache_storage_bytes=300)
    assert (
        await client.put("/v1/kv/c", headers=owner, json={"value": "z" * 100})
    ).status_code == 200


async def test_document_storage_quota_refuses_writes_and_deletes_nothing(
    client: Client, platform_admin: dict[str, str]
) -> None:
    org_id, owner = await fresh_org(client)
    await set_limits(client, platform_admin, org_id, document_storage_bytes=3000)
    first = await client.post("/v1/docs/notes", headers=owner, json={"text": "a" * 1200})
    assert first.status_code == 201, first.text
    second = await client.post("/v1/docs/notes", headers=owner, json={"text": "b" * 1200})
    assert second.status_code == 201, second.text
    over = await client.post("/v1/docs/notes", headers=owner, json={"text": "c" * 1200})
    assert (over.status_code, over.json()["code"]) == (409, "document_storage_exceeded")
    # Lowered below what the org holds: updates refused too, every document still there.
    await set_limits(client, platform_admin, org_id, document_storage_bytes=1000)
    document_id = first.json()["_id"]
    if isinstance(document_id, dict):
        document_id = document_id["$oid"]
    update = await client.patch(
        f"/v1/docs/notes/{document_id}", headers=owner, json={"$set": {"text": "longer" * 400}}
    )
    assert (update.status_code, update.json()["code"]) == (409, "document_storage_exceeded")
    listed = await client.get("/v1/docs/notes", headers=owner)
    assert listed.status_code == 200
    assert len(listed.json()) == 2


# -- usage ------------------------------------------------------------------------------


async def test_usage_matches_the_requests_sent(
    client: Client, platform_admin: dict[str, str]
) -> None:
    org_id, owner = await fresh_org(client)
    inserted = await client.post(
        "/v1/db/tasks", headers=owner, json=[{"title": f"u{n}"} for n in range(3)]
    )
    assert inserted.status_code == 201
    reads = [await client.get("/v1/db/tasks", headers=owner) for _ in range(5)]
    assert all(r.status_code == 200 for r in reads)
    for n in range(4):
        assert (
            await client.put(f"/v1/kv/k{n}", headers=owner, json={"value": n})
        ).status_code == 200
    for _ in range(2):
        assert (await client.get("/v1/docs/notes", headers=owner)).status_code == 200
    for _ in range(3):
        published = await client.post("/v1/realtime/room", headers=owner, json={"event": "e"})
        assert published.status_code == 202

    response = await client.get(f"/v1/orgs/{org_id}/usage?granularity=day", headers=owner)
    assert response.status_code == 200, response.text
    periods = response.json()["usage"]
    assert len(periods) == 1
    usage = periods[0]
    assert usage["requests_data"] == 6  # the insert and five reads
    assert usage["rows_written"] == 3
    assert usage["rows_read"] == 15
    assert usage["requests_kv"] == 4
    assert usage["requests_docs"] == 2
    assert usage["requests_realtime"] == 3
    assert usage["realtime_messages"] == 3
    assert usage["cache_bytes"] > 0
    read_bytes = sum(len(r.content) for r in reads)
    assert usage["response_bytes"] >= read_bytes

    # The platform export carries the same figures, as JSON and as CSV.
    everyone = await client.get("/v1/platform/usage?granularity=day", headers=platform_admin)
    assert everyone.status_code == 200
    mine = [row for row in everyone.json()["usage"] if row["org_id"] == org_id]
    assert len(mine) == 1
    # The usage answer just read is itself response bytes of the org: all else is equal.
    assert mine[0]["response_bytes"] > usage["response_bytes"]
    without_bytes = {k: v for k, v in usage.items() if k != "response_bytes"}
    assert {k: v for k, v in mine[0].items() if k != "response_bytes"} == {
        **without_bytes,
        "org_id": org_id,
    }
    exported = await client.get(
        "/v1/platform/usage?granularity=day", headers={**platform_admin, "accept": "text/csv"}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    row = next(r for r in rows if r["org_id"] == org_id)
    assert int(row["requests_data"]) == 6
    assert int(row["rows_read"]) == 15
    as_param = await client.get("/v1/platform/usage?format=csv", headers=platform_admin)
    assert as_param.text.startswith("org_id,period,")


async def test_usage_is_for_admins_and_checks_its_parameters(
    client: Client, platform_admin: dict[str, str]
) -> None:
    org_id, tokens = await member_tokens(client, ("member",))
    member = bearer(tokens["member"])
    refused = await client.get(f"/v1/orgs/{org_id}/usage", headers=member)
    assert refused.status_code == 403
    owner = bearer(tokens["owner"])
    for query, code in (
        ("granularity=week", "invalid_granularity"),
        ("from=yesterday", "invalid_time"),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "invalid_time_range"),
        ("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "invalid_time_range"),
        ("from=%D9%A3", "invalid_time"),
    ):
        response = await client.get(f"/v1/orgs/{org_id}/usage?{query}", headers=owner)
        assert (response.status_code, response.json()["code"]) == (400, code), query
    not_admin = await client.get("/v1/platform/usage", headers=owner)
    assert not_admin.status_code == 403
    bad_format = await client.get("/v1/platform/usage?format=xml", headers=platform_admin)
    assert (bad_format.status_code, bad_format.json()["code"]) == (400, "invalid_format")
