"""Times in query strings: a datetime at the edge of what Python or PostgreSQL can hold
(``to=0001-01-01T00:00:00``: the default ``from`` a day before it does not exist), past
them, or not a datetime at all, on every route that takes times (an org's usage, every
org's usage, the audit log), is a 400 with a code, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import make_platform_admin
from tests.support.http import bearer, member_tokens, new_user

Client = AsyncTestClient[OrgbaseApp]

EDGES = [
    "0001-01-01T00:00:00",
    "0001-01-01",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T23:59:59-14:00",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-14:00",
    "294277-01-01T00:00:00",
    "-0001-01-01T00:00:00",
    "2026-02-30T00:00:00",
    "2026-01-01T25:00:00",
    "yesterday",
    "1e10",
    "2026-01-01T00:00:00+99:00",
    "\uff12\uff10\uff12\uff16-01-01",  # full-width digits
    "2026-01-01\x00",
]


@pytest.fixture(scope="module")
async def callers(client: Client, settings: Settings) -> dict[str, Any]:
    org_id, tokens = await member_tokens(client, ())
    admin, admin_tokens = await new_user(client)
    await make_platform_admin(settings, admin["id"])
    return {
        "org": org_id,
        "owner": bearer(tokens["owner"]),
        "platform": bearer(admin_tokens["access_token"]),
    }


def _routes(callers: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    org = callers["org"]
    return [
        (f"/v1/orgs/{org}/usage", "to", callers["owner"]),
        (f"/v1/orgs/{org}/usage", "from", callers["owner"]),
        ("/v1/platform/usage", "to", callers["platform"]),
        ("/v1/platform/usage", "from", callers["platform"]),
        (f"/v1/orgs/{org}/audit", "since", callers["owner"]),
        (f"/v1/orgs/{org}/audit", "until", callers["owner"]),
    ]


@pytest.mark.parametrize("value", EDGES)
async def test_a_time_out_of_range_or_malformed_is_a_400(
    client: Client, callers: dict[str, Any], value: str
) -> None:
    for path, name, headers in _routes(callers):
        response = await client.get(path, headers=headers, params={name: value})
        assert response.status_code == 400, (path, name, value, response.text)
        assert response.json()["code"] == "invalid_time", (path, name, value, response.text)


async def test_times_in_range_still_work(client: Client, callers: dict[str, Any]) -> None:
    """The same routes with ordinary times, naive (UTC) or with an offset, or a date."""
    for value in (
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00+02:00",
        "2026-01-01T00:00:00Z",
        "2026-01-01",
    ):
        for path, name, headers in _routes(callers):
            other = {"to": "from", "from": "to", "since": "until", "until": "since"}[name]
            bound = "2025-12-20" if name in ("to", "until") else "2026-01-10"
            response = await client.get(path, headers=headers, params={name: value, other: bound})
            assert response.status_code == 200, (path, name, value, response.text)
