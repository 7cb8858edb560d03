"""What happened in one area that others must hear about, as typed events.

An area publishes an event on the bus it was given; the gateway declares at wiring who
subscribes to which event type (``bus.subscribe(OrgDeleted, kv.org_closed)``), so areas
never import each other and every listener of an event is named in one place.

Subscribers run in the order they were declared, one after the other, in the publisher's
task (a revocation must have reached every socket before the request that caused it
answers). A subscriber that raises stops nothing else: the error is logged and the next
subscriber runs, because one area's failure must not keep the others uninformed. Where the
publisher's outcome depends on every subscriber (a revocation not announced fails its
request; an org purge a store interrupted is retried), it publishes with
``must_succeed=True``: the first subscriber that raises stops the rest and its error is the
publisher's, as if the publisher had called it.

A few things happen inside a transaction that other areas must join (an org closing ends
its API keys in the closing transaction). Those are ``InTransaction`` events: their
subscribers get the transaction's connection beside the event (never inside it: events
stay plain data) and return what to do once it committed. They must succeed: an error
rolls the transaction back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from uuid import UUID

import msgspec
import structlog

from orgbase.core.context import OrgContext, PolicyChange, Role

if TYPE_CHECKING:
    from orgbase.core.postgres import Connection

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


class DocumentChanged(Event, frozen=True, kw_only=True):
    """Documents of an org's collection were written (MongoDB acknowledged them; no
    transaction is shared with PostgreSQL, so this one is at most once)."""

    ctx: OrgContext
    collection: str
    change: Literal["insert", "update", "delete"]
    details: dict[str, Any]


class OrgPurging(Event, frozen=True, kw_only=True):
    """A closed org's rows in PostgreSQL are to be deleted now (its row still exists)."""

    org_id: UUID


class OrgSweeping(Event, frozen=True, kw_only=True):
    """A closed org's data outside PostgreSQL's platform tables is to be deleted (documents,
    cache, files); told again after a grace period, for writes that were in flight."""

    org_id: UUID


class InTransaction(msgspec.Struct, frozen=True, kw_only=True):
    """Root of the events told inside the transaction that makes them."""


class OrgClosing(InTransaction, frozen=True, kw_only=True):
    """An org is being closed for deletion (under its lock): end what is scoped to it."""

    org_id: UUID


class OrgProviderReplaced(InTransaction, frozen=True, kw_only=True):
    """An org's SSO provider was replaced (another issuer) or removed."""

    org_id: UUID


E = TypeVar("E", bound=Event)
T = TypeVar("T", bound=InTransaction)
Subscriber = Callable[[Any], Awaitable[object]]
AfterCommit = Callable[[], Awaitable[object]]
TransactionSubscriber = Callable[[Any, "Connection"], Awaitable[AfterCommit]]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: defaultdict[type[Event], list[Subscriber]] = defaultdict(list)
        self._in_transaction: defaultdict[type[InTransaction], list[TransactionSubscriber]] = (
            defaultdict(list)
        )

    def subscribe(self, kind: type[E], subscriber: Callable[[E], Awaitable[object]]) -> None:
        self._subscribers[kind].append(subscriber)

    def subscribe_in_transaction(
        self, kind: type[T], subscriber: Callable[[T, Connection], Awaitable[AfterCommit]]
    ) -> None:
        self._in_transaction[kind].append(subscriber)

    def subscribers(self, kind: type[Event]) -> tuple[Subscriber, ...]:
        return tuple(self._subscribers.get(kind, ()))

    async def publish_in_transaction(
        self, event: InTransaction, connection: Connection
    ) -> list[AfterCommit]:
        """Tell the subscribers in the caller's transaction; run what they return once it
        committed (``after_commit``). The first error is the publisher's."""
        return [
            await subscriber(event, connection)
            for subscriber in self._in_transaction.get(type(event), ())
        ]

    async def publish(self, event: Event, *, must_succeed: bool = False) -> None:
        for subscriber in self._subscribers.get(type(event), ()):
            try:
                await subscriber(event)
            except Exception as exc:  # the other subscribers must still hear it
                if must_succeed:
                    raise
                log.error(
                    "event subscriber failed",
                    event_type=type(event).__name__,
                    subscriber=getattr(subscriber, "__qualname__", repr(subscriber)),
                    error=repr(exc),
                )


async def after_commit(actions: list[AfterCommit]) -> None:
    """Run, in order, what in-transaction subscribers returned (their transaction committed)."""
    for action in actions:
        await action()
