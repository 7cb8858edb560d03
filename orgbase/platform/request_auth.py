"""The one request-auth pipeline: a request's credential becomes a Principal and, for org
routes, an OrgContext. Every route, socket and service goes through here (as the
dependencies ``principal``, ``ctx``, ``active_ctx`` and ``identities``, and the data API
through ``data_access``);
no area turns a credential into a context by itself.

Credentials, in this order: ``Authorization: Bearer <access token or API key>``, an
``apikey: <API key>`` header, and for WebSockets and server-sent events (whose browser
APIs cannot set headers) an ``access_token`` query parameter.

Three ways to ask:
- ``principal`` / ``org_context``: checked here (session in the Redis cache with its
  PostgreSQL fallback, membership cache, API key cache, impersonation in PostgreSQL);
- ``data_access``: the data API's deferred mode, where a user's session and membership are
  checked by PostgreSQL in the query's own statement (no round trip here), and here only
  when the request is refused before any statement runs;
- ``live_identity``: for sockets, an identity that can be checked again (every publish,
  and the periodic re-check).

An impersonation (a platform admin's look at one org) is read-only here, for every route
at once: any method but GET, HEAD and OPTIONS is refused (403 ``impersonation_read_only``)
before the handler runs, unless the route declares that it only reads
(``core.context.READS_ONLY``: queries sent as a POST body). What it may read is its org:
other orgs answer 404 (the context), and the admin's own account (sessions, orgs,
invitations...) refuses it (``Principal.require_user``).

Each records who called in the request's scope state, so the access log carries the same
fields on every route: ``auth`` (user, api_key or impersonation), ``user_id`` or ``key_id``,
and ``org_id``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection

from orgbase.auth.apikeys import looks_like_api_key
from orgbase.auth.principal import Authenticator
from orgbase.auth.sessions import SessionStore
from orgbase.auth.tokens import MAX_TOKEN_LENGTH, token_error
from orgbase.core.app_state import AppKey
from orgbase.core.context import (
    READS_ONLY,
    LiveIdentity,
    OrgContext,
    Principal,
    impersonation_refused,
)
from orgbase.core.errors import Unauthorized
from orgbase.core.postgres import DeferredEntry, TenantEntry
from orgbase.limits.admission import Admission
from orgbase.tenants.context import OrgContextResolver, no_active_org

AnyConnection = ASGIConnection[Any, Any, Any, Any]
QUERY_TOKEN = "access_token"  # noqa: S105 - the parameter's name, not a secret
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _state(connection: AnyConnection) -> dict[str, Any]:
    state: dict[str, Any] = connection.scope.setdefault("state", {})
    return state


def request_id(connection: AnyConnection) -> str:
    return str(_state(connection).get("request_id", ""))


def record(connection: AnyConnection, principal: Principal, org_id: UUID | None = None) -> None:
    """Who called, for the access log and the SLO counters."""
    state = _state(connection)
    if principal.kind == "api_key":
        state["auth"] = "api_key"
        state["key_id"] = principal.key_id
    else:
        state["auth"] = "impersonation" if principal.impersonation_id else "user"
        state["user_id"] = principal.user_id
    state["org_id"] = org_id or principal.org_id


def refuse_impersonated_writes(connection: AnyConnection) -> None:
    """An impersonation's request that may write (its method, unless the route declares it
    reads only) is refused. A socket has no method: what it sends is checked against the
    impersonation's viewer role."""
    method = connection.scope.get("method")
    if method is None or method in _READS:
        return
    if connection.route_handler.opt.get(READS_ONLY):
        return
    raise impersonation_refused()


def credential(
    connection: AnyConnection, *, from_query: bool = False, publishable: str | None = None
) -> str:
    """The bearer token or API key of a request (401 when absent or garbled). The
    publishable key (Supabase's clients send it as ``apikey`` and, before sign-in, as the
    bearer) is no credential: it is skipped wherever it appears."""
    headers = connection.headers
    authorization = headers.get("authorization")
    apikey = headers.get("apikey")
    if publishable is not None:
        if authorization and authorization.strip().partition(" ")[2].strip() == publishable:
            authorization = None
        if apikey and apikey.strip() == publishable:
            apikey = None
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise token_error("token_malformed", "use 'Authorization: Bearer <token>'")
        found = value.strip()
    elif apikey:
        found = apikey.strip()
    elif from_query and (query_token := connection.query_params.get(QUERY_TOKEN)):
        found = query_token.strip()
    else:
        raise Unauthorized("authentication required", code="auth_required", bearer="missing")
    if not found or len(found) > MAX_TOKEN_LENGTH or not found.isascii():
        raise token_error("token_malformed", "the credential is malformed")
    return found


@dataclass(frozen=True)
class RequestAuth:
    authenticator: Authenticator
    contexts: OrgContextResolver
    sessions: SessionStore
    publishable_key: str | None = None
    admission: Admission | None = None
    """Per-org request limits, counted once the org is known (None: no limits)."""

    async def principal(self, connection: AnyConnection, *, from_query: bool = False) -> Principal:
        principal = await self.authenticator.authenticate(
            credential(connection, from_query=from_query, publishable=self.publishable_key)
        )
        record(connection, principal)
        if principal.impersonation_id is not None:
            refuse_impersonated_writes(connection)
        return principal

    async def org_context(
        self,
        connection: AnyConnection,
        principal: Principal,
        org_id: UUID | None,
        *,
        admit: bool = True,
    ) -> OrgContext:
        """The principal's context in ``org_id`` (a path's org), or in its active org,
        admitted into the org's request allowance (``admit=False``: already counted)."""
        ctx = await self.contexts.resolve(principal, org_id, request_id(connection))
        record(connection, principal, ctx.org_id)
        if admit and self.admission is not None:
            await self.admission.admit(connection.scope, ctx.org_id)
        return ctx

    async def data_access(self, connection: AnyConnection) -> DeferredEntry:
        """How the data API's statements enter the active org, and how to check the
        credential here when none will run."""

        async def confirm() -> None:
            principal = await self.principal(connection)
            await self.org_context(connection, principal, None, admit=False)

        return DeferredEntry(await self.data_entry(connection), confirm)

    async def data_entry(self, connection: AnyConnection) -> TenantEntry:
        """How a data API statement enters the active org. A user's session and membership
        are left to PostgreSQL, checked in the statement itself (no round trip here)."""
        found = credential(connection, publishable=self.publishable_key)
        rid = request_id(connection)
        if looks_like_api_key(found):
            principal = await self.authenticator.api_key(found)
            record(connection, principal)
            assert principal.key_digest is not None
            if self.admission is not None and principal.org_id is not None:
                await self.admission.admit(connection.scope, principal.org_id)
            return TenantEntry.api_key(principal.key_digest, principal.org_id, rid)
        # The hot path: the token's claims straight into the entry (no Principal to build).
        claims = self.authenticator.claims(found)
        state = _state(connection)
        state["auth"] = "impersonation" if claims.imp else "user"
        state["user_id"], state["org_id"] = claims.sub, claims.org
        if claims.imp is not None:
            refuse_impersonated_writes(connection)
        if claims.org is None:
            raise no_active_org()
        if self.admission is not None:
            await self.admission.admit(connection.scope, claims.org)
        if claims.imp is not None:
            return TenantEntry.impersonation(claims.imp, claims.ssec, claims.org, rid)
        self.sessions.touch_later(claims.sid)
        return TenantEntry.session(claims.sid, claims.ssec, claims.org, rid)

    async def live_identity(self, connection: AnyConnection) -> LiveIdentity:
        """The identity of a socket or event stream in the principal's active org."""
        principal = await self.principal(connection, from_query=True)
        return await self._live(connection, principal)

    async def live_identity_of(self, connection: AnyConnection, credential: str) -> LiveIdentity:
        """The identity a socket's message carries (an access token or API key)."""
        found = credential.strip()
        if not found or self.is_publishable(found):
            raise Unauthorized("authentication required", code="auth_required", bearer="missing")
        if len(found) > MAX_TOKEN_LENGTH or not found.isascii():
            raise token_error("token_malformed", "the credential is malformed")
        principal = await self.authenticator.authenticate(found)
        record(connection, principal)
        return await self._live(connection, principal)

    def is_publishable(self, credential: str) -> bool:
        key = self.publishable_key
        return key is not None and hmac.compare_digest(credential.encode(), key.encode())

    async def _live(self, connection: AnyConnection, principal: Principal) -> LiveIdentity:
        ctx = await self.org_context(connection, principal, None)

        async def refresh(current: OrgContext) -> OrgContext:
            await self._still_valid(principal)
            return await self.contexts.resolve(principal, current.org_id, current.request_id)

        return LiveIdentity(principal, ctx, refresh)

    async def _still_valid(self, principal: Principal) -> None:
        """The principal's credential still works (raises the 401 a request would get)."""
        if principal.kind == "api_key":
            assert principal.key_digest is not None
            if await self.authenticator.api_keys.authenticate_digest(principal.key_digest) is None:
                raise token_error("api_key_invalid", "the API key is unknown, revoked or expired")
            return
        assert principal.session_id is not None
        assert principal.user_id is not None
        if not await self.sessions.is_alive(principal.session_id, principal.user_id):
            raise token_error("session_revoked", "the session has ended; sign in again")


REQUEST_AUTH: AppKey[RequestAuth] = AppKey("request_auth")
"""Where the request-scoped dependencies find the component."""
