"""The per-request identity that data services take."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

from orgbase.core.errors import Forbidden

Role = Literal["owner", "admin", "member", "viewer"]
ROLE_RANK: dict[str, int] = {"viewer": 1, "member": 2, "admin": 3, "owner": 4}


class OrgContext(msgspec.Struct, frozen=True, kw_only=True):
    """Who acts, in which org, with which role, for which request (immutable)."""

    org_id: UUID
    user_id: UUID | None
    role: Role
    request_id: str
    key_id: UUID | None = None
    """The API key acting, when the request authenticated with one."""
    impersonated: bool = False

    def at_least(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["user", "api_key"]
    user_id: UUID | None = None
    session_id: UUID | None = None
    org_id: UUID | None = None
    """The active org: the token's ``org`` claim, or the API key's org."""
    key_id: UUID | None = None
    key_role: Role | None = None
    impersonation_id: UUID | None = None
    """Set when a platform admin looks at ``org_id`` through an audited impersonation."""

    def require_user(self) -> tuple[UUID, UUID]:
        """(user_id, session_id) of a signed-in user; API keys are refused."""
        if self.kind != "user" or self.user_id is None or self.session_id is None:
            raise Forbidden("this endpoint needs a user's access token", code="user_token_required")
        return self.user_id, self.session_id


class RequestMeta(msgspec.Struct, frozen=True):
    """Where a request came from (for sessions, rate limits and the audit log)."""

    ip: str | None
    user_agent: str | None
    request_id: str
