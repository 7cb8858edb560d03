"""A change of how people sign in to an org (its SSO provider, its domains, an SSO-bound
membership released) is audited and told to every owner of the org, in the change's own
transaction: both land or neither does."""

from __future__ import annotations

from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext
from orgbase.core.postgres import Connection
from orgbase.tenants.owner_mail import OwnerMail


async def record_and_tell(
    connection: Connection,
    owners: OwnerMail,
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
    await owners.tell(connection, ctx, event.org_id, kind, what)
