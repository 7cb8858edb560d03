"""Escaping an org's SSO requirement, attacked through a real gateway (the app on the real
stack).

The attack that worked: a member of an org whose domain is verified (so bound to the org's
SSO) moves their address off the domain and signs in with a password again: the rule
followed the current address, so the password session entered the org. Now the binding
follows the membership: once bound, entering needs the org's provider; and a bound
membership whose address left the org's verified domains gives no access at all until an
admin releases or removes it (at aal2, never an API key; audited)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from orgbase.tenants.context import MFA_FLAG_SECONDS
from tests.support.data import owner_connection
from tests.support.http import (
    add_member,
    admin_at_aal2,
    bearer,
    create_org,
    new_user,
    session_of,
    sign_in,
)
from tests.support.sso import mark_verified

Client = AsyncTestClient[OrgbaseApp]
ORG_PATHS = ("/v1/db/items", "/rest/v1/items", "/v1/orgs/{org}/members")


async def _entries(client: Client, token: str, org: str, apikey: str) -> set[tuple[int, str]]:
    """What the org's routes and data answer this token: {(status, code)}."""
    answers = set()
    for path in ORG_PATHS:
        answer = await client.get(path.format(org=org), headers={"apikey": apikey, **bearer(token)})
        code = answer.json().get("code", "") if answer.status_code >= 400 else ""
        answers.add((answer.status_code, code))
    return answers


async def _move_address(settings: Settings, user_id: str, email: str) -> None:
    """The address changes (however: an email change is confirmed at the new address)."""
    async with owner_connection(settings) as connection:
        await connection.execute(
            "UPDATE orgbase.users SET email = $2 WHERE id = $1", uuid.UUID(user_id), email
        )


async def _verified(settings: Settings, org: str, domain: str) -> None:
    """Verified below the API (the attack is what follows), then past the time a process
    trusts its copy of the org's sign-in policy."""
    await mark_verified(settings, org, domain)
    await asyncio.sleep(MFA_FLAG_SECONDS + 0.2)


async def _sso_org(client: Client, settings: Settings, domain: str) -> tuple[str, dict[str, Any]]:
    """An org whose owner (at aal2, outside the domain) claimed and verified ``domain``."""
    owner, tokens = await new_user(client)
    org = await create_org(client, tokens, "sso org")
    owner_tokens = await admin_at_aal2(client, await sign_in(client, owner["email"], org))
    claimed = await client.post(
        f"/v1/orgs/{org}/sso/domains",
        headers=bearer(owner_tokens["access_token"]),
        json={"domain": domain},
    )
    assert claimed.status_code == 201, claimed.text
    return org, owner_tokens


async def test_a_bound_member_who_leaves_the_domain_gets_no_access_until_released(
    client: Client, settings: Settings
) -> None:
    apikey = settings.auth.publishable_key or ""
    domain = f"corp-{uuid.uuid4().hex[:8]}.test"
    org, owner_tokens = await _sso_org(client, settings, domain)
    owner = bearer(owner_tokens["access_token"])
    # bob@<domain> is a member with a password before the domain is verified.
    bob, _ = await new_user(client)
    bob["email"] = f"bob-{uuid.uuid4().hex[:6]}@{domain}"
    await _move_address(settings, bob["id"], bob["email"])
    await add_member(client, {"access_token": owner_tokens["access_token"]}, org, bob, "member")
    await _verified(settings, org, domain)
    # Bound now: his password session is refused (the org wants its provider).
    session = await sign_in(client, bob["email"], org)
    assert await _entries(client, session["access_token"], org, apikey) == {(403, "sso_required")}

    # The escape: his address moves off the domain, and he signs in with his password.
    elsewhere = f"bob-{uuid.uuid4().hex[:6]}@elsewhere.test"
    await _move_address(settings, bob["id"], elsewhere)
    escaped = await sign_in(client, elsewhere, org)
    assert await _entries(client, escaped["access_token"], org, apikey) == {
        (403, "sso_membership_suspended")
    }
    members = await client.get(f"/v1/orgs/{org}/members", headers=owner)
    row = next(m for m in members.json() if m["user_id"] == bob["id"])
    assert (row["sso_bound"], row["sso_suspended"]) == (True, True)

    # Only an admin's decision ends it: not an API key, not a password alone (aal1).
    release = f"/v1/orgs/{org}/members/{bob['id']}/sso-binding"
    key = await client.post(
        f"/v1/orgs/{org}/api-keys", headers=owner, json={"name": "ci", "role": "admin"}
    )
    by_key = await client.delete(release, headers={"apikey": key.json()["key"]})
    assert (by_key.status_code, by_key.json()["code"]) == (403, "human_admin_required")
    owner_aal1 = await sign_in(client, owner_tokens["user"]["email"], org)
    by_aal1 = await client.delete(release, headers=bearer(owner_aal1["access_token"]))
    assert (by_aal1.status_code, by_aal1.json()["code"]) == (403, "insufficient_aal")
    assert await _entries(client, escaped["access_token"], org, apikey) == {
        (403, "sso_membership_suspended")
    }
    released = await client.delete(release, headers=owner)
    assert released.status_code == 204, released.text
    audit = await client.get(
        f"/v1/orgs/{org}/audit", headers=owner, params={"action": "member.sso_released"}
    )
    assert len(audit.json()["items"]) == 1
    assert await _entries(client, escaped["access_token"], org, apikey) == {(200, "")}


async def test_binding_is_made_wherever_the_membership_or_the_address_comes_from(
    client: Client, settings: Settings
) -> None:
    """Added after the verification, or moved onto the domain later: bound all the same,
    so moving off again suspends."""
    apikey = settings.auth.publishable_key or ""
    domain = f"corp-{uuid.uuid4().hex[:8]}.test"
    org, owner_tokens = await _sso_org(client, settings, domain)
    await _verified(settings, org, domain)
    owner = {"access_token": owner_tokens["access_token"]}
    added, moved = (await new_user(client))[0], (await new_user(client))[0]
    added["email"] = f"new-{uuid.uuid4().hex[:6]}@{domain}"
    await _move_address(settings, added["id"], added["email"])
    for person in (added, moved):
        await add_member(client, owner, org, person, "member")
    # ``moved`` comes onto the domain after joining, then leaves it again.
    await _move_address(settings, moved["id"], f"moved-{uuid.uuid4().hex[:6]}@{domain}")
    for person in (added, moved):
        gone = f"gone-{uuid.uuid4().hex[:6]}@else.test"
        await _move_address(settings, person["id"], gone)
        token = (await sign_in(client, gone, org))["access_token"]
        assert await _entries(client, token, org, apikey) == {(403, "sso_membership_suspended")}


async def _signed_in_by_the_provider(settings: Settings, org: str, access_token: str) -> None:
    """Mark the token's session as signed in by the org's provider, as the provider's
    callback marks it (this module's gateway reaches no provider on loopback)."""
    async with owner_connection(settings) as connection:
        await connection.execute(
            "UPDATE orgbase.sessions SET sso_org_id = $1 WHERE id = $2",
            uuid.UUID(org),
            session_of(access_token),
        )


async def test_a_bound_admin_cannot_release_their_own_binding(
    client: Client, settings: Settings
) -> None:
    """The attack that worked: a bound admin, signed in through the org's provider at aal2,
    released their own binding (204), moved their address off the domain and kept the
    org with a password alone. Releasing one's own binding is refused: another admin
    decides. An admin releasing someone else meets the org's sign-in policy themselves
    (a bound admin: through the org's provider) at aal2."""
    domain = f"corp-{uuid.uuid4().hex[:8]}.test"
    org, owner_tokens = await _sso_org(client, settings, domain)
    owner = {"access_token": owner_tokens["access_token"]}
    admin, bob = (await new_user(client))[0], (await new_user(client))[0]
    for person, role in ((admin, "admin"), (bob, "member")):
        person["email"] = f"{role}-{uuid.uuid4().hex[:6]}@{domain}"
        await _move_address(settings, person["id"], person["email"])
        await add_member(client, owner, org, person, role)
    await _verified(settings, org, domain)
    strong = await admin_at_aal2(client, await sign_in(client, admin["email"], org))
    headers = bearer(strong["access_token"])
    release = f"/v1/orgs/{org}/members/{{}}/sso-binding"
    # A password and a second factor, without the org's provider: not even for Bob.
    by_password = await client.delete(release.format(bob["id"]), headers=headers)
    assert (by_password.status_code, by_password.json()["code"]) == (403, "sso_required")

    await _signed_in_by_the_provider(settings, org, strong["access_token"])
    own = await client.delete(release.format(admin["id"]), headers=headers)
    assert (own.status_code, own.json()["code"]) == (403, "sso_self_release"), own.text
    members = await client.get(f"/v1/orgs/{org}/members", headers=bearer(owner["access_token"]))
    bound = {m["user_id"]: m["sso_bound"] for m in members.json()}
    assert bound[admin["id"]] is True
    # Bob is another member: that decision is the admin's.
    assert (await client.delete(release.format(bob["id"]), headers=headers)).status_code == 204
