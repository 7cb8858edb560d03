"""Mailed one-time codes over GoTrue's API, against a real gateway and the stack's SMTP
mail catcher: confirmation by link and by code, magic links, email change, recovery
(single use, the same answer for unknown addresses, rate limits per IP and per address),
and bounded guessing (a code dies after N wrong guesses, parallel guesses included)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.integration.test_gotrue_clients import gotrue_env
from tests.support.http import PASSWORD, unique_email
from tests.support.mail import code_in, link_in, mail_count, wait_for_mail
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import STATE_DIR
from tests.support.waiting import pause_to_stay_in_one_window

APP = "http://app.example.test/"
ATTEMPTS = 4


@pytest.fixture(scope="module")
def gateway(stack: LocalStack, settings: Settings) -> Iterator[str]:
    del settings
    port = free_port()
    env = gotrue_env(
        stack,
        ORGBASE_TENANCY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        ORGBASE_AUTH_CODE_ATTEMPTS=str(ATTEMPTS),
        ORGBASE_AUTH_MAIL_PER_ADDRESS_PER_HOUR="3",
        ORGBASE_AUTH_MAIL_PER_IP_PER_HOUR="1000",
    )
    process = start_server(env, port, log_file=STATE_DIR / "auth_codes_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def api(gateway: str, stack: LocalStack) -> Iterator[httpx.Client]:
    headers = {"apikey": stack.secrets["publishable"]}
    with httpx.Client(base_url=gateway, headers=headers, timeout=15) as client:
        yield client


def signed_up(api: httpx.Client, gateway: str) -> str:
    email = unique_email("codes")
    answer = api.post("/auth/v1/signup", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    assert answer.json()["email_confirmed_at"] is None
    return email


def confirmed(api: httpx.Client, gateway: str) -> str:
    email = signed_up(api, gateway)
    code = code_in(wait_for_mail(gateway, email, "Confirm your email address"))
    answer = api.post("/auth/v1/verify", json={"type": "signup", "email": email, "token": code})
    assert answer.status_code == 200, answer.text
    return email


def test_confirmation_link_signs_in_and_redirects_only_to_allowed_urls(
    api: httpx.Client, gateway: str
) -> None:
    # An open redirect is refused before anything is sent.
    evil = api.post(
        "/auth/v1/signup",
        params={"redirect_to": "https://evil.example/steal"},
        json={"email": unique_email("evil"), "password": PASSWORD},
    )
    assert evil.status_code == 400
    assert evil.json()["code"] == "redirect_not_allowed"
    for trick in ("http://app.example.test@evil.example/", "javascript:alert(1)", "//evil.example"):
        refused = api.post(
            "/auth/v1/recover", params={"redirect_to": trick}, json={"email": "a@b.test"}
        )
        assert refused.status_code == 400, trick

    email = unique_email("link")
    answer = api.post(
        "/auth/v1/signup",
        params={"redirect_to": APP + "welcome"},
        json={"email": email, "password": PASSWORD},
    )
    assert answer.status_code == 200
    link = link_in(wait_for_mail(gateway, email, "Confirm your email address"))
    opened = httpx.get(link, follow_redirects=False)  # a browser: no apikey
    assert opened.status_code == 303
    target = opened.headers["location"]
    assert target.startswith(APP + "welcome#")
    fragment = parse_qs(urlsplit(target).fragment)
    token = fragment["access_token"][0]
    user = api.get("/auth/v1/user", headers={"Authorization": f"Bearer {token}"})
    assert user.json()["email_confirmed_at"] is not None
    # The link works once.
    again = httpx.get(link, follow_redirects=False)
    assert "error_code=otp_expired" in again.headers["location"]


def test_unconfirmed_users_cannot_sign_in_and_codes_are_single_use(
    api: httpx.Client, gateway: str
) -> None:
    email = signed_up(api, gateway)
    grant = {"email": email, "password": PASSWORD}
    refused = api.post("/auth/v1/token", params={"grant_type": "password"}, json=grant)
    assert refused.status_code == 400
    assert refused.json()["code"] == "email_not_confirmed"
    code = code_in(wait_for_mail(gateway, email, "Confirm your email address"))
    body = {"type": "signup", "email": email, "token": code}
    assert api.post("/auth/v1/verify", json=body).status_code == 200
    reused = api.post("/auth/v1/verify", json=body)
    assert reused.status_code == 403
    assert reused.json()["code"] == "otp_expired"
    assert api.post("/auth/v1/token", params={"grant_type": "password"}, json=grant).is_success


def test_parallel_guesses_kill_the_code_after_n(api: httpx.Client, gateway: str) -> None:
    email = signed_up(api, gateway)
    code = code_in(wait_for_mail(gateway, email, "Confirm your email address"))
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 21)]

    def guess(token: str) -> int:
        body = {"type": "signup", "email": email, "token": token}
        return api.post("/auth/v1/verify", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(guess, wrong))
    assert set(statuses) == {403}
    # The right code no longer works: the code died after ATTEMPTS wrong guesses.
    assert guess(code) == 403


def test_dead_code_and_malformed_codes(api: httpx.Client, gateway: str) -> None:
    email = signed_up(api, gateway)
    for token in (
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "12345",
        "abcdef",
        "1" * 64,
    ):  # non-ASCII digits included
        body = {"type": "signup", "email": email, "token": token}
        answer = api.post("/auth/v1/verify", json=body)
        assert answer.status_code == 403, token
    raw = api.post(
        "/auth/v1/verify",
        content=b'{"type": "signup", "email": "\xff"}',
        headers={"Content-Type": "application/json"},
    )
    assert raw.status_code == 400
    missing = api.post("/auth/v1/verify", json={"type": "signup"})
    assert missing.status_code == 400


def test_recovery_is_single_use_ends_sessions_and_hides_unknown_emails(
    api: httpx.Client, gateway: str
) -> None:
    email = confirmed(api, gateway)
    grant = {"email": email, "password": PASSWORD}
    session = api.post("/auth/v1/token", params={"grant_type": "password"}, json=grant).json()

    known = api.post("/auth/v1/recover", json={"email": email})
    unknown_email = unique_email("nobody")
    unknown = api.post("/auth/v1/recover", json={"email": unknown_email})
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    code = code_in(wait_for_mail(gateway, email, "Reset your password"))
    assert mail_count(gateway, unknown_email) == 0

    recovered = api.post(
        "/auth/v1/verify", json={"type": "recovery", "email": email, "token": code}
    )
    assert recovered.status_code == 200
    new_token = recovered.json()["access_token"]
    old = api.get("/auth/v1/user", headers={"Authorization": f"Bearer {session['access_token']}"})
    assert old.status_code == 401
    again = api.post("/auth/v1/verify", json={"type": "recovery", "email": email, "token": code})
    assert again.status_code == 403
    # A recovery session sets a new password without the old one.
    changed = api.put(
        "/auth/v1/user",
        headers={"Authorization": f"Bearer {new_token}"},
        json={"password": "a brand new passphrase"},
    )
    assert changed.status_code == 200, changed.text
    # A password session may not.
    grant["password"] = "a brand new passphrase"
    normal = api.post("/auth/v1/token", params={"grant_type": "password"}, json=grant).json()
    refused = api.put(
        "/auth/v1/user",
        headers={"Authorization": f"Bearer {normal['access_token']}"},
        json={"password": "yet another passphrase"},
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "current_password_invalid"


def test_recovery_is_rate_limited_per_address(api: httpx.Client, gateway: str) -> None:
    email = unique_email("limited")
    time.sleep(pause_to_stay_in_one_window(3600))
    statuses = [api.post("/auth/v1/recover", json={"email": email}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # Another address from the same IP is not limited by it.
    assert api.post("/auth/v1/recover", json={"email": unique_email("other")}).status_code == 200


def test_magic_link_code_signs_in_and_creates_the_user(api: httpx.Client, gateway: str) -> None:
    email = unique_email("magic")
    assert api.post("/auth/v1/otp", json={"email": email}).status_code == 200
    code = code_in(wait_for_mail(gateway, email, "Your sign-in code"))
    answer = api.post("/auth/v1/verify", json={"type": "email", "email": email, "token": code})
    assert answer.status_code == 200, answer.text
    session = answer.json()
    assert session["user"]["email"] == email
    assert session["user"]["email_confirmed_at"] is not None
    # create_user: false for an unknown address: nothing is sent, same answer.
    nobody = unique_email("nobody")
    quiet = api.post("/auth/v1/otp", json={"email": nobody, "create_user": False})
    assert quiet.status_code == 200
    assert mail_count(gateway, nobody) == 0


def test_email_change_confirms_the_new_address(api: httpx.Client, gateway: str) -> None:
    email = confirmed(api, gateway)
    grant = {"email": email, "password": PASSWORD}
    session = api.post("/auth/v1/token", params={"grant_type": "password"}, json=grant).json()
    auth = {"Authorization": f"Bearer {session['access_token']}"}
    new_email = unique_email("moved")
    changed = api.put("/auth/v1/user", headers=auth, json={"email": new_email})
    assert changed.status_code == 200
    assert changed.json()["email"] == email  # not yet
    assert changed.json()["new_email"] == new_email
    code = code_in(wait_for_mail(gateway, new_email, "Confirm your new email address"))
    body = {"type": "email_change", "email": new_email, "token": code}
    assert api.post("/auth/v1/verify", json=body).status_code == 200
    assert api.get("/auth/v1/user", headers=auth).json()["email"] == new_email
