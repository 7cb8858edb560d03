"""Reading an org's audit log: through the tenant pool, so row-level security decides
(admins and owners of the org, and nothing of any other org)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from orgbase.core import rbac
from orgbase.core.context import OrgContext
from orgbase.core.errors import Invalid
from orgbase.core.pg_errors import entry_error
from orgbase.core.postgres import CONTEXT_PARAMS, Database, TenantEntry
from orgbase.core.replicas import ReplicaRouter, writer_of
from orgbase.tenants.schemas import AuditEntry, AuditPage

MAX_PAGE = 200


class AuditFilter(msgspec.Struct, frozen=True):
    """The audit log's query (the fields in the order of the route's query parameters)."""

    action: str | None = None
    """An exact action, or a prefix ending in '*' (``member.*``)."""
    actor: UUID | None = None
    table: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    """Cursor: entries with a smaller id (the previous page's next_cursor)."""
    limit: int = 50


def _decode(value: Any) -> Any:
    return msgspec.json.decode(value) if isinstance(value, str) else value


class AuditLogService:
    def __init__(self, db: Database, replicas: ReplicaRouter | None = None) -> None:
        self.db = db
        self.replicas = replicas if replicas is not None and replicas.enabled else None

    async def page(self, ctx: OrgContext, query: AuditFilter) -> AuditPage:
        rbac.require(ctx, "admin", "reading the audit log")
        if not 1 <= query.limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}", code="invalid_limit")
        conditions = ["ctx.role IS NOT NULL", "org_id = (SELECT orgbase.current_org_id())"]
        args: list[Any] = []

        def param(value: Any) -> str:
            args.append(value)
            return f"${CONTEXT_PARAMS + len(args)}"

        if query.action:
            if query.action.endswith("*"):
                prefix = (
                    query.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                )
                conditions.append(f"action LIKE {param(prefix + '%')}")
            else:
                conditions.append(f"action = {param(query.action)}")
        if query.actor:
            conditions.append(f"actor_user_id = {param(query.actor)}")
        if query.table:
            conditions.append(f"target_table = {param(query.table)}")
        if query.since:
            conditions.append(f"occurred_at >= {param(query.since)}")
        if query.until:
            conditions.append(f"occurred_at < {param(query.until)}")
        if query.before:
            conditions.append(f"id < {param(query.before)}")
        # Conditions are fixed fragments with placeholders; every value is a parameter.
        inner = (
            "SELECT id, org_id, occurred_at, action, actor_user_id, actor_kind, actor_key_id,"  # noqa: S608
            " target_table, row_key, old_values, new_values, details, request_id, host(ip) AS ip"
            f" FROM orgbase.audit_events WHERE {' AND '.join(conditions)}"
            f" ORDER BY id DESC LIMIT {param(query.limit + 1)}"
        )
        entry = TenantEntry.for_context(ctx)
        if self.replicas is None:
            rows = await self.db.tenant_fetch(entry, inner, args)
        else:  # a replica that has this writer's own writes (and their audit records)
            try:
                rows = await self.replicas.read(
                    writer_of(entry.args),
                    lambda: self.db.tenant_fetch(entry, inner, args),
                    lambda pool: self.db.replica_fetch(pool, entry, inner, args),
                )
            except asyncpg.PostgresError as exc:
                raise entry_error(exc) or exc from exc
        items = [
            AuditEntry(
                **{
                    key: _decode(row[key]) if key in _JSON_COLUMNS else row[key]
                    for key in AuditEntry.__struct_fields__
                }
            )
            for row in rows[: query.limit]
        ]
        next_cursor = items[-1].id if len(rows) > query.limit else None
        return AuditPage(items=items, next_cursor=next_cursor)


_JSON_COLUMNS = {"row_key", "old_values", "new_values", "details"}
