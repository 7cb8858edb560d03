"""Who acts: the per-request identity the areas take.

``Principal`` is who a credential belongs to; ``OrgContext`` is a principal acting in one
org with one role. Both carry the ``Credential`` they came from, so PostgreSQL can check
that credential again when a statement enters the org (``core.postgres.TenantEntry``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable
from uuid import UUID

import msgspec

from orgbase.core.errors import Forbidden

Role = Literal["owner", "admin", "member", "viewer"]
PolicyChange = Literal["mfa_required", "sso_required", "relaxed"]
"""How an org's sign-in policy changed: a second factor now required, an email domain's
users now bound to the org's SSO, or a requirement dropped."""
ROLE_RANK: dict[str, int] = {"viewer": 1, "member": 2, "admin": 3, "owner": 4}
_SECRET_FIELDS = frozenset({"key_digest", "session_secret"})


def _without_secrets(struct: msgspec.Struct) -> str:
    """A struct's repr without what enters an org (a key's digest, a token's secret)."""
    shown = ", ".join(
        f"{name}={getattr(struct, name)!r}"
        for name in struct.__struct_fields__
        if name not in _SECRET_FIELDS and getattr(struct, name) is not None
    )
    return f"{type(struct).__name__}({shown})"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token and the secret it carries. The issuer keeps the secret's hash where
    the token enters an org (its session row, an impersonation's row) until
    ``secret_expires_at``, so PostgreSQL lets in only the holders of live tokens."""

    access_token: str = field(repr=False)
    expires_in: int
    secret: str = field(repr=False)
    secret_expires_at: float
    """Epoch seconds: the token's expiry plus the clock skew its verification allows."""


READS_ONLY = "reads_only"
"""A route handler's ``opt`` key: the route only reads, whatever its method (a query sent
as a POST body). An impersonation, which never writes, may call it; every other POST, PUT,
PATCH and DELETE refuses an impersonation before the handler runs."""


def impersonation_refused() -> Forbidden:
    return Forbidden(
        "an impersonation only reads the org it was made for",
        code="impersonation_read_only",
    )


class Credential(msgspec.Struct, frozen=True, kw_only=True):
    """The credential a request came with, as PostgreSQL checks it again when a statement
    enters the org (``core.postgres.TenantEntry``). Its secrets are never shown (see
    ``__repr__``)."""

    session_id: UUID | None = None
    """The user's session."""
    key_id: UUID | None = None
    """The API key acting, when the request authenticated with one."""
    key_digest: bytes | None = None
    """SHA-256 of the presented API key: how PostgreSQL finds and checks the key again."""
    impersonation_id: UUID | None = None
    """Set when a platform admin looks at an org through an audited impersonation."""
    aal: str = "aal1"
    """The assurance level of the user's session (``aal2`` after a second factor); API
    keys and impersonations are ``aal1``."""
    session_secret: str | None = None
    """The token's own secret: with the session (or impersonation) id, what PostgreSQL lets
    into the org."""

    def __repr__(self) -> str:
        return _without_secrets(self)


class Principal(Credential, frozen=True, kw_only=True):
    """Who a credential belongs to (a user, or an org's API key)."""

    kind: Literal["user", "api_key"]
    user_id: UUID | None = None
    org_id: UUID | None = None
    """The active org: the token's ``org`` claim, or the API key's org (the one an
    impersonation looks at)."""
    key_role: Role | None = None
    expires_at: int | None = None
    """When the credential stops working by itself (an impersonation token's ``exp``)."""

    def require_user(self) -> tuple[UUID, UUID]:
        """(user_id, session_id) of a signed-in user acting as themselves: what every route
        about the caller's own account asks (its sessions, orgs, invitations, factors...).
        API keys are refused, and so is an impersonation: it reads the one org it was made
        for and never acts as its admin's account."""
        if self.impersonation_id is not None:
            raise impersonation_refused()
        if self.kind != "user" or self.user_id is None or self.session_id is None:
            raise Forbidden("this endpoint needs a user's access token", code="user_token_required")
        return self.user_id, self.session_id


class OrgContext(Credential, frozen=True, kw_only=True):
    """Who acts, in which org, with which role, for which request (immutable), and the
    credential it came from."""

    org_id: UUID
    user_id: UUID | None
    role: Role
    request_id: str

    @property
    def impersonated(self) -> bool:
        return self.impersonation_id is not None

    def at_least(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def with_role(self, role: Role) -> OrgContext:
        return msgspec.structs.replace(self, role=role)


class RequestMeta(msgspec.Struct, frozen=True):
    """Where a request came from (for sessions, rate limits and the audit log)."""

    ip: str | None
    user_agent: str | None
    request_id: str


class LiveIdentity:
    """The identity of a long-lived connection (a WebSocket or an SSE stream).

    ``refresh()`` asks the request-auth component again, so a publish acts with the current
    role and a revoked credential ends the connection; it raises the same errors a new
    request would get.
    """

    def __init__(
        self,
        principal: Principal,
        ctx: OrgContext,
        refresh: Callable[[OrgContext], Awaitable[OrgContext]],
    ) -> None:
        self.principal = principal
        self.ctx = ctx
        self._refresh = refresh

    async def refresh(self) -> OrgContext:
        self.ctx = await self._refresh(self.ctx)
        return self.ctx


class Revocation(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A credential or a grant ended or changed: published once, heard by every replica
    (its open sockets close or lose rights at once)."""

    sessions: tuple[UUID, ...] = ()
    keys: tuple[UUID, ...] = ()
    org: UUID | None = None
    user: UUID | None = None
    role: Role | None = None
    """With org and user: the member's new role; None when the membership ended."""
    org_deleted: bool = False
    policy: PolicyChange | None = None
    """With org: its sign-in policy changed. Every replica drops its copy of the policy; a
    tightened one (not ``relaxed``) puts the org's open sockets of sessions on hold until
    each is checked again (closed when short of it)."""


@runtime_checkable  # Litestar checks dependencies against their declared types
class LiveIdentitySource(Protocol):
    """Gives sockets and event streams their identity (the request-auth component)."""

    async def live_identity(self, connection: Any) -> LiveIdentity: ...

    async def live_identity_of(self, connection: Any, credential: str) -> LiveIdentity:
        """The same for a credential a socket sent in a message (Supabase Realtime's
        ``access_token``), not in its request."""
        ...

    def is_publishable(self, credential: str) -> bool:
        """Is this the deployment's publishable key (no credential: it grants nothing)?"""
        ...
