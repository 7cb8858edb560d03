"""The synchronous client: generated from async_client.py (scripts/unasync_client.py)."""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import Any

import httpx

from orgbase.client import calls
from orgbase.client.base import Section, SyncClientBase
from orgbase.client.core import Call, Request, T, checked, retry_after_refresh
from orgbase.client.query import SyncDatabase


class SyncAuth(Section["Orgbase"]):
    def sign_up(self, email: str, password: str, display_name: str | None = None) -> dict[str, Any]:
        return self._client.call(calls.sign_up(email, password, display_name))

    def sign_in(self, email: str, password: str, org_id: str | None = None) -> dict[str, Any]:
        return self._client.call(calls.sign_in(self._client.state, email, password, org_id))

    def refresh(self, org_id: str | None = None) -> dict[str, Any]:
        return self._client.call(calls.refresh(self._client.state, org_id))

    def switch_org(self, org_id: str) -> dict[str, Any]:
        """Make ``org_id`` the active org (a refresh with it)."""
        return self.refresh(org_id)

    def sign_out(self, scope: str = "local") -> None:
        self._client.call(calls.sign_out(self._client.state, scope))

    def user(self) -> dict[str, Any]:
        return self._client.call(calls.one("GET", "/v1/auth/user"))

    def update_user(self, **fields: Any) -> dict[str, Any]:
        return self._client.call(calls.one("PATCH", "/v1/auth/user", fields))

    def sessions(self) -> list[dict[str, Any]]:
        return self._client.call(calls.many("GET", "/v1/auth/sessions"))


class SyncOrgs(Section["Orgbase"]):
    def mine(self) -> list[dict[str, Any]]:
        """The orgs I belong to, with my role."""
        return self._client.call(calls.many("GET", "/v1/orgs"))

    def create(self, name: str) -> dict[str, Any]:
        return self._client.call(calls.one("POST", "/v1/orgs", {"name": name}))

    def members(self, org_id: str) -> list[dict[str, Any]]:
        return self._client.call(calls.many("GET", f"/v1/orgs/{org_id}/members"))


class Orgbase(SyncClientBase):
    # The sections hold nothing but the client: each is made on first use.
    auth = cached_property(SyncAuth)
    orgs = cached_property(SyncOrgs)
    db = cached_property(SyncDatabase)

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

    def call(self, call: Call[T]) -> T:
        """Send a call (see calls.py; queries make their own) and read its answer."""
        return call.read(self._send(call.request, call.authenticated))

    def _send(self, request: Request, authenticated: bool) -> httpx.Response:
        if authenticated and self.state.should_refresh():
            self.auth.refresh()
        response = self._http.send(self._built(request, authenticated))
        if authenticated and retry_after_refresh(response, self.state):
            self.auth.refresh()
            response = self._http.send(self._built(request, authenticated))
        return checked(response)
