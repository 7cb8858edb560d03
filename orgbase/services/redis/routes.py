"""Routes of the Redis services: `/v1/kv/{key}` and `/v1/realtime` (WebSocket, SSE, publish)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, WebSocket, delete, get, post, put, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import ServerSentEvent
from litestar.status_codes import HTTP_202_ACCEPTED
from litestar.types import ControllerRouterHandler
from msgspec import Meta

from orgbase.core import rbac
from orgbase.core.context import LiveIdentitySource, OrgContext
from orgbase.core.error_render import close_of, socket_frame
from orgbase.core.errors import Invalid, OrgbaseError
from orgbase.core.json_input import check_json_input
from orgbase.services.redis.kv import Entry, KeyValueStore
from orgbase.services.redis.realtime import RealtimeHub, channel_name
from orgbase.services.redis.stats import RedisStats
from orgbase.services.redis.subscriber import Subscriber

Store = NamedDependency[KeyValueStore]
Hub = NamedDependency[RealtimeHub]
Ctx = NamedDependency[OrgContext]
Identities = NamedDependency[LiveIdentitySource]


class KvWrite(msgspec.Struct, forbid_unknown_fields=True):
    value: Any
    ttl: Annotated[int, Meta(ge=1)] | None = None


class KvIncrement(msgspec.Struct, forbid_unknown_fields=True):
    by: Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] = 1
    """Redis counters are signed 64-bit integers."""


class Publish(msgspec.Struct, forbid_unknown_fields=True):
    event: Annotated[str, Meta(min_length=1, max_length=100)]
    payload: Any = None


class Published(msgspec.Struct):
    receivers: int
    """Gateway processes that had subscribers for the channel."""


@get("/v1/kv/{key:str}", tags=["cache"], summary="Read a key: {key, value, ttl}")
async def kv_get(key: FromPath[str], kv: Store, active_ctx: Ctx) -> Entry:
    return await kv.get(active_ctx, key)


@put("/v1/kv/{key:str}", tags=["cache"], summary="Write a key: {value, ttl?} (members)")
async def kv_put(key: FromPath[str], data: JSONBody[KvWrite], kv: Store, active_ctx: Ctx) -> Entry:
    return await kv.set(active_ctx, key, data.value, data.ttl)


@post("/v1/kv/{key:str}/increment", tags=["cache"], summary="Add to an integer: {by}")
async def kv_increment(
    key: FromPath[str], data: JSONBody[KvIncrement], kv: Store, active_ctx: Ctx
) -> Entry:
    return await kv.increment(active_ctx, key, data.by)


@delete("/v1/kv/{key:str}", tags=["cache"], summary="Delete a key (members)")
async def kv_delete(key: FromPath[str], kv: Store, active_ctx: Ctx) -> None:
    await kv.delete(active_ctx, key)


@post(
    "/v1/realtime/{channel:str}",
    tags=["realtime"],
    status_code=HTTP_202_ACCEPTED,
    summary="Publish {event, payload} to an org channel (members)",
)
async def publish(
    channel: FromPath[str], data: JSONBody[Publish], hub: Hub, active_ctx: Ctx
) -> Published:
    return Published(await hub.publish(active_ctx, channel, data.event, data.payload))


@get(
    "/v1/realtime/sse",
    tags=["realtime"],
    summary="Server-sent events: ?channels=a,b (Authorization header)",
    opt={"credentials": True},
)
async def sse(
    request: Request[Any, Any, Any],
    hub: Hub,
    identities: Identities,
    channels: Annotated[str, QueryParameter(min_length=1, max_length=4000)],
) -> ServerSentEvent:
    identity = await identities.live_identity(request)
    names = [channel_name(c.strip()) for c in channels.split(",") if c.strip()]
    subscriber = Subscriber(identity, hub.settings.queue_size)
    hub.register(subscriber)
    for name in names:
        await hub.join(subscriber, name)

    async def events() -> AsyncIterator[str]:
        try:
            yield msgspec.json.encode({"type": "subscribed", "channels": names}).decode()
            while not subscriber.closed.is_set():
                waiter = asyncio.ensure_future(subscriber.next_message())
                closer = asyncio.ensure_future(subscriber.closed.wait())
                done, _ = await asyncio.wait({waiter, closer}, return_when=asyncio.FIRST_COMPLETED)
                closer.cancel()
                if waiter in done:
                    yield waiter.result().decode()
                else:
                    waiter.cancel()
            yield msgspec.json.encode(
                {"type": "closed", "reason": subscriber.close_reason}
            ).decode()
        finally:
            await hub.unregister(subscriber)

    return ServerSentEvent(events())


async def _command(
    socket: WebSocket[Any, Any, Any], hub: RealtimeHub, subscriber: Subscriber, raw: str
) -> None:
    """One client command: subscribe, unsubscribe, publish or ping."""
    try:
        check_json_input(raw.encode())
        command = msgspec.json.decode(raw)
        if not isinstance(command, dict):
            raise Invalid("commands are JSON objects", code="invalid_command")
        kind, channel = command.get("type"), str(command.get("channel", ""))
        if kind == "subscribe":
            await hub.join(subscriber, channel)
            await socket.send_json({"type": "subscribed", "channel": channel})
        elif kind == "unsubscribe":
            await hub.leave(subscriber, channel)
            await socket.send_json({"type": "unsubscribed", "channel": channel})
        elif kind == "publish":
            # With the role the member has now, not the one they had when they connected.
            await hub.revocations.recheck(subscriber)
            if subscriber.closed.is_set():
                return
            event, payload = str(command.get("event", "")), command.get("payload")
            if hub.admit_publish is not None:
                await hub.admit_publish(subscriber.ctx.org_id)
            receivers = await hub.publish(subscriber.ctx, channel, event, payload)
            await socket.send_json(
                {"type": "published", "channel": channel, "receivers": receivers}
            )
        elif kind == "ping":
            await socket.send_json({"type": "pong"})
        else:
            raise Invalid("type is subscribe, unsubscribe, publish or ping", code="invalid_command")
    except msgspec.DecodeError:
        await socket.send_json(socket_frame(Invalid("send JSON", code="malformed_body")))
    except OrgbaseError as exc:
        await socket.send_json(socket_frame(exc))


async def _serve(
    socket: WebSocket[Any, Any, Any], hub: RealtimeHub, subscriber: Subscriber
) -> None:
    """Read commands and write deliveries until either side ends."""

    async def commands() -> None:
        while not subscriber.closed.is_set():
            try:
                raw = await socket.receive_text()
            except WebSocketDisconnect:
                subscriber.close(1000, "client left")
                return
            await _command(socket, hub, subscriber, raw)

    async def deliveries() -> None:
        while True:
            await socket.send_text((await subscriber.next_message()).decode())

    tasks = {asyncio.ensure_future(t) for t in (commands(), deliveries(), subscriber.closed.wait())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


@websocket("/v1/realtime", tags=["realtime"])
async def realtime(socket: WebSocket[Any, Any, Any], hub: Hub, identities: Identities) -> None:
    """WebSocket: authenticate with ``?access_token=`` (or Authorization/apikey headers),
    then send {"type": "subscribe"|"unsubscribe", "channel"} or
    {"type": "publish", "channel", "event", "payload"}; receive {"type": "message", ...}."""
    await socket.accept()
    try:
        identity = await identities.live_identity(socket)
        subscriber = Subscriber(identity, hub.settings.queue_size)
        hub.register(subscriber)  # refused past the org's realtime_connections
    except OrgbaseError as exc:
        await socket.send_json(socket_frame(exc))
        await socket.close(code=close_of(exc), reason=exc.code)
        return
    try:
        await _serve(socket, hub, subscriber)
    finally:
        await hub.unregister(subscriber)
        if subscriber.close_reason != "client left":
            # An error's code is the reason (as above); a plain close (shutdown) says why.
            ended = subscriber.ended
            reason = ended.code if ended is not None else subscriber.close_reason[:120]
            with contextlib.suppress(Exception):
                await socket.close(code=subscriber.close_code, reason=reason)


redis_handlers: list[ControllerRouterHandler] = [
    kv_get,
    kv_put,
    kv_increment,
    kv_delete,
    publish,
    sse,
    realtime,
]


@get(
    "/v1/orgs/{org_id:uuid}/hot-keys",
    tags=["cache"],
    summary="The org's 10 most-used cache keys (admins)",
)
async def org_hot_keys(stats: NamedDependency[RedisStats], ctx: Ctx) -> list[dict[str, Any]]:
    rbac.require(ctx, "admin", "reading cache statistics")
    return await stats.hot_keys(str(ctx.org_id))


redis_handlers.append(org_hot_keys)
