"""Phoenix channel frames, as Supabase Realtime's clients write and read them.

- ``vsn=1.0.0`` (supabase-py): each frame is a JSON object
  ``{"join_ref", "ref", "topic", "event", "payload"}``.
- ``vsn=2.0.0`` (supabase-js 2.x): each frame is a JSON array
  ``[join_ref, ref, topic, event, payload]``; a client's broadcast may also come as a
  binary frame (kind 3, "user broadcast push": seven header bytes, then join_ref, ref,
  topic, event and metadata, then the payload, JSON or raw bytes), and the server sends a
  broadcast of raw bytes as kind 4 ("user broadcast": five header bytes, then topic, event
  and metadata, then the bytes).

Outgoing frames are bytes: UTF-8 JSON for text frames; a kind 4 frame starts with byte 4,
which no JSON text does, so the sender knows which of the two to send.
"""

from __future__ import annotations

from typing import Any

import msgspec

from orgbase.core.errors import Invalid
from orgbase.core.json_input import check_json_input

VSN_1 = "1.0.0"
VSN_2 = "2.0.0"
VERSIONS = (VSN_1, VSN_2)
USER_BROADCAST_PUSH = 3
USER_BROADCAST = 4
BINARY = 0
JSON = 1


class Frame(msgspec.Struct):
    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any


class BinaryPayload(msgspec.Struct, frozen=True):
    """A broadcast's payload sent as raw bytes (vsn 2.0.0 only)."""

    data: bytes


def _refused(message: str) -> Invalid:
    return Invalid(message, code="invalid_frame")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise _refused("join_ref and ref are strings")


def _json(raw: bytes, what: str) -> Any:
    """``raw`` parsed, within the JSON input limits; ``Invalid`` (malformed_body) if not JSON."""
    check_json_input(raw)
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise Invalid(f"{what} is not JSON", code="malformed_body") from None


def decode(data: str | bytes, vsn: str) -> Frame:
    """A client's frame; ``Invalid`` (invalid_frame, malformed_body...) when it is not one."""
    if isinstance(data, bytes):
        if vsn != VSN_2:
            raise _refused("binary frames need vsn=2.0.0")
        return _decode_binary(data)
    parsed = _json(data.encode(), "the frame")
    if vsn == VSN_2:
        if not isinstance(parsed, list) or len(parsed) != 5:
            raise _refused("a frame is [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = parsed
    else:
        if not isinstance(parsed, dict):
            raise _refused("a frame is {topic, event, payload, ref}")
        join_ref, ref = parsed.get("join_ref"), parsed.get("ref")
        topic, event, payload = parsed.get("topic"), parsed.get("event"), parsed.get("payload")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise _refused("topic and event are strings")
    return Frame(_text(join_ref), _text(ref), topic, event, payload if payload is not None else {})


def _decode_binary(data: bytes) -> Frame:
    if len(data) < 7 or data[0] != USER_BROADCAST_PUSH:
        raise _refused("the only binary frame a client sends is a broadcast (kind 3)")
    sizes = data[1:6]
    encoding = data[6]
    offset = 7
    parts: list[str] = []
    for size in sizes:
        piece = data[offset : offset + size]
        if len(piece) != size:
            raise _refused("the binary frame is cut short")
        try:
            parts.append(piece.decode())
        except UnicodeDecodeError:
            raise _refused("the binary frame's header is not UTF-8") from None
        offset += size
    join_ref, ref, topic, event, metadata = parts
    body = data[offset:]
    payload: Any
    if encoding == JSON:
        payload = _json(body, "the broadcast payload")
    elif encoding == BINARY:
        payload = BinaryPayload(body)
    else:
        raise _refused("unknown payload encoding")
    message: dict[str, Any] = {"type": "broadcast", "event": event, "payload": payload}
    if metadata:
        message["meta"] = metadata
    return Frame(join_ref or None, ref or None, topic, "broadcast", message)


def encode(frame: Frame, vsn: str) -> bytes:
    if vsn == VSN_2:
        return msgspec.json.encode(
            [frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload]
        )
    return msgspec.json.encode(
        {
            "join_ref": frame.join_ref,
            "ref": frame.ref,
            "topic": frame.topic,
            "event": frame.event,
            "payload": frame.payload,
        }
    )


def encode_binary_broadcast(topic: str, event: str, data: bytes) -> bytes:
    """A broadcast of raw bytes, for a vsn 2.0.0 client (kind 4)."""
    topic_bytes, event_bytes = topic.encode()[:255], event.encode()[:255]
    header = bytes([USER_BROADCAST, len(topic_bytes), len(event_bytes), 0, BINARY])
    return header + topic_bytes + event_bytes + data


def is_binary(frame: bytes) -> bool:
    return frame[:1] == bytes([USER_BROADCAST])


def reply(frame: Frame, status: str, response: Any) -> Frame:
    """The server's answer to a client's push (``phx_reply``)."""
    answer = {"status": status, "response": response}
    return Frame(frame.join_ref, frame.ref, frame.topic, "phx_reply", answer)
