"""What the async and the sync client share: token state, requests and calls (what to send
and what the answer means), and the request rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from orgbase.client.errors import AuthError, error_from

REFRESH_MARGIN_SECONDS = 30
_RETRY_CODES = frozenset({"token_expired"})
T = TypeVar("T")


@dataclass
class Request:
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    singular: bool = False


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call without its transport; both clients send it (``call()``)."""

    request: Request
    read: Callable[[httpx.Response], T]
    """What the (successful) answer means; it may update the client's token state."""
    authenticated: bool = True


@dataclass
class TokenState:
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: float = 0.0
    org_id: str | None = None
    user: dict[str, Any] = field(default_factory=dict)
    api_key: str | None = None

    def apply(self, body: dict[str, Any]) -> None:
        self.access_token = body["access_token"]
        self.refresh_token = body.get("refresh_token", self.refresh_token)
        self.expires_at = time.time() + float(body.get("expires_in", 0))
        self.org_id = body.get("org_id")
        self.user = body.get("user") or self.user

    def clear(self) -> None:
        self.access_token = self.refresh_token = self.org_id = None
        self.expires_at = 0.0
        self.user = {}

    def headers(self) -> dict[str, str]:
        if self.access_token:
            return {"Authorization": f"Bearer {self.access_token}"}
        if self.api_key:
            return {"apikey": self.api_key}
        return {}

    def should_refresh(self) -> bool:
        return bool(
            self.refresh_token
            and self.access_token
            and self.expires_at - time.time() < REFRESH_MARGIN_SECONDS
        )


def password_grant(email: str, password: str, org_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"grant_type": "password", "email": email, "password": password}
    if org_id:
        body["org_id"] = org_id
    return body


def refresh_grant(state: TokenState, org_id: str | None) -> dict[str, Any]:
    if not state.refresh_token:
        raise AuthError(401, "not_signed_in", "sign in first")
    body: dict[str, Any] = {"grant_type": "refresh_token", "refresh_token": state.refresh_token}
    if org_id:
        body["org_id"] = org_id
    return body


def retry_after_refresh(response: httpx.Response, state: TokenState) -> bool:
    """A 401 for an expired token is worth one refresh and one retry."""
    if response.status_code != 401 or not state.refresh_token:
        return False
    try:
        code = response.json().get("code")
    except ValueError:
        return False
    return code in _RETRY_CODES


def checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise error_from(response)
    return response
