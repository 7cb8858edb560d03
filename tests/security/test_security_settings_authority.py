"""Security settings are changed by an admin in person with a second factor (aal2): never by
an API key (an admin key once turned an org's MFA requirement off with
``PUT /v1/orgs/{org}/auth-policy``), never by an impersonation, never on a password alone.
The sign-in policy either way; webhook destinations: registering, changing the URL or the
events, enabling again, rotating the signing secret. Reading stays with members (the
policy) and admins, keys included (endpoints); so does stopping an endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.data import make_platform_admin
from tests.support.http import (
    add_member,
    admin_at_aal2,
    bearer,
    create_org,
    new_user,
    sign_in,
)
from tests.support.stack import with_overrides

Client = AsyncTestClient[OrgbaseApp]
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[Client]:
    """A gateway that accepts loopback destinations (none is ever delivered to here)."""
    configured = with_overrides(settings, webhooks={"allowed_hosts": ("127.0.0.1",)})
    async with AsyncTestClient(app=create_app(configured)) as test_client:
        yield test_client


@pytest.fixture
async def org(client: Client) -> dict[str, Any]:
    """An org with an owner at aal2 (MFA required), an admin at aal1, a member, an admin
    API key, and an endpoint the owner registered."""
    owner, owner_tokens = await new_user(client)
    org_id = await create_org(client, owner_tokens, "security settings")
    admin, _ = await new_user(client)
    member, _ = await new_user(client)
    await add_member(client, owner_tokens, org_id, admin, "admin")
    await add_member(client, owner_tokens, org_id, member, "member")
    strong = bearer(
        (await admin_at_aal2(client, await sign_in(client, owner["email"], org_id)))["access_token"]
    )
    key = await client.post(
        f"/v1/orgs/{org_id}/api-keys", headers=strong, json={"name": "ci", "role": "admin"}
    )
    assert key.status_code == 201, key.text
    endpoint = await client.post(
        f"/v1/orgs/{org_id}/webhooks", headers=strong, json={"url": HOOK, "events": ["*"]}
    )
    assert endpoint.status_code == 201, endpoint.text
    policy = await client.put(
        f"/v1/orgs/{org_id}/auth-policy", headers=strong, json={"mfa_required": True}
    )
    assert policy.status_code == 200, policy.text
    admin_tokens = await sign_in(client, admin["email"], org_id)
    return {
        "id": org_id,
        "strong": strong,
        "key": bearer(key.json()["key"]),
        "admin": admin_tokens,
        "member": await sign_in(client, member["email"], org_id),
        "endpoint": endpoint.json()["id"],
    }


def refused(answer: Any, code: str) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == code, answer.text


async def test_an_admin_api_key_cannot_turn_mfa_off(client: Client, org: dict[str, Any]) -> None:
    policy = f"/v1/orgs/{org['id']}/auth-policy"
    refused(
        await client.put(policy, headers=org["key"], json={"mfa_required": False}),
        "human_admin_required",
    )
    read = await client.get(policy, headers=org["key"])
    assert (read.status_code, read.json()) == (200, {"mfa_required": True})


async def test_a_password_alone_changes_no_security_setting(
    client: Client, org: dict[str, Any]
) -> None:
    """An admin's aal1 session (the org requires MFA of data and member routes; the policy
    route refuses aal1 for its own reason)."""
    weak = bearer(org["admin"]["access_token"])
    put = await client.put(
        f"/v1/orgs/{org['id']}/auth-policy", headers=weak, json={"mfa_required": False}
    )
    assert put.status_code == 403
    assert put.json()["code"] in ("insufficient_aal", "mfa_required")
    # The same admin at aal2 may.
    strong = bearer((await admin_at_aal2(client, org["admin"]))["access_token"])
    off = await client.put(
        f"/v1/orgs/{org['id']}/auth-policy", headers=strong, json={"mfa_required": False}
    )
    assert off.status_code == 200, off.text
    # With MFA off, the aal1 session reaches the route, and is refused for its level.
    again = await client.put(
        f"/v1/orgs/{org['id']}/auth-policy", headers=weak, json={"mfa_required": True}
    )
    refused(again, "insufficient_aal")
    hooks = await client.post(
        f"/v1/orgs/{org['id']}/webhooks", headers=weak, json={"url": HOOK, "events": ["*"]}
    )
    refused(hooks, "insufficient_aal")


async def test_an_impersonation_changes_no_security_setting(
    client: Client, org: dict[str, Any], settings: Settings
) -> None:
    policy = f"/v1/orgs/{org['id']}/auth-policy"
    off = await client.put(policy, headers=org["strong"], json={"mfa_required": False})
    assert off.status_code == 200, off.text
    operator, operator_tokens = await new_user(client)
    await make_platform_admin(settings, operator["id"])
    operator_strong = await admin_at_aal2(client, operator_tokens)
    made = await client.post(
        f"/v1/platform/orgs/{org['id']}/impersonate",
        headers=bearer(operator_strong["access_token"]),
        json={"reason": "support ticket 12"},
    )
    assert made.status_code == 201, made.text
    as_them = bearer(made.json()["access_token"])
    assert (await client.get(policy, headers=as_them)).status_code == 200
    refused(
        await client.put(policy, headers=as_them, json={"mfa_required": True}),
        "impersonation_read_only",
    )
    hooks = await client.post(
        f"/v1/orgs/{org['id']}/webhooks", headers=as_them, json={"url": HOOK, "events": ["*"]}
    )
    refused(hooks, "impersonation_read_only")


async def test_an_admin_api_key_cannot_point_webhooks_anywhere(
    client: Client, org: dict[str, Any]
) -> None:
    hooks = f"/v1/orgs/{org['id']}/webhooks"
    endpoint = f"{hooks}/{org['endpoint']}"
    key = org["key"]
    refused(
        await client.post(hooks, headers=key, json={"url": HOOK, "events": ["*"]}),
        "human_admin_required",
    )
    for change in ({"url": "http://127.0.0.1:10/exfiltrate"}, {"events": ["db.*"]}):
        refused(await client.patch(endpoint, headers=key, json=change), "human_admin_required")
    refused(await client.post(f"{endpoint}/rotate-secret", headers=key), "human_admin_required")
    # Stopping an endpoint is every admin's (a key too), starting it again is not.
    stopped = await client.patch(endpoint, headers=key, json={"enabled": False})
    assert (stopped.status_code, stopped.json()["enabled"]) == (200, False)
    refused(
        await client.patch(endpoint, headers=key, json={"enabled": True}), "human_admin_required"
    )
    listed = await client.get(hooks, headers=key)
    assert listed.status_code == 200
    [row] = listed.json()
    assert (row["url"], row["events"], row["enabled"]) == (HOOK, ["*"], False)
    renamed = await client.patch(endpoint, headers=key, json={"description": "ours"})
    assert renamed.status_code == 200, renamed.text
    # The admin in person at aal2 may do each.
    again = await client.patch(endpoint, headers=org["strong"], json={"enabled": True})
    assert (again.status_code, again.json()["enabled"]) == (200, True)
    assert (await client.delete(endpoint, headers=key)).status_code == 204


async def test_members_read_the_policy(client: Client, org: dict[str, Any]) -> None:
    strong_member = await admin_at_aal2(client, org["member"])
    read = await client.get(
        f"/v1/orgs/{org['id']}/auth-policy", headers=bearer(strong_member["access_token"])
    )
    assert (read.status_code, read.json()) == (200, {"mfa_required": True})
    put = await client.put(
        f"/v1/orgs/{org['id']}/auth-policy",
        headers=bearer(strong_member["access_token"]),
        json={"mfa_required": False},
    )
    refused(put, "role_too_low")


async def test_an_aal1_platform_admin_cannot_impersonate_an_org_requiring_mfa(
    client: Client, org: dict[str, Any], settings: Settings
) -> None:
    """The org requires a second factor of everyone entering it: a platform admin's
    impersonation too. An aal1 admin's impersonation was made (201) and refused only when
    used; it is refused when asked for, with the org's MFA code."""
    operator, operator_tokens = await new_user(client)
    await make_platform_admin(settings, operator["id"])
    path = f"/v1/platform/orgs/{org['id']}/impersonate"
    weak = await client.post(
        path, headers=bearer(operator_tokens["access_token"]), json={"reason": "ticket 7"}
    )
    refused(weak, "mfa_required")
    strong = await admin_at_aal2(client, operator_tokens)
    made = await client.post(
        path, headers=bearer(strong["access_token"]), json={"reason": "ticket 7"}
    )
    assert made.status_code == 201, made.text
