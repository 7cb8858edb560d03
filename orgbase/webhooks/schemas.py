"""The webhooks API's bodies and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

EventPattern = Annotated[
    str,
    Meta(
        pattern=r"^(\*|[a-z][a-z_]*(\.[A-Za-z0-9_*]+){0,2}|[a-z][a-z_]*\.\*)$",
        max_length=120,
        description="An event name (db.items.insert, member.added...) or a pattern with *",
    ),
]
Events = Annotated[list[EventPattern], Meta(min_length=1, max_length=50)]
Url = Annotated[str, Meta(min_length=1, max_length=2000)]
Description = Annotated[str, Meta(max_length=500)]


class EndpointCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Url
    events: Events
    description: Description | None = None


class EndpointUpdate(msgspec.Struct, forbid_unknown_fields=True):
    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: Events | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class Endpoint(msgspec.Struct):
    id: UUID
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    owner_user_id: Annotated[
        UUID | None, Meta(description="The admin whose authority it sends with")
    ]
    owner_key_id: Annotated[
        UUID | None,
        Meta(description="Or the API key that registered it (before keys no longer could)"),
    ]
    created_at: datetime
    updated_at: datetime


class EndpointCreated(Endpoint):
    secret: Annotated[str, Meta(description="Shown once: verify signatures with it")]


class SecretRotated(msgspec.Struct):
    secret: str
    previous_valid_until: datetime


DeliveryStatus = Literal["pending", "delivered", "failed"]


class Delivery(msgspec.Struct):
    id: int
    message_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_latency_ms: int | None
    last_response: str | None
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveryPage(msgspec.Struct):
    items: list[Delivery]
    next_cursor: int | None


class Replay(msgspec.Struct, forbid_unknown_fields=True):
    since: datetime


class Requeued(msgspec.Struct):
    requeued: int


class TestQueued(msgspec.Struct):
    message_id: str
