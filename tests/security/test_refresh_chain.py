"""A refresh token replayed within the grace window started a chain of its own.

A rotated refresh token presented again within the grace (10 s) answered a new, distinct
refresh token, itself refreshable: a thief replaying a stolen token kept a chain the owner
never saw, and 20 parallel presentations of one token made 20 live children. Now a
session is one chain: inside the grace a token answers the child its first presentation
made (sealed in its row), so the thief and the owner hold the same token, and once they
diverge past the grace, the session ends for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.http import bearer, new_user, user_status
from tests.support.stack import with_overrides

Client = AsyncTestClient[OrgbaseApp]
GRACE = 1


async def refresh(client: Client, token: str) -> Any:
    return await client.post(
        "/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": token}
    )


async def test_a_replay_within_the_grace_answers_the_same_child(client: Client) -> None:
    _, tokens = await new_user(client)
    owner = await refresh(client, tokens["refresh_token"])
    assert owner.status_code == 200, owner.text
    child = owner.json()["refresh_token"]
    thief = await refresh(client, tokens["refresh_token"])
    assert thief.status_code == 200, thief.text
    assert thief.json()["refresh_token"] == child
    assert await user_status(client, bearer(thief.json()["access_token"])) == 200

    # Twenty at once: one child for all of them (the first to lock the row makes it).
    answers = await asyncio.gather(*[refresh(client, child) for _ in range(20)])
    assert [a.status_code for a in answers] == [200] * 20
    assert len({a.json()["refresh_token"] for a in answers}) == 1


@pytest.fixture(scope="module")
async def short_grace(settings: Settings) -> AsyncIterator[Client]:
    strict = with_overrides(settings, auth={"refresh_grace_seconds": GRACE})
    async with AsyncTestClient(app=create_app(strict)) as client:
        yield client


async def test_a_thief_sharing_the_chain_ends_the_session(short_grace: Client) -> None:
    client = short_grace
    _, tokens = await new_user(client)
    stolen = tokens["refresh_token"]
    child = (await refresh(client, stolen)).json()["refresh_token"]
    replayed = await refresh(client, stolen)  # the thief, inside the grace
    assert replayed.json()["refresh_token"] == child
    owners = (await refresh(client, child)).json()  # the owner goes on
    await asyncio.sleep(GRACE + 0.5)
    # The thief's copy of the chain is behind: using it is a reuse, which ends the session.
    late = await refresh(client, child)
    assert (late.status_code, late.json()["code"]) == (401, "refresh_token_reused")
    after = await refresh(client, owners["refresh_token"])
    assert (after.status_code, after.json()["code"]) == (401, "invalid_refresh_token")
