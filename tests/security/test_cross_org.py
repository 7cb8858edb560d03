"""Every org endpoint, every role of org A, org B's ids: 403 or 404, and org B unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import owner_connection
from tests.support.http import bearer, org_with_roles, password_grant

ROLES = ("owner", "admin", "member", "viewer")


async def snapshot(settings: Settings, org_id: str) -> dict[str, Any]:
    async with owner_connection(settings) as connection:
        return {
            "org": dict(
                await connection.fetchrow(
                    "SELECT name, deleted_at FROM orgbase.orgs WHERE id = $1::uuid", org_id
                )
                or {}
            ),
            "members": sorted(
                (str(r["user_id"]), r["role"])
                for r in await connection.fetch(
                    "SELECT user_id, role FROM orgbase.memberships WHERE org_id = $1::uuid", org_id
                )
            ),
            "keys": sorted(
                (str(r["id"]), r["revoked_at"])
                for r in await connection.fetch(
                    "SELECT id, revoked_at FROM orgbase.api_keys WHERE org_id = $1::uuid", org_id
                )
            ),
            "invitations": sorted(
                (str(r["id"]), r["revoked_at"], r["accepted_at"])
                for r in await connection.fetch(
                    "SELECT id, revoked_at, accepted_at FROM orgbase.invitations"
                    " WHERE org_id = $1::uuid",
                    org_id,
                )
            ),
            "settings": await connection.fetchval(
                "SELECT version FROM orgbase.org_settings WHERE org_id = $1::uuid", org_id
            ),
        }


@pytest.fixture(scope="module")
async def two_orgs(client: AsyncTestClient[OrgbaseApp]) -> dict[str, Any]:
    org_a, people_a = await org_with_roles(client)
    org_b, people_b = await org_with_roles(client)
    owner_b = bearer(people_b["owner"][1]["access_token"])
    key_b = (
        await client.post(f"/v1/orgs/{org_b}/api-keys", headers=owner_b, json={"name": "b"})
    ).json()
    invitation_b = (
        await client.post(
            f"/v1/orgs/{org_b}/invitations", headers=owner_b, json={"email": "b-guest@example.test"}
        )
    ).json()
    owner_a = bearer(people_a["owner"][1]["access_token"])
    key_a = (
        await client.post(
            f"/v1/orgs/{org_a}/api-keys", headers=owner_a, json={"name": "a", "role": "admin"}
        )
    ).json()
    return {
        "a": org_a,
        "b": org_b,
        "people_a": people_a,
        "people_b": people_b,
        "key_b": key_b,
        "key_a": key_a,
        "invitation_b": invitation_b,
    }


def attacks(org_b: str, b_member: str, key_b: str, invitation_b: str) -> list[tuple[str, str, Any]]:
    base = f"/v1/orgs/{org_b}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"name": "pwned"}),
        ("DELETE", base, None),
        ("GET", f"{base}/members", None),
        ("POST", f"{base}/members", {"email": "x@example.test", "role": "owner"}),
        ("PATCH", f"{base}/members/{b_member}", {"role": "viewer"}),
        ("DELETE", f"{base}/members/{b_member}", None),
        ("GET", f"{base}/invitations", None),
        ("POST", f"{base}/invitations", {"email": "x@example.test", "role": "owner"}),
        ("DELETE", f"{base}/invitations/{invitation_b}", None),
        ("GET", f"{base}/api-keys", None),
        ("POST", f"{base}/api-keys", {"name": "stolen", "role": "admin"}),
        ("DELETE", f"{base}/api-keys/{key_b}", None),
        ("GET", f"{base}/settings", None),
        ("PUT", f"{base}/settings", {"settings": {"pwned": True}}),
        ("GET", f"{base}/settings/versions", None),
        ("POST", f"{base}/settings/rollback/1", None),
        ("GET", f"{base}/audit", None),
    ]


Request = tuple[str, str, dict[str, Any] | None]


async def assert_all_refused(
    settings: Settings,
    client: AsyncTestClient[OrgbaseApp],
    headers: dict[str, str],
    requests: list[Request],
    untouched_org: str,
) -> None:
    """Each request is refused as forbidden or not found (settings writes carry If-Match,
    so a refusal is about the org, not the precondition), and ``untouched_org`` is as it
    was."""
    before = await snapshot(settings, untouched_org)
    for method, url, body in requests:
        extra = {"If-Match": "1"} if method == "PUT" else {}
        response = await client.request(method, url, headers={**headers, **extra}, json=body)
        assert response.status_code in {403, 404}, (
            method,
            url,
            response.status_code,
            response.text,
        )
    assert await snapshot(settings, untouched_org) == before


@pytest.mark.parametrize("role", ROLES)
async def test_org_a_cannot_reach_org_b(
    settings: Settings, client: AsyncTestClient[OrgbaseApp], two_orgs: dict[str, Any], role: str
) -> None:
    headers = bearer(two_orgs["people_a"][role][1]["access_token"])
    b_member = two_orgs["people_b"]["member"][0]["id"]
    requests = attacks(
        two_orgs["b"], b_member, two_orgs["key_b"]["id"], two_orgs["invitation_b"]["id"]
    )
    await assert_all_refused(settings, client, headers, requests, two_orgs["b"])


@pytest.mark.parametrize("role", ROLES)
async def test_org_b_ids_under_org_a_paths(
    settings: Settings, client: AsyncTestClient[OrgbaseApp], two_orgs: dict[str, Any], role: str
) -> None:
    """B's member, key and invitation ids smuggled into A's paths touch nothing."""
    headers = bearer(two_orgs["people_a"][role][1]["access_token"])
    a = f"/v1/orgs/{two_orgs['a']}"
    b_only_member = two_orgs["people_b"]["viewer"][0]["id"]
    smuggled: list[Request] = [
        ("PATCH", f"{a}/members/{b_only_member}", {"role": "viewer"}),
        ("DELETE", f"{a}/members/{b_only_member}", None),
        ("DELETE", f"{a}/api-keys/{two_orgs['key_b']['id']}", None),
        ("DELETE", f"{a}/invitations/{two_orgs['invitation_b']['id']}", None),
    ]
    await assert_all_refused(settings, client, headers, smuggled, two_orgs["b"])


async def test_credentials_of_org_a_cannot_choose_org_b(
    settings: Settings, client: AsyncTestClient[OrgbaseApp], two_orgs: dict[str, Any]
) -> None:
    before = await snapshot(settings, two_orgs["b"])
    user, tokens = two_orgs["people_a"]["owner"]
    org_b = two_orgs["b"]
    sign_in = await client.post(
        "/v1/auth/token",
        json=password_grant(user["email"], org_b),
    )
    assert sign_in.status_code == 403
    refresh = await client.post(
        "/v1/auth/token",
        json={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "org_id": org_b,
        },
    )
    assert refresh.status_code == 403
    key_a = {"apikey": two_orgs["key_a"]["key"]}
    requests = attacks(
        org_b,
        two_orgs["people_b"]["member"][0]["id"],
        two_orgs["key_b"]["id"],
        two_orgs["invitation_b"]["id"],
    )
    await assert_all_refused(settings, client, key_a, requests, org_b)
    assert await snapshot(settings, org_b) == before
