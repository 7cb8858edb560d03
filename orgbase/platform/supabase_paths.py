"""Supabase's layout of services, as plain ASGI in front of routing: ``/rest/v1/...`` is
``/v1/db/...``; ``/auth/v1`` and ``/rest/v1`` want an ``apikey`` header (the publishable
key, or an org API key) when the operator set a publishable key, as Supabase's gateway
does; and answers under ``/auth/v1`` say which GoTrue API version they speak (the
clients then read the error ``code``)."""

from __future__ import annotations

from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from orgbase.auth.apikeys import looks_like_api_key
from orgbase.core.errors import Unauthorized
from orgbase.core.secret_compare import same_secret
from orgbase.core.settings import AuthSettings
from orgbase.platform.errors import send_error

REST = "/rest/v1"
AUTH = "/auth/v1"
API_VERSION = (b"x-supabase-api-version", b"2024-01-01")
# Reached by a browser (a mailed link, a provider's redirect) without headers of its own,
# or public by nature (the public keys, a health probe).
_NO_APIKEY_PATHS = (
    "/auth/v1/verify",
    "/auth/v1/authorize",
    "/auth/v1/callback",
    "/auth/v1/.well-known/jwks.json",
    "/auth/v1/health",
)


def _apikey(scope: dict[str, Any]) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"apikey":
            return bytes(value).decode("latin-1").strip()
    return None


class SupabasePaths:
    def __init__(self, app: ASGIApp, auth: AuthSettings) -> None:
        self.app = app
        self.publishable_key = auth.publishable_key
        # The keys besides an org API key that Supabase's clients send as ``apikey``: the
        # publishable key, and the platform's service key (its admin API).
        self.keys = [k.encode() for k in (auth.publishable_key, auth.service_key) if k]

    def _key_refused(self, scope: dict[str, Any]) -> str | None:
        if self.publishable_key is None or scope["method"] == "OPTIONS":
            return None
        if scope["path"] in _NO_APIKEY_PATHS and scope["method"] == "GET":
            return None
        given = _apikey(scope)
        if given is None:
            return "no apikey header: send the publishable key (orgbase keys anon)"
        if any(same_secret(given, key) for key in self.keys):
            return None
        if looks_like_api_key(given):
            return None  # an org API key: checked like any credential, later
        return "the apikey is not this deployment's publishable key"

    async def __call__(self, asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope: dict[str, Any] = dict(asgi_scope)
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else ""
        is_rest = path == REST or path.startswith(REST + "/")
        is_auth = path == AUTH or path.startswith(AUTH + "/")
        if not (is_rest or is_auth):
            await self.app(asgi_scope, receive, send)
            return
        if scope["type"] == "http" and (refusal := self._key_refused(scope)):
            refused = Unauthorized(refusal, code="apikey_invalid")
            await send_error(asgi_scope, send, refused, (API_VERSION,))
            return
        if is_rest:
            rest = path[len(REST) :]
            new_path = "/v1/db" + rest
            rewritten: Any = {**scope, "path": new_path, "raw_path": new_path.encode()}
            await self.app(rewritten, receive, send)
            return

        async def versioned(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), API_VERSION]
                changed: Any = {**message, "headers": headers}
                message = changed
            await send(message)

        await self.app(asgi_scope, receive, versioned)
