"""Driving a live gateway's org SSO over HTTP: a caller with the publishable key, owners
raised to aal2 with a real TOTP factor, and a browser that walks a sign-in through the
OpenID provider and back (cookies kept, as a browser keeps them)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from orgbase.core.settings import Settings
from tests.support.data import owner_connection
from tests.support.http import PASSWORD, admin_at_aal2, unique_email

APP = "http://app.example.test/"


class Api:
    def __init__(self, gateway: str, apikey: str) -> None:
        self.gateway = gateway
        self.http = httpx.Client(base_url=gateway, headers={"apikey": apikey}, timeout=15)

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kw.pop("headers", {}))
        return self.http.request(method, path, headers=headers, **kw)

    def sign_up(self, email: str | None = None) -> str:
        address = email or unique_email("sso")
        made = self.call("POST", "/v1/auth/signup", json={"email": address, "password": PASSWORD})
        assert made.status_code == 201, made.text
        return address

    def password_session(self, email: str, org_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"grant_type": "password", "email": email, "password": PASSWORD}
        if org_id:
            body["org_id"] = org_id
        answer = self.call("POST", "/v1/auth/token", json=body)
        assert answer.status_code == 200, answer.text
        session: dict[str, Any] = answer.json()
        return session

    def join(self, org_id: str, inviter: str, email: str, role: str) -> None:
        """``inviter`` invites ``email`` to the org, whose account accepts (its password)."""
        invited = self.call(
            "POST", f"/v1/orgs/{org_id}/members", inviter, json={"email": email, "role": role}
        )
        assert invited.status_code == 202, invited.text
        accepted = self.call(
            "POST",
            "/v1/invitations/accept",
            self.password_session(email)["access_token"],
            json={"token": invited.json()["token"]},
        )
        assert accepted.status_code == 200, accepted.text

    def step_up(self, session: dict[str, Any]) -> dict[str, Any]:
        """Enrol and verify a TOTP factor: the session's new tokens, at aal2."""

        async def run() -> dict[str, Any]:
            async with httpx.AsyncClient(base_url=self.gateway, timeout=15) as client:
                return await admin_at_aal2(client, session)

        return asyncio.run(run())

    def org_with_owner(self, name: str = "org", owner: str | None = None) -> Owner:
        """A new user who makes a new org: its owner, signed in to it at aal2."""
        email = self.sign_up(owner)
        first = self.password_session(email)
        made = self.call("POST", "/v1/orgs", first["access_token"], json={"name": name})
        assert made.status_code == 201, made.text
        org_id = made.json()["id"]
        session = self.step_up(self.password_session(email, org_id))
        return Owner(email, org_id, session["access_token"])


@dataclass
class Owner:
    email: str
    org_id: str
    token: str
    """An access token of a session at aal2 in the org."""


def walk(browser: httpx.Client, location: str, gateway: str) -> httpx.Response:
    """Follow redirects (through the provider) up to and including our callback: the
    gateway's answer to it."""
    for _ in range(16):
        answer = browser.get(location)
        if location.startswith(f"{gateway}/auth/v1/callback"):
            return answer
        assert answer.status_code in (302, 303), answer.text
        location = answer.headers["location"]
        if location.startswith("/"):
            location = str(httpx.URL(str(answer.request.url)).join(location))
    raise AssertionError("never reached the callback")


def sso_sign_in(api: Api, domain: str, browser: httpx.Client | None = None) -> httpx.Response:
    """POST /auth/v1/sso {domain}, then a browser through the provider and back."""
    started = api.call("POST", "/auth/v1/sso", json={"domain": domain, "redirect_to": APP})
    assert started.status_code == 200, started.text
    client = browser or httpx.Client(timeout=10, follow_redirects=False)
    return walk(client, started.json()["url"], api.gateway)


def session_from(location: str) -> dict[str, str]:
    assert location.startswith(APP), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}


def confirm(settings: Settings, email: str) -> None:
    """Mark an address confirmed below the API (what the mailed code does)."""

    async def run() -> None:
        async with owner_connection(settings) as connection:
            await connection.execute(
                "UPDATE orgbase.users SET email_confirmed_at = now() WHERE email = $1", email
            )

    asyncio.run(run())


async def mark_verified(settings: Settings, org_id: str, domain: str) -> None:
    """An org's claim of a domain verified below the API (however that happened: a test
    of what follows from it)."""
    async with owner_connection(settings) as connection:
        how = await connection.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'orgbase'"
            " AND table_name = 'org_sso_domains' AND column_name = 'verified_via'"
        )
        extra = ", verified_via = 'platform_admin'" if how else ""
        await connection.execute(
            f"UPDATE orgbase.org_sso_domains SET verified_at = now(){extra}"
            " WHERE org_id = $1 AND domain = $2",
            uuid.UUID(org_id),
            domain,
        )
