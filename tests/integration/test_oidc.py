"""Sign-in with an OpenID provider (authorization code + PKCE, state, nonce) against a
real one (oidc-provider, run by node), through a real gateway; and the attacks: replayed
state, a mismatched PKCE verifier, ID tokens with the wrong issuer or audience, expired,
``alg: none``, signed by another key or with another nonce, an open redirect, and account
takeover through an unverified email at the provider or a pre-registered address."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from redis import Redis

from devstack import LocalStack
from orgbase.auth.oidc_state import state_key as _state_key
from orgbase.auth.oidc_tokens import ProviderMetadata
from orgbase.core.errors import Forbidden
from orgbase.core.settings import Settings
from tests.support.http import PASSWORD, unique_email
from tests.support.mail import code_in, wait_for_mail
from tests.support.oidc_provider import (
    LocalProvider,
    gateway_with_provider,
    new_rsa_jwk,
)
from tests.support.stack import TEST_REDIS_DB

APP = "http://app.example.test/"
CLIENT_ID = "orgbase-test"
CLIENT_SECRET = "a-client-secret-long-enough-for-the-provider"


@pytest.fixture(scope="module")
def provider_and_gateway(
    stack: LocalStack, settings: Settings
) -> Iterator[tuple[LocalProvider, str]]:
    del settings  # the test database, migrated
    with gateway_with_provider(
        stack,
        30,
        "oidc",
        (CLIENT_ID, CLIENT_SECRET),
        operator_provider={"name": "acme", "label": "Acme ID"},
    ) as both:
        yield both


@pytest.fixture
def provider(provider_and_gateway: tuple[LocalProvider, str]) -> LocalProvider:
    return provider_and_gateway[0]


@pytest.fixture
def gateway(provider_and_gateway: tuple[LocalProvider, str]) -> str:
    return provider_and_gateway[1]


def to_callback(gateway: str, redirect_to: str = APP) -> tuple[str, httpx.Client]:
    """Drive a browser from /authorize through the provider, up to (not into) our
    callback: the callback URL and the browser (its cookies)."""
    browser = httpx.Client(timeout=10, follow_redirects=False)
    answer = browser.get(
        f"{gateway}/auth/v1/authorize", params={"provider": "acme", "redirect_to": redirect_to}
    )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    for _ in range(12):
        if location.startswith(f"{gateway}/auth/v1/callback"):
            return location, browser
        answer = browser.get(location)
        assert answer.status_code in (302, 303), answer.text
        location = answer.headers["location"]
        if location.startswith("/"):
            parts = urlsplit(str(answer.request.url))
            location = f"{parts.scheme}://{parts.netloc}{location}"
    raise AssertionError("never reached the callback")


def session_from(location: str) -> dict[str, str]:
    assert location.startswith(APP), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}


def sign_in_with_provider(gateway: str) -> dict[str, str]:
    callback, browser = to_callback(gateway)
    answer = browser.get(callback)
    assert answer.status_code == 303, answer.text
    return session_from(answer.headers["location"])


def user_of(gateway: str, stack: LocalStack, access_token: str) -> dict[str, Any]:
    headers = {"apikey": stack.secrets["publishable"], "Authorization": f"Bearer {access_token}"}
    answer = httpx.get(f"{gateway}/auth/v1/user", headers=headers)
    assert answer.status_code == 200, answer.text
    user: dict[str, Any] = answer.json()
    return user


def test_sign_in_links_by_subject_and_the_state_works_once(
    provider: LocalProvider, gateway: str, stack: LocalStack
) -> None:
    email = unique_email("oidc")
    provider.account("alice-1", email)
    provider.next_login("alice-1")
    callback, browser = to_callback(gateway)
    first = browser.get(callback)
    assert first.status_code == 303, first.text
    session = session_from(first.headers["location"])
    user = user_of(gateway, stack, session["access_token"])
    assert user["email"] == email
    assert user["email_confirmed_at"] is not None
    amr = jwt.decode(session["access_token"], options={"verify_signature": False})["amr"]
    assert [entry["method"] for entry in amr] == ["oauth"]

    # The same callback again (a replayed state and code): refused.
    replayed = httpx.get(callback)
    assert replayed.status_code == 400
    assert replayed.json()["code"] == "oidc_state_invalid"
    forged = httpx.get(f"{gateway}/auth/v1/callback", params={"state": "x" * 43, "code": "c"})
    assert forged.status_code == 400

    # The next sign-in finds the same user (by subject, even with a new email).
    provider.account("alice-1", unique_email("alice-new"))
    again = sign_in_with_provider(gateway)
    assert user_of(gateway, stack, again["access_token"])["id"] == user["id"]


def test_mismatched_pkce_verifier_is_refused(
    provider: LocalProvider, gateway: str, stack: LocalStack
) -> None:
    provider.account("bob-1", unique_email("bob"))
    provider.next_login("bob-1")
    callback, browser = to_callback(gateway)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    redis = Redis(
        host="127.0.0.1",
        port=stack.redis.primary_port() or stack.layout.redis_ports[0],
        password=stack.secrets["redis"],
        db=int(TEST_REDIS_DB),
    )
    try:
        key = _state_key(state)
        stored = json.loads(redis.get(key) or b"{}")
        stored["verifier"] = "another-verifier-" + "x" * 40
        redis.set(key, json.dumps(stored), ex=60)
    finally:
        redis.close()
    answer = browser.get(callback)
    assert answer.status_code == 403
    assert answer.json()["code"] == "oidc_code_rejected"


def test_unverified_email_at_the_provider_is_not_trusted(
    provider: LocalProvider, gateway: str, stack: LocalStack
) -> None:
    victim = unique_email("victim")
    signed_up = httpx.post(
        f"{gateway}/auth/v1/signup",
        headers={"apikey": stack.secrets["publishable"]},
        json={"email": victim, "password": PASSWORD},
    )
    assert signed_up.status_code == 200
    provider.account("mallory-1", victim, verified=False)
    provider.next_login("mallory-1")
    callback, browser = to_callback(gateway)
    answer = browser.get(callback)
    assert answer.status_code == 403
    assert answer.json()["code"] == "oidc_email_not_verified"


def test_a_pre_registered_unconfirmed_address_is_taken_over_by_its_verified_owner(
    provider: LocalProvider, gateway: str, stack: LocalStack
) -> None:
    """An attacker registers the victim's address first (never confirmed) and keeps a
    session; the victim then signs in through the provider: the attacker's password and
    session stop working."""
    apikey = {"apikey": stack.secrets["publishable"]}
    victim = unique_email("owner")
    attacker = httpx.post(
        f"{gateway}/auth/v1/signup", headers=apikey, json={"email": victim, "password": PASSWORD}
    ).json()
    attacker_token = attacker["access_token"]
    # The attacker also asks to move the account to an address of theirs (pending).
    moved_to = unique_email("attacker")
    moving = httpx.put(
        f"{gateway}/auth/v1/user",
        headers={**apikey, "Authorization": f"Bearer {attacker_token}"},
        json={"email": moved_to},
    )
    assert moving.status_code == 200, moving.text
    change_code = code_in(wait_for_mail(gateway, moved_to, "Confirm your new email address"))
    provider.account("victim-1", victim)
    provider.next_login("victim-1")
    session = sign_in_with_provider(gateway)
    assert user_of(gateway, stack, session["access_token"])["email"] == victim
    gone = httpx.get(
        f"{gateway}/auth/v1/user",
        headers={**apikey, "Authorization": f"Bearer {attacker_token}"},
    )
    assert gone.status_code == 401
    password = httpx.post(
        f"{gateway}/auth/v1/token",
        params={"grant_type": "password"},
        headers=apikey,
        json={"email": victim, "password": PASSWORD},
    )
    assert password.status_code == 401
    # The provider's proof was the address's first: the pending move died with it.
    moved = httpx.post(
        f"{gateway}/auth/v1/verify",
        headers=apikey,
        json={"type": "email_change", "email": moved_to, "token": change_code},
    )
    assert moved.status_code == 403, moved.text
    assert user_of(gateway, stack, session["access_token"])["email"] == victim


def test_open_redirects_are_refused(gateway: str) -> None:
    for target in ("https://evil.example/", "http://app.example.test.evil.example/", "//evil"):
        answer = httpx.get(
            f"{gateway}/auth/v1/authorize", params={"provider": "acme", "redirect_to": target}
        )
        assert answer.status_code == 400, target
        assert answer.json()["code"] == "redirect_not_allowed"
    unknown = httpx.get(f"{gateway}/auth/v1/authorize", params={"provider": "nope"})
    assert unknown.status_code == 404


def _mint(provider: LocalProvider, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "sub": "someone",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": "the-nonce",
        "email": "someone@example.test",
        "email_verified": True,
        **overrides,
    }
    return jwt.encode(
        claims, provider.private_key, algorithm="RS256", headers={"kid": provider.kid}
    )


async def test_id_tokens_are_checked_strictly(provider: LocalProvider) -> None:
    async with httpx.AsyncClient() as http:
        metadata = ProviderMetadata(provider.issuer, http)
        await metadata.load()

        async def check(token: str, nonce: str = "the-nonce") -> str:
            with pytest.raises(Forbidden) as refused:
                await metadata.verify_id_token(token, CLIENT_ID, nonce)
            return refused.value.code

        good = _mint(provider)
        assert (await metadata.verify_id_token(good, CLIENT_ID, "the-nonce"))["sub"] == "someone"
        assert await check(_mint(provider, iss="http://127.0.0.1:1")) == "oidc_id_token_invalid"
        assert await check(_mint(provider, aud="another-client")) == "oidc_id_token_invalid"
        assert await check(_mint(provider, aud=[CLIENT_ID, "other"])) == "oidc_id_token_invalid"
        now = int(time.time())
        assert await check(_mint(provider, iat=now - 900, exp=now - 600)) == "oidc_id_token_invalid"
        assert await check(good, nonce="another-nonce") == "oidc_nonce_mismatch"
        assert await check(_mint(provider, nonce="replayed")) == "oidc_nonce_mismatch"
        # alg none, and HMAC with the public key as the secret.
        unsigned = jwt.encode(
            {"iss": provider.issuer, "sub": "x", "aud": CLIENT_ID, "nonce": "the-nonce"},
            key="",
            algorithm="none",
        )
        assert await check(unsigned) == "oidc_id_token_invalid"
        header, payload, _ = good.split(".")
        assert await check(f"{header}.{payload}.") == "oidc_id_token_invalid"
        # Signed by another key (with the provider's kid, and with its own).
        other, _ = new_rsa_jwk("other")
        claims = jwt.decode(good, options={"verify_signature": False})
        for kid in (provider.kid, "other"):
            forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": kid})
            assert await check(forged) == "oidc_id_token_invalid"
        assert await check("not-a-jwt") == "oidc_id_token_invalid"


def test_settings_lists_the_provider(gateway: str, stack: LocalStack) -> None:
    answer = httpx.get(
        f"{gateway}/auth/v1/settings", headers={"apikey": stack.secrets["publishable"]}
    )
    assert answer.json()["external"]["acme"] is True
