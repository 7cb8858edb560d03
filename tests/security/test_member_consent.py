"""Anyone can make an org, and adding an address to it told whether the address had an
account (201, and the account joined at once, without its consent; or 404
``user_not_found``). The attacker's org then showed in the victim's org list (first, where
a client picks ``orgs[0]``), and what the victim wrote there was the attacker's to read.

Now ``POST /v1/orgs/{org}/members`` invites, as ``POST .../invitations``: every address
gets the same 202 and pending invitation, mailed, and only its acceptance, signed in as
that address, adds anyone.
"""

from __future__ import annotations

import uuid

from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, create_org, new_user


async def test_adding_a_member_tells_nothing_and_adds_nobody(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    """Anyone can make an org; adding an address to it answered 201 for an account (which
    joined at once, without consent) and 404 ``user_not_found`` for no account. Now every
    address gets the same answer, an invitation, and only its acceptance adds anyone."""
    owner, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens)
    headers = bearer(owner_tokens["access_token"])
    outsider, outsider_tokens = await new_user(client)
    answers = {
        who: await client.post(f"/v1/orgs/{org_id}/members", headers=headers, json={"email": e})
        for who, e in (
            ("no account", f"nobody-{uuid.uuid4().hex[:8]}@example.test"),
            ("an account", outsider["email"]),
            ("a member", owner["email"]),
        )
    }
    assert {who: a.status_code for who, a in answers.items()} == dict.fromkeys(answers, 202)
    shapes = {who: sorted(set(a.json()) - {"id"}) for who, a in answers.items()}
    assert len({tuple(shape) for shape in shapes.values()}) == 1, shapes
    assert all(a.json()["status"] == "pending" for a in answers.values())
    outsiders_orgs = await client.get("/v1/orgs", headers=bearer(outsider_tokens["access_token"]))
    assert outsiders_orgs.json() == []  # not added: invited
    members = (await client.get(f"/v1/orgs/{org_id}/members", headers=headers)).json()
    assert outsider["id"] not in {m["user_id"] for m in members}
    again = await client.post(
        "/v1/invitations/accept",
        headers=headers,
        json={"token": answers["a member"].json()["token"]},
    )
    assert (again.status_code, again.json()["code"]) == (409, "already_member")
