"""Orgs from Supabase's clients alone (GoTrue's /auth/v1, which names no org): a sign-in
enters the last used org or the only one; a session that made an org enters it at its next
refresh; and none of it carries a session into an org its user is no longer in, or moves
another session of the same user."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import (
    PASSWORD,
    add_member,
    bearer,
    claims_of,
    create_org,
    gotrue,
    new_user,
    sign_in,
    sign_up,
)

Client = AsyncTestClient[OrgbaseApp]


async def gotrue_sign_in(client: Client, email: str) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD}
    tokens: dict[str, Any] = await gotrue(client, "token?grant_type=password", body)
    return tokens


async def gotrue_refresh(client: Client, tokens: dict[str, Any]) -> dict[str, Any]:
    body = {"refresh_token": tokens["refresh_token"]}
    refreshed: dict[str, Any] = await gotrue(client, "token?grant_type=refresh_token", body)
    return refreshed


def org_of(tokens: dict[str, Any]) -> str | None:
    org: str | None = claims_of(tokens["access_token"]).get("org")
    return org


async def tasks_status(client: Client, tokens: dict[str, Any]) -> int:
    return (await client.get("/v1/db/tasks", headers=bearer(tokens["access_token"]))).status_code


async def test_a_newcomer_makes_an_org_and_refreshes_into_it(client: Client) -> None:
    user = await sign_up(client)
    tokens = await gotrue_sign_in(client, user["email"])
    assert org_of(tokens) is None  # no org yet: the data API says no_active_org
    answer = await client.get("/v1/db/tasks", headers=bearer(tokens["access_token"]))
    assert answer.json()["code"] == "no_active_org"
    org_id = await create_org(client, tokens, "first")
    refreshed = await gotrue_refresh(client, tokens)
    assert org_of(refreshed) == org_id
    assert await tasks_status(client, refreshed) == 200
    # The next sign-in (no org named) enters it too: the last used org.
    assert org_of(await gotrue_sign_in(client, user["email"])) == org_id


async def test_the_next_refresh_enters_a_new_org(client: Client) -> None:
    user, own = await new_user(client)
    first = await create_org(client, own, "one")
    tokens = await gotrue_sign_in(client, user["email"])
    assert org_of(tokens) == first
    second = await create_org(client, tokens, "two")
    refreshed = await gotrue_refresh(client, tokens)
    assert org_of(refreshed) == second
    # Later refreshes stay there.
    assert org_of(await gotrue_refresh(client, refreshed)) == second


async def test_the_only_org_is_entered(client: Client) -> None:
    """An invited member who never chose an org: the only one they are in."""
    _, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens, "only")
    member = await sign_up(client)
    await add_member(client, owner_tokens, org_id, member, "member")
    tokens = await gotrue_sign_in(client, member["email"])
    assert org_of(tokens) == org_id
    assert await tasks_status(client, tokens) == 200


async def test_two_orgs_and_no_choice_enter_none(client: Client) -> None:
    member = await sign_up(client)
    for name in ("a", "b"):
        _, owner_tokens = await new_user(client)
        await add_member(
            client, owner_tokens, await create_org(client, owner_tokens, name), member, "member"
        )
    assert org_of(await gotrue_sign_in(client, member["email"])) is None


async def test_another_session_is_not_moved(client: Client) -> None:
    """A second device of the same user stays in its org when the first makes a new one."""
    user, own = await new_user(client)
    first = await create_org(client, own, "shared")
    laptop = await gotrue_sign_in(client, user["email"])
    phone = await gotrue_sign_in(client, user["email"])
    await create_org(client, laptop, "laptop's")
    assert org_of(await gotrue_refresh(client, phone)) == first


async def test_a_removed_member_does_not_reenter(client: Client) -> None:
    _, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens, "left")
    member = await sign_up(client)
    await add_member(client, owner_tokens, org_id, member, "member")
    tokens = await gotrue_sign_in(client, member["email"])
    assert org_of(tokens) == org_id
    removed = await client.delete(
        f"/v1/orgs/{org_id}/members/{member['id']}", headers=bearer(owner_tokens["access_token"])
    )
    assert removed.status_code == 204, removed.text
    assert org_of(await gotrue_sign_in(client, member["email"])) is None
    # Its session lives on, out of the org: a refresh does not bring it back.
    assert org_of(await gotrue_refresh(client, tokens)) is None


async def test_a_deleted_last_org_is_not_entered(client: Client) -> None:
    user, own = await new_user(client)
    doomed = await create_org(client, own, "doomed")
    tokens = await sign_in(client, user["email"], doomed)
    gone = await client.delete(f"/v1/orgs/{doomed}", headers=bearer(tokens["access_token"]))
    assert gone.status_code == 204, gone.text
    assert org_of(await gotrue_sign_in(client, user["email"])) is None
