"""Per-org SSO against a real OpenID provider (oidc-provider) and a real gateway: an org
owner (at aal2) registers the org's provider and claims an email domain (a platform admin
approves that claim); users of that domain reach the org only through it (a password
session is refused on the org's routes and its data); a first sign-in makes them members
with the default role; an existing account links the provider from its own session; a
user removed at the provider loses the session at the next refresh; the org's provider
cannot sign in addresses outside the org's verified domains."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.integration.test_platform_admin import cli_admin_create
from tests.support.data import owner_connection
from tests.support.http import unique_email
from tests.support.oidc_provider import (
    LocalProvider,
    gateway_with_provider,
)
from tests.support.sso import APP, Api, confirm, session_from, sso_sign_in, walk

CLIENT_ID = "org-sso-client"
CLIENT_SECRET = "the-org-client-secret-long-enough"


@pytest.fixture(scope="module")
def setup(stack: LocalStack, settings: Settings) -> Iterator[tuple[LocalProvider, str]]:
    del settings  # the test database, migrated
    with gateway_with_provider(stack, 31, "sso", (CLIENT_ID, CLIENT_SECRET)) as both:
        yield both


def test_org_sso_end_to_end(
    setup: tuple[LocalProvider, str], stack: LocalStack, settings: Settings
) -> None:
    provider, gateway = setup
    api = Api(gateway, stack.secrets["publishable"])
    domain = f"corp-{uuid.uuid4().hex[:8]}.test"

    # The owner (not of that domain, at aal2) makes the org; a member of that domain
    # exists already with a password.
    owner = api.org_with_owner("SSO corp")
    org_id, owner_token = owner.org_id, owner.token
    bob = api.sign_up(f"bob@{domain}")
    confirm(settings, bob)
    api.join(org_id, owner_token, bob, "member")

    # The owner registers the provider and claims the domain; a platform admin approves
    # that claim (the org's own proof, DNS, is tests/security/test_sso_takeover.py's).
    configured = api.call(
        "PUT",
        f"/v1/orgs/{org_id}/sso",
        owner_token,
        json={
            "issuer": provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "default_role": "viewer",
        },
    )
    assert configured.status_code == 200, configured.text
    assert "client_secret" not in configured.text
    claimed = api.call(
        "POST", f"/v1/orgs/{org_id}/sso/domains", owner_token, json={"domain": domain}
    )
    assert claimed.status_code == 201, claimed.text
    taken = api.call("POST", f"/v1/orgs/{org_id}/sso/domains", owner_token, json={"domain": domain})
    assert taken.status_code == 409

    # Before verification, bob's password session works in the org.
    bob_session = api.password_session(bob, org_id)
    assert api.call("GET", "/v1/db/items", bob_session["access_token"]).status_code == 200
    operator = unique_email("sso-operator")
    assert cli_admin_create(stack, operator).returncode == 0
    operator_token = api.password_session(operator)["access_token"]
    approve = f"/v1/platform/sso-domains/{domain}/claims/{org_id}/verify"
    not_admin = api.call("POST", approve, owner_token)
    assert not_admin.status_code == 403
    verified = api.call("POST", approve, operator_token)
    assert verified.status_code == 201, verified.text

    # Now bob's password session is refused on the org's routes and data, at once.
    for path in ("/v1/db/items", "/rest/v1/items", f"/v1/orgs/{org_id}/members"):
        refused = api.call("GET", path, bob_session["access_token"])
        assert refused.status_code == 403, path
        assert refused.json()["code"] == "sso_required", path
    fresh = api.password_session(bob, org_id)
    assert api.call("GET", "/v1/db/items", fresh["access_token"]).status_code == 403
    # The owner (another domain) is not bound by it.
    assert api.call("GET", f"/v1/orgs/{org_id}/members", owner_token).status_code == 200

    # A first sign-in through the provider: a new user, provisioned with the default role.
    alice = f"alice@{domain}"
    provider.account("alice-sso", alice)
    provider.next_login("alice-sso")
    answer = sso_sign_in(api, domain)
    assert answer.status_code == 303, answer.text
    alice_session = session_from(answer.headers["location"])
    token = alice_session["access_token"]
    assert api.call("GET", "/v1/db/items", token).status_code == 200
    members = api.call("GET", f"/v1/orgs/{org_id}/members", token).json()
    assert {m["email"]: m["role"] for m in members}[alice] == "viewer"
    assert {m["email"]: m["sso_bound"] for m in members}[alice] is True

    # bob comes through the provider too: his account exists, so the provider's word
    # alone does not reach it; signed in to it, bob links the provider, then signs in.
    provider.account("bob-sso", bob)
    provider.next_login("bob-sso")
    unlinked = sso_sign_in(api, domain)
    assert (unlinked.status_code, unlinked.json()["code"]) == (409, "identity_link_required")
    bob_token = api.password_session(bob)["access_token"]
    link = api.call(
        "GET",
        "/auth/v1/user/identities/authorize",
        bob_token,
        params={"provider": f"sso:{org_id}", "redirect_to": APP},
    )
    assert link.status_code == 200, link.text
    provider.next_login("bob-sso")
    linked = walk(httpx.Client(timeout=10), link.json()["url"], gateway)
    assert linked.status_code == 303, linked.text
    provider.next_login("bob-sso")
    bob_sso = session_from(sso_sign_in(api, domain).headers["location"])
    assert api.call("GET", "/v1/db/items", bob_sso["access_token"]).status_code == 200
    me = api.call("GET", "/auth/v1/user", bob_sso["access_token"]).json()
    assert me["email"] == bob
    assert [i["provider"] for i in me["identities"]] == [f"sso:{org_id}"]

    # A refresh asks the provider: still there, fine; removed there, the session ends.
    refreshed = api.call(
        "POST",
        "/auth/v1/token",
        params={"grant_type": "refresh_token"},
        json={"refresh_token": alice_session["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    provider.remove("alice-sso")
    ended = api.call(
        "POST",
        "/auth/v1/token",
        params={"grant_type": "refresh_token"},
        json={"refresh_token": refreshed.json()["refresh_token"]},
    )
    assert ended.status_code == 401
    assert ended.json()["code"] == "sso_session_ended"
    assert api.call("GET", "/v1/db/items", refreshed.json()["access_token"]).status_code == 401
    # And the next sign-in fails at the provider.
    provider.next_login("alice-sso")
    denied = sso_sign_in(api, domain)
    assert denied.status_code == 303
    assert "error_code=oidc_denied" in denied.headers["location"]

    # The org's provider cannot sign in an address outside the org's verified domains.
    outsider = unique_email("outsider")
    provider.account("outsider", outsider)
    provider.next_login("outsider")
    mismatch = sso_sign_in(api, domain)
    assert mismatch.status_code == 403
    assert mismatch.json()["code"] == "sso_domain_mismatch"

    unknown = api.call("POST", "/auth/v1/sso", json={"domain": "nobody.example"})
    assert unknown.status_code == 404


async def _store_issuer_below_the_api(settings: Settings, org_id: str, issuer: str) -> None:
    async with owner_connection(settings) as connection:
        await connection.execute(
            "INSERT INTO orgbase.org_sso (org_id, issuer, client_id, client_secret, default_role)"
            " VALUES ($1, $2, $3, $4, 'viewer') ON CONFLICT (org_id) DO UPDATE SET issuer = $2",
            uuid.UUID(org_id),
            issuer,
            CLIENT_ID,
            CLIENT_SECRET,
        )


@pytest.mark.parametrize(
    "issuer",
    [
        "https://169.254.169.254/latest",  # the cloud metadata service
        "https://10.1.2.3/realms/corp",
        "https://[fd00::1]/oidc",
        "https://0x7f.1/oidc",  # 127.0.0.1 as a WHATWG parser reads it
    ],
)
def test_an_org_provider_at_an_internal_address_is_never_fetched(
    setup: tuple[LocalProvider, str], stack: LocalStack, settings: Settings, issuer: str
) -> None:
    """An org admin's provider URL is fetched by the gateway: it must not reach inside our
    network. Refused at registration, and at sign-in when the stored issuer (or what its
    name resolves to) has become internal since."""
    _, gateway = setup
    api = Api(gateway, stack.secrets["publishable"])
    owner = api.org_with_owner("SSRF corp")
    org_id, token = owner.org_id, owner.token
    body = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "default_role": "viewer",
    }
    refused = api.call("PUT", f"/v1/orgs/{org_id}/sso", token, json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] in ("sso_provider_refused", "invalid_issuer"), refused.text
    assert api.call("GET", f"/v1/orgs/{org_id}/sso", token).json()["issuer"] is None

    asyncio.run(_store_issuer_below_the_api(settings, org_id, issuer))
    started = api.call(
        "POST", "/auth/v1/sso", json={"provider_id": f"sso:{org_id}", "redirect_to": APP}
    )
    assert started.status_code == 400, started.text
    assert started.json()["code"] == "sso_provider_refused", started.text
