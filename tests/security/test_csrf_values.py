"""Secrets compared with what a caller sent, sent as bytes no ASCII string holds.

A non-ASCII ``X-CSRF-Token`` header (or ``orgbase_csrf`` cookie) made
``POST /v1/auth/browser/refresh`` and ``/sign-out`` answer 500: ``hmac.compare_digest``
raises a TypeError on a non-ASCII ``str``. Every secret is now compared as bytes: a wrong
value of any kind is the route's refusal, never a 500. The requests go to a real gateway
process (``live_server``) as raw header bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from devstack import LocalStack
from tests.support.http import PASSWORD, new_user

NOT_ASCII = "\xe9t\xe9".encode("latin-1")  # what a browser or curl sends as Latin-1 bytes


@pytest.fixture
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


async def browser_session(http: httpx.AsyncClient) -> tuple[str, str, str]:
    """A browser sign-in: (access token, refresh cookie, CSRF token)."""
    user, _ = await new_user(http)
    signed_in = await http.post(
        "/v1/auth/browser/sign-in", json={"email": user["email"], "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    refresh = signed_in.cookies["orgbase_refresh"]
    return body["access_token"], refresh, body["csrf_token"]


def cookie_header(refresh: str, csrf: bytes) -> bytes:
    return b"orgbase_refresh=" + refresh.encode() + b"; orgbase_csrf=" + csrf


async def test_a_non_ascii_csrf_value_is_refused_not_a_500(http: httpx.AsyncClient) -> None:
    access, refresh, csrf = await browser_session(http)
    http.cookies.clear()
    for header, cookie in ((NOT_ASCII, csrf.encode()), (csrf.encode(), NOT_ASCII)):
        for path, extra in (
            ("/v1/auth/browser/refresh", {}),
            ("/v1/auth/browser/sign-out", {b"authorization": f"Bearer {access}".encode()}),
        ):
            answer = await http.post(
                path,
                headers={
                    b"x-csrf-token": header,
                    b"cookie": cookie_header(refresh, cookie),
                    b"content-type": b"application/json",
                    **extra,
                },
                content=b"{}",
            )
            assert (answer.status_code, answer.json()["code"]) == (403, "csrf_failed"), (
                path,
                answer.text,
            )
    # Nothing was refreshed or ended: the right values still work.
    again = await http.post(
        "/v1/auth/browser/refresh",
        headers={b"x-csrf-token": csrf.encode(), b"cookie": cookie_header(refresh, csrf.encode())},
    )
    assert again.status_code == 200, again.text


async def test_other_compared_secrets_take_any_bytes(
    http: httpx.AsyncClient, stack: LocalStack
) -> None:
    """The publishable key of Supabase's paths and a TOTP code: refusals, never a 500."""
    key = await http.get("/rest/v1/items", headers={b"apikey": NOT_ASCII})
    assert key.status_code == 401, key.text
    _, tokens = await new_user(http)
    auth = {
        "Authorization": f"Bearer {tokens['access_token']}",
        "apikey": stack.secrets["publishable"],
    }
    factor = await http.post("/auth/v1/factors", headers=auth, json={})
    challenge = await http.post(f"/auth/v1/factors/{factor.json()['id']}/challenge", headers=auth)
    for code in ("\u0661\u0662\u0663\u0664\u0665\u0666", "\xe9" * 6):
        verified = await http.post(
            f"/auth/v1/factors/{factor.json()['id']}/verify",
            headers=auth,
            json={"challenge_id": challenge.json()["id"], "code": code},
        )
        assert verified.status_code == 403, verified.text
