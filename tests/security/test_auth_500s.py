"""Identity routes that answered 500: a ``redirect_to`` Python could not parse (on every
route that takes one, with credentials or none), and user metadata that grows past its
16 KiB limit only once PostgreSQL stores it as jsonb (60 x ``1e300``, or two merged
updates). Each is a 400 with a code now; a refused sign-up creates no account; and the
log of the refusal carries no part of the password hash."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from orgbase.platform.app import OrgbaseApp
from orgbase.platform.localstack import LocalStack
from tests.support.http import PASSWORD, bearer, new_user, unique_email

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
