"""A channel's join: what the client asks for (``phx_join``'s payload) and the bindings the
server grants.

``{"config": {"broadcast": {"self", "ack"}, "presence": {"key", "enabled"},
"postgres_changes": [{"event", "schema", "table", "filter"}], "private"},
"access_token": "..."}``; fields a client version adds and orgbase does not serve are
ignored, as Supabase Realtime ignores them.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import msgspec

from orgbase.core.errors import Invalid

CHANGE_EVENTS = ("*", "INSERT", "UPDATE", "DELETE")
SCHEMAS = ("public", "api")
"""Clients address the data API's tables as schema ``public`` (as /rest/v1 does)."""
TOPIC_PREFIX = "realtime:"
_ids = itertools.count(1)


class Broadcast(msgspec.Struct, kw_only=True):
    include_self: bool = msgspec.field(default=False, name="self")
    """The sender receives its own broadcasts too."""
    ack: bool = False
    """The server replies to each broadcast once it is sent."""


class Presence(msgspec.Struct, kw_only=True):
    key: str = ""
    enabled: bool = False


class ChangeRequest(msgspec.Struct, kw_only=True):
    """As the client sent it; the reply repeats it (the clients match the ids they get by
    these fields, null included: supabase-py sends ``schema: null`` for public)."""

    event: str = "*"
    schema: str | None = None
    table: str | None = None
    filter: str | None = None


class Config(msgspec.Struct, kw_only=True):
    broadcast: Broadcast = msgspec.field(default_factory=Broadcast)
    presence: Presence = msgspec.field(default_factory=Presence)
    postgres_changes: list[ChangeRequest] = msgspec.field(default_factory=list)
    private: bool = False


class JoinPayload(msgspec.Struct, kw_only=True):
    config: Config = msgspec.field(default_factory=Config)
    access_token: str | None = None


def join_payload(payload: Any) -> JoinPayload:
    # A client may send null for what it leaves at its default.
    if isinstance(payload, dict) and isinstance(payload.get("config"), dict):
        config = {k: v for k, v in payload["config"].items() if v is not None}
        payload = {**payload, "config": config}
    try:
        return msgspec.convert(payload, JoinPayload, strict=False)
    except msgspec.ValidationError as exc:
        raise Invalid(f"the join's config: {exc}", code="invalid_join") from None


def hub_name(topic: str) -> str:
    """The hub channel a topic is (``realtime:room1`` is channel ``room1`` of the org)."""
    return topic[len(TOPIC_PREFIX) :] if topic.startswith(TOPIC_PREFIX) else topic


class Binding(msgspec.Struct, kw_only=True):
    """A postgres_changes subscription granted to a channel."""

    id: int
    event: Literal["*", "INSERT", "UPDATE", "DELETE"]
    table: str | None
    """None: every table of the schema."""
    filter: str | None
    asked: ChangeRequest

    @property
    def schema(self) -> str:
        return self.asked.schema or "public"

    def wants(self, op: str, table: str) -> bool:
        return (self.table is None or self.table == table) and self.event in ("*", op.upper())

    def granted(self) -> dict[str, Any]:
        """The reply's entry for it: the request as it came, and its id."""
        granted: dict[str, Any] = {"id": self.id, "event": self.event, "schema": self.asked.schema}
        if self.asked.table is not None:
            granted["table"] = self.asked.table
        if self.asked.filter is not None:
            granted["filter"] = self.asked.filter
        return granted


def binding(request: ChangeRequest) -> Binding:
    """Checks the shape of a request (the table and filter are the data API's to check)."""
    if request.event not in CHANGE_EVENTS:
        raise Invalid(
            f"postgres_changes' event is one of {', '.join(CHANGE_EVENTS)}", code="invalid_join"
        )
    if (request.schema or "public") not in SCHEMAS:
        raise Invalid(
            "postgres_changes are served for schema public (the data API's tables)",
            code="invalid_join",
        )
    table = None if request.table in (None, "*") else request.table
    return Binding(
        id=next(_ids),
        event=request.event,  # type: ignore[arg-type]
        table=table,
        filter=request.filter or None,
        asked=request,
    )
