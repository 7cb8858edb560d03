"""What a client is whether it sends synchronously or not: its options, its token state and
the public ``request``. ``AsyncOrgbase`` and ``Orgbase`` add the sending and their sections
(``auth``, ``orgs``, ``db``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable
from typing import Any, Generic, TypeVar

import httpx

from orgbase.client.core import Request, TokenState

Client = TypeVar("Client")
HttpClient = TypeVar("HttpClient", httpx.AsyncClient, httpx.Client)
# What sending gives: an awaitable of the response (async) or the response itself (sync).
Sent = TypeVar("Sent", Awaitable[httpx.Response], httpx.Response)


class ClientBase(ABC, Generic[HttpClient, Sent]):
    _http_type: type[HttpClient]

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        http_client: HttpClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._http: HttpClient = http_client or self._http_type(
            base_url=base_url.rstrip("/"), timeout=timeout
        )
        self._owns_http = http_client is None
        self.state = TokenState(api_key=api_key)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
    ) -> Sent:
        """Send a request (refreshing the access token when needed); raise ApiError on 4xx/5xx."""
        return self._send(Request(method, path, params or [], headers or {}, json), authenticated)

    @abstractmethod
    def _send(self, request: Request, authenticated: bool) -> Sent:
        """Refresh first when the access token is about to expire, and once after a 401 for
        an expired one (core.retry_after_refresh); raise ApiError on 4xx/5xx (core.checked)."""

    def _built(self, request: Request, authenticated: bool) -> httpx.Request:
        """The HTTP request, with the credentials of the moment."""
        auth = self.state.headers() if authenticated else {}
        return self._http.build_request(
            request.method,
            request.path,
            json=request.json,
            params=tuple(request.params) if request.params else None,
            headers={**auth, **request.headers},
        )


class AsyncClientBase(ClientBase[httpx.AsyncClient, Awaitable[httpx.Response]]):
    _http_type = httpx.AsyncClient


class SyncClientBase(ClientBase[httpx.Client, httpx.Response]):
    _http_type = httpx.Client


class Section(Generic[Client]):
    """A part of a client's API (``ob.auth``, ``ob.orgs``)."""

    def __init__(self, client: Client) -> None:
        self._client = client
