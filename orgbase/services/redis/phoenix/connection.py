"""One Phoenix socket (``/realtime/v1/websocket``): its frames in, its frames out.

The socket's caller is settled by its first successful join (the join's ``access_token``,
or an org API key given as the connection's ``apikey``); from then on it is one hub
subscriber, counted against the org's realtime_connections, closed or downgraded by
revocations like any socket of ``/v1/realtime``. Later joins and ``access_token`` messages
may bring a refreshed token of the same caller, never another's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from typing import Any

import msgspec
import structlog

from orgbase.core import rbac
from orgbase.core.context import LiveIdentity
from orgbase.core.errors import Invalid, OrgbaseError
from orgbase.services.redis.phoenix import joins
from orgbase.services.redis.phoenix.config import hub_name, join_payload
from orgbase.services.redis.phoenix.frames import (
    BinaryPayload,
    Frame,
    decode,
    encode,
    is_binary,
    reply,
)
from orgbase.services.redis.phoenix.service import PhoenixRealtime
from orgbase.services.redis.phoenix.subscriber import JoinedChannel, PhoenixSubscriber

log = structlog.get_logger("orgbase.realtime")


class Sender:
    """Writes frames to the socket, one at a time (replies and deliveries interleave)."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self._lock = asyncio.Lock()

    async def __call__(self, frame: bytes) -> None:
        async with self._lock:
            if is_binary(frame):
                await self.socket.send_bytes(frame)
            else:
                await self.socket.send_text(frame.decode())


class PhoenixConnection:
    def __init__(
        self, realtime: PhoenixRealtime, socket: Any, vsn: str, apikey: LiveIdentity | None
    ) -> None:
        self.rt = realtime
        self.socket = socket
        self.vsn = vsn
        self.send = Sender(socket)
        self.subscriber: PhoenixSubscriber | None = None
        self.ready = asyncio.Event()
        """Set once the socket has its subscriber (its first join)."""
        self.channels: dict[str, JoinedChannel] = {}
        self._apikey = apikey
        self._token: str | None = None

    # -- frames in -------------------------------------------------------------------

    async def handle(self, data: str | bytes) -> None:
        try:
            frame = decode(data, self.vsn)
        except OrgbaseError as exc:
            await self._reply(Frame(None, None, "phoenix", "phx_error", {}), exc)
            return
        try:
            await self._dispatch(frame)
        except OrgbaseError as exc:
            await self._reply(frame, exc)
        except Exception:  # our fault: said so, logged, and the socket goes on
            log.exception("realtime frame failed", frame_event=frame.event[:100])
            await self._reply(frame, OrgbaseError("the frame could not be handled"))

    async def _dispatch(self, frame: Frame) -> None:
        if frame.topic == "phoenix":
            if frame.event != "heartbeat":
                raise Invalid("the phoenix topic takes heartbeats only", code="invalid_frame")
            await self.send(encode(reply(frame, "ok", {}), self.vsn))
            return
        if frame.event == "phx_join":
            await self.join(frame)
            return
        channel = self.channels.get(frame.topic)
        if channel is None:
            raise Invalid("unmatched topic: join it first", code="unmatched_topic")
        handlers = {
            "phx_leave": self.leave,
            "broadcast": self.broadcast,
            "presence": self.presence,
            "access_token": self.access_token,
        }
        handler = handlers.get(frame.event)
        if handler is None:
            raise Invalid(f"unknown event {frame.event[:100]!r}", code="invalid_frame")
        await handler(channel, frame)

    async def _reply(self, frame: Frame, error: OrgbaseError) -> None:
        response = {"reason": error.message, "code": error.code}
        await self.send(encode(reply(frame, "error", response), self.vsn))

    # -- joining and leaving -----------------------------------------------------------

    async def join(self, frame: Frame) -> None:
        payload = join_payload(frame.payload)
        name = hub_name(frame.topic)
        joins.check_topic(name, payload)
        subscriber = await self._subscriber(payload.access_token)
        self.rt.joins.take(subscriber.ctx.org_id)
        bindings = await joins.bindings_of(payload, self.rt.reader)
        if (previous := self.channels.get(frame.topic)) is not None:
            await self._drop(previous)  # a rejoin replaces the channel
        config = payload.config
        channel = JoinedChannel(
            subscriber,
            frame.topic,
            name,
            frame.join_ref or frame.ref,
            config,
            bindings,
            presence_key=config.presence.key or secrets.token_hex(16),
        )
        await self.rt.hub.join(subscriber, name)
        subscriber.joined[name] = channel
        self.channels[frame.topic] = channel
        self.rt.feed.add(channel)
        granted = {"postgres_changes": [b.granted() for b in bindings]}
        await self.send(encode(reply(frame, "ok", granted), self.vsn))
        if bindings:
            subscribed = system_message(name, "Subscribed to PostgreSQL")
            subscriber.enqueue(channel.frame("system", subscribed))
        if config.presence.enabled:
            await self._presence_state(channel)

    async def _presence_state(self, channel: JoinedChannel) -> None:
        try:
            state = await self.rt.presence.state(channel.subscriber.ctx.org_id, channel.name)
        except OrgbaseError:
            state = {}  # Redis away: the diffs that follow still tell who comes and goes
        channel.subscriber.enqueue(channel.frame("presence_state", state))

    async def _subscriber(self, access_token: Any) -> PhoenixSubscriber:
        identity = await self._identity(access_token)
        if self.subscriber is not None:
            self.subscriber.identity = identity
            return self.subscriber
        hub = self.rt.hub
        subscriber = PhoenixSubscriber(
            identity, hub.settings.queue_size, vsn=self.vsn, translator=self.rt.translator
        )
        hub.register(subscriber)  # refused past the org's realtime_connections
        self.subscriber = subscriber
        self.ready.set()
        return subscriber

    async def _identity(self, access_token: Any) -> LiveIdentity:
        """The caller a join or a refresh names; the socket's own when it names none."""
        token = access_token.strip() if isinstance(access_token, str) else ""
        if not token or self.rt.identities.is_publishable(token):
            if self.subscriber is not None:
                return self.subscriber.identity
            if self._apikey is not None:
                return self._apikey
            raise joins.unauthenticated()
        if self.subscriber is not None and token == self._token:
            return self.subscriber.identity
        identity = await self.rt.identities.live_identity_of(self.socket, token)
        current = self.subscriber.identity if self.subscriber is not None else None
        if current is not None and not joins.same_caller(current.principal, identity.principal):
            raise joins.identity_changed()
        self._token = token
        return identity

    async def leave(self, channel: JoinedChannel, frame: Frame) -> None:
        await self._drop(channel)
        await self.send(encode(reply(frame, "ok", {}), self.vsn))
        await self.send(channel.frame("phx_close", {}, ref=channel.join_ref))

    async def _drop(self, channel: JoinedChannel) -> None:
        self.channels.pop(channel.topic, None)
        subscriber = channel.subscriber
        if subscriber.joined.get(channel.name) is channel:
            del subscriber.joined[channel.name]
        self.rt.feed.remove(channel)
        await self.rt.hub.leave(subscriber, channel.name)
        if channel.presence_ref is not None:
            ref, channel.presence_ref = channel.presence_ref, None
            with contextlib.suppress(OrgbaseError):  # Redis away: it expires by itself
                await self.rt.presence.untrack(subscriber.ctx.org_id, channel.name, ref)

    async def close_all(self) -> None:
        for channel in list(self.channels.values()):
            await self._drop(channel)

    # -- sending -------------------------------------------------------------------------

    async def _acting(self, channel: JoinedChannel) -> bool:
        """Check the caller again (its role now) and count the action against the org's
        realtime_publishes_per_minute; False when the check closed the socket."""
        subscriber = channel.subscriber
        await self.rt.hub.revocations.recheck(subscriber)
        if subscriber.closed.is_set():
            return False
        if self.rt.hub.admit_publish is not None:
            await self.rt.hub.admit_publish(subscriber.ctx.org_id)
        return True

    async def broadcast(self, channel: JoinedChannel, frame: Frame) -> None:
        body = frame.payload if isinstance(frame.payload, dict) else {}
        event, payload = body.get("event"), body.get("payload")
        if not isinstance(event, str):
            raise Invalid("a broadcast names its event", code="invalid_event")
        if not await self._acting(channel):
            return
        extra: dict[str, Any] = {"origin": channel.subscriber.socket_id}
        if isinstance(payload, BinaryPayload):
            payload, extra["encoding"] = base64.b64encode(payload.data).decode(), "binary"
        await self.rt.hub.publish(channel.subscriber.ctx, channel.name, event, payload, extra)
        if channel.config.broadcast.ack:
            await self.send(encode(reply(frame, "ok", {}), self.vsn))

    async def presence(self, channel: JoinedChannel, frame: Frame) -> None:
        body = frame.payload if isinstance(frame.payload, dict) else {}
        kind, meta = body.get("event"), body.get("payload") or {}
        if kind not in ("track", "untrack") or not isinstance(meta, dict):
            raise Invalid("presence is track {payload} or untrack", code="invalid_frame")
        if not await self._acting(channel):
            return
        ctx, presence = channel.subscriber.ctx, self.rt.presence
        if kind == "track":
            rbac.require(ctx, "member", "tracking presence")
            if len(msgspec.json.encode(meta)) > self.rt.hub.settings.max_message_bytes:
                raise Invalid("the presence is larger than a message may be", code="invalid_frame")
            ref = secrets.token_urlsafe(12)
            previous, channel.presence_ref = channel.presence_ref, ref
            key = channel.presence_key
            await presence.track(
                ctx.org_id, channel.name, ref=ref, key=key, meta=meta, previous=previous
            )
        elif channel.presence_ref is not None:
            ref, channel.presence_ref = channel.presence_ref, None
            await presence.untrack(ctx.org_id, channel.name, ref)
        await self.send(encode(reply(frame, "ok", {}), self.vsn))

    async def access_token(self, channel: JoinedChannel, frame: Frame) -> None:
        """A refreshed token: the same caller's is taken for the whole socket; another's (or
        a dead one) closes the channel it came on."""
        token = frame.payload.get("access_token") if isinstance(frame.payload, dict) else None
        try:
            await self._subscriber(token)
        except OrgbaseError as exc:
            channel.subscriber.enqueue(channel.frame("system", system_message(channel.name, exc)))
            await self._drop(channel)
            channel.subscriber.enqueue(channel.frame("phx_close", {}, ref=channel.join_ref))


def system_message(name: str, outcome: str | OrgbaseError) -> dict[str, Any]:
    """A ``system`` message: how the channel fares (an error ends it, or the socket)."""
    if isinstance(outcome, str):
        extension = "postgres_changes"
        return {"status": "ok", "message": outcome, "extension": extension, "channel": name}
    return {
        "status": "error",
        "message": outcome.message,
        "code": outcome.code,
        "extension": "system",
        "channel": name,
    }
