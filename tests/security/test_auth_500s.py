"""Identity routes that answered 500: a ``redirect_to`` Python could not parse (on every
route that takes one, with credentials or none), and user metadata that grows past its
16 KiB limit only once PostgreSQL stores it as jsonb (60 x ``1e300``, or two merged
updates). Each is a 400 with a code now; a refused sign-up creates no account; and the
log of the refusal carries no part of the password hash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.http import PASSWORD, bearer, new_user, unique_email
from tests.support.processes import serving
from tests.support.stack import STATE_DIR, server_env

Client = AsyncTestClient[OrgbaseApp]
UNPARSABLE = [
    "http://[::1",
    "http://[",
    "https://[zz]/",
    "http://127.0.0.1:99999/",
    "http://[::1]x/",
    "https://[v7.zz]/",
]
# 60 numbers that JSON writes in 6 characters and jsonb stores in 301 digits.
HUGE_NUMBERS = {f"n{i}": 1e300 for i in range(60)}


def apikey(stack: LocalStack) -> dict[str, str]:
    return {"apikey": stack.secrets["publishable"]}


@pytest.mark.parametrize("url", UNPARSABLE)
async def test_unparsable_redirects_are_400_everywhere(
    client: Client, stack: LocalStack, url: str
) -> None:
    _, tokens = await new_user(client)
    key = apikey(stack)
    signed_in = {**key, **bearer(tokens["access_token"])}
    email = unique_email("redirect")
    calls: list[tuple[str, str, dict[str, str], Any]] = [
        ("POST", "/auth/v1/signup", key, {"email": email, "password": PASSWORD}),
        ("POST", "/auth/v1/recover", key, {"email": email}),
        ("POST", "/auth/v1/otp", key, {"email": email}),
        ("POST", "/auth/v1/resend", key, {"type": "signup", "email": email}),
        ("PUT", "/auth/v1/user", signed_in, {"data": {"a": 1}}),
        ("GET", "/auth/v1/verify", key, {"token": "whatever", "type": "signup"}),
        ("GET", "/auth/v1/authorize", key, {"provider": "nobody"}),
    ]
    wrong = []
    for method, path, headers, body in calls:
        query = {"redirect_to": url, **(body if method == "GET" else {})}
        answer = await client.request(
            method, path, params=query, headers=headers, json=None if method == "GET" else body
        )
        if (answer.status_code, answer.json().get("code")) != (400, "redirect_not_allowed"):
            wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:120]}")
    sso = await client.post(
        "/auth/v1/sso", headers=key, json={"domain": "example.test", "redirect_to": url}
    )
    if (sso.status_code, sso.json().get("code")) != (400, "redirect_not_allowed"):
        wrong.append(f"POST /auth/v1/sso: {sso.status_code} {sso.text[:120]}")
    assert not wrong, "\n".join(wrong)


@pytest.fixture(scope="module")
def gateway(stack: LocalStack, settings: Settings) -> Iterator[tuple[str, Path]]:
    """A real gateway process, whose log this module reads."""
    del settings  # the test database, migrated
    log = STATE_DIR / "auth_500s_server.log"
    with serving(server_env(stack), log_file=log) as base:
        yield base, log


async def test_metadata_over_the_limit_once_stored_creates_no_account(
    gateway: tuple[str, Path], stack: LocalStack, admin_connection: asyncpg.Connection
) -> None:
    base, log = gateway
    email = unique_email("huge")
    async with httpx.AsyncClient(base_url=base, headers=apikey(stack), timeout=30) as http:
        body = {"email": email, "password": PASSWORD, "data": HUGE_NUMBERS}
        refused = await http.post("/auth/v1/signup", json=body)
        assert (refused.status_code, refused.json()["code"]) == (400, "metadata_too_large")
        made = await admin_connection.fetchval(
            "SELECT count(*) FROM orgbase.users WHERE email = $1", email
        )
        assert made == 0  # all or nothing: no account without its metadata
        signed_in = await http.post(
            "/auth/v1/token",
            params={"grant_type": "password"},
            json={"email": email, "password": PASSWORD},
        )
        assert signed_in.status_code == 401  # no such account
        # The same address signs up once its metadata fits.
        fits = await http.post("/auth/v1/signup", json={**body, "data": {"n": 1e300}})
        assert fits.status_code == 200, fits.text
    assert_no_row_in(log)


async def test_merged_metadata_is_checked_as_stored(
    gateway: tuple[str, Path], stack: LocalStack
) -> None:
    base, log = gateway
    async with httpx.AsyncClient(base_url=base, headers=apikey(stack), timeout=30) as http:
        email = unique_email("merge")
        signed_up = await http.post("/auth/v1/signup", json={"email": email, "password": PASSWORD})
        headers = bearer(signed_up.json()["access_token"])
        first = await http.put("/auth/v1/user", headers=headers, json={"data": {"a": "x" * 9000}})
        assert first.status_code == 200, first.text
        second = await http.put("/auth/v1/user", headers=headers, json={"data": {"b": "y" * 9000}})
        assert (second.status_code, second.json()["code"]) == (400, "metadata_too_large")
        numbers = await http.put("/auth/v1/user", headers=headers, json={"data": HUGE_NUMBERS})
        assert (numbers.status_code, numbers.json()["code"]) == (400, "metadata_too_large")
        for unstorable in ({"n": "a\u0000b"}, {"a\u0000": 1}):
            answer = await http.put("/auth/v1/user", headers=headers, json={"data": unstorable})
            assert (answer.status_code, answer.json()["code"]) == (400, "invalid_metadata")
        user = await http.get("/auth/v1/user", headers=headers)
        assert user.json()["user_metadata"] == {"a": "x" * 9000}
        long_name = {
            "email": unique_email("name"),
            "password": PASSWORD,
            "data": {"name": "n" * 300},
        }
        named = await http.post("/auth/v1/signup", json=long_name)
        assert (named.status_code, named.json()["code"]) == (400, "invalid_display_name")
    assert_no_row_in(log)


def assert_no_row_in(log: Path) -> None:
    text = log.read_text()
    assert "$argon2" not in text
    assert "Failing row contains (" not in text
    assert '"status":500' not in text.replace(" ", "")
