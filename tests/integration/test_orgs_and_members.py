"""Orgs and members through the API: roles, escalation, the last owner, removal."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import owner_connection
from tests.support.http import bearer, create_org, new_user, org_with_roles
from tests.support.waiting import eventually


async def test_create_list_read_rename(client: AsyncTestClient[OrgbaseApp]) -> None:
    _, tokens = await new_user(client)
    headers = bearer(tokens["access_token"])
    org_id = await create_org(client, tokens, "  Acme   Inc ")
    listed = (await client.get("/v1/orgs", headers=headers)).json()
    assert [(o["id"], o["name"], o["role"]) for o in listed] == [(org_id, "Acme Inc", "owner")]
    read = await client.get(f"/v1/orgs/{org_id}", headers=headers)
    assert read.json()["name"] == "Acme Inc"
    renamed = await client.patch(f"/v1/orgs/{org_id}", headers=headers, json={"name": "Acme 2"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Acme 2"
    settings = await client.get(f"/v1/orgs/{org_id}/settings", headers=headers)
    assert settings.json()["version"] == 1


async def test_bad_org_bodies(client: AsyncTestClient[OrgbaseApp]) -> None:
    _, tokens = await new_user(client)
    headers = bearer(tokens["access_token"])
    for body in ({"name": ""}, {"name": "   "}, {"name": "x" * 201}, {}, {"name": 3}):
        response = await client.post("/v1/orgs", headers=headers, json=body)
        assert response.status_code == 400, body


async def test_roles_limit_what_members_do(client: AsyncTestClient[OrgbaseApp]) -> None:
    org_id, people = await org_with_roles(client)
    viewer_headers = bearer(people["viewer"][1]["access_token"])
    member_headers = bearer(people["member"][1]["access_token"])
    admin_headers = bearer(people["admin"][1]["access_token"])
    assert (
        await client.get(f"/v1/orgs/{org_id}/members", headers=viewer_headers)
    ).status_code == 200
    for headers in (viewer_headers, member_headers):
        response = await client.patch(f"/v1/orgs/{org_id}", headers=headers, json={"name": "x"})
        assert response.status_code == 403
        assert response.json()["code"] == "role_too_low"
    assert (await client.delete(f"/v1/orgs/{org_id}", headers=admin_headers)).status_code == 403
    # An admin cannot make anyone an owner, nor touch an owner.
    owner_id = people["owner"][0]["id"]
    member_id = people["member"][0]["id"]
    escalate = await client.patch(
        f"/v1/orgs/{org_id}/members/{member_id}", headers=admin_headers, json={"role": "owner"}
    )
    assert (escalate.status_code, escalate.json()["code"]) == (403, "role_escalation")
    demote_owner = await client.patch(
        f"/v1/orgs/{org_id}/members/{owner_id}", headers=admin_headers, json={"role": "viewer"}
    )
    assert demote_owner.status_code == 403
    remove_owner = await client.delete(
        f"/v1/orgs/{org_id}/members/{owner_id}", headers=admin_headers
    )
    assert remove_owner.status_code == 403
    # An admin can promote a member up to admin.
    promoted = await client.patch(
        f"/v1/orgs/{org_id}/members/{member_id}", headers=admin_headers, json={"role": "admin"}
    )
    assert promoted.json()["role"] == "admin"


async def test_the_last_owner_stays(client: AsyncTestClient[OrgbaseApp]) -> None:
    org_id, people = await org_with_roles(client, ("admin",))
    owner, owner_tokens = people["owner"]
    headers = bearer(owner_tokens["access_token"])
    demote = await client.patch(
        f"/v1/orgs/{org_id}/members/{owner['id']}", headers=headers, json={"role": "admin"}
    )
    assert (demote.status_code, demote.json()["code"]) == (409, "last_owner")
    leave = await client.delete(f"/v1/orgs/{org_id}/members/{owner['id']}", headers=headers)
    assert (leave.status_code, leave.json()["code"]) == (409, "last_owner")
    # With a second owner, the first may step down.
    admin_id = people["admin"][0]["id"]
    assert (
        await client.patch(
            f"/v1/orgs/{org_id}/members/{admin_id}", headers=headers, json={"role": "owner"}
        )
    ).status_code == 200
    assert (
        await client.patch(
            f"/v1/orgs/{org_id}/members/{owner['id']}", headers=headers, json={"role": "member"}
        )
    ).status_code == 200


async def test_a_removed_member_is_out_on_the_next_request(
    client: AsyncTestClient[OrgbaseApp],
) -> None:
    org_id, people = await org_with_roles(client, ("member",))
    member, member_tokens = people["member"]
    member_headers = bearer(member_tokens["access_token"])
    owner_headers = bearer(people["owner"][1]["access_token"])
    assert (await client.get(f"/v1/orgs/{org_id}", headers=member_headers)).status_code == 200
    removed = await client.delete(
        f"/v1/orgs/{org_id}/members/{member['id']}", headers=owner_headers
    )
    assert removed.status_code == 204
    after = await client.get(f"/v1/orgs/{org_id}", headers=member_headers)
    assert (after.status_code, after.json()["code"]) == (404, "org_not_found")


async def test_a_lowered_role_acts_on_the_next_request(client: AsyncTestClient[OrgbaseApp]) -> None:
    org_id, people = await org_with_roles(client, ("admin",))
    admin, admin_tokens = people["admin"]
    admin_headers = bearer(admin_tokens["access_token"])
    owner_headers = bearer(people["owner"][1]["access_token"])
    assert (
        await client.patch(f"/v1/orgs/{org_id}", headers=admin_headers, json={"name": "a"})
    ).status_code == 200
    await client.patch(
        f"/v1/orgs/{org_id}/members/{admin['id']}", headers=owner_headers, json={"role": "viewer"}
    )
    refused = await client.patch(f"/v1/orgs/{org_id}", headers=admin_headers, json={"name": "b"})
    assert refused.status_code == 403


async def test_members_can_leave(client: AsyncTestClient[OrgbaseApp]) -> None:
    org_id, people = await org_with_roles(client, ("viewer",))
    viewer, tokens = people["viewer"]
    headers = bearer(tokens["access_token"])
    assert (
        await client.delete(f"/v1/orgs/{org_id}/members/{viewer['id']}", headers=headers)
    ).status_code == 204
    assert (await client.get("/v1/orgs", headers=headers)).json() == []


async def test_no_membership_outlives_an_account_deleted_meanwhile(
    settings: Settings, live_server: str
) -> None:
    """A deleted account has no memberships (nothing else keeps it out of orgs): the
    account accepts an invitation through a real gateway while its deletion is under way
    (its row marked, not committed yet). The acceptance waits for the deletion and finds
    no account, so no membership is left."""
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        org_id, people = await org_with_roles(client, ())
        leaving, tokens = await new_user(client)
        invited = await client.post(
            f"/v1/orgs/{org_id}/members",
            headers=bearer(people["owner"][1]["access_token"]),
            json={"email": leaving["email"], "role": "member"},
        )
        assert invited.status_code == 202, invited.text
        await _accept_while_deleted(settings, client, tokens, leaving, invited.json()["token"])


async def _accept_while_deleted(
    settings: Settings,
    client: httpx.AsyncClient,
    tokens: dict[str, Any],
    leaving: dict[str, Any],
    invitation: str,
) -> None:
    user_id = uuid.UUID(leaving["id"])
    async with owner_connection(settings) as deletion, owner_connection(settings) as watch:
        async with deletion.transaction():  # the statements of an account's deletion
            await deletion.execute(
                "UPDATE orgbase.users SET deleted_at = now(), updated_at = now() WHERE id = $1",
                user_id,
            )
            accepting = asyncio.ensure_future(
                client.post(
                    "/v1/invitations/accept",
                    headers=bearer(tokens["access_token"]),
                    json={"token": invitation},
                )
            )

            async def waiting_or_done() -> bool:
                waits = await watch.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
                return accepting.done() or waits > 0

            await eventually(waiting_or_done, within=10, what="the acceptance under way")
            await deletion.execute("DELETE FROM orgbase.memberships WHERE user_id = $1", user_id)
        answer = await accepting
        left = await watch.fetchval(
            "SELECT count(*) FROM orgbase.memberships WHERE user_id = $1", user_id
        )
    assert (answer.status_code, left) == (403, 0), answer.text


async def test_deleting_an_org_deletes_its_data(
    settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    org_id, people = await org_with_roles(client, ("admin",))
    owner_headers = bearer(people["owner"][1]["access_token"])
    other_org, _ = await org_with_roles(client, ())
    async with owner_connection(settings) as connection:
        await connection.executemany(
            "INSERT INTO api.items (org_id, title) VALUES ($1::uuid, $2)",
            [(org_id, "doomed 1"), (org_id, "doomed 2"), (other_org, "survivor")],
        )
        assert (await client.delete(f"/v1/orgs/{org_id}", headers=owner_headers)).status_code == 204
        left = await connection.fetch(
            "SELECT org_id::text, title FROM api.items WHERE org_id = ANY($1::uuid[])",
            [org_id, other_org],
        )
        assert [(r["org_id"], r["title"]) for r in left] == [(other_org, "survivor")]
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM orgbase.orgs WHERE id = $1::uuid", org_id
            )
            == 0
        )
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM orgbase.audit_events"
                " WHERE org_id = $1::uuid AND action = 'org.deleted'",
                org_id,
            )
            == 1
        )
    gone = await client.get(f"/v1/orgs/{org_id}", headers=owner_headers)
    assert gone.status_code == 404
    admin_headers = bearer(people["admin"][1]["access_token"])
    assert (
        await client.get(f"/v1/orgs/{org_id}/members", headers=admin_headers)
    ).status_code == 404
