"""Per-org limits of functions (invocations per minute, invocations at once) and their
usage (invocations, CPU milliseconds) in the org's metering."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from orgbase.core.settings import Settings
from tests.functions.conftest import Client, F, person
from tests.support.data import make_platform_admin
from tests.support.http import bearer, new_user


@pytest.fixture(scope="module")
async def platform_admin(fclient: Client, functions_settings: Settings) -> dict[str, str]:
    user, tokens = await new_user(fclient)
    await make_platform_admin(functions_settings, user["id"])
    return bearer(tokens["access_token"])


async def set_limits(
    client: httpx.AsyncClient, admin: dict[str, str], org_id: str, **limits: int
) -> None:
    response = await client.put(f"/v1/platform/orgs/{org_id}/limits", headers=admin, json=limits)
    assert response.status_code == 200, response.text


async def test_invocations_per_minute_are_counted_per_org(
    fclient: Client, platform_admin: dict[str, str]
) -> None:
    alice, bob = await person(fclient), await person(fclient)
    # 18 a minute: a bucket of 3 (ten seconds' worth), refilled one every 3.3 s.
    await set_limits(fclient, platform_admin, alice["org"], function_invocations_per_minute=18)
    statuses = [
        (await fclient.post(f"{F}/whoami", headers=alice["headers"])).status_code for _ in range(5)
    ]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    refused = await fclient.post(f"{F}/whoami", headers=alice["headers"])
    assert refused.json()["code"] == "org_rate_limited"
    assert refused.headers["retry-after"]
    assert refused.json()["details"] == {"family": "functions", "limit_per_minute": 18}
    assert refused.headers["ratelimit-policy"] == '"functions";q=3;w=10'
    other = await fclient.post(f"{F}/whoami", headers=bob["headers"])
    assert other.status_code == 200  # another org's allowance is its own


async def test_invocations_at_once_are_capped_per_org(
    fclient: Client, functions_server: str, platform_admin: dict[str, str]
) -> None:
    """Through a gateway process: the test client answers one request at a time."""
    alice, bob = await person(fclient), await person(fclient)
    async with httpx.AsyncClient(base_url=functions_server, timeout=30) as http:
        await set_limits(http, platform_admin, alice["org"], concurrent_functions=1)

        async def nap(who: dict[str, Any]) -> Any:
            return await http.get(f"{F}/nap?seconds=1", headers=who["headers"])

        first, second, theirs = await asyncio.gather(nap(alice), nap(alice), nap(bob))
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 429]
    refused = first if first.status_code == 429 else second
    assert refused.json()["code"] == "function_concurrency_exceeded"
    assert theirs.status_code == 200


async def test_usage_counts_invocations_and_cpu(fclient: Client) -> None:
    alice = await person(fclient)
    for _ in range(3):
        done = await fclient.get(f"{F}/nap?spin=300000", headers=alice["headers"])
        assert done.status_code == 200
    usage = await fclient.get(
        f"/v1/orgs/{alice['org']}/usage?granularity=day", headers=alice["headers"]
    )
    assert usage.status_code == 200, usage.text
    figures = usage.json()["usage"][0]
    assert figures["function_invocations"] == 3
    assert figures["requests_functions"] == 3
    assert figures["function_cpu_ms"] >= 3
