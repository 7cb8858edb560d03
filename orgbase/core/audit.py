"""Writing audit events (append-only table orgbase.audit_events)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict, Unpack
from uuid import UUID

import msgspec

from orgbase.core.context import OrgContext, RequestMeta

ActorKind = Literal["user", "api_key", "system", "anonymous"]


class EventFields(TypedDict, total=False):
    """What an event may say about its target."""

    target_table: str
    row_key: dict[str, Any]
    details: dict[str, Any]


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

    @classmethod
    def in_org(
        cls, ctx: OrgContext, meta: RequestMeta, action: str, **fields: Unpack[EventFields]
    ) -> AuditEvent:
        """An action in an org by the context's caller (a user or an API key)."""
        event = cls.by_user(ctx.user_id, meta, action, org_id=ctx.org_id, **fields)
        if ctx.user_id is not None:
            return event
        return msgspec.structs.replace(event, actor_kind="api_key", actor_key_id=ctx.key_id)

    @classmethod
    def by_user(
        cls,
        user_id: UUID | None,
        meta: RequestMeta,
        action: str,
        *,
        org_id: UUID | None = None,
        **fields: Unpack[EventFields],
    ) -> AuditEvent:
        """An action of a user (anonymous when the account is not known)."""
        return cls(
            action=action,
            org_id=org_id,
            actor_user_id=user_id,
            actor_kind="user" if user_id else "anonymous",
            request_id=meta.request_id,
            ip=meta.ip,
            **fields,
        )

    @classmethod
    def by_system(
        cls, action: str, *, org_id: UUID | None = None, details: dict[str, Any] | None = None
    ) -> AuditEvent:
        """An action of orgbase itself (a resumed deletion), with no request behind it."""
        return cls(action=action, org_id=org_id, actor_kind="system", details=details)


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
