"""The synchronous client: generated from async_client.py (scripts/unasync_client.py)."""

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


class Orgbase:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        http_client: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http = http_client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._owns_http = http_client is None
        self.state = TokenState(api_key=api_key)
        self.auth = SyncAuth(self)
        self.orgs = SyncOrgs(self)
        self.db = SyncDatabase(self)

    def __enter__(self) -> Orgbase:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def request(
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
            self.auth.refresh()

        def send() -> httpx.Response:
            auth = self.state.headers() if authenticated else {}
            return self._http.request(
                method,
                path,
                json=json,
                params=tuple(params) if params else None,
                headers={**auth, **(headers or {})},
            )

        response = send()
        if authenticated and retry_after_refresh(response, self.state):
            self.auth.refresh()
            response = send()
        return checked(response)


class SyncAuth:
    def __init__(self, client: Orgbase) -> None:
        self._client = client

    def sign_up(self, email: str, password: str, display_name: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"email": email, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        response = self._client.request("POST", "/v1/auth/signup", json=body, authenticated=False)
        user: dict[str, Any] = response.json()
        return user

    def sign_in(self, email: str, password: str, org_id: str | None = None) -> dict[str, Any]:
        response = self._client.request(
            "POST",
            "/v1/auth/token",
            json=password_grant(email, password, org_id),
            authenticated=False,
        )
        body: dict[str, Any] = response.json()
        self._client.state.apply(body)
        return body

    def refresh(self, org_id: str | None = None) -> dict[str, Any]:
        response = self._client.request(
            "POST",
            "/v1/auth/token",
            json=refresh_grant(self._client.state, org_id),
            authenticated=False,
        )
        body: dict[str, Any] = response.json()
        self._client.state.apply(body)
        return body

    def switch_org(self, org_id: str) -> dict[str, Any]:
        """Make ``org_id`` the active org (a refresh with it)."""
        return self.refresh(org_id)

    def sign_out(self, scope: str = "local") -> None:
        self._client.request("POST", "/v1/auth/logout", json={"scope": scope})
        self._client.state.clear()

    def user(self) -> dict[str, Any]:
        user: dict[str, Any] = (self._client.request("GET", "/v1/auth/user")).json()
        return user

    def update_user(self, **fields: Any) -> dict[str, Any]:
        user: dict[str, Any] = (self._client.request("PATCH", "/v1/auth/user", json=fields)).json()
        return user

    def sessions(self) -> list[dict[str, Any]]:
        sessions: list[dict[str, Any]] = (self._client.request("GET", "/v1/auth/sessions")).json()
        return sessions


class SyncOrgs:
    def __init__(self, client: Orgbase) -> None:
        self._client = client

    def mine(self) -> list[dict[str, Any]]:
        """The orgs I belong to, with my role."""
        orgs: list[dict[str, Any]] = (self._client.request("GET", "/v1/orgs")).json()
        return orgs

    def create(self, name: str) -> dict[str, Any]:
        org: dict[str, Any] = (self._client.request("POST", "/v1/orgs", json={"name": name})).json()
        return org

    def members(self, org_id: str) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = (
            self._client.request("GET", f"/v1/orgs/{org_id}/members")
        ).json()
        return members


class SyncQuery(QueryBuilder):
    def __init__(self, client: Orgbase, table: str) -> None:
        super().__init__(table)
        self._client = client

    def execute(self) -> Result:
        request = self.build()
        response = self._client.request(
            request.method,
            request.path,
            json=request.json,
            params=request.params,
            headers=request.headers,
        )
        return result_from(request, response)


class SyncDatabase:
    def __init__(self, client: Orgbase) -> None:
        self._client = client

    def table(self, name: str) -> SyncQuery:
        return SyncQuery(self._client, name)
