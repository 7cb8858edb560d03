"""An API key never makes an admin, and it acts with its maker's authority, never longer.

The attack that worked: security settings refused an admin API key (403
``human_admin_required``), but the same key added the attacker's account as an admin
(``POST /v1/orgs/{org}/members {"role": "admin"}``, or an admin invitation); the attacker
enrolled their own factor, reached aal2 and turned the org's MFA requirement off. And a key
made by an admin kept working after the owner removed that admin: the removed admin added
themselves back with it.

Now a key grants nothing above member (adding, inviting, changing a role; invitations a
key made before are accepted as member), and a key is revoked in the transaction that
ends its maker's authority (removed, left, demoted below the key's role, account deleted),
audited, mailed to the org's admins, its sockets closed: attacked through the real gateway
(the app on the real stack; the socket is held by another gateway process, ``live_server``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.security.test_socket_revocation import closed_with, connect
from tests.support.data import owner_connection
from tests.support.http import PASSWORD, add_member, bearer, create_org, join, new_user, sign_in

Client = AsyncTestClient[OrgbaseApp]


async def make_key(client: Client, headers: dict[str, str], org: str, role: str) -> dict[str, Any]:
    made = await client.post(
        f"/v1/orgs/{org}/api-keys", headers=headers, json={"name": f"ci-{role}", "role": role}
    )
    assert made.status_code == 201, made.text
    key: dict[str, Any] = made.json()
    return key


async def key_status(client: Client, key: dict[str, Any]) -> int:
    """What the data API answers the key (its first use puts it in the shared cache)."""
    return (await client.get("/v1/db/items?limit=1", headers={"apikey": key["key"]})).status_code


async def org_with_admin(client: Client) -> tuple[str, dict[str, str], dict[str, Any]]:
    """An org: its owner's headers, and an admin (user, headers)."""
    owner, owner_tokens = await new_user(client)
    org = await create_org(client, owner_tokens, "keys")
    admin, _ = await new_user(client)
    await add_member(client, owner_tokens, org, admin, "admin")
    owner_headers = bearer((await sign_in(client, owner["email"], org))["access_token"])
    admin_headers = bearer((await sign_in(client, admin["email"], org))["access_token"])
    return org, owner_headers, {"user": admin, "headers": admin_headers}


def refused(answer: Any, status: int, code: str) -> None:
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text


async def test_an_admin_api_key_grants_no_admin_or_owner(client: Client) -> None:
    org, owner, _ = await org_with_admin(client)
    key = {"apikey": (await make_key(client, owner, org, "admin"))["key"]}
    attacker, _ = await new_user(client)
    for role in ("admin", "owner"):
        added = await client.post(
            f"/v1/orgs/{org}/members", headers=key, json={"email": attacker["email"], "role": role}
        )
        refused(added, 403, "human_admin_required")
        invited = await client.post(
            f"/v1/orgs/{org}/invitations",
            headers=key,
            json={"email": attacker["email"], "role": role},
        )
        refused(invited, 403, "human_admin_required")
    # Members and viewers it still invites (they join by accepting); it never raises them.
    await join(client, key, org, attacker["email"], "member")
    raised = await client.patch(
        f"/v1/orgs/{org}/members/{attacker['id']}", headers=key, json={"role": "admin"}
    )
    refused(raised, 403, "human_admin_required")
    members = (await client.get(f"/v1/orgs/{org}/members", headers=owner)).json()
    assert {m["user_id"]: m["role"] for m in members}[attacker["id"]] == "member"


async def test_an_admin_invitation_a_key_made_before_grants_member(
    client: Client, settings: Settings
) -> None:
    """The old code let a key invite admins: such a pending invitation is accepted as member."""
    org, owner, _ = await org_with_admin(client)
    key = await make_key(client, owner, org, "admin")
    invitee, invitee_tokens = await new_user(client)
    token = secrets.token_urlsafe(32)
    async with owner_connection(settings) as connection:
        await connection.execute(
            "INSERT INTO orgbase.invitations"
            " (org_id, email, role, token_hash, invited_by_key, expires_at)"
            " VALUES ($1, $2, 'admin', $3, $4, $5)",
            uuid.UUID(org),
            invitee["email"],
            hashlib.sha256(token.encode()).digest(),
            uuid.UUID(key["id"]),
            datetime.now(UTC) + timedelta(days=1),
        )
    accepted = await client.post(
        "/v1/invitations/accept",
        headers=bearer(invitee_tokens["access_token"]),
        json={"token": token},
    )
    assert (accepted.status_code, accepted.json()["role"]) == (200, "member"), accepted.text


async def test_a_removed_admins_keys_stop_with_them(
    client: Client, settings: Settings, live_server: str
) -> None:
    org, owner, admin = await org_with_admin(client)
    keys = [await make_key(client, admin["headers"], org, r) for r in ("admin", "member")]
    assert [await key_status(client, k) for k in keys] == [200, 200]  # cached, as in daily use
    socket = await connect(live_server, keys[0]["key"])
    removed = await client.delete(f"/v1/orgs/{org}/members/{admin['user']['id']}", headers=owner)
    assert removed.status_code == 204
    assert [await key_status(client, k) for k in keys] == [401, 401]
    # The removed admin cannot add themselves back with the key they made.
    back = await client.post(
        f"/v1/orgs/{org}/members",
        headers={"apikey": keys[0]["key"]},
        json={"email": admin["user"]["email"], "role": "member"},
    )
    refused(back, 401, "api_key_invalid")
    assert await closed_with(socket) == 4401
    # Audited (by the system, with the reason) and told to the org's admins.
    audit = await client.get(
        f"/v1/orgs/{org}/audit", headers=owner, params={"action": "api_key.revoked"}
    )
    items = audit.json()["items"]
    assert sorted(i["row_key"]["id"] for i in items) == sorted(k["id"] for k in keys)
    assert {(i["actor_kind"], i["details"]["reason"]) for i in items} == {
        ("system", "whoever made it left the org")
    }
    listed = (await client.get(f"/v1/orgs/{org}/api-keys", headers=owner)).json()
    assert all(k["revoked_at"] is not None for k in listed)
    async with owner_connection(settings) as connection:
        mailed = await connection.fetchval(
            "SELECT count(*) FROM orgbase.outbox WHERE kind = 'api_key_revoked' AND org_id = $1",
            uuid.UUID(org),
        )
    assert mailed == 2  # one per key, to the one owner left


async def test_a_demotion_stops_the_keys_above_the_new_role(client: Client) -> None:
    org, owner, admin = await org_with_admin(client)
    made = {r: await make_key(client, admin["headers"], org, r) for r in ("admin", "member")}
    demoted = await client.patch(
        f"/v1/orgs/{org}/members/{admin['user']['id']}", headers=owner, json={"role": "member"}
    )
    assert demoted.status_code == 200
    assert {r: await key_status(client, k) for r, k in made.items()} == {
        "admin": 401,
        "member": 200,
    }
    # Made admin again: the revoked key stays revoked.
    again = await client.patch(
        f"/v1/orgs/{org}/members/{admin['user']['id']}", headers=owner, json={"role": "admin"}
    )
    assert again.status_code == 200
    assert await key_status(client, made["admin"]) == 401


async def test_an_owners_keys_follow_the_owner_too(client: Client) -> None:
    org, owner, admin = await org_with_admin(client)
    promoted = await client.patch(
        f"/v1/orgs/{org}/members/{admin['user']['id']}", headers=owner, json={"role": "owner"}
    )
    assert promoted.status_code == 200
    second_owner = bearer((await sign_in(client, admin["user"]["email"], org))["access_token"])
    key = await make_key(client, second_owner, org, "admin")
    # An owner demoted to admin keeps the admin keys they made...
    demoted = await client.patch(
        f"/v1/orgs/{org}/members/{admin['user']['id']}", headers=owner, json={"role": "admin"}
    )
    assert demoted.status_code == 200
    assert await key_status(client, key) == 200
    # ...and loses them on leaving.
    left = await client.delete(
        f"/v1/orgs/{org}/members/{admin['user']['id']}", headers=admin["headers"]
    )
    assert left.status_code == 204, left.text
    assert await key_status(client, key) == 401


async def test_deleting_the_account_revokes_its_keys(client: Client) -> None:
    org, _, admin = await org_with_admin(client)
    key = await make_key(client, admin["headers"], org, "admin")
    assert await key_status(client, key) == 200
    deleted = await client.request(
        "DELETE", "/v1/auth/user", headers=admin["headers"], json={"password": PASSWORD}
    )
    assert deleted.status_code == 204, deleted.text
    assert await key_status(client, key) == 401
