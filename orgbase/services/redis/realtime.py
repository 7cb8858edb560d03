"""Realtime channels: org-scoped pub/sub over Redis, delivered to WebSocket and SSE clients.

A channel of org O lives at Redis channel ``t:{O}:rt:{name}`` (the org is the cluster
hash tag: on a Redis Cluster the hub uses sharded pub/sub, SSUBSCRIBE/SPUBLISH, so a
message travels only within the shard that owns the org's slot); the org always comes from
the subscriber's server-side context, never from the client, so a subscriber only ever
receives its own org's messages. Each gateway process holds one Redis pub/sub connection
(subscribed to the channels its clients want) and fans messages out to them. Row changes
of tenant tables arrive by PostgreSQL NOTIFY on every gateway and go to ``db:{table}``.

Revocations reach open sockets two ways: at once through Redis (``sys:revocations``: ended
sessions, revoked keys, changed or ended memberships, deleted orgs, changed sign-in
policies, on every replica), and by a periodic re-check of every socket's identity, which
also covers a revocation published while Redis was down (``revocations.py``). A socket's
publish checks its identity first, so it always acts with the current role.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import msgspec
import structlog

from orgbase.core import keys, rbac
from orgbase.core.context import OrgContext, Revocation, impersonation_refused
from orgbase.core.errors import Invalid, RateLimited, TooLarge, Unauthorized
from orgbase.core.org_usage import OrgUsage
from orgbase.core.redis import RedisClients, RedisUnavailable
from orgbase.core.settings import RealtimeSettings
from orgbase.services.redis.pubsub import RealtimePubSub
from orgbase.services.redis.revocations import SocketRevocations
from orgbase.services.redis.subscriber import Subscriber

log = structlog.get_logger("orgbase.realtime")

CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,127}")
REVOCATIONS = keys.REVOCATIONS_CHANNEL
SERVER_CHANNELS = ("db:", "storage:")


def may_publish(ctx: OrgContext) -> None:
    """Members and above publish; an impersonation never does (a socket has no method for
    the request-auth component's read-only check to see)."""
    if ctx.impersonated:
        raise impersonation_refused()
    rbac.require(ctx, "member", "publishing to channels")


def channel_name(name: str, *, publishing: bool = False) -> str:
    if not CHANNEL.fullmatch(name):
        raise Invalid("channel names are 1-128 letters, digits and : . _ -", code="invalid_channel")
    if publishing and name.startswith(SERVER_CHANNELS):
        raise Invalid(
            "db:* and storage:* channels carry row and file changes; only the server"
            " publishes there",
            code="reserved_channel",
        )
    return name


def redis_channel(org_id: UUID | str, name: str) -> str:
    return keys.realtime_channel(org_id, name)


def row_change_message(payload: str) -> tuple[str, bytes] | None:
    """A row change's NOTIFY as the message of its org's ``db:{table}`` channel: (that
    channel's Redis name, the message), or None for a notice that is not one."""
    try:
        event = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None
    if not event.get("org") or not event.get("table"):
        return None
    name = f"db:{event['table']}"
    message = {
        "type": "message",
        "channel": name,
        "event": event["op"],
        "payload": {"table": event["table"], "op": event["op"], "key": event.get("key")},
        "at": time.time(),
    }
    return redis_channel(event["org"], name), msgspec.json.encode(message)


class RealtimeHub:
    def __init__(self, redis: RedisClients, settings: RealtimeSettings, usage: OrgUsage) -> None:
        self.redis = redis
        self.settings = settings
        self._subscribers: set[Subscriber] = set()
        self._by_channel: dict[str, set[Subscriber]] = {}
        self.pubsub = RealtimePubSub(redis, self._wanted, self._received)
        self.revocations = SocketRevocations(self._subscribers, settings.recheck_seconds)
        self.delivered = 0
        self.usage = usage
        self.admit_publish: Callable[[UUID], Awaitable[None]] | None = None
        """Counts a socket's publish against its org's allowance (wired by the platform;
        an HTTP publish is admitted with its request)."""
        self._per_org: Counter[UUID] = Counter()

    @property
    def connections(self) -> int:
        return len(self._subscribers)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self.pubsub.start()
        self.revocations.start()

    async def stop(self) -> None:
        for subscriber in list(self._subscribers):
            subscriber.close(1001, "the server is shutting down")
        await self.revocations.stop()
        await self.pubsub.stop()

    # -- subscribers ------------------------------------------------------------------

    def admit(self, ctx: OrgContext) -> None:
        """Refuse a socket or event stream past the org's realtime_connections (counted
        in this process: the limit holds per gateway process)."""
        limits_of = self.usage.limits_of
        if limits_of is None:
            return
        limit = limits_of(ctx.org_id).realtime_connections
        if self._per_org[ctx.org_id] >= limit:
            raise RateLimited(
                f"this org already holds {limit} realtime connections",
                retry_after=5,
                code="realtime_connections_exceeded",
                details={"limit": limit},
            )

    def register(self, subscriber: Subscriber) -> None:
        self.admit(subscriber.ctx)
        self._per_org[subscriber.ctx.org_id] += 1
        subscriber.counted_org = subscriber.ctx.org_id
        self._subscribers.add(subscriber)
        expires_at = subscriber.identity.principal.expires_at
        if expires_at is not None:
            # An impersonation ends by itself: so does its socket, on time.
            expired = Unauthorized("the credential has expired", code="impersonation_ended")
            subscriber.expiry = asyncio.get_running_loop().call_later(
                max(0.0, expires_at - time.time()), subscriber.end, expired
            )

    async def unregister(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers and subscriber.counted_org is not None:
            org = subscriber.counted_org
            self._per_org[org] -= 1
            if self._per_org[org] <= 0:
                del self._per_org[org]
        self._subscribers.discard(subscriber)
        if subscriber.expiry is not None:
            subscriber.expiry.cancel()
        for name in list(subscriber.channels):
            await self.leave(subscriber, name)

    async def join(self, subscriber: Subscriber, name: str) -> None:
        channel_name(name)
        if name in subscriber.channels:
            return
        # The org's realtime_channels_per_connection (the setting when limits are off).
        most = self.settings.max_channels_per_socket
        limits_of = self.usage.limits_of
        if limits_of is not None:
            most = limits_of(subscriber.ctx.org_id).realtime_channels_per_connection
        if len(subscriber.channels) >= most:
            raise Invalid(f"at most {most} channels per connection", code="too_many_channels")
        key = redis_channel(subscriber.ctx.org_id, name)
        listeners = self._by_channel.setdefault(key, set())
        first = not listeners
        listeners.add(subscriber)
        subscriber.channels.add(name)
        if first and not name.startswith("db:"):
            await self.pubsub.subscribe(key)

    async def leave(self, subscriber: Subscriber, name: str) -> None:
        subscriber.channels.discard(name)
        key = redis_channel(subscriber.ctx.org_id, name)
        listeners = self._by_channel.get(key)
        if listeners is None:
            return
        listeners.discard(subscriber)
        if not listeners:
            del self._by_channel[key]
            if not name.startswith("db:"):
                await self.pubsub.unsubscribe(key)

    # -- publishing -------------------------------------------------------------------

    async def publish(
        self,
        ctx: OrgContext,
        name: str,
        event: str,
        payload: Any,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Publish to the org's channel on every replica; ``extra`` fields ride along (the
        Phoenix protocol's sending socket, for broadcast's ``self``)."""
        may_publish(ctx)
        channel_name(name, publishing=True)
        if not (0 < len(event) <= 100):
            raise Invalid("event is a name of 1-100 characters", code="invalid_event")
        message = msgspec.json.encode(
            {
                "type": "message",
                "channel": name,
                "event": event,
                "payload": payload,
                "at": time.time(),
                "sender": str(ctx.user_id or ctx.key_id),
                **(extra or {}),
            }
        )
        if len(message) > self.settings.max_message_bytes:
            raise TooLarge(
                f"messages are limited to {self.settings.max_message_bytes} bytes",
                code="message_too_large",
            )
        receivers = await self.send(ctx.org_id, name, message)
        self.usage.meter.add(ctx.org_id, "realtime_messages")
        return receivers

    async def send(self, org: UUID, name: str, message: bytes) -> int:
        """Put an encoded message on the org's channel (every replica's subscribers)."""
        return await self.pubsub.publish(redis_channel(org, name), message)

    async def server_publish(self, org: UUID, name: str, event: str, payload: Any) -> None:
        """A change the server reports (file changes on ``storage:{bucket}``), to every
        replica's subscribers of the org's channel, through Redis."""
        message = {"type": "message", "channel": name, "event": event, "payload": payload}
        await self.send(org, name, msgspec.json.encode({**message, "at": time.time()}))

    async def announce(self, notice: Revocation) -> None:
        """Tell every replica (this one included, through Redis) about a revocation; applied
        here at once too, so a Redis outage delays only the other replicas (whose periodic
        re-check then catches it)."""
        self.revocations.apply(notice)
        body = msgspec.json.encode(notice)
        with contextlib.suppress(RedisUnavailable):
            await self.pubsub.publish(REVOCATIONS, body)

    def _dispatch(self, key: str, message: bytes) -> None:
        for subscriber in tuple(self._by_channel.get(key, ())):
            subscriber.deliver(message)
            self.delivered += 1

    # -- from Redis -----------------------------------------------------------------

    def _wanted(self) -> list[str]:
        """What the pub/sub connection listens on (row changes come by NOTIFY instead)."""
        return [REVOCATIONS] + [k for k in self._by_channel if ":rt:db:" not in k]

    def _received(self, channel: str, message: bytes) -> None:
        if channel == REVOCATIONS:
            self.revocations.received(message)
        else:
            self._dispatch(channel, message)

    def row_changed(self, payload: str) -> None:
        """A row of a tenant table changed (NOTIFY): tell local db:{table} subscribers."""
        if (announced := row_change_message(payload)) is not None:
            self._dispatch(*announced)
