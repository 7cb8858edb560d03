"""The asynchronous client."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from orgbase.client.core import (
    TokenState,
    checked,
    password_grant,
    refresh_grant,
    retry_after_refresh,
)
from orgbase.client.query import QueryBuilder, Result, result_from


class AsyncOrgbase:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http = http_client or httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout
        )
        self._owns_http = http_client is None
        self.state = TokenState(api_key=api_key)
        self.auth = AsyncAuth(self)
        self.orgs = AsyncOrgs(self)
        self.db = AsyncDatabase(self)

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

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """Send a request (refreshing the access token when needed); raise ApiError on 4xx/5xx."""
        if authenticated and self.state.should_refresh():
            await self.auth.refresh()

        async def send() -> httpx.Response:
            auth = self.state.headers() if authenticated else {}
            return await self._http.request(
                method,
                path,
                json=json,
                params=tuple(params) if params else None,
                headers={**auth, **(headers or {})},
            )

        response = await send()
        if authenticated and retry_after_refresh(response, self.state):
            await self.auth.refresh()
            response = await send()
        return checked(response)


class AsyncAuth:
    def __init__(self, client: AsyncOrgbase) -> None:
        self._client = client

    async def sign_up(
        self, email: str, password: str, display_name: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"email": email, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        response = await self._client.request(
            "POST", "/v1/auth/signup", json=body, authenticated=False
        )
        user: dict[str, Any] = response.json()
        return user

    async def sign_in(self, email: str, password: str, org_id: str | None = None) -> dict[str, Any]:
        response = await self._client.request(
            "POST",
            "/v1/auth/token",
            json=password_grant(email, password, org_id),
            authenticated=False,
        )
        body: dict[str, Any] = response.json()
        self._client.state.apply(body)
        return body

    async def refresh(self, org_id: str | None = None) -> dict[str, Any]:
        response = await self._client.request(
            "POST",
            "/v1/auth/token",
            json=refresh_grant(self._client.state, org_id),
            authenticated=False,
        )
        body: dict[str, Any] = response.json()
        self._client.state.apply(body)
        return body

    async def switch_org(self, org_id: str) -> dict[str, Any]:
        """Make ``org_id`` the active org (a refresh with it)."""
        return await self.refresh(org_id)

    async def sign_out(self, scope: str = "local") -> None:
        await self._client.request("POST", "/v1/auth/logout", json={"scope": scope})
        self._client.state.clear()

    async def user(self) -> dict[str, Any]:
        user: dict[str, Any] = (await self._client.request("GET", "/v1/auth/user")).json()
        return user

    async def update_user(self, **fields: Any) -> dict[str, Any]:
        user: dict[str, Any] = (
            await self._client.request("PATCH", "/v1/auth/user", json=fields)
        ).json()
        return user

    async def sessions(self) -> list[dict[str, Any]]:
        sessions: list[dict[str, Any]] = (
            await self._client.request("GET", "/v1/auth/sessions")
        ).json()
        return sessions


class AsyncOrgs:
    def __init__(self, client: AsyncOrgbase) -> None:
        self._client = client

    async def mine(self) -> list[dict[str, Any]]:
        """The orgs I belong to, with my role."""
        orgs: list[dict[str, Any]] = (await self._client.request("GET", "/v1/orgs")).json()
        return orgs

    async def create(self, name: str) -> dict[str, Any]:
        org: dict[str, Any] = (
            await self._client.request("POST", "/v1/orgs", json={"name": name})
        ).json()
        return org

    async def members(self, org_id: str) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = (
            await self._client.request("GET", f"/v1/orgs/{org_id}/members")
        ).json()
        return members


class AsyncQuery(QueryBuilder):
    def __init__(self, client: AsyncOrgbase, table: str) -> None:
        super().__init__(table)
        self._client = client

    async def execute(self) -> Result:
        request = self.build()
        response = await self._client.request(
            request.method,
            request.path,
            json=request.json,
            params=request.params,
            headers=request.headers,
        )
        return result_from(request, response)


class AsyncDatabase:
    def __init__(self, client: AsyncOrgbase) -> None:
        self._client = client

    def table(self, name: str) -> AsyncQuery:
        return AsyncQuery(self._client, name)
