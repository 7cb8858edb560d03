"""Supabase's published Python clients (supabase-auth and supabase), unchanged, against a
real gateway: sign-up, confirmation with the code read from the mail catcher, sign-in,
TOTP enrolment, table('items').select(), recovery and logout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest
from supabase import Client, create_client
from supabase_auth.errors import AuthApiError

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.http import PASSWORD, unique_email
from tests.support.mail import code_in, wait_for_mail
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import STATE_DIR, server_env


def gotrue_env(stack: LocalStack, **overrides: str) -> dict[str, str]:
    """A dev-mode gateway that delivers mail to the stack's catcher and wants confirmed
    emails."""
    wanted = {
        "ORGBASE_ENV": "dev",
        "ORGBASE_SMTP_HOST": "127.0.0.1",
        "ORGBASE_SMTP_PORT": str(stack.layout.smtp_port),
        "ORGBASE_SMTP_POLL_SECONDS": "0.2",
        "ORGBASE_AUTH_ALLOW_UNCONFIRMED_SIGN_IN": "false",
        "ORGBASE_AUTH_REDIRECT_URLS": "http://app.example.test/",
    }
    return server_env(stack, **{**wanted, **overrides})


@pytest.fixture(scope="module")
def gateway(stack: LocalStack, settings: Settings) -> Iterator[str]:
    """With the default signing keys: supabase-auth decodes access tokens itself
    (assurance level, claims) and knows RS256, ES256 and HS256 only."""
    del settings  # the test database, migrated
    port = free_port()
    env = gotrue_env(stack, ORGBASE_TENANCY_PUBLIC_URL=f"http://127.0.0.1:{port}")
    process = start_server(env, port, log_file=STATE_DIR / "gotrue_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


def claims_of(token: str) -> dict[str, Any]:
    import base64
    import json

    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def test_done_when_flow(gateway: str, anon_key: str) -> None:
    supabase: Client = create_client(gateway, anon_key)
    email = unique_email("sb")

    # Sign-up: a user, no session until the address is confirmed.
    signed_up = supabase.auth.sign_up({"email": email, "password": PASSWORD})
    assert signed_up.user is not None
    assert signed_up.user.email == email
    assert signed_up.session is None
    with pytest.raises(AuthApiError) as unconfirmed:
        supabase.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert unconfirmed.value.code == "email_not_confirmed"

    # Confirm with the code from the mail catcher.
    mail = wait_for_mail(gateway, email, "Confirm your email address")
    confirmed = supabase.auth.verify_otp({"email": email, "token": code_in(mail), "type": "signup"})
    assert confirmed.session is not None
    assert confirmed.user is not None
    assert confirmed.user.email_confirmed_at is not None

    # An org to hold items; the next GoTrue sign-in enters the last used org.
    headers = {"Authorization": f"Bearer {confirmed.session.access_token}"}
    created = httpx.post(f"{gateway}/v1/orgs", headers=headers, json={"name": "sb org"})
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    into_org = httpx.post(
        f"{gateway}/v1/auth/token",
        json={"grant_type": "password", "email": email, "password": PASSWORD, "org_id": org_id},
    )
    assert into_org.status_code == 200, into_org.text

    signed_in = supabase.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert signed_in.session is not None
    claims = claims_of(signed_in.session.access_token)
    assert claims["org"] == org_id
    assert claims["aal"] == "aal1"
    assert claims["role"] == "authenticated"
    assert claims["email"] == email
    assert [entry["method"] for entry in claims["amr"]] == ["password"]

    # TOTP: enroll, challenge, verify -> aal2.
    enrolled = supabase.auth.mfa.enroll({"factor_type": "totp", "friendly_name": "phone"})
    assert enrolled.totp is not None
    assert enrolled.totp.uri.startswith("otpauth://totp/")
    assert "<svg" in enrolled.totp.qr_code
    totp = pyotp.TOTP(enrolled.totp.secret)
    verified = supabase.auth.mfa.challenge_and_verify(
        {"factor_id": enrolled.id, "code": totp.now()}
    )
    assert claims_of(verified.access_token)["aal"] == "aal2"
    level = supabase.auth.mfa.get_authenticator_assurance_level()
    assert level.current_level == "aal2"
    factors = supabase.auth.mfa.list_factors()
    assert [f.id for f in factors.totp] == [enrolled.id]

    # The data API through /rest/v1, as the supabase client queries it.
    inserted = supabase.table("items").insert({"title": "from supabase-py"}).execute()
    written: list[dict[str, Any]] = inserted.data  # type: ignore[assignment]
    assert written[0]["title"] == "from supabase-py"
    rows = supabase.table("items").select("*").execute()
    read: list[dict[str, Any]] = rows.data  # type: ignore[assignment]
    assert [row["title"] for row in read] == ["from supabase-py"]

    # A refresh keeps the session's level: aal2 (and its org).
    refreshed = supabase.auth.refresh_session()
    assert refreshed.session is not None
    assert claims_of(refreshed.session.access_token)["aal"] == "aal2"
    assert claims_of(refreshed.session.access_token)["org"] == org_id
    before_recovery = refreshed.session.access_token

    # Recovery: mail, code, a new session; every other session ends; a new password.
    supabase.auth.reset_password_for_email(email)
    mail = wait_for_mail(gateway, email, "Reset your password")
    recovered = supabase.auth.verify_otp(
        {"email": email, "token": code_in(mail), "type": "recovery"}
    )
    assert recovered.session is not None
    old = httpx.get(
        f"{gateway}/auth/v1/user",
        headers={"apikey": anon_key, "Authorization": f"Bearer {before_recovery}"},
    )
    assert old.status_code == 401
    new_password = PASSWORD + " again"
    # The account has a factor: as GoTrue, the recovery session (aal1) verifies it before
    # it sets a password (the next time step: this one was used at the enrolment).
    with pytest.raises(AuthApiError, match="aal2"):
        supabase.auth.update_user({"password": new_password})
    supabase.auth.mfa.challenge_and_verify(
        {"factor_id": enrolled.id, "code": totp.at(time.time() + 30)}
    )
    supabase.auth.update_user({"password": new_password})
    with pytest.raises(AuthApiError):
        supabase.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    again = supabase.auth.sign_in_with_password({"email": email, "password": new_password})
    assert again.session is not None
    last_token = again.session.access_token

    # Logout: the token stops working at once.
    supabase.auth.sign_out()
    after = httpx.get(
        f"{gateway}/auth/v1/user",
        headers={"apikey": anon_key, "Authorization": f"Bearer {last_token}"},
    )
    assert after.status_code == 401


def test_anon_key_grants_nothing(gateway: str, anon_key: str) -> None:
    both = {"apikey": anon_key, "Authorization": f"Bearer {anon_key}"}
    assert httpx.get(f"{gateway}/rest/v1/items", headers=both).status_code == 401
    assert httpx.get(f"{gateway}/auth/v1/user", headers=both).status_code == 401
    assert httpx.get(f"{gateway}/v1/orgs", headers=both).status_code == 401
    # /auth/v1 without the key at all, or with a wrong one.
    missing = httpx.get(f"{gateway}/auth/v1/settings")
    assert missing.status_code == 401
    assert missing.json()["code"] == "apikey_invalid"
    wrong = httpx.get(f"{gateway}/auth/v1/settings", headers={"apikey": "obpk_wrong"})
    assert wrong.status_code == 401
    settings = httpx.get(f"{gateway}/auth/v1/settings", headers={"apikey": anon_key})
    assert settings.status_code == 200
    assert settings.json()["external"]["email"] is True
    assert settings.headers["x-supabase-api-version"] == "2024-01-01"


def test_logout_scopes(gateway: str, anon_key: str) -> None:
    """others ends the other sessions only; global ends all."""
    email = unique_email("scopes")
    clients = [create_client(gateway, anon_key) for _ in range(3)]
    clients[0].auth.sign_up({"email": email, "password": PASSWORD})
    mail = wait_for_mail(gateway, email, "Confirm your email address")
    clients[0].auth.verify_otp({"email": email, "token": code_in(mail), "type": "signup"})
    for client in clients[1:]:
        client.auth.sign_in_with_password({"email": email, "password": PASSWORD})

    def alive(client: Client) -> bool:
        session = client.auth.get_session()
        assert session is not None
        answer = httpx.get(
            f"{gateway}/auth/v1/user",
            headers={"apikey": anon_key, "Authorization": f"Bearer {session.access_token}"},
        )
        return answer.status_code == 200

    clients[0].auth.sign_out({"scope": "others"})
    assert [alive(c) for c in clients] == [True, False, False]
    clients[0].auth.sign_out({"scope": "global"})
    assert clients[0].auth.get_session() is None


def test_dev_mail_is_refused_outside_dev_mode(stack: LocalStack, settings: Settings) -> None:
    del settings
    port = free_port()
    env = gotrue_env(stack, ORGBASE_ENV="test")
    process = start_server(env, port, log_file=STATE_DIR / "gotrue_test_mode.log")
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/dev/mail", params={"to": "a@b.test"})
    finally:
        stop_server(process)
    assert answer.status_code == 403
    assert answer.json()["code"] == "dev_mode_only"
