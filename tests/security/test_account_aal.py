"""A password alone took over or deleted an account protected by a second factor.

With only the password of an account that has a verified TOTP factor (a session at
aal1), ``PUT /auth/v1/user {email}`` moved the account to the attacker's address (then a
recovery there set a new password: the owner was locked out); ``PATCH /v1/auth/user``
changed the password (ending the owner's aal2 sessions) and ``DELETE /v1/auth/user``
deleted the account. Now, as GoTrue answers it ("AAL2 session is required to update email
or password when MFA is enabled"), once an account has a verified factor, changing its
email or password and deleting it need a session at aal2 on every route: 403
``insufficient_aal``, nothing changed, nothing mailed. A recovery session (a mailed link
or code) is aal1 too: it verifies the factor (a TOTP or a recovery code) before it sets a
password, so reading the owner's mailbox never defeats their authenticator.

Attacked through a real gateway process with mail (the email change tests' gateway).
"""

from __future__ import annotations

from typing import Any

import httpx
import pyotp

from tests.security.test_email_change import confirmed_user, gateway, http
from tests.support.http import PASSWORD, bearer, claims_of, unique_email
from tests.support.mail import code_in, mail_count, wait_for_mail

__all__ = ["gateway", "http"]  # the email change tests' fixtures, used here
Tokens = dict[str, Any]
INSUFFICIENT = (403, "insufficient_aal")
NEW_PASSWORD = "a passphrase the attacker chose"


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Tokens:
    answer = await http.post(
        "/v1/auth/token", json={"grant_type": "password", "email": email, "password": password}
    )
    assert answer.status_code == 200, answer.text
    tokens: Tokens = answer.json()
    return tokens


async def raise_to_aal2(
    http: httpx.AsyncClient, token: str, factor_id: str, code: str
) -> httpx.Response:
    challenge = await http.post(f"/auth/v1/factors/{factor_id}/challenge", headers=bearer(token))
    assert challenge.status_code == 200, challenge.text
    return await http.post(
        f"/auth/v1/factors/{factor_id}/verify",
        headers=bearer(token),
        json={"challenge_id": challenge.json()["id"], "code": code},
    )


async def owner_with_factor(
    http: httpx.AsyncClient, gateway: str
) -> tuple[str, str, pyotp.TOTP, Tokens]:
    """A confirmed account with a verified TOTP factor: (email, factor id, its TOTP, aal2
    tokens)."""
    email, first = await confirmed_user(http, gateway)
    factor = await http.post("/auth/v1/factors", headers=bearer(first["access_token"]), json={})
    totp = pyotp.TOTP(factor.json()["totp"]["secret"])
    raised = await raise_to_aal2(http, first["access_token"], factor.json()["id"], totp.now())
    assert raised.status_code == 200, raised.text
    return email, factor.json()["id"], totp, raised.json()


def answer_of(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.json().get("code") if response.content else None


async def test_a_password_alone_changes_no_email_no_password_and_deletes_nothing(
    http: httpx.AsyncClient, gateway: str
) -> None:
    email, _, _, owner = await owner_with_factor(http, gateway)
    attacker = bearer((await sign_in(http, email))["access_token"])
    assert claims_of(attacker["Authorization"].removeprefix("Bearer "))["aal"] == "aal1"
    theirs = unique_email("attacker")
    attempts = [
        ("PUT", "/auth/v1/user", {"email": theirs}),
        ("PUT", "/auth/v1/user", {"password": NEW_PASSWORD}),
        ("PUT", "/auth/v1/user", {"password": NEW_PASSWORD, "current_password": PASSWORD}),
        ("PATCH", "/v1/auth/user", {"email": theirs, "current_password": PASSWORD}),
        ("PATCH", "/v1/auth/user", {"password": NEW_PASSWORD, "current_password": PASSWORD}),
        ("DELETE", "/v1/auth/user", {"password": PASSWORD}),
    ]
    for method, path, body in attempts:
        answer = await http.request(method, path, headers=attacker, json=body)
        assert answer_of(answer) == INSUFFICIENT, (method, path, body, answer.text)
    # Nothing changed, nothing was mailed to the attacker's address.
    user = (await http.get("/auth/v1/user", headers=bearer(owner["access_token"]))).json()
    assert (user["email"], user["new_email"]) == (email, None)
    assert mail_count(gateway, theirs) == 0
    assert (await sign_in(http, email))["user"]["email"] == email
    # What an aal1 session may still change: its name and metadata.
    named = await http.patch("/v1/auth/user", headers=attacker, json={"display_name": "x"})
    assert named.status_code == 200, named.text
    data = await http.put("/auth/v1/user", headers=attacker, json={"data": {"theme": "dark"}})
    assert data.status_code == 200, data.text
    # The owner in person (aal2) changes the password: allowed, as before.
    changed = await http.patch(
        "/v1/auth/user",
        headers=bearer(owner["access_token"]),
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    assert (await http.get("/auth/v1/user", headers=attacker)).status_code == 401


async def test_a_recovery_link_verifies_the_factor_before_it_sets_a_password(
    http: httpx.AsyncClient, gateway: str
) -> None:
    """As GoTrue: the recovery session is aal1; the owner verifies their factor in it (here
    with one of their recovery codes: the authenticator may be what they lost), then sets
    the new password."""
    email, factor_id, _, owner = await owner_with_factor(http, gateway)
    await http.post("/auth/v1/recover", json={"email": email})
    code = code_in(wait_for_mail(gateway, email, "Reset your password"))
    proven = await http.post(
        "/auth/v1/verify", json={"type": "recovery", "email": email, "token": code}
    )
    assert proven.status_code == 200, proven.text
    recovery = proven.json()
    assert claims_of(recovery["access_token"])["aal"] == "aal1"
    for body in ({"password": NEW_PASSWORD}, {"email": unique_email("mailbox-thief")}):
        refused = await http.put(
            "/auth/v1/user", headers=bearer(recovery["access_token"]), json=body
        )
        assert answer_of(refused) == INSUFFICIENT, refused.text
    assert (await sign_in(http, email)).get("access_token")  # the old password still works
    recovery_code = owner["recovery_codes"][0]
    raised = await raise_to_aal2(http, recovery["access_token"], factor_id, recovery_code)
    assert raised.status_code == 200, raised.text
    reset = await http.put(
        "/auth/v1/user",
        headers=bearer(raised.json()["access_token"]),
        json={"password": NEW_PASSWORD},
    )
    assert reset.status_code == 200, reset.text
    assert (await sign_in(http, email, NEW_PASSWORD)).get("access_token")
