"""What every change of how people sign in to an org (its SSO provider, its domains, an
SSO-bound membership released) does besides the change itself: it is audited and told to
every owner of the org in the change's own transaction (both land or neither does), and
once committed every replica hears that the org's sign-in policy changed (its open
sockets check their sessions again)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from orgbase.core import audit
from orgbase.core.accounts import Accounts
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, PolicyChange
from orgbase.core.postgres import Connection
from orgbase.tenants.owner_mail import OwnerMail


@dataclass(frozen=True)
class SignInChanges:
    owners: OwnerMail
    publish: Callable[[UUID, PolicyChange], Awaitable[None]]
    """Tells every replica (after the commit) that the org's sign-in policy changed."""

    @property
    def accounts(self) -> Accounts:
        return self.owners.accounts

    async def record(
        self,
        connection: Connection,
        ctx: OrgContext | None,
        event: AuditEvent,
        kind: str,
        *,
        what: str,
    ) -> None:
        """Record ``event`` (an org's) and mail the org's owners a ``kind`` mail of ``what``
        changed. ``ctx`` is None when a platform admin made the change."""
        assert event.org_id is not None
        await audit.record(connection, event)
        await self.owners.tell(connection, ctx, event.org_id, kind, what)
