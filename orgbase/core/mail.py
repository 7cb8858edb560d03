"""Mail, queued in the caller's transaction: sent once that commits, never if it rolls back.

The tenancy area owns the queue and sends it (``tenants/mail_queue.py``,
``tenants/outbox.py``); the auth area (codes), the webhooks area (disable notices) and the
tenancy area itself queue through ``Outbox``, which the gateway hands them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from orgbase.core.context import Role
from orgbase.core.postgres import Connection


@dataclass(frozen=True)
class Mail:
    kind: str
    """What it is about (``auth.signup``, ``invitation``, ``webhook_disabled``...)."""
    recipient: str
    subject: str
    body: str
    org_id: UUID | None = None
    """The org it is about: an org's deletion drops its unsent mail."""


class Outbox(Protocol):
    async def queue(self, connection: Connection, mail: Mail) -> None:
        """One mail to one address."""
        ...

    async def to_members(
        self, connection: Connection, org_id: UUID, roles: Collection[Role], mail: Mail
    ) -> None:
        """The same mail to every member of the org with one of these roles (``mail``'s
        recipient is ignored)."""
        ...
