"""The calls of the accounts and orgs API, without a transport: what each one sends and
what its answer means. Both clients send these (``call()``), so only the sending differs
between them. The data API's calls are made by its query builder (query.py).
"""

from __future__ import annotations

from typing import Any

import httpx

from orgbase.client.core import Call, Request, TokenState, password_grant, refresh_grant


def _object(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


def _objects(response: httpx.Response) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = response.json()
    return body


def one(method: str, path: str, json: Any = None) -> Call[dict[str, Any]]:
    """A call answered by one JSON object."""
    return Call(Request(method, path, json=json), _object)


def many(method: str, path: str) -> Call[list[dict[str, Any]]]:
    """A call answered by a JSON list of objects."""
    return Call(Request(method, path), _objects)


def sign_up(email: str, password: str, display_name: str | None) -> Call[dict[str, Any]]:
    body: dict[str, Any] = {"email": email, "password": password}
    if display_name is not None:
        body["display_name"] = display_name
    return Call(Request("POST", "/v1/auth/signup", json=body), _object, authenticated=False)


def _token(state: TokenState, grant: dict[str, Any]) -> Call[dict[str, Any]]:
    """A token grant: its answer becomes the client's session."""

    def signed_in(response: httpx.Response) -> dict[str, Any]:
        body = _object(response)
        state.apply(body)
        return body

    return Call(Request("POST", "/v1/auth/token", json=grant), signed_in, authenticated=False)


def sign_in(
    state: TokenState, email: str, password: str, org_id: str | None
) -> Call[dict[str, Any]]:
    return _token(state, password_grant(email, password, org_id))


def refresh(state: TokenState, org_id: str | None) -> Call[dict[str, Any]]:
    """Raises AuthError (``not_signed_in``) without a refresh token."""
    return _token(state, refresh_grant(state, org_id))


def sign_out(state: TokenState, scope: str) -> Call[None]:
    def signed_out(response: httpx.Response) -> None:
        state.clear()

    return Call(Request("POST", "/v1/auth/logout", json={"scope": scope}), signed_out)
