"""SSO domain squatting, then takeover, attacked through a real gateway (`orgbase serve`),
a real OpenID provider (oidc-provider) and a real DNS server (dnsmasq on loopback).

The attack that worked: org A (the attacker's) claimed realco's domain first; realco's
own org got 409 ``domain_taken``; a platform admin's verify route, which named no org,
verified A's claim; A's provider then signed in an existing, confirmed account of that
domain (a member of another org) and got its tokens. Now a pending claim blocks nobody,
a claim is proven by ITS token in the domain's DNS or approved by name, an org's provider
never signs in an account it did not create or that was not linked to it, and changing an
org's SSO takes an owner at aal2 (never an API key), audited and mailed to every owner."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.integration.test_platform_admin import cli_admin_create
from tests.support.data import owner_connection
from tests.support.dns_server import LocalDns, running_dns
from tests.support.http import unique_email
from tests.support.mail import wait_for_mail
from tests.support.oidc_provider import (
    LocalProvider,
    gateway_with_provider,
)
from tests.support.sso import Api, Owner, confirm, mark_verified, sso_sign_in
from tests.support.stack import STATE_DIR

CLIENT_ID = "takeover-org-client"
CLIENT_SECRET = "takeover-org-client-secret-long-enough"


@dataclass
class World:
    api: Api
    provider: LocalProvider
    dns: LocalDns
    stack: LocalStack

    def platform_admin(self) -> str:
        """A platform admin's access token (made by the CLI, as an operator does)."""
        email = unique_email("operator")
        assert cli_admin_create(self.stack, email).returncode == 0
        return str(self.api.password_session(email)["access_token"])


@pytest.fixture(scope="module")
def world(stack: LocalStack, settings: Settings) -> Iterator[World]:
    del settings  # the test database, migrated
    with (
        running_dns(stack.layout.port_base + 33, STATE_DIR / "takeover_dns.log") as dns,
        gateway_with_provider(
            stack,
            35,
            "takeover",
            (CLIENT_ID, CLIENT_SECRET),
            ORGBASE_TENANCY_DNS_RESOLVERS=dns.address,
            ORGBASE_TENANCY_DNS_TIMEOUT_SECONDS="2",
        ) as (provider, gateway),
    ):
        yield World(Api(gateway, stack.secrets["publishable"]), provider, dns, stack)


def a_domain() -> str:
    return f"realco-{uuid.uuid4().hex[:8]}.test"


def configure_provider(api: Api, owner: Owner, issuer: str) -> None:
    body = {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    answer = api.call("PUT", f"/v1/orgs/{owner.org_id}/sso", owner.token, json=body)
    assert answer.status_code == 200, answer.text


def claim(api: Api, owner: Owner, domain: str) -> httpx.Response:
    return api.call(
        "POST", f"/v1/orgs/{owner.org_id}/sso/domains", owner.token, json={"domain": domain}
    )


def verify_by_dns(api: Api, owner: Owner, domain: str) -> httpx.Response:
    return api.call("POST", f"/v1/orgs/{owner.org_id}/sso/domains/{domain}/verify", owner.token)


def domains_of(api: Api, owner: Owner) -> dict[str, bool]:
    config = api.call("GET", f"/v1/orgs/{owner.org_id}/sso", owner.token)
    assert config.status_code == 200, config.text
    return {d["domain"]: d["verified"] for d in config.json()["domains"]}


def test_a_squatters_pending_claim_blocks_nobody_and_approval_names_the_claim(
    world: World,
) -> None:
    api, domain = world.api, a_domain()
    attacker = api.org_with_owner("squatter org")
    realco = api.org_with_owner("realco")
    assert claim(api, attacker, domain).status_code == 201
    # The real company's claim is not refused because someone claimed first.
    real_claim = claim(api, realco, domain)
    assert real_claim.status_code == 201, real_claim.text
    assert real_claim.json()["verification"]["name"] == f"_orgbase-challenge.{domain}"
    again = claim(api, realco, domain)
    assert (again.status_code, again.json()["code"]) == (409, "domain_claimed")

    # The old platform route named no org and verified whoever claimed: gone.
    admin = world.platform_admin()
    old = api.call("POST", f"/v1/platform/sso-domains/{domain}/verify", admin)
    assert old.status_code in (404, 405), old.text
    assert domains_of(api, attacker) == {domain: False}
    listed = api.call("GET", f"/v1/platform/sso-domains/{domain}/claims", admin)
    assert {c["org_id"] for c in listed.json()} == {attacker.org_id, realco.org_id}

    # The platform admin approves ONE named claim: realco's; the squatter's stays pending.
    approve = f"/v1/platform/sso-domains/{domain}/claims/{realco.org_id}/verify"
    not_admin = api.call("POST", approve, attacker.token)
    assert (not_admin.status_code, not_admin.json()["code"]) == (403, "platform_admin_required")
    approved = api.call("POST", approve, admin)
    assert approved.status_code == 201, approved.text
    assert domains_of(api, realco) == {domain: True}
    assert domains_of(api, attacker) == {domain: False}
    # One verified claim per domain: the squatter's can no longer be approved.
    second = api.call(
        "POST", f"/v1/platform/sso-domains/{domain}/claims/{attacker.org_id}/verify", admin
    )
    assert (second.status_code, second.json()["code"]) == (409, "domain_verified_elsewhere")
    unknown = api.call(
        "POST", f"/v1/platform/sso-domains/{domain}/claims/{uuid.uuid4()}/verify", admin
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "domain_not_found")


def test_dns_proves_only_the_claim_whose_token_is_published(world: World) -> None:
    api, domain = world.api, a_domain()
    attacker = api.org_with_owner("squatter org")
    realco = api.org_with_owner("realco")
    record = claim(api, attacker, domain).json()["verification"]
    real_record = claim(api, realco, domain).json()["verification"]
    assert record["value"] != real_record["value"]

    # Nothing published yet: neither claim is proven.
    for owner in (attacker, realco):
        unproven = verify_by_dns(api, owner, domain)
        assert (unproven.status_code, unproven.json()["code"]) == (400, "domain_not_proven")
    # realco publishes ITS token: the squatter's claim is still not proven by it.
    world.dns.publish(real_record["name"], real_record["value"])
    squatter = verify_by_dns(api, attacker, domain)
    assert (squatter.status_code, squatter.json()["code"]) == (400, "domain_not_proven")
    proven = verify_by_dns(api, realco, domain)
    assert proven.status_code == 200, proven.text
    assert proven.json()["verified"] is True
    # Even with the squatter's token published later, one verified claim per domain.
    world.dns.publish(record["name"], record["value"])
    late = verify_by_dns(api, attacker, domain)
    assert (late.status_code, late.json()["code"]) == (409, "domain_verified_elsewhere")
    assert domains_of(api, attacker) == {domain: False}


def test_an_unanswering_dns_is_a_503_not_a_verification(world: World) -> None:
    api, domain = world.api, a_domain()
    realco = api.org_with_owner("realco")
    assert claim(api, realco, domain).status_code == 201
    world.dns.stop()
    try:
        down = verify_by_dns(api, realco, domain)
    finally:
        world.dns.restart()
    assert (down.status_code, down.json()["code"]) == (503, "dns_unavailable")
    assert domains_of(api, realco) == {domain: False}


def test_changing_sso_needs_an_owner_at_aal2_never_a_key(world: World) -> None:
    api, domain = world.api, a_domain()
    owner = api.org_with_owner("guarded")
    org = owner.org_id
    # A second owner (who should hear of every change) and an admin at aal2.
    co_owner, admin = api.sign_up(), api.sign_up()
    for email, role in ((co_owner, "owner"), (admin, "admin")):
        api.join(org, owner.token, email, role)
    admin_token = api.step_up(api.password_session(admin, org))["access_token"]
    owner_aal1 = api.password_session(owner.email, org)["access_token"]
    key = api.call(
        "POST", f"/v1/orgs/{org}/api-keys", owner.token, json={"name": "ci", "role": "admin"}
    ).json()["key"]
    settings = {
        "issuer": world.provider.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    changes = [
        ("PUT", f"/v1/orgs/{org}/sso", settings),
        ("POST", f"/v1/orgs/{org}/sso/domains", {"domain": domain}),
        ("POST", f"/v1/orgs/{org}/sso/domains/{domain}/verify", None),
        ("DELETE", f"/v1/orgs/{org}/sso/domains/{domain}", None),
        ("DELETE", f"/v1/orgs/{org}/sso", None),
    ]
    for method, path, body in changes:
        for headers, expected in (
            ({"apikey": key}, (403, "human_admin_required")),
            ({"Authorization": f"Bearer {owner_aal1}"}, (403, "insufficient_aal")),
            ({"Authorization": f"Bearer {admin_token}"}, (403, "role_too_low")),
        ):
            answer = api.http.request(method, path, headers=headers, json=body)
            assert (answer.status_code, answer.json().get("code")) == expected, (
                method,
                path,
                headers,
                answer.text,
            )
    assert api.call("GET", f"/v1/orgs/{org}/sso", owner.token).json()["issuer"] is None

    # The owner at aal2 may; it is audited, and every owner is told by mail.
    configure_provider(api, owner, world.provider.issuer)
    assert claim(api, owner, domain).status_code == 201
    audit = api.call("GET", f"/v1/orgs/{org}/audit", owner.token, params={"action": "org.sso*"})
    assert {e["action"] for e in audit.json()["items"]} >= {
        "org.sso_configured",
        "org.sso_domain_added",
    }
    for email in (owner.email, co_owner):
        message = wait_for_mail(api.gateway, email, "Sign-in settings of guarded changed")
        assert owner.email in message["body"]
    assert (
        api.call("DELETE", f"/v1/orgs/{org}/sso/domains/{domain}", owner.token).status_code == 204
    )


def test_an_orgs_provider_never_takes_an_existing_account_by_email(
    world: World, settings: Settings
) -> None:
    """Even with the domain verified for the attacker's org (an operator erred), its
    provider's ID token for an existing, confirmed account of that domain gets no tokens:
    the account was neither made by that provider nor linked to it by its owner."""
    api, domain = world.api, a_domain()
    # The victim: ceo@<domain>, confirmed, a member of realco's org (no SSO there).
    victim = api.sign_up(f"ceo@{domain}")
    confirm(settings, victim)
    realco = api.org_with_owner("realco")
    api.join(realco.org_id, realco.token, victim, "admin")

    attacker = api.org_with_owner("attacker org")
    configure_provider(api, attacker, world.provider.issuer)
    assert claim(api, attacker, domain).status_code == 201
    asyncio.run(mark_verified(settings, attacker.org_id, domain))

    world.provider.account("attacker-made-ceo", victim)
    world.provider.next_login("attacker-made-ceo")
    answer = sso_sign_in(api, domain)
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "identity_link_required"
    assert "access_token" not in answer.headers.get("location", "")
    # The victim's account is untouched: their password still works, no link was made.
    assert api.password_session(victim)["user"]["email"] == victim
    members = api.call("GET", f"/v1/orgs/{attacker.org_id}/members", attacker.token).json()
    assert victim not in {m["email"] for m in members}


async def _owner_notices(settings: Settings, org_id: str) -> list[tuple[str, str]]:
    """(audit action, kind of the owners' mail) of each change of the org's sign-in, in
    order (the org has one owner: one mail a change)."""
    async with owner_connection(settings) as connection:
        actions = await connection.fetch(
            "SELECT action FROM orgbase.audit_events WHERE org_id = $1 AND action LIKE 'org.sso%'"
            " ORDER BY id",
            uuid.UUID(org_id),
        )
        kinds = await connection.fetch(
            "SELECT kind FROM orgbase.outbox WHERE org_id = $1 AND kind LIKE 'sso%' ORDER BY id",
            uuid.UUID(org_id),
        )
    return list(zip([r["action"] for r in actions], [r["kind"] for r in kinds], strict=True))


def test_each_sign_in_change_is_audited_and_mailed_under_its_own_kind(
    world: World, settings: Settings
) -> None:
    """The owners' mail of each change keeps its kind (what the outbox is read by) beside
    the change's audit event, a platform admin's approval included."""
    api, domain = world.api, a_domain()
    owner = api.org_with_owner("noticed")
    configure_provider(api, owner, world.provider.issuer)
    assert claim(api, owner, domain).status_code == 201
    approve = f"/v1/platform/sso-domains/{domain}/claims/{owner.org_id}/verify"
    assert api.call("POST", approve, world.platform_admin()).status_code == 201
    drop = f"/v1/orgs/{owner.org_id}/sso/domains/{domain}"
    assert api.call("DELETE", drop, owner.token).status_code == 204
    assert api.call("DELETE", f"/v1/orgs/{owner.org_id}/sso", owner.token).status_code == 204
    assert asyncio.run(_owner_notices(settings, owner.org_id)) == [
        ("org.sso_configured", "sso_configured"),
        ("org.sso_domain_added", "sso_domain_added"),
        ("org.sso_domain_verified", "sso_domain_verified"),
        ("org.sso_domain_removed", "sso_domain_removed"),
        ("org.sso_removed", "sso_removed"),
    ]
