"""What the tenancy area tells the other areas about orgs, their members and their SSO.

The tenancy area owns those tables (``core/tables.py``); the others ask through these
protocols, which the gateway hands them (``orgbase/platform/gateway.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from orgbase.core.context import RequestMeta, Role
from orgbase.core.postgres import Connection

AfterCommit = Callable[[], Awaitable[object]]
"""What to do once the caller's transaction committed (caches, notices)."""


class LiveOrgs(Protocol):
    async def hold(self, connection: Connection, org_id: UUID) -> None:
        """In a platform transaction that writes into an org: hold the org (a deletion
        waits for it to commit) and make sure it is still there (404 ``org_not_found``)."""
        ...

    async def is_live(self, connection: Connection, org_id: UUID) -> bool:
        """The org exists and is not being deleted."""
        ...


class Memberships(Protocol):
    async def role(
        self, org_id: UUID, user_id: UUID, connection: Connection | None = None
    ) -> Role | None:
        """The member's role (from the membership cache); None: not a member.
        ``connection``: the caller's, used if the cache must load."""
        ...

    async def only_org(self, user_id: UUID, connection: Connection | None = None) -> UUID | None:
        """The user's org when they are a member of exactly one live org."""
        ...

    async def orgs_left_ownerless(self, connection: Connection, user_id: UUID) -> int:
        """How many orgs have this user as their only owner."""
        ...

    async def leave_all(self, connection: Connection, user_id: UUID) -> AfterCommit:
        """End every membership of the user (an account's deletion, in its transaction)."""
        ...

    async def personal_org(self, user_id: UUID, meta: RequestMeta) -> UUID | None:
        """The org a sign-in that names none enters (``auth.personal_org``): the user's
        first, or a personal org made for them; None when the account is gone."""
        ...


@dataclass(frozen=True)
class SsoProvider:
    """An org's own OpenID provider."""

    issuer: str
    client_id: str
    client_secret: str


class OrgSso(Protocol):
    async def provider(self, org_id: UUID) -> SsoProvider | None:
        """The provider of a live org, if it set one."""
        ...

    async def org_of_domain(self, domain: str) -> UUID | None:
        """The org that verified this email domain and has a provider."""
        ...

    async def speaks_for(self, org_id: UUID, domain: str) -> bool:
        """The org verified this email domain (its provider may sign in its addresses)."""
        ...

    async def provision(self, org_id: UUID, user_id: UUID, meta: RequestMeta) -> Role | None:
        """At a first sign-in through the org's provider: a membership with the provider's
        default role, bound to the org's SSO, audited; the role when one was made."""
        ...
