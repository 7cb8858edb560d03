"""An outsider joined an SSO org by swapping email: ``PATCH /v1/auth/user`` changed the
address at once, with no mail and ``email_confirmed_at`` kept, so the attacker took a new
hire's address, and what looked the hire up by address (their first SSO sign-in, an
invitation) found the attacker's account.

Every email change, on every route, is pending until confirmed at the new address, and
the old address is told; the pending address grants nothing (no sign-in, no invitation,
no lookup by address) until then; a new address that another account took meanwhile is
refused at confirmation (409 ``email_exists``); an address another account has when asked
answers as a free one (its owner is told, and no code is sent)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.integration.test_gotrue_clients import gotrue_env
from tests.support.http import PASSWORD, bearer, unique_email
from tests.support.mail import code_in, link_in, mail_count, wait_for_mail
from tests.support.processes import serving_at_own_url
from tests.support.stack import STATE_DIR

CHANGE = "Confirm your new email address"
ASKED = "A change of your account's address was asked for"
CHANGED = "Your account's address was changed"
TAKEN = "Someone tried to move another account to your address"


@pytest.fixture(scope="module")
def gateway(stack: LocalStack, settings: Settings) -> Iterator[str]:
    del settings
    with serving_at_own_url(gotrue_env(stack), STATE_DIR / "email_change_server.log") as base:
        yield base


@pytest.fixture
async def http(gateway: str, stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"apikey": stack.secrets["publishable"]}
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=30) as client:
        yield client


async def confirmed_user(http: httpx.AsyncClient, gateway: str) -> tuple[str, dict[str, Any]]:
    """A user whose address is proven, signed in: (email, session)."""
    email = unique_email("owner")
    assert (
        await http.post("/auth/v1/signup", json={"email": email, "password": PASSWORD})
    ).status_code == 200
    code = code_in(wait_for_mail(gateway, email, "Confirm your email address"))
    proven = await http.post(
        "/auth/v1/verify", json={"type": "signup", "email": email, "token": code}
    )
    assert proven.status_code == 200, proven.text
    session: dict[str, Any] = proven.json()
    return email, session


async def password_grant(http: httpx.AsyncClient, email: str) -> httpx.Response:
    return await http.post(
        "/v1/auth/token", json={"grant_type": "password", "email": email, "password": PASSWORD}
    )


async def test_the_v1_route_only_asks_and_the_address_grants_nothing(
    http: httpx.AsyncClient, gateway: str, admin_connection: asyncpg.Connection
) -> None:
    attacker, session = await confirmed_user(http, gateway)
    auth = bearer(session["access_token"])
    hire = unique_email("new-hire")
    before = (await http.get("/auth/v1/user", headers=auth)).json()
    asked = await http.patch(
        "/v1/auth/user", headers=auth, json={"email": hire, "current_password": PASSWORD}
    )
    assert asked.status_code == 200, asked.text
    assert (asked.json()["email"], asked.json()["new_email"]) == (attacker, hire)
    after = (await http.get("/auth/v1/user", headers=auth)).json()
    assert after["email"] == attacker
    assert after["email_confirmed_at"] == before["email_confirmed_at"]
    assert wait_for_mail(gateway, attacker, ASKED)["body"].count(hire) == 1
    # The pending address signs nobody in, and matches no invitation.
    assert (await password_grant(http, hire)).status_code == 401
    assert (await password_grant(http, attacker)).status_code == 200
    owner, owner_session = await confirmed_user(http, gateway)
    owner_auth = bearer(owner_session["access_token"])
    org = (await http.post("/v1/orgs", headers=owner_auth, json={"name": "realco"})).json()
    in_org = await http.post(
        "/v1/auth/token",
        json={"grant_type": "password", "email": owner, "password": PASSWORD, "org_id": org["id"]},
    )
    invited = await http.post(
        f"/v1/orgs/{org['id']}/invitations",
        headers=bearer(in_org.json()["access_token"]),
        json={"email": hire, "role": "member"},
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["token"]  # dev mode shows it
    taken = await http.post("/v1/invitations/accept", headers=auth, json={"token": token})
    assert (taken.status_code, taken.json()["code"]) == (403, "invitation_email_mismatch")
    by_address = await admin_connection.fetchval(
        "SELECT count(*) FROM orgbase.users WHERE email = $1", hire
    )
    assert by_address == 0
    # The real hire registers the address meanwhile: the attacker's code is then refused.
    assert (
        await http.post("/auth/v1/signup", json={"email": hire, "password": PASSWORD})
    ).status_code == 200
    code = code_in(wait_for_mail(gateway, hire, CHANGE))
    late = await http.post(
        "/auth/v1/verify", json={"type": "email_change", "email": hire, "token": code}
    )
    assert (late.status_code, late.json()["code"]) == (409, "email_exists")
    assert (await http.get("/auth/v1/user", headers=auth)).json()["email"] == attacker


async def test_gotrue_route_changes_only_at_the_new_address(
    http: httpx.AsyncClient, gateway: str
) -> None:
    old, session = await confirmed_user(http, gateway)
    auth = bearer(session["access_token"])
    new = unique_email("moved")
    asked = await http.put("/auth/v1/user", headers=auth, json={"email": new})
    assert asked.status_code == 200, asked.text
    assert (asked.json()["email"], asked.json()["new_email"]) == (old, new)
    assert wait_for_mail(gateway, old, ASKED)["body"].count(new) == 1
    # The link in the mail to the new address swaps it in.
    link = link_in(wait_for_mail(gateway, new, CHANGE))
    followed = await http.get(link.replace(gateway, ""), follow_redirects=False)
    assert followed.status_code == 303
    assert "access_token=" in followed.headers["location"]
    user = (await http.get("/auth/v1/user", headers=auth)).json()
    assert (user["email"], user["new_email"]) == (new, None)
    assert user["email_confirmed_at"] >= session["user"]["email_confirmed_at"]
    assert wait_for_mail(gateway, old, CHANGED)["body"].count(new) == 1
    assert (await password_grant(http, old)).status_code == 401
    assert (await password_grant(http, new)).status_code == 200
    # Swapping back is a change like any other: pending until confirmed.
    back = await http.put("/auth/v1/user", headers=auth, json={"email": old})
    assert back.json()["email"] == new
    assert (await password_grant(http, old)).status_code == 401


async def test_a_newer_request_voids_the_older_code(http: httpx.AsyncClient, gateway: str) -> None:
    _, session = await confirmed_user(http, gateway)
    auth = bearer(session["access_token"])
    first, second = unique_email("first"), unique_email("second")
    await http.put("/auth/v1/user", headers=auth, json={"email": first})
    first_code = code_in(wait_for_mail(gateway, first, CHANGE))
    await http.put("/auth/v1/user", headers=auth, json={"email": second})
    refused = await http.post(
        "/auth/v1/verify", json={"type": "email_change", "email": first, "token": first_code}
    )
    assert refused.status_code == 403
    assert (await http.get("/auth/v1/user", headers=auth)).json()["new_email"] == second


async def test_changing_to_a_taken_address_reveals_nothing(
    http: httpx.AsyncClient, gateway: str
) -> None:
    """A taken address answered 409 ``email_exists`` (a free one 200): any signed-in user
    could tell who has an account. Now both answer the same pending change; the taken
    address's owner gets a notice, never a code, so the change cannot confirm."""
    taken, _ = await confirmed_user(http, gateway)
    mine, session = await confirmed_user(http, gateway)
    auth = bearer(session["access_token"])
    free = unique_email("free")
    for address in (taken, free):
        put = await http.put("/auth/v1/user", headers=auth, json={"email": address.upper()})
        assert put.status_code == 200, put.text
        assert (put.json()["email"], put.json()["new_email"]) == (mine, address)
        patch = await http.patch(
            "/v1/auth/user", headers=auth, json={"email": address, "current_password": PASSWORD}
        )
        assert patch.status_code == 200, patch.text
        assert (patch.json()["email"], patch.json()["new_email"]) == (mine, address)
    assert wait_for_mail(gateway, taken, TAKEN)["body"].count("already has an account") == 1
    resent = await http.post("/auth/v1/resend", json={"type": "email_change", "email": taken})
    assert resent.status_code == 200, resent.text
    assert mail_count(gateway, taken, CHANGE) == 0
    assert (await password_grant(http, taken)).status_code == 200
    assert (await http.get("/auth/v1/user", headers=auth)).json()["email"] == mine
