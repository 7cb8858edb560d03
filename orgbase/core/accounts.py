"""What the auth area tells the other areas about accounts, sessions and API keys.

The auth area owns those tables (``core/tables.py``); an area that needs an address, a
platform admin's flag or a key's role asks through ``Accounts``, which the gateway hands
it (``orgbase/platform/gateway.py``). Every call takes the caller's connection, so the
answer belongs to the caller's transaction (and its locks hold until that commits).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

from orgbase.core.context import Role
from orgbase.core.postgres import Connection


@dataclass(frozen=True)
class Profile:
    """A live account as other areas show it."""

    id: UUID
    email: str
    display_name: str | None


class PlatformUser(msgspec.Struct):
    """An account as a platform admin lists it (deleted ones too)."""

    id: UUID
    email: str
    display_name: str | None
    is_platform_admin: bool
    created_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True)
class SessionStanding:
    """What an org's sign-in policy asks of a session: its user, its level, the org whose
    provider signed it in, and its user's address."""

    user_id: UUID
    aal: str
    sso_org_id: UUID | None
    email: str


def email_domain(email: str) -> str:
    """The domain part of an address, as PostgreSQL's ``split_part(email, '@', 2)``."""
    parts = email.split("@")
    return parts[1] if len(parts) > 1 else ""


class Accounts(Protocol):
    async def hold(self, connection: Connection, user_id: UUID) -> Profile | None:
        """The live account, locked until the caller's transaction ends (its deletion
        waits, then ends what that transaction gave it); None when deleted or unknown."""
        ...

    async def profiles(
        self, connection: Connection, user_ids: Iterable[UUID]
    ) -> dict[UUID, Profile]:
        """The live ones of these accounts (deleted ones are left out)."""
        ...

    async def is_platform_admin(self, connection: Connection, user_id: UUID) -> bool:
        """A live account with the platform admin's flag."""
        ...

    async def page(self, connection: Connection, limit: int, offset: int) -> list[PlatformUser]:
        """Every account, newest first."""
        ...

    async def session_standing(
        self, connection: Connection, session_id: UUID
    ) -> SessionStanding | None:
        """The session's level, its SSO org and its user's address (None: no such session)."""
        ...

    async def key_role(self, connection: Connection, key_id: UUID, org_id: UUID) -> Role | None:
        """The role of a live (unrevoked, unexpired) API key of the org."""
        ...

    async def enter_next(
        self, connection: Connection, user_id: UUID, session_id: UUID, org_id: UUID
    ) -> None:
        """The user chose this org (made it): the session's next refresh enters it, and so
        does the user's next sign-in that names no org (the last used org)."""
        ...
