"""GoTrue's admin API (/auth/v1/admin, /auth/v1/invite) through a real gateway: the
platform's service key manages every account; an org admin's API key reaches only its
org's members (read, remove from the org, invite); every other credential is refused, and
the service key opens nothing else. Anonymous sign-ins are refused with GoTrue's code."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.http import (
    PASSWORD,
    add_member,
    bearer,
    create_org,
    new_user,
    sign_in,
    sign_up,
    unique_email,
)
from tests.support.stack import with_overrides

Client = AsyncTestClient[OrgbaseApp]
SERVICE_KEY = "obsvc_" + secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
async def admin_client(settings: Settings) -> AsyncIterator[Client]:
    configured = with_overrides(settings, auth={"service_key": SERVICE_KEY})
    async with AsyncTestClient(app=create_app(configured)) as client:
        yield client


def as_key(key: str) -> dict[str, str]:
    """As supabase-js sends a key made its client's: bearer and apikey."""
    return {"Authorization": f"Bearer {key}", "apikey": key}


SERVICE = as_key(SERVICE_KEY)


async def org_with_key(client: Client, role: str = "admin") -> dict[str, Any]:
    """An org with an owner, a member and an API key of ``role``."""
    owner, first = await new_user(client)
    org_id = await create_org(client, first, "admin api")
    tokens = await sign_in(client, owner["email"], org_id)
    member = await sign_up(client)
    await add_member(client, tokens, org_id, member, "member")
    made = await client.post(
        f"/v1/orgs/{org_id}/api-keys",
        headers=bearer(tokens["access_token"]),
        json={"name": "admin api", "role": role},
    )
    assert made.status_code == 201, made.text
    return {
        "org": org_id,
        "owner": owner,
        "tokens": tokens,
        "member": member,
        "key": made.json(),
        "headers": as_key(made.json()["key"]),
    }


async def gotrue_sign_in(client: Client, email: str, password: str = PASSWORD) -> int:
    answer = await client.post(
        "/auth/v1/token?grant_type=password",
        json={"email": email, "password": password},
        headers={"apikey": await publishable(client)},
    )
    return answer.status_code


async def publishable(client: Client) -> str:
    return str((await client.get("/v1/auth/client-config")).json()["publishable_key"])


async def test_the_service_key_manages_every_account(admin_client: Client) -> None:
    email = unique_email("made")
    made = await admin_client.post(
        "/auth/v1/admin/users",
        headers=SERVICE,
        json={
            "email": email,
            "password": PASSWORD,
            "email_confirm": True,
            "user_metadata": {"a": 1},
        },
    )
    assert made.status_code == 200, made.text
    user = made.json()
    assert user["email_confirmed_at"] is not None
    assert user["user_metadata"] == {"a": 1}
    assert await gotrue_sign_in(admin_client, email) == 200
    again = await admin_client.post(
        "/auth/v1/admin/users", headers=SERVICE, json={"email": email.upper()}
    )
    assert (again.status_code, again.json()["code"]) == (409, "email_exists")
    bad = await admin_client.get("/auth/v1/admin/users?page=abc", headers=SERVICE)
    assert (bad.status_code, bad.json()["code"]) == (400, "validation_failed")
    await sign_up(admin_client)  # at least two accounts: two pages of one
    listed = await admin_client.get("/auth/v1/admin/users?per_page=1", headers=SERVICE)
    assert listed.status_code == 200
    assert len(listed.json()["users"]) == 1
    assert int(listed.headers["x-total-count"]) >= 2
    assert 'rel="next"' in listed.headers["link"]
    got = await admin_client.get(f"/auth/v1/admin/users/{user['id']}", headers=SERVICE)
    assert got.json()["email"] == email
    # A new password ends the sessions; metadata merges.
    session = await sign_in(admin_client, email)
    changed = await admin_client.put(
        f"/auth/v1/admin/users/{user['id']}",
        headers=SERVICE,
        json={"password": "another horse battery staple", "user_metadata": {"b": 2}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["user_metadata"] == {"a": 1, "b": 2}
    gone = await admin_client.get("/v1/auth/user", headers=bearer(session["access_token"]))
    assert gone.status_code == 401
    assert await gotrue_sign_in(admin_client, email, "another horse battery staple") == 200
    deleted = await admin_client.delete(f"/auth/v1/admin/users/{user['id']}", headers=SERVICE)
    assert deleted.status_code == 200, deleted.text
    assert await gotrue_sign_in(admin_client, email, "another horse battery staple") == 401
    missing = await admin_client.get(f"/auth/v1/admin/users/{user['id']}", headers=SERVICE)
    assert (missing.status_code, missing.json()["code"]) == (404, "user_not_found")


async def test_a_generated_link_signs_in_once(admin_client: Client) -> None:
    user = await sign_up(admin_client)
    link = await admin_client.post(
        "/auth/v1/admin/generate_link",
        headers=SERVICE,
        json={"type": "magiclink", "email": user["email"]},
    )
    assert link.status_code == 200, link.text
    body = link.json()
    assert body["verification_type"] == "magiclink"
    assert "/auth/v1/verify?" in body["action_link"]
    verify = {"type": "magiclink", "email": user["email"], "token": body["email_otp"]}
    key = {"apikey": await publishable(admin_client)}
    signed = await admin_client.post("/auth/v1/verify", json=verify, headers=key)
    assert signed.status_code == 200, signed.text
    assert signed.json()["user"]["id"] == user["id"]
    reused = await admin_client.post("/auth/v1/verify", json=verify, headers=key)
    assert reused.status_code == 403
    unknown = await admin_client.post(
        "/auth/v1/admin/generate_link",
        headers=SERVICE,
        json={"type": "recovery", "email": unique_email("nobody")},
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "user_not_found")


async def test_an_org_admin_key_reaches_its_members_only(admin_client: Client) -> None:
    mine, other = await org_with_key(admin_client), await org_with_key(admin_client)
    headers = mine["headers"]
    listed = await admin_client.get("/auth/v1/admin/users", headers=headers)
    assert listed.status_code == 200, listed.text
    emails = {u["email"] for u in listed.json()["users"]}
    assert emails == {mine["owner"]["email"], mine["member"]["email"]}
    assert listed.headers["x-total-count"] == "2"
    for stranger in (other["owner"], other["member"]):
        for method in ("get", "delete"):
            answer = await admin_client.request(
                method.upper(), f"/auth/v1/admin/users/{stranger['id']}", headers=headers
            )
            assert (answer.status_code, answer.json()["code"]) == (404, "user_not_found")
    got = await admin_client.get(f"/auth/v1/admin/users/{mine['member']['id']}", headers=headers)
    assert got.status_code == 200
    # deleteUser removes the member from the org; the account stays.
    removed = await admin_client.delete(
        f"/auth/v1/admin/users/{mine['member']['id']}", headers=headers
    )
    assert removed.status_code == 200, removed.text
    after = await admin_client.get("/auth/v1/admin/users", headers=headers)
    assert {u["email"] for u in after.json()["users"]} == {mine["owner"]["email"]}
    still = await admin_client.get(f"/auth/v1/admin/users/{mine['member']['id']}", headers=SERVICE)
    assert still.status_code == 200
    # Only the platform's key makes or changes accounts or makes sign-in links.
    for method, path, body in (
        ("POST", "/auth/v1/admin/users", {"email": unique_email("x"), "email_confirm": True}),
        ("PUT", f"/auth/v1/admin/users/{mine['owner']['id']}", {"password": "x" * 20}),
        ("POST", "/auth/v1/admin/generate_link", {"type": "magiclink", "email": "a@b.test"}),
    ):
        answer = await admin_client.request(method, path, headers=headers, json=body)
        assert (answer.status_code, answer.json()["code"]) == (403, "service_key_required")
    # An invitation into the org, by mail.
    invited = await admin_client.post(
        "/auth/v1/invite", headers=headers, json={"email": "newcomer@invited.test"}
    )
    assert invited.status_code == 200, invited.text
    pending = await admin_client.get(
        f"/v1/orgs/{mine['org']}/invitations", headers=bearer(mine["tokens"]["access_token"])
    )
    assert "newcomer@invited.test" in {i["email"] for i in pending.json()}


async def test_other_credentials_are_refused(admin_client: Client) -> None:
    org = await org_with_key(admin_client, role="member")
    owner_token = bearer(org["tokens"]["access_token"]) | {
        "apikey": await publishable(admin_client)
    }
    forged = as_key("obsvc_" + secrets.token_urlsafe(32))
    for headers, status, code in (
        (org["headers"], 403, "not_admin"),  # a key below admin
        (owner_token, 403, "not_admin"),  # a person, even the owner
        (forged, 401, None),  # not the service key
        ({}, 401, None),
    ):
        answer = await admin_client.get("/auth/v1/admin/users", headers=headers)
        assert answer.status_code == status, (headers, answer.text)
        if code is not None:
            assert answer.json()["code"] == code
    admin = await org_with_key(admin_client)
    revoked = await admin_client.delete(
        f"/v1/orgs/{admin['org']}/api-keys/{admin['key']['id']}",
        headers=bearer(admin["tokens"]["access_token"]),
    )
    assert revoked.status_code == 204, revoked.text
    after = await admin_client.get("/auth/v1/admin/users", headers=admin["headers"])
    assert after.status_code == 401


async def test_the_service_key_opens_nothing_else(admin_client: Client, client: Client) -> None:
    for path in ("/rest/v1/tasks", "/v1/orgs", "/v1/auth/user", "/auth/v1/user"):
        answer = await admin_client.get(path, headers=SERVICE)
        assert answer.status_code == 401, (path, answer.text)
    # A gateway without a service key takes none.
    unset = await client.get("/auth/v1/admin/users", headers=SERVICE)
    assert unset.status_code == 401


async def test_anonymous_sign_ins_are_refused(client: Client) -> None:
    answer = await client.post(
        "/auth/v1/signup",
        json={"data": {}, "gotrue_meta_security": {}},
        headers={"apikey": await publishable(client)},
    )
    assert (answer.status_code, answer.json()["code"]) == (403, "anonymous_provider_disabled")
