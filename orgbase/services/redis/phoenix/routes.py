"""Supabase Realtime's routes: the Phoenix socket and the broadcast API.

- ``WS /realtime/v1/websocket?apikey=...&vsn=1.0.0|2.0.0``
- ``POST /realtime/v1/api/broadcast`` ``{messages: [{topic, event, payload}]}`` (a server
  with an org API key, or realtime-js's fallback with a user's token): 202
- ``POST /realtime/v1/api/broadcast/{topic}/events/{event}`` (realtime-js ``httpSend``):
  the body is the payload; 202
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, WebSocket, post, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from litestar.types import ControllerRouterHandler
from msgspec import Meta

from orgbase.core.context import LiveIdentity, OrgContext
from orgbase.core.error_render import close_of
from orgbase.core.errors import Invalid, OrgbaseError
from orgbase.core.json_input import check_json_input
from orgbase.services.redis.phoenix.config import hub_name
from orgbase.services.redis.phoenix.connection import PhoenixConnection, system_message
from orgbase.services.redis.phoenix.frames import VERSIONS, VSN_1
from orgbase.services.redis.phoenix.service import PhoenixRealtime

log = structlog.get_logger("orgbase.realtime")
Phoenix = NamedDependency[PhoenixRealtime]
Ctx = NamedDependency[OrgContext]
MAX_BATCH = 100


class BroadcastMessage(msgspec.Struct, kw_only=True):
    topic: Annotated[str, Meta(min_length=1, max_length=255)]
    event: Annotated[str, Meta(min_length=1, max_length=100)]
    payload: Any = None
    private: bool = False


class BroadcastBatch(msgspec.Struct, kw_only=True):
    messages: Annotated[list[BroadcastMessage], Meta(min_length=1, max_length=MAX_BATCH)]


async def _publish(phoenix: PhoenixRealtime, ctx: OrgContext, message: BroadcastMessage) -> None:
    if message.private:
        raise Invalid("private channels are not served", code="private_channels_unsupported")
    name = hub_name(message.topic)
    await phoenix.hub.publish(ctx, name, message.event, message.payload, {"origin": "api"})


@post(
    "/realtime/v1/api/broadcast",
    tags=["realtime (Supabase)"],
    status_code=HTTP_202_ACCEPTED,
    summary="Broadcast {messages: [{topic, event, payload}]} to the org's channels (members)",
)
async def broadcast_api(data: JSONBody[BroadcastBatch], phoenix: Phoenix, active_ctx: Ctx) -> None:
    for message in data.messages:
        await _publish(phoenix, active_ctx, message)


@post(
    "/realtime/v1/api/broadcast/{topic:str}/events/{event:str}",
    tags=["realtime (Supabase)"],
    status_code=HTTP_202_ACCEPTED,
    summary="Broadcast one event, the body its payload (realtime-js httpSend)",
)
async def broadcast_event(
    topic: FromPath[str],
    event: FromPath[str],
    request: Request[Any, Any, Any],
    phoenix: Phoenix,
    active_ctx: Ctx,
) -> None:
    raw = await request.body()
    check_json_input(raw)
    try:
        payload = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        raise Invalid("the payload is not JSON", code="malformed_body") from None
    private = request.query_params.get("private") == "true"
    message = BroadcastMessage(topic=topic, event=event, payload=payload, private=private)
    await _publish(phoenix, active_ctx, message)


async def _apikey_identity(phoenix: PhoenixRealtime, socket: Any) -> LiveIdentity | None:
    """An org API key given as the connection's ``apikey`` is the socket's caller until a
    join names a user; the publishable key (or anything that is no credential) is none."""
    apikey = socket.query_params.get("apikey", "").strip()
    if not apikey or phoenix.identities.is_publishable(apikey):
        return None
    try:
        return await phoenix.identities.live_identity_of(socket, apikey)
    except OrgbaseError:
        return None


async def _serve(connection: PhoenixConnection) -> None:
    socket = connection.socket

    async def frames_in() -> None:
        while True:
            try:
                message = await socket.receive()
            except WebSocketDisconnect:
                message = {"type": "websocket.disconnect"}
            if message.get("type") == "websocket.disconnect":
                if connection.subscriber is not None:
                    connection.subscriber.close(1000, "client left")
                return
            data = message.get("text")
            await connection.handle(data if data is not None else message.get("bytes") or b"")

    async def frames_out() -> None:
        await connection.ready.wait()
        assert connection.subscriber is not None
        while True:
            await connection.send(await connection.subscriber.next_message())

    async def ended() -> None:
        await connection.ready.wait()
        assert connection.subscriber is not None
        await connection.subscriber.closed.wait()

    tasks = {asyncio.ensure_future(t) for t in (frames_in(), frames_out(), ended())}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task.cancelled() else task.exception()
            # A client gone mid-send is an OSError (uvicorn's ClientDisconnected): no fault.
            if error is not None and not isinstance(error, WebSocketDisconnect | OSError):
                log.error("realtime socket failed", error=repr(error))
    finally:
        for task in tasks:
            task.cancel()


@websocket("/realtime/v1/websocket", tags=["realtime (Supabase)"])
async def phoenix_socket(socket: WebSocket[Any, Any, Any], phoenix: Phoenix) -> None:
    """Supabase Realtime's protocol: Phoenix channels (docs/api/realtime.md)."""
    vsn = socket.query_params.get("vsn", VSN_1)
    await socket.accept()
    if vsn not in VERSIONS:
        refused = Invalid("vsn is 1.0.0 or 2.0.0", code="invalid_frame")
        await socket.close(code=close_of(refused), reason=refused.code)
        return
    connection = PhoenixConnection(phoenix, socket, vsn, await _apikey_identity(phoenix, socket))
    try:
        await _serve(connection)
    finally:
        await _end(phoenix, connection)


async def _end(phoenix: PhoenixRealtime, connection: PhoenixConnection) -> None:
    """Leave everything; a socket ended by the server (a revocation, shutdown) is told why
    on each channel before it closes."""
    subscriber = connection.subscriber
    ended = subscriber.ended if subscriber is not None else None
    with contextlib.suppress(Exception):
        if ended is not None:
            for channel in connection.channels.values():
                await connection.send(channel.frame("system", system_message(channel.name, ended)))
    with contextlib.suppress(Exception):
        await connection.close_all()
    if subscriber is not None:
        await phoenix.hub.unregister(subscriber)
        if subscriber.close_reason != "client left":
            reason = ended.code if ended is not None else subscriber.close_reason[:120]
            code = close_of(ended) if ended is not None else subscriber.close_code
            with contextlib.suppress(Exception):
                await connection.socket.close(code=code, reason=reason)


phoenix_handlers: list[ControllerRouterHandler] = [phoenix_socket, broadcast_api, broadcast_event]
