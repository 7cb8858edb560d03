"""Linking an external identity to an account, attacked through a real gateway and a real
OpenID provider (oidc-provider), with the operator's own provider ("Sign in with ...").

The rule: a provider signs in only accounts it created or that their owner linked to it,
signed in to the account and proving the identity at the provider in the same flow. It
never takes an existing, proven account by its address alone (the provider's word that
someone controls ceo@realco is no proof that they are the account ceo@realco made here).
Linking takes the account's own verified address (so a link URL pushed to a victim links
nothing of theirs to the attacker), and unlinking never removes the last way in; both
need aal2 once the account has a second factor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.http import unique_email
from tests.support.oidc_provider import (
    LocalProvider,
    gateway_with_provider,
)
from tests.support.sso import APP, Api, confirm, session_from, walk

CLIENT_ID = "linking-test-client"
CLIENT_SECRET = "linking-test-client-secret-long-enough"


@dataclass
class Setup:
    provider: LocalProvider
    api: Api

    def sign_in_with_provider(self, sub: str) -> httpx.Response:
        """A browser with no session signs in with the provider as ``sub``."""
        self.provider.next_login(sub)
        start = f"{self.api.gateway}/auth/v1/authorize?provider=acme&redirect_to={APP}"
        return walk(httpx.Client(timeout=10), start, self.api.gateway)

    def link(self, token: str, sub: str) -> httpx.Response:
        """The signed-in user links the provider, signing in there as ``sub``."""
        started = self.start_link(token)
        assert started.status_code == 200, started.text
        self.provider.next_login(sub)
        return walk(httpx.Client(timeout=10), started.json()["url"], self.api.gateway)

    def start_link(self, token: str) -> httpx.Response:
        return self.api.call(
            "GET",
            "/auth/v1/user/identities/authorize",
            token,
            params={"provider": "acme", "redirect_to": APP},
        )

    def identities(self, token: str) -> list[dict[str, Any]]:
        listed = self.api.call("GET", "/auth/v1/user/identities", token)
        assert listed.status_code == 200, listed.text
        found: list[dict[str, Any]] = listed.json()
        return found


@pytest.fixture(scope="module")
def setup(stack: LocalStack, settings: Settings) -> Iterator[Setup]:
    del settings  # the test database, migrated
    with gateway_with_provider(
        stack, 37, "linking", (CLIENT_ID, CLIENT_SECRET), operator_provider={"name": "acme"}
    ) as (provider, gateway):
        yield Setup(provider, Api(gateway, stack.secrets["publishable"]))


def _confirmed(setup: Setup, settings: Settings) -> str:
    email = setup.api.sign_up(unique_email("linked"))
    confirm(settings, email)
    return email


def test_a_provider_never_takes_a_confirmed_account_by_its_address(
    setup: Setup, settings: Settings
) -> None:
    victim = _confirmed(setup, settings)
    setup.provider.account("claims-victims-address", victim)
    answer = setup.sign_in_with_provider("claims-victims-address")
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "identity_link_required"
    assert "/auth/v1/user/identities/authorize" in answer.json()["hint"]
    token = setup.api.password_session(victim)["access_token"]
    assert setup.identities(token) == []


def test_the_owner_links_from_their_session_then_the_provider_signs_them_in(
    setup: Setup, settings: Settings
) -> None:
    email = _confirmed(setup, settings)
    setup.provider.account("owner-links", email)
    session = setup.api.password_session(email)
    linked = setup.link(session["access_token"], "owner-links")
    assert linked.status_code == 303, linked.text
    user_id = session["user"]["id"]
    linked_session = session_from(linked.headers["location"])
    me = setup.api.call("GET", "/auth/v1/user", linked_session["access_token"]).json()
    assert me["id"] == user_id
    [identity] = setup.identities(session["access_token"])
    assert (identity["provider"], identity["id"]) == ("acme", "owner-links")
    # From now on the provider alone signs the owner in, to the same account.
    again = setup.sign_in_with_provider("owner-links")
    assert again.status_code == 303, again.text
    signed_in = session_from(again.headers["location"])
    assert setup.api.call("GET", "/auth/v1/user", signed_in["access_token"]).json()["id"] == user_id


def test_a_link_url_pushed_to_a_victim_links_nothing_of_theirs(
    setup: Setup, settings: Settings
) -> None:
    """The attacker starts a link for their own account and makes the victim's browser
    open it; the victim signs in at the provider. Their identity must not become a way
    into the attacker's account (the victim would then work in it unknowingly)."""
    attacker = _confirmed(setup, settings)
    victim = unique_email("victim")
    setup.provider.account("victim-at-provider", victim)
    attacker_token = setup.api.password_session(attacker)["access_token"]
    pushed = setup.link(attacker_token, "victim-at-provider")
    assert pushed.status_code == 403, pushed.text
    assert pushed.json()["code"] == "identity_email_mismatch"
    assert setup.identities(attacker_token) == []
    # The victim's own sign-in lands in the victim's own (new) account.
    own = setup.sign_in_with_provider("victim-at-provider")
    mine = session_from(own.headers["location"])
    assert setup.api.call("GET", "/auth/v1/user", mine["access_token"]).json()["email"] == victim


def test_a_link_needs_the_session_alive_at_the_end(setup: Setup, settings: Settings) -> None:
    email = _confirmed(setup, settings)
    setup.provider.account("ended-session", email)
    token = setup.api.password_session(email)["access_token"]
    started = setup.start_link(token)
    assert setup.api.call("POST", "/auth/v1/logout", token).status_code == 204
    setup.provider.next_login("ended-session")
    answer = walk(httpx.Client(timeout=10), started.json()["url"], setup.api.gateway)
    assert (answer.status_code, answer.json()["code"]) == (401, "session_revoked")


def test_unlinking_keeps_a_way_in_and_both_need_aal2_with_a_factor(
    setup: Setup, settings: Settings
) -> None:
    # An account the provider made: its identity is its only way in.
    setup.provider.account("only-way", unique_email("only"))
    made = session_from(setup.sign_in_with_provider("only-way").headers["location"])
    [only] = setup.identities(made["access_token"])
    last = setup.api.call(
        "DELETE", f"/auth/v1/user/identities/{only['identity_id']}", made["access_token"]
    )
    assert (last.status_code, last.json()["code"]) == (409, "single_identity_not_deletable")

    # A password account with the provider linked and a second factor.
    email = _confirmed(setup, settings)
    setup.provider.account("with-factor", email)
    session = setup.api.password_session(email)
    assert setup.link(session["access_token"], "with-factor").status_code == 303
    raised = setup.api.step_up(session)
    aal1 = setup.api.password_session(email)["access_token"]
    [identity] = setup.identities(aal1)
    path = f"/auth/v1/user/identities/{identity['identity_id']}"
    for refused in (setup.api.call("DELETE", path, aal1), setup.start_link(aal1)):
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_aal")
    # Someone else's identity is not found; the owner at aal2 unlinks theirs.
    foreign = setup.api.call("DELETE", path, made["access_token"])
    assert (foreign.status_code, foreign.json()["code"]) == (404, "identity_not_found")
    assert setup.api.call("DELETE", path, raised["access_token"]).status_code == 204
    assert setup.identities(raised["access_token"]) == []
    # Unlinked: the provider's word alone does not reach the account again.
    answer = setup.sign_in_with_provider("with-factor")
    assert (answer.status_code, answer.json()["code"]) == (409, "identity_link_required")
