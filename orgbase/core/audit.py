"""Writing audit events (append-only table orgbase.audit_events)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import msgspec

ActorKind = Literal["user", "api_key", "system", "anonymous"]


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    action: str
    org_id: UUID | None = None
    actor_user_id: UUID | None = None
    actor_kind: ActorKind = "user"
    actor_key_id: UUID | None = None
    target_table: str | None = None
    row_key: dict[str, Any] | None = None
    details: dict[str, Any] | None = None
    request_id: str | None = None
    ip: str | None = None


_INSERT = """
INSERT INTO orgbase.audit_events
    (action, org_id, actor_user_id, actor_kind, actor_key_id, target_table, row_key,
     details, request_id, ip)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10::inet)
"""


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


async def record(connection: Any, event: AuditEvent) -> None:
    """Insert one event with ``connection`` (a system-pool connection, often in the
    transaction of the change it describes, so both land or neither does)."""
    await connection.execute(
        _INSERT,
        event.action,
        event.org_id,
        event.actor_user_id,
        event.actor_kind,
        event.actor_key_id,
        event.target_table,
        _json(event.row_key),
        _json(event.details),
        event.request_id,
        event.ip,
    )
