"""The asynchronous client."""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import Any

import httpx

from orgbase.client import calls
from orgbase.client.base import AsyncClientBase, Section
from orgbase.client.core import Call, Request, T, checked, retry_after_refresh
from orgbase.client.query import AsyncDatabase


class AsyncAuth(Section["AsyncOrgbase"]):
    async def sign_up(
        self, email: str, password: str, display_name: str | None = None
    ) -> dict[str, Any]:
        return await self._client.call(calls.sign_up(email, password, display_name))

    async def sign_in(self, email: str, password: str, org_id: str | None = None) -> dict[str, Any]:
        return await self._client.call(calls.sign_in(self._client.state, email, password, org_id))

    async def refresh(self, org_id: str | None = None) -> dict[str, Any]:
        return await self._client.call(calls.refresh(self._client.state, org_id))

    async def switch_org(self, org_id: str) -> dict[str, Any]:
        """Make ``org_id`` the active org (a refresh with it)."""
        return await self.refresh(org_id)

    async def sign_out(self, scope: str = "local") -> None:
        await self._client.call(calls.sign_out(self._client.state, scope))

    async def user(self) -> dict[str, Any]:
        return await self._client.call(calls.one("GET", "/v1/auth/user"))

    async def update_user(self, **fields: Any) -> dict[str, Any]:
        return await self._client.call(calls.one("PATCH", "/v1/auth/user", fields))

    async def sessions(self) -> list[dict[str, Any]]:
        return await self._client.call(calls.many("GET", "/v1/auth/sessions"))


class AsyncOrgs(Section["AsyncOrgbase"]):
    async def mine(self) -> list[dict[str, Any]]:
        """The orgs I belong to, with my role."""
        return await self._client.call(calls.many("GET", "/v1/orgs"))

    async def create(self, name: str) -> dict[str, Any]:
        return await self._client.call(calls.one("POST", "/v1/orgs", {"name": name}))

    async def members(self, org_id: str) -> list[dict[str, Any]]:
        return await self._client.call(calls.many("GET", f"/v1/orgs/{org_id}/members"))


class AsyncOrgbase(AsyncClientBase):
    # The sections hold nothing but the client: each is made on first use.
    auth = cached_property(AsyncAuth)
    orgs = cached_property(AsyncOrgs)
    db = cached_property(AsyncDatabase)

    async def __aenter__(self) -> AsyncOrgbase:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def call(self, call: Call[T]) -> T:
        """Send a call (see calls.py; queries make their own) and read its answer."""
        return call.read(await self._send(call.request, call.authenticated))

    async def _send(self, request: Request, authenticated: bool) -> httpx.Response:
        if authenticated and self.state.should_refresh():
            await self.auth.refresh()
        response = await self._http.send(self._built(request, authenticated))
        if authenticated and retry_after_refresh(response, self.state):
            await self.auth.refresh()
            response = await self._http.send(self._built(request, authenticated))
        return checked(response)
