"""A Phoenix socket as the hub sees it: a subscriber whose hub messages become Phoenix frames.

The hub hands every subscriber of a channel the same encoded message; the ``Translator``
(one per process) decodes it once and encodes each frame once per protocol version and
topic, so a broadcast to a thousand sockets costs one decode and one or two encodes.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgspec

from orgbase.services.redis.phoenix.config import Binding, Config
from orgbase.services.redis.phoenix.frames import (
    VSN_2,
    Frame,
    encode,
    encode_binary_broadcast,
)
from orgbase.services.redis.subscriber import Subscriber


@dataclass(eq=False)
class JoinedChannel:
    """One topic a socket joined."""

    subscriber: PhoenixSubscriber
    topic: str
    name: str
    """The hub channel (``realtime:room1`` -> ``room1``)."""
    join_ref: str | None
    config: Config
    bindings: list[Binding] = field(default_factory=list)
    presence_key: str = ""
    presence_ref: str | None = None
    """The presence this socket tracks on the channel, if any."""

    def frame(self, event: str, payload: Any, ref: str | None = None) -> bytes:
        return encode(Frame(self.join_ref, ref, self.topic, event, payload), self.subscriber.vsn)


class Translator:
    """Hub messages to frames, each decoded and encoded once for all sockets."""

    def __init__(self) -> None:
        self._raw: bytes | None = None
        self._decoded: dict[str, Any] = {}
        self._frames: dict[tuple[str, str, str], bytes | None] = {}

    def decoded(self, message: bytes) -> dict[str, Any]:
        if message is not self._raw:
            self._raw = message
            try:
                decoded = msgspec.json.decode(message)
            except msgspec.DecodeError:
                decoded = {}
            self._decoded = decoded if isinstance(decoded, dict) else {}
            self._frames = {}
        return self._decoded

    def frame(self, message: bytes, channel: JoinedChannel) -> bytes | None:
        decoded = self.decoded(message)
        vsn = channel.subscriber.vsn
        key = (decoded.get("type", ""), vsn, channel.topic)
        if key not in self._frames:
            self._frames[key] = self._encode(decoded, vsn, channel.topic)
        return self._frames[key]

    @staticmethod
    def _encode(decoded: dict[str, Any], vsn: str, topic: str) -> bytes | None:
        kind = decoded.get("type")
        if kind == "presence":
            diff = {"joins": decoded.get("joins", {}), "leaves": decoded.get("leaves", {})}
            return encode(Frame(None, None, topic, "presence_diff", diff), vsn)
        if kind != "message":
            return None
        event, payload = str(decoded.get("event", "")), decoded.get("payload")
        if decoded.get("encoding") == "binary":
            if vsn != VSN_2 or not isinstance(payload, str):
                return None  # raw bytes reach only clients that read binary frames
            return encode_binary_broadcast(topic, event, base64.b64decode(payload))
        body = {"type": "broadcast", "event": event, "payload": payload}
        return encode(Frame(None, None, topic, "broadcast", body), vsn)


@dataclass(eq=False)
class PhoenixSubscriber(Subscriber):
    vsn: str = VSN_2
    translator: Translator = field(default_factory=Translator)
    socket_id: str = field(default_factory=lambda: secrets.token_hex(8))
    """Names this socket in its broadcasts (a sender skips its own unless ``self``)."""
    joined: dict[str, JoinedChannel] = field(default_factory=dict)
    """By hub channel name."""

    def deliver(self, message: bytes) -> None:
        decoded = self.translator.decoded(message)
        channel = self.joined.get(str(decoded.get("channel", "")))
        if channel is None:
            return
        kind = decoded.get("type")
        if kind == "presence" and not channel.config.presence.enabled:
            return
        own = decoded.get("origin") == self.socket_id
        if kind == "message" and own and not channel.config.broadcast.include_self:
            return
        frame = self.translator.frame(message, channel)
        if frame is not None:
            self.enqueue(frame)
