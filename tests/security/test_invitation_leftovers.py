"""Concurrent invitations of one address (a double-submitted invite form) all answered 201
and several stayed pending, though a new invitation revokes the previous one. The address
accepted one; the others answered 409 ``already_member`` and stayed pending, so after the
admin removed the member, a leftover token made them a member again without a new
invitation. Now an org has at most one pending invitation per address, even under
concurrency, and accepting one (or meeting ``already_member``) retires the address's other
pending invitations in that org."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.http import bearer, create_org, new_user

Client = httpx.AsyncClient


@pytest.fixture
async def client(live_server: str) -> AsyncIterator[Client]:
    """A real gateway process: its requests run at once (outside production, the inviter's
    answer carries the token)."""
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as c:
        yield c


async def _setting(client: Client) -> dict[str, Any]:
    """An org with its owner's headers, and a guest with an account and their headers."""
    _, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens)
    guest, guest_tokens = await new_user(client)
    return {
        "org": org_id,
        "owner": bearer(owner_tokens["access_token"]),
        "guest": guest,
        "guest_headers": bearer(guest_tokens["access_token"]),
    }


async def _invite_at_once(client: Client, s: dict[str, Any], path: str) -> list[str]:
    """Eight invitations of the guest at once; the tokens of those that were made."""
    answers = await asyncio.gather(
        *(
            client.post(
                f"/v1/orgs/{s['org']}/{path}",
                headers=s["owner"],
                json={"email": s["guest"]["email"], "role": "member"},
            )
            for _ in range(8)
        )
    )
    assert {a.status_code for a in answers} <= {201, 202}, [a.text for a in answers]
    return [a.json()["token"] for a in answers]


async def _pending(client: Client, s: dict[str, Any]) -> int:
    listed = await client.get(f"/v1/orgs/{s['org']}/invitations", headers=s["owner"])
    assert listed.status_code == 200, listed.text
    return sum(i["status"] == "pending" for i in listed.json())


async def _accept(client: Client, s: dict[str, Any], token: str) -> Any:
    return await client.post(
        "/v1/invitations/accept", headers=s["guest_headers"], json={"token": token}
    )


async def _remove_guest(client: Client, s: dict[str, Any]) -> None:
    removed = await client.delete(
        f"/v1/orgs/{s['org']}/members/{s['guest']['id']}", headers=s["owner"]
    )
    assert removed.status_code == 204, removed.text


@pytest.mark.parametrize("path", ["invitations", "members"])
async def test_concurrent_invitations_leave_one_pending(client: Client, path: str) -> None:
    s = await _setting(client)
    tokens = await _invite_at_once(client, s, path)
    assert await _pending(client, s) == 1
    works = [t for t in tokens if (await _accept(client, s, t)).status_code == 200]
    assert len(works) == 1
    await _remove_guest(client, s)
    for token in tokens:
        refused = await _accept(client, s, token)
        assert refused.status_code in {409, 410}, refused.text
        assert refused.json()["code"] in {"invitation_used", "invitation_revoked"}


async def test_a_removed_member_cannot_rejoin_with_a_leftover_invitation(client: Client) -> None:
    """A member invited again: accepting meets ``already_member`` and retires that
    invitation, so it does not bring them back once they are removed."""
    s = await _setting(client)
    first = await _invite_at_once(client, s, "invitations")
    joined = [t for t in first if (await _accept(client, s, t)).status_code == 200]
    assert len(joined) == 1
    again = await client.post(
        f"/v1/orgs/{s['org']}/invitations",
        headers=s["owner"],
        json={"email": s["guest"]["email"], "role": "member"},
    )
    assert again.status_code == 201, again.text
    met = await _accept(client, s, again.json()["token"])
    assert (met.status_code, met.json()["code"]) == (409, "already_member")
    assert await _pending(client, s) == 0
    await _remove_guest(client, s)
    refused = await _accept(client, s, again.json()["token"])
    assert (refused.status_code, refused.json()["code"]) == (410, "invitation_revoked")
