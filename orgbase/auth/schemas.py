"""Request and response bodies of the auth routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from orgbase.core.context import RequestMeta

__all__ = ["RequestMeta"]

Email = Annotated[str, Meta(min_length=3, max_length=320)]
Password = Annotated[str, Meta(min_length=1, max_length=1024)]
# No control characters other than whitespace (which is folded to single spaces).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]*$"
DisplayName = Annotated[str, Meta(max_length=200, pattern=NO_CONTROL_CHARACTERS)]
RefreshToken = Annotated[str, Meta(min_length=1, max_length=512)]
KeyRole = Literal["admin", "member", "viewer"]


class SignUp(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    display_name: DisplayName | None = None


class PasswordGrant(
    msgspec.Struct, tag_field="grant_type", tag="password", forbid_unknown_fields=True
):
    email: Email
    password: Password
    org_id: UUID | None = None


class RefreshGrant(
    msgspec.Struct, tag_field="grant_type", tag="refresh_token", forbid_unknown_fields=True
):
    refresh_token: RefreshToken
    org_id: UUID | None = None


TokenRequest = PasswordGrant | RefreshGrant
"""``grant_type`` says which: the document shows both shapes."""


class User(msgspec.Struct):
    id: UUID
    email: str
    display_name: str | None
    is_platform_admin: bool
    created_at: datetime
    updated_at: datetime
    new_email: str | None = None
    """An address change waiting for its confirmation (the account's address is ``email``)."""


class TokenResponse(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    org_id: UUID | None
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret


@dataclass(frozen=True)
class Opened:
    """A session's new tokens, with its id and its account's row as read in the same
    transaction (GoTrue's user shape is made from it without reading it again)."""

    tokens: TokenResponse
    session_id: UUID
    account: dict[str, Any]


class Logout(msgspec.Struct, forbid_unknown_fields=True):
    scope: Literal["local", "global", "others"] = "local"


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True):
    display_name: DisplayName | UnsetType | None = UNSET
    email: Email | UnsetType = UNSET
    password: Password | UnsetType = UNSET
    current_password: Password | UnsetType = UNSET


class UserDelete(msgspec.Struct, forbid_unknown_fields=True):
    password: Password


class Session(msgspec.Struct):
    id: UUID
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    role: KeyRole = "member"
    expires_at: datetime | None = None


class ApiKey(msgspec.Struct):
    id: UUID
    org_id: UUID
    name: str
    prefix: str
    role: str
    created_by: UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    key: str
    """Shown once: only its hash is stored."""
