"""Pre-hijacking: an attacker signed up with the victim's address and a password (signing
in before confirmation was allowed); when the victim later proved the address (magic
link, code, recovery), the attacker's password and sessions still worked.

Now the first proof of an address ends what was set before it: every session (and its
open socket, through the revocation path), a pending email change, the second factors,
and, unless the proof is the sign-up's own confirmation, the password. Outside dev and
test mode, signing in before confirmation is off unless the operator turns it on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import create_app
from tests.integration.test_gotrue_clients import gotrue_env
from tests.security.test_socket_revocation import closed_with, connect
from tests.support.http import PASSWORD, bearer, unique_email
from tests.support.http import password_grant as v1_grant
from tests.support.mail import code_in, link_in, wait_for_mail
from tests.support.processes import serving_at_own_url
from tests.support.stack import STATE_DIR, TEST_DATABASE, stack_settings

ATTACKER_PASSWORD = "the attacker's own passphrase"


@pytest.fixture(scope="module")
def gateway(stack: LocalStack, settings: Settings) -> Iterator[str]:
    """A real gateway with mail, where signing in before confirmation is allowed (the
    dev convenience the attack needs)."""
    del settings
    env = gotrue_env(
        stack,
        ORGBASE_AUTH_ALLOW_UNCONFIRMED_SIGN_IN="true",
        ORGBASE_AUTH_MAIL_PER_ADDRESS_PER_HOUR="100",
    )
    with serving_at_own_url(env, STATE_DIR / "pre_hijacking_server.log") as base:
        yield base


@pytest.fixture
async def http(gateway: str, stack: LocalStack) -> Any:
    headers = {"apikey": stack.secrets["publishable"]}
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=30) as client:
        yield client


async def password_grant(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post(
        "/auth/v1/token",
        params={"grant_type": "password"},
        json={"email": email, "password": password},
    )


async def pre_register(http: httpx.AsyncClient, gateway: str, email: str) -> dict[str, Any]:
    """The attacker: signs up with the victim's address, signs in, makes an org (to hold
    a socket open), enrols a factor and asks to move the account to their own address."""
    signed_up = await http.post(
        "/auth/v1/signup", json={"email": email, "password": ATTACKER_PASSWORD}
    )
    assert signed_up.status_code == 200, signed_up.text
    session = signed_up.json()
    auth = bearer(session["access_token"])
    org = await http.post("/v1/orgs", headers=auth, json={"name": "attacker org"})
    assert org.status_code == 201, org.text
    in_org = await http.post(
        "/v1/auth/token", json=v1_grant(email, org.json()["id"], ATTACKER_PASSWORD)
    )
    assert in_org.status_code == 200, in_org.text
    factor = await http.post("/auth/v1/factors", headers=auth, json={"factor_type": "totp"})
    assert factor.status_code == 200, factor.text
    moved_to = unique_email("attacker")
    moved = await http.put("/auth/v1/user", headers=auth, json={"email": moved_to})
    assert moved.status_code == 200, moved.text
    change_code = code_in(wait_for_mail(gateway, moved_to, "Confirm your new email address"))
    socket = await connect(gateway, in_org.json()["access_token"])
    return {
        "session": session,
        "in_org": in_org.json(),
        "socket": socket,
        "moved_to": moved_to,
        "change_code": change_code,
        "factor": factor.json(),
    }


async def assert_everything_ended(
    http: httpx.AsyncClient, email: str, attacker: dict[str, Any], *, password_ended: bool
) -> None:
    assert await closed_with(attacker["socket"]) >= 4000
    for tokens in (attacker["session"], attacker["in_org"]):
        user = await http.get("/auth/v1/user", headers=bearer(tokens["access_token"]))
        assert (user.status_code, user.json()["code"]) == (401, "session_revoked")
        refreshed = await http.post(
            "/auth/v1/token",
            params={"grant_type": "refresh_token"},
            json={"refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 401
    # The pending move to the attacker's address died with the proof.
    moved = await http.post(
        "/auth/v1/verify",
        json={
            "type": "email_change",
            "email": attacker["moved_to"],
            "token": attacker["change_code"],
        },
    )
    assert moved.status_code == 403, moved.text
    if password_ended:
        signed_in = await password_grant(http, email, ATTACKER_PASSWORD)
        assert signed_in.status_code == 401, signed_in.text


async def test_a_magic_link_code_ends_the_pre_registration(
    http: httpx.AsyncClient, gateway: str
) -> None:
    victim = unique_email("victim")
    attacker = await pre_register(http, gateway, victim)
    asked = await http.post("/auth/v1/otp", json={"email": victim, "create_user": False})
    assert asked.status_code == 200
    code = code_in(wait_for_mail(gateway, victim, "Your sign-in code"))
    proven = await http.post(
        "/auth/v1/verify", json={"type": "email", "email": victim, "token": code}
    )
    assert proven.status_code == 200, proven.text
    await assert_everything_ended(http, victim, attacker, password_ended=True)
    mine = proven.json()
    assert mine["user"]["email"] == victim
    assert mine["user"]["factors"] == []  # the attacker's factor is gone
    me = await http.get("/auth/v1/user", headers=bearer(mine["access_token"]))
    assert me.status_code == 200
    # The victim sets a password of their own (the account has none now).
    chosen = "the victim's own passphrase"
    set_password = await http.put(
        "/auth/v1/user", headers=bearer(mine["access_token"]), json={"password": chosen}
    )
    assert set_password.status_code == 200, set_password.text
    assert (await password_grant(http, victim, chosen)).status_code == 200


async def test_a_mailed_link_ends_it_too(http: httpx.AsyncClient, gateway: str) -> None:
    victim = unique_email("victim-link")
    attacker = await pre_register(http, gateway, victim)
    # The victim signs up too (with unconfirmed sign-in on, GoTrue's autoconfirm answer,
    # user_already_exists) and follows the link mailed to the address's owner.
    answered = await http.post(
        "/auth/v1/signup", json={"email": victim, "password": "the victim's passphrase"}
    )
    assert (answered.status_code, answered.json()["code"]) == (400, "user_already_exists")
    link = link_in(wait_for_mail(gateway, victim, "You already have an account"))
    followed = await http.get(link.replace(gateway, ""), follow_redirects=False)
    assert followed.status_code == 303
    assert "access_token=" in followed.headers["location"]
    await assert_everything_ended(http, victim, attacker, password_ended=True)


async def test_a_recovery_ends_it(http: httpx.AsyncClient, gateway: str) -> None:
    victim = unique_email("victim-recovery")
    attacker = await pre_register(http, gateway, victim)
    await http.post("/auth/v1/recover", json={"email": victim})
    code = code_in(wait_for_mail(gateway, victim, "Reset your password"))
    proven = await http.post(
        "/auth/v1/verify", json={"type": "recovery", "email": victim, "token": code}
    )
    assert proven.status_code == 200, proven.text
    await assert_everything_ended(http, victim, attacker, password_ended=True)


async def test_confirming_the_sign_up_ends_its_sessions(
    http: httpx.AsyncClient, gateway: str
) -> None:
    """The sign-up's own confirmation confirms that registration (its password stays),
    but no session opened before it survives."""
    email = unique_email("confirms")
    attacker = await pre_register(http, gateway, email)
    code = code_in(wait_for_mail(gateway, email, "Confirm your email address"))
    proven = await http.post(
        "/auth/v1/verify", json={"type": "signup", "email": email, "token": code}
    )
    assert proven.status_code == 200, proven.text
    await assert_everything_ended(http, email, attacker, password_ended=False)
    assert (await password_grant(http, email, ATTACKER_PASSWORD)).status_code == 200
    # A later proof (the address is proven) ends nothing.
    again = await password_grant(http, email, ATTACKER_PASSWORD)
    await http.post("/auth/v1/otp", json={"email": email})
    code = code_in(wait_for_mail(gateway, email, "Your sign-in code"))
    assert (
        await http.post("/auth/v1/verify", json={"type": "email", "email": email, "token": code})
    ).status_code == 200
    alive = await http.get("/auth/v1/user", headers=bearer(again.json()["access_token"]))
    assert alive.status_code == 200


async def test_factors_enrolled_before_the_proof_are_gone(
    http: httpx.AsyncClient, gateway: str
) -> None:
    """A verified factor the pre-registration made would lock the owner out of aal2."""
    victim = unique_email("victim-factor")
    signed_up = await http.post(
        "/auth/v1/signup", json={"email": victim, "password": ATTACKER_PASSWORD}
    )
    auth = bearer(signed_up.json()["access_token"])
    factor = (await http.post("/auth/v1/factors", headers=auth, json={})).json()
    challenge = await http.post(f"/auth/v1/factors/{factor['id']}/challenge", headers=auth)
    verified = await http.post(
        f"/auth/v1/factors/{factor['id']}/verify",
        headers=auth,
        json={
            "challenge_id": challenge.json()["id"],
            "code": pyotp.TOTP(factor["totp"]["secret"]).now(),
        },
    )
    assert verified.status_code == 200, verified.text
    await http.post("/auth/v1/recover", json={"email": victim})
    code = code_in(wait_for_mail(gateway, victim, "Reset your password"))
    proven = await http.post(
        "/auth/v1/verify", json={"type": "recovery", "email": victim, "token": code}
    )
    assert proven.json()["user"]["factors"] == []


async def test_unconfirmed_sign_in_is_off_outside_dev_and_test(
    stack: LocalStack, settings: Settings
) -> None:
    del settings
    production = stack_settings(stack, TEST_DATABASE, ORGBASE_ENV="prod")
    assert production.auth.allow_unconfirmed_sign_in is False
    for env in ("dev", "test"):
        assert stack_settings(stack, TEST_DATABASE, ORGBASE_ENV=env).auth.allow_unconfirmed_sign_in
    async with AsyncTestClient(app=create_app(production)) as client:
        email = unique_email("prod")
        made = await client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert made.status_code == 201
        refused = await client.post(
            "/v1/auth/token",
            json={"grant_type": "password", "email": email, "password": PASSWORD},
        )
        assert (refused.status_code, refused.json()["code"]) == (400, "email_not_confirmed")
        key = {"apikey": stack.secrets["publishable"]}
        offered = await client.get("/auth/v1/settings", headers=key)
        assert offered.json()["mailer_autoconfirm"] is False
