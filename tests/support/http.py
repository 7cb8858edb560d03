"""The API calls most tests start with: users, sign-in, orgs and members, event streams."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pyotp

from tests.support.waiting import eventually

PASSWORD = "correct horse battery staple"

Person = tuple[dict[str, Any], dict[str, Any]]
"""A user as the API returned it, and its tokens."""


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.test"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(access_token: str) -> dict[str, Any]:
    """An access token's claims, unverified (the token was made by the API)."""
    payload = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def session_of(access_token: str) -> uuid.UUID:
    """The session an access token names (its sid claim)."""
    return uuid.UUID(claims_of(access_token)["sid"])


def secret_of(access_token: str) -> str:
    """The token's own secret (its ssec claim): with the session id, what enters the org."""
    secret: str = claims_of(access_token)["ssec"]
    return secret


async def sign_up(client: httpx.AsyncClient, email: str | None = None) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/signup", json={"email": email or unique_email(), "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def password_grant(
    email: str, org_id: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    """The body of a password sign-in (POST /v1/auth/token), into ``org_id`` when given."""
    body: dict[str, Any] = {"grant_type": "password", "email": email, "password": password}
    if org_id is not None:
        body["org_id"] = org_id
    return body


async def sign_in(
    client: httpx.AsyncClient, email: str, org_id: str | None = None
) -> dict[str, Any]:
    response = await client.post("/v1/auth/token", json=password_grant(email, org_id))
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def new_user(client: httpx.AsyncClient) -> Person:
    """Sign up and sign in a fresh user: (user, tokens)."""
    user = await sign_up(client)
    return user, await sign_in(client, user["email"])


async def create_org(client: httpx.AsyncClient, tokens: dict[str, Any], name: str = "org") -> str:
    response = await client.post(
        "/v1/orgs", headers=bearer(tokens["access_token"]), json={"name": name}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def add_member(
    client: httpx.AsyncClient,
    admin_tokens: dict[str, Any],
    org_id: str,
    user: dict[str, Any],
    role: str,
) -> None:
    """The admin invites ``user`` (POST .../members), who accepts, signed in with
    ``PASSWORD``: nobody joins an org without their consent."""
    await join(client, bearer(admin_tokens["access_token"]), org_id, user["email"], role)


async def join(
    client: httpx.AsyncClient, inviter: dict[str, str], org_id: str, email: str, role: str
) -> dict[str, Any]:
    """``inviter`` (headers: a person or an API key) invites ``email``, whose account
    accepts (signed in with ``PASSWORD``); the acceptance's answer."""
    invited = await client.post(
        f"/v1/orgs/{org_id}/members", headers=inviter, json={"email": email, "role": role}
    )
    assert invited.status_code == 202, invited.text
    invitee = await sign_in(client, email)
    accepted = await client.post(
        "/v1/invitations/accept",
        headers=bearer(invitee["access_token"]),
        json={"token": invited.json()["token"]},
    )
    assert accepted.status_code == 200, accepted.text
    answer: dict[str, Any] = accepted.json()
    return answer


async def admin_at_aal2(client: httpx.AsyncClient, tokens: dict[str, Any]) -> dict[str, Any]:
    """The same session raised to aal2: a TOTP factor enrolled and verified (its codes made
    by ``pyotp``, as an authenticator app would). Returns the session's new tokens (same
    user and org) with its ``recovery_codes`` and the factor's ``totp_secret``. Security
    settings (the sign-in policy, webhook destinations...) need a person at aal2."""
    config = await client.get("/v1/auth/client-config")  # the publishable key, as the studio
    auth = bearer(tokens["access_token"]) | {"apikey": config.json()["publishable_key"]}
    enrolled = await client.post("/auth/v1/factors", headers=auth, json={"factor_type": "totp"})
    assert enrolled.status_code == 200, enrolled.text
    factor = enrolled.json()
    path = f"/auth/v1/factors/{factor['id']}"
    challenge = await client.post(f"{path}/challenge", headers=auth, json={})
    assert challenge.status_code == 200, challenge.text
    code = pyotp.TOTP(factor["totp"]["secret"]).now()
    verified = await client.post(
        f"{path}/verify", headers=auth, json={"challenge_id": challenge.json()["id"], "code": code}
    )
    assert verified.status_code == 200, verified.text
    session: dict[str, Any] = verified.json()
    return session | {"totp_secret": factor["totp"]["secret"]}


async def org_member(
    client: httpx.AsyncClient, name: str = "org"
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """A fresh user who owns a fresh org, signed in to it: (user, org_id, auth headers)."""
    user, tokens = await new_user(client)
    org_id = await create_org(client, tokens, name)
    scoped = await sign_in(client, user["email"], org_id)
    return user, org_id, bearer(scoped["access_token"])


async def org_with_roles(
    client: httpx.AsyncClient, roles: tuple[str, ...] = ("admin", "member", "viewer")
) -> tuple[str, dict[str, Person]]:
    """An org made through the API, with an owner and one user per extra role.
    Returns (org_id, {role: (user, tokens)})."""
    owner = await new_user(client)
    org_id = await create_org(client, owner[1])
    people = {"owner": owner}
    for role in roles:
        person = await new_user(client)
        await add_member(client, owner[1], org_id, person[0], role)
        people[role] = person
    return org_id, people


async def member_tokens(
    client: httpx.AsyncClient, roles: tuple[str, ...]
) -> tuple[str, dict[str, str]]:
    """An org with one user per role, each signed in with the org active:
    (org_id, {role: access token})."""
    org_id, people = await org_with_roles(client, roles)
    tokens = {
        role: (await sign_in(client, user["email"], org_id))["access_token"]
        for role, (user, _) in people.items()
    }
    return org_id, tokens


async def user_status(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """The status of GET /v1/auth/user with these credentials: is the session alive?"""
    return (await client.get("/v1/auth/user", headers=headers)).status_code


async def assert_revoked(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/v1/auth/user", headers=headers)
    assert (response.status_code, response.json()["code"]) == (401, "session_revoked")


async def cache_writable(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    """Whether the org's key-value cache takes a write now (Redis reachable, primary known)."""
    put = await client.put("/v1/kv/beat", headers=headers, json={"value": "beat"})
    return put.status_code == 200


async def wait_for_cache(
    client: httpx.AsyncClient, headers: dict[str, str], what: str, within: float = 30
) -> float:
    """Wait until the cache takes writes again (after an outage or a failover); when."""
    await eventually(functools.partial(cache_writable, client, headers), within=within, what=what)
    return time.monotonic()


async def next_sse_data(lines: AsyncIterator[str], within: float = 5) -> dict[str, Any]:
    """The next `data:` event of a server-sent event stream, as JSON."""

    async def read() -> dict[str, Any]:
        async for line in lines:
            if line.startswith("data:"):
                data: dict[str, Any] = json.loads(line[5:])
                return data
        raise AssertionError("the event stream ended")

    return await asyncio.wait_for(read(), within)


async def save_settings(
    client: httpx.AsyncClient, headers: dict[str, str], org_id: str, document: dict[str, Any]
) -> dict[str, Any]:
    """Write an org's settings as a new version (read its ETag, then PUT with If-Match)."""
    url = f"/v1/orgs/{org_id}/settings"
    current = await client.get(url, headers=headers)
    saved = await client.put(
        url, headers={**headers, "If-Match": current.headers["etag"]}, json={"settings": document}
    )
    assert saved.status_code == 200, saved.text
    written: dict[str, Any] = saved.json()
    return written


async def gotrue(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    """POST ``/auth/v1/{path}`` as Supabase's clients do (with the publishable key, read as
    the studio reads it); the answer's JSON, which must be a 200."""
    config = await client.get("/v1/auth/client-config")
    headers = {"apikey": config.json()["publishable_key"]}
    answer = await client.post(f"/auth/v1/{path}", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()
