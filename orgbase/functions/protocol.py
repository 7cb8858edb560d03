"""What the gateway and its worker processes say to each other: msgpack frames, each
prefixed by its length (4 bytes, big-endian), over the worker's stdin and stdout.

Gateway -> worker: ``Invoke`` (run a function), ``Cancel`` (its time is up), ``Reply``
(the answer to a host call). Worker -> gateway: ``Ready`` (the modules it loaded),
``Done`` / ``Failed`` (an invocation's end), ``Call`` (a host call: ``ctx.db``,
``ctx.http``... run by the gateway as the invocation's caller) and ``Log`` (``ctx.log``).

This module is imported by the workers: it needs msgspec and the standard library only.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Literal

import msgspec

HEADER = struct.Struct(">I")
Kind = Literal["user", "api_key", "anonymous", "event", "schedule"]


class Caller(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who the invocation runs for, as the function sees it (``ctx``)."""

    kind: Kind
    org_id: str | None = None
    user_id: str | None = None
    role: str | None = None
    aal: str = "aal1"
    key_id: str | None = None


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str
    """The path below the function's own (``/functions/v1/name/a/b`` -> ``/a/b``)."""
    query: str
    headers: list[tuple[str, str]]
    body: bytes


class Invoke(msgspec.Struct, frozen=True, kw_only=True, tag="invoke"):
    id: int
    function: str
    request: HttpRequest
    caller: Caller
    request_id: str
    secrets: dict[str, str] = {}
    event: Any = None
    """A trigger's event or a schedule's tick (None for an HTTP call)."""
    idempotency_key: str | None = None


class Cancel(msgspec.Struct, frozen=True, kw_only=True, tag="cancel"):
    id: int


class RemoteError(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str
    status: int = 500
    details: Any = None


class Reply(msgspec.Struct, frozen=True, kw_only=True, tag="reply"):
    call: int
    value: Any = None
    error: RemoteError | None = None


class Ready(msgspec.Struct, frozen=True, kw_only=True, tag="ready"):
    pid: int
    failed: dict[str, str] = {}
    """Modules that failed to import, with the reason (their invocations fail at once)."""


class Done(msgspec.Struct, frozen=True, kw_only=True, tag="done"):
    id: int
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    cpu_ms: float = 0.0


class Failed(msgspec.Struct, frozen=True, kw_only=True, tag="failed"):
    id: int
    kind: Literal["exception", "cancelled", "unavailable", "bad_response"]
    message: str
    traceback: str = ""
    cpu_ms: float = 0.0


class Call(msgspec.Struct, frozen=True, kw_only=True, tag="call"):
    id: int
    """The invocation making the call (its caller is who the gateway acts as)."""
    call: int
    op: str
    args: list[Any] = []


class Log(msgspec.Struct, frozen=True, kw_only=True, tag="log"):
    id: int
    level: str
    message: str
    fields: dict[str, Any] = {}


ToWorker = Invoke | Cancel | Reply
FromWorker = Ready | Done | Failed | Call | Log


def _as_text(value: Any) -> str:
    """A value msgpack has no type for (a PostgreSQL point, an interval...): its text."""
    return str(value)


_encoder = msgspec.msgpack.Encoder(enc_hook=_as_text)
_to_worker = msgspec.msgpack.Decoder(ToWorker)
_from_worker = msgspec.msgpack.Decoder(FromWorker)


class FrameTooLarge(Exception):
    """A frame past the agreed size: the other side is broken (or hostile)."""


def frame(message: msgspec.Struct) -> bytes:
    payload = _encoder.encode(message)
    return HEADER.pack(len(payload)) + payload


async def _read_payload(reader: asyncio.StreamReader, max_bytes: int) -> bytes | None:
    """The next frame's payload; None at the end of the stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError:
        return None
    (size,) = HEADER.unpack(header)
    if size > max_bytes:
        raise FrameTooLarge(f"a frame of {size} bytes (at most {max_bytes})")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None


async def read_from_worker(reader: asyncio.StreamReader, max_bytes: int) -> FromWorker | None:
    payload = await _read_payload(reader, max_bytes)
    return None if payload is None else _from_worker.decode(payload)


async def read_to_worker(reader: asyncio.StreamReader, max_bytes: int) -> ToWorker | None:
    payload = await _read_payload(reader, max_bytes)
    return None if payload is None else _to_worker.decode(payload)
