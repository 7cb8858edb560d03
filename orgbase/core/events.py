"""What happened in one area that others must hear about, as typed events.

An area publishes an event on the bus it was given; the gateway declares at wiring who
subscribes to which event type (``bus.subscribe(OrgDeleted, kv.org_closed)``), so areas
never import each other and every listener of an event is named in one place.

Subscribers run in the order they were declared, one after the other, in the publisher's
task (a revocation must have reached every socket before the request that caused it
answers). A subscriber that raises stops nothing else: the error is logged and the next
subscriber runs, because one area's failure must not keep the others uninformed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar
from uuid import UUID

import msgspec
import structlog

from orgbase.core.context import PolicyChange, Role

log = structlog.get_logger("orgbase.events")


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Root of every event: plain data, no behaviour."""


class OrgDeleted(Event, frozen=True, kw_only=True):
    """An org's deletion committed: its data is purged everywhere."""

    org_id: UUID


class SessionsRevoked(Event, frozen=True, kw_only=True):
    """Sessions ended (logout, password change, takeover, recovery)."""

    sessions: tuple[UUID, ...]


class MembershipChanged(Event, frozen=True, kw_only=True):
    """A member's role changed (``role``) or the membership ended (``role`` is None)."""

    org_id: UUID
    user_id: UUID
    role: Role | None


class KeysRevoked(Event, frozen=True, kw_only=True):
    """API keys of an org were revoked (one by one, or with the org)."""

    org_id: UUID
    keys: tuple[UUID, ...]


class PolicyChanged(Event, frozen=True, kw_only=True):
    """An org's sign-in policy changed (MFA required, SSO domains)."""

    org_id: UUID
    change: PolicyChange


class StorageObjectChanged(Event, frozen=True, kw_only=True):
    """An object of an org's bucket was created, replaced or deleted (committed). The
    webhook outbox has it already (written in the change's transaction); realtime hears
    it here. ``name`` is None where the bucket keeps names private to their owners."""

    org_id: UUID
    bucket: str
    name: str | None
    object_id: UUID
    change: Literal["created", "updated", "deleted"]
    size: int | None = None


E = TypeVar("E", bound=Event)
Subscriber = Callable[[Any], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: defaultdict[type[Event], list[Subscriber]] = defaultdict(list)

    def subscribe(self, kind: type[E], subscriber: Callable[[E], Awaitable[None]]) -> None:
        self._subscribers[kind].append(subscriber)

    def subscribers(self, kind: type[Event]) -> tuple[Subscriber, ...]:
        return tuple(self._subscribers.get(kind, ()))

    async def publish(self, event: Event) -> None:
        for subscriber in self._subscribers.get(type(event), ()):
            try:
                await subscriber(event)
            except Exception as exc:  # the other subscribers must still hear it
                log.error(
                    "event subscriber failed",
                    event_type=type(event).__name__,
                    subscriber=getattr(subscriber, "__qualname__", repr(subscriber)),
                    error=repr(exc),
                )
