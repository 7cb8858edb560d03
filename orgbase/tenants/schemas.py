"""Request and response bodies of the tenancy routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta

from orgbase.core.context import Role
from orgbase.core.errors import Invalid

OrgName = Annotated[str, Meta(min_length=1, max_length=200)]
Email = Annotated[str, Meta(min_length=3, max_length=320)]


class OrgCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: OrgName


class OrgUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: OrgName


class Org(msgspec.Struct):
    id: UUID
    name: str
    created_at: datetime
    updated_at: datetime
    role: Role
    """The caller's role in the org."""


class Member(msgspec.Struct):
    user_id: UUID
    email: str
    display_name: str | None
    role: Role
    created_at: datetime
    updated_at: datetime
    sso_bound: bool = False
    """Bound to the org's SSO: enters only through the org's provider."""
    sso_suspended: bool = False
    """Bound, but the address left the org's verified domains: no access until an admin
    releases the binding (DELETE .../sso-binding) or removes the member."""


class MemberUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: Role


class InvitationCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    role: Role = "member"


class Invitation(msgspec.Struct):
    id: UUID
    org_id: UUID
    email: str
    role: Role
    invited_by: UUID | None
    created_at: datetime
    expires_at: datetime
    status: str
    """pending, accepted, revoked or expired."""
    token: str | None = None
    """Outside production only (dev and test modes), and only in the inviter's create
    response: the accept token."""


class InvitationAccept(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, Meta(min_length=1, max_length=200)]


class Accepted(msgspec.Struct):
    org_id: UUID
    role: Role


class SettingsDocument(msgspec.Struct):
    version: int
    settings: dict[str, Any]
    updated_at: datetime
    updated_by: UUID | None


class SettingsWrite(msgspec.Struct, forbid_unknown_fields=True):
    settings: dict[str, Any]


class AuditEntry(msgspec.Struct):
    id: int
    org_id: UUID | None
    occurred_at: datetime
    action: str
    actor_user_id: UUID | None
    actor_kind: str
    actor_key_id: UUID | None
    target_table: str | None
    row_key: Any
    old_values: Any
    new_values: Any
    details: Any
    request_id: str | None
    ip: str | None


class AuditPage(msgspec.Struct):
    items: list[AuditEntry]
    next_cursor: int | None


class PlatformOrg(msgspec.Struct):
    id: UUID
    name: str
    created_at: datetime
    deleted_at: datetime | None
    members: int


class ImpersonationCreate(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=3, max_length=500)]


class ImpersonationToken(msgspec.Struct):
    access_token: str
    expires_in: int
    org_id: UUID
    impersonation_id: UUID
    role: Role = "viewer"
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


class Page(msgspec.Struct, frozen=True):
    """A page of a long listing (platform admins' orgs and users)."""

    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if not (1 <= self.limit <= 500 and 0 <= self.offset <= 1_000_000):
            raise Invalid("limit is 1-500 and offset 0-1000000", code="invalid_page")
