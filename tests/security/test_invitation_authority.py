"""Finding 5: invitations outlived the inviter's authority. An admin invited X as admin,
was demoted to member, and X accepted and became admin. An invitation grants at most what
its inviter may still grant when it is accepted; demoting or removing the inviter (or
revoking the API key that invited) revokes or caps their pending invitations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.http import add_member, bearer, create_org, new_user, sign_in

Client = AsyncTestClient[OrgbaseApp]


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[Client]:
    """Dev mode: the inviter's answer carries the token (no mail server needed)."""
    async with AsyncTestClient(app=create_app(msgspec.structs.replace(settings, env="dev"))) as c:
        yield c


async def org_with(client: Client, role: str) -> dict[str, Any]:
    """An org, its owner's headers, and an inviter of ``role`` with their user id."""
    owner, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens)
    inviter, _ = await new_user(client)
    await add_member(client, owner_tokens, org_id, inviter, role)
    return {
        "org": org_id,
        "owner": bearer((await sign_in(client, owner["email"], org_id))["access_token"]),
        "inviter": bearer((await sign_in(client, inviter["email"], org_id))["access_token"]),
        "inviter_id": inviter["id"],
    }


async def invite(client: Client, org: dict[str, Any], headers: dict[str, str], role: str) -> Any:
    guest, guest_tokens = await new_user(client)
    made = await client.post(
        f"/v1/orgs/{org['org']}/invitations",
        headers=headers,
        json={"email": guest["email"], "role": role},
    )
    assert made.status_code == 201, made.text
    return made.json(), bearer(guest_tokens["access_token"])


async def accept(client: Client, token: str, guest: dict[str, str]) -> Any:
    return await client.post("/v1/invitations/accept", headers=guest, json={"token": token})


async def set_role(client: Client, org: dict[str, Any], role: str) -> None:
    changed = await client.patch(
        f"/v1/orgs/{org['org']}/members/{org['inviter_id']}",
        headers=org["owner"],
        json={"role": role},
    )
    assert changed.status_code == 200, changed.text


async def test_a_demoted_admins_invitation_no_longer_makes_an_admin(client: Client) -> None:
    org = await org_with(client, "admin")
    invitation, guest = await invite(client, org, org["inviter"], "admin")
    await set_role(client, org, "member")
    refused = await accept(client, invitation["token"], guest)
    assert (refused.status_code, refused.json()["code"]) == (410, "invitation_revoked")
    listed = (await client.get(f"/v1/orgs/{org['org']}/invitations", headers=org["owner"])).json()
    assert next(i for i in listed if i["id"] == invitation["id"])["status"] == "revoked"


async def test_an_owner_demoted_to_admin_invites_admins_at_most(client: Client) -> None:
    org = await org_with(client, "owner")
    invitation, guest = await invite(client, org, org["inviter"], "owner")
    await set_role(client, org, "admin")
    accepted = await accept(client, invitation["token"], guest)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "admin"


async def test_a_removed_inviters_invitations_end(client: Client) -> None:
    org = await org_with(client, "admin")
    invitation, guest = await invite(client, org, org["inviter"], "member")
    removed = await client.delete(
        f"/v1/orgs/{org['org']}/members/{org['inviter_id']}", headers=org["owner"]
    )
    assert removed.status_code == 204
    refused = await accept(client, invitation["token"], guest)
    assert (refused.status_code, refused.json()["code"]) == (410, "invitation_revoked")


async def test_a_revoked_keys_invitations_end(client: Client) -> None:
    org = await org_with(client, "admin")
    key = (
        await client.post(
            f"/v1/orgs/{org['org']}/api-keys",
            headers=org["owner"],
            json={"name": "i", "role": "admin"},
        )
    ).json()
    # (A key invites members at most: admins are made by a person.)
    invitation, guest = await invite(client, org, {"apikey": key["key"]}, "member")
    revoked = await client.delete(
        f"/v1/orgs/{org['org']}/api-keys/{key['id']}", headers=org["owner"]
    )
    assert revoked.status_code == 204
    refused = await accept(client, invitation["token"], guest)
    assert (refused.status_code, refused.json()["code"]) == (410, "invitation_revoked")


async def test_an_untouched_inviters_invitation_still_works(client: Client) -> None:
    org = await org_with(client, "admin")
    invitation, guest = await invite(client, org, org["inviter"], "admin")
    await set_role(client, org, "owner")  # a promotion takes nothing away
    accepted = await accept(client, invitation["token"], guest)
    assert (accepted.status_code, accepted.json()["role"]) == (200, "admin")
