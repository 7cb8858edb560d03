"""Sign-up told anyone whether an address had an account (409 ``user_already_exists``),
and addresses with invisible or direction-changing characters (U+200B, U+00AD, U+202E...)
registered as accounts distinct from the address they look like.

Now a known address gets the answer a new one gets (GoTrue's, with confirmation on: a
user object with a stand-in id), after the same password hashing, and its owner is mailed
instead; nothing of the account changes. Invisible characters are refused, and the
spellings of one mailbox (case, fullwidth forms, an internationalised domain in either
form) are one account."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.http import PASSWORD, unique_email
from tests.support.stack import with_overrides

Client = AsyncTestClient[OrgbaseApp]
VARYING = {"id", "created_at", "updated_at", "confirmation_sent_at"}
LOOKALIKES = [
    "\u200b",  # zero-width space
    "\u00ad",  # soft hyphen
    "\u202e",  # right-to-left override
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # zero-width no-break space
    "\u180e",  # Mongolian vowel separator
    "\ufe0f",  # variation selector
    "\u3164",  # Hangul filler
    "\u2066",  # left-to-right isolate
    "\u00a0",  # no-break space
]


@pytest.fixture(scope="module")
async def confirming(settings: Settings, stack: LocalStack) -> AsyncIterator[Client]:
    """A gateway that wants confirmed addresses (production's default), hashing
    passwords with a real cost (so that skipped work would show)."""
    configured = with_overrides(
        settings,
        auth={
            "allow_unconfirmed_sign_in": False,
            "argon2_time_cost": 2,
            "argon2_memory_kib": 19456,
            "mail_per_address_per_hour": 1000,
        },
    )
    async with AsyncTestClient(app=create_app(configured)) as client:
        client.headers.update({"apikey": stack.secrets["publishable"]})
        yield client


async def gotrue_sign_up(client: Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = await client.post("/auth/v1/signup", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    user: dict[str, Any] = answer.json()
    return user


def same_but_varying(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert first.keys() == second.keys()
    assert {k: v for k, v in first.items() if k not in VARYING} == {
        k: v for k, v in second.items() if k not in VARYING
    }
    assert first["id"] != second["id"]


async def test_a_known_address_answers_like_a_new_one(
    confirming: Client, admin_connection: asyncpg.Connection
) -> None:
    email = unique_email("known")
    first = await gotrue_sign_up(confirming, email)
    hash_before = await admin_connection.fetchval(
        "SELECT password_hash FROM orgbase.users WHERE email = $1", email
    )
    again = await gotrue_sign_up(confirming, email, "the attacker's passphrase")
    same_but_varying(first, again)
    # Confirmed or not, the account is unchanged, and its owner was told.
    await admin_connection.execute(
        "UPDATE orgbase.users SET email_confirmed_at = now() WHERE email = $1", email
    )
    third = await gotrue_sign_up(confirming, email, "the attacker's passphrase")
    same_but_varying(first, third)
    after = await admin_connection.fetchrow(
        "SELECT password_hash, count(*) OVER () AS n FROM orgbase.users WHERE email = $1", email
    )
    assert after is not None
    assert (after["password_hash"], after["n"]) == (hash_before, 1)
    mails = await admin_connection.fetch(
        "SELECT subject, body FROM orgbase.outbox WHERE recipient = $1 ORDER BY id", email
    )
    assert [m["subject"] for m in mails] == [
        "Confirm your email address",
        "You already have an account",
        "You already have an account",
    ]
    assert "Your code:" in mails[-1]["body"]
    # orgbase's own sign-up answers the same way (201 and a user, both times).
    v1 = await confirming.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert v1.status_code == 201
    assert v1.json()["email"] == email


async def test_a_known_address_costs_what_a_new_one_costs(confirming: Client) -> None:
    known = unique_email("timing")
    await gotrue_sign_up(confirming, known)
    durations: dict[str, list[float]] = {"known": [], "new": []}
    for _ in range(7):
        for kind, email in (("known", known), ("new", unique_email("timing"))):
            started = time.perf_counter()
            await gotrue_sign_up(confirming, email)
            durations[kind].append(time.perf_counter() - started)
    ratio = statistics.median(durations["known"]) / statistics.median(durations["new"])
    assert 0.5 < ratio < 2, durations


@pytest.mark.parametrize("char", LOOKALIKES, ids=lambda c: f"U+{ord(c):04X}")
async def test_invisible_characters_are_refused(confirming: Client, char: str) -> None:
    victim = unique_email("victim")
    local, _, domain = victim.partition("@")
    spellings = [f"{local}{char}@{domain}", f"{local}@{char}{domain}"]
    if not char.isspace():  # a space around the address is dropped, not refused
        spellings.append(f"{char}{local}@{domain}")
    for lookalike in spellings:
        for path, status in (("/auth/v1/signup", 400), ("/v1/auth/signup", 400)):
            answer = await confirming.post(path, json={"email": lookalike, "password": PASSWORD})
            assert (answer.status_code, answer.json()["code"]) == (status, "invalid_email"), (
                path,
                repr(lookalike),
                answer.text,
            )


async def test_spellings_of_one_mailbox_are_one_account(
    confirming: Client, admin_connection: asyncpg.Connection
) -> None:
    tag = unique_email("one").partition("@")[0]
    first = await gotrue_sign_up(confirming, f"{tag}@bücher.test")
    assert first["email"] == f"{tag}@xn--bcher-kva.test"
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in tag.upper())
    for spelling in (
        f"{tag}@xn--bcher-kva.test",
        f"{tag.upper()}@BÜCHER.TEST",
        f"{fullwidth}@bücher.test",
        f"  {tag}@bücher.test ",
    ):
        again = await gotrue_sign_up(confirming, spelling, "the attacker's passphrase")
        same_but_varying(first, again)
    count = await admin_connection.fetchval(
        "SELECT count(*) FROM orgbase.users WHERE email LIKE $1", f"{tag}@%"
    )
    assert count == 1
    for broken in (f"{tag}@xn--zz.test", f"{tag}@\u2024bücher.test", f"{tag}@bad_\u00fc.test"):
        answer = await confirming.post(
            "/auth/v1/signup", json={"email": broken, "password": PASSWORD}
        )
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_email"), broken
