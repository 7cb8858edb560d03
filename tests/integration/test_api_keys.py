"""API keys: admins create them (shown once), they authenticate, revocation is immediate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.data import make_org
from tests.support.http import bearer, new_user
from tests.support.waiting import eventually


async def key_manager(
    settings: Settings, client: AsyncTestClient[OrgbaseApp], role: str = "admin"
) -> tuple[str, dict[str, str]]:
    """A fresh user with ``role`` in a fresh org: (the org's API keys URL, the user's auth
    headers)."""
    user, tokens = await new_user(client)
    org_id = await make_org(settings, {user["id"]: role})
    return f"/v1/orgs/{org_id}/api-keys", bearer(tokens["access_token"])


async def test_create_use_list_and_revoke(
    settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    url, admin = await key_manager(settings, client)
    created = await client.post(url, headers=admin, json={"name": "ci", "role": "member"})
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith("obk_")
    assert body["prefix"] == key[:12]
    # The key authenticates (as a key: the user endpoints want a user's token).
    for headers in ({"Authorization": f"Bearer {key}"}, {"apikey": key}):
        response = await client.get("/v1/auth/user", headers=headers)
        assert response.status_code == 403
        assert response.json()["code"] == "user_token_required"
    listed = await client.get(url, headers=admin)
    assert [k["id"] for k in listed.json()] == [body["id"]]
    assert "key" not in listed.json()[0]
    revoked = await client.delete(f"{url}/{body['id']}", headers=admin)
    assert revoked.status_code == 204
    after = await client.get("/v1/auth/user", headers={"apikey": key})
    assert after.status_code == 401
    assert after.json()["code"] == "api_key_invalid"
    again = await client.delete(f"{url}/{body['id']}", headers=admin)
    assert again.status_code == 404


async def test_only_admins_manage_keys_and_never_above_their_role(
    settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    admin, admin_tokens = await new_user(client)
    member, member_tokens = await new_user(client)
    _, outsider_tokens = await new_user(client)
    org_id = await make_org(settings, {admin["id"]: "admin", member["id"]: "member"})
    url = f"/v1/orgs/{org_id}/api-keys"
    as_member = await client.post(
        url, headers=bearer(member_tokens["access_token"]), json={"name": "x"}
    )
    assert as_member.status_code == 403
    assert as_member.json()["code"] == "role_too_low"
    as_outsider = await client.get(url, headers=bearer(outsider_tokens["access_token"]))
    assert as_outsider.status_code == 404
    assert as_outsider.json()["code"] == "org_not_found"
    owner_key = await client.post(
        url, headers=bearer(admin_tokens["access_token"]), json={"name": "x", "role": "owner"}
    )
    assert owner_key.status_code == 400
    listed = await client.get(url, headers=bearer(admin_tokens["access_token"]))
    assert listed.json() == []


async def test_a_key_cannot_manage_keys(
    settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    url, admin = await key_manager(settings, client)
    key = (await client.post(url, headers=admin, json={"name": "k", "role": "admin"})).json()["key"]
    response = await client.post(url, headers={"apikey": key}, json={"name": "child"})
    assert response.status_code == 403
    assert response.json()["code"] == "user_token_required"


async def test_expired_keys_and_bad_expiries(
    settings: Settings, client: AsyncTestClient[OrgbaseApp]
) -> None:
    url, headers = await key_manager(settings, client, "owner")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert (
        await client.post(url, headers=headers, json={"name": "p", "expires_at": past})
    ).status_code == 400
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    key = (await client.post(url, headers=headers, json={"name": "s", "expires_at": soon})).json()[
        "key"
    ]

    async def key_status() -> int:
        return (await client.get("/v1/auth/user", headers={"apikey": key})).status_code

    # Valid until it expires (a key is not a user: 403 here), then refused as unknown.
    assert await key_status() == 403

    async def expired() -> bool:
        status = await key_status()
        assert status in (401, 403), status
        return status == 401

    await eventually(expired, within=10, what="the key's expiry")


async def test_forged_keys_are_refused(client: AsyncTestClient[OrgbaseApp]) -> None:
    for key in ("obk_" + "A" * 43, "obk_", "obk_' OR '1'='1", "obk_" + "x" * 300):
        response = await client.get("/v1/auth/user", headers={"apikey": key})
        assert response.status_code == 401, key
        assert response.json()["code"] in {"api_key_invalid", "token_malformed"}


async def test_bad_org_ids_in_paths(client: AsyncTestClient[OrgbaseApp]) -> None:
    _, tokens = await new_user(client)
    for org in (
        "not-a-uuid",
        "1; DROP TABLE orgbase.users",
        "00000000-0000-0000-0000-000000000000",
    ):
        response = await client.get(
            f"/v1/orgs/{org}/api-keys", headers=bearer(tokens["access_token"])
        )
        assert response.status_code in {400, 403, 404}, (org, response.text)
