"""The per-request identity that data services take."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

import msgspec

Role = Literal["owner", "admin", "member", "viewer"]
ROLE_RANK: dict[str, int] = {"viewer": 1, "member": 2, "admin": 3, "owner": 4}


class OrgContext(msgspec.Struct, frozen=True, kw_only=True):
    """Who acts, in which org, with which role, for which request (immutable)."""

    org_id: UUID
    user_id: UUID | None
    role: Role
    request_id: str

    def at_least(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]
