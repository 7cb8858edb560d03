"""Reading an org's audit log: through the tenant pool, so row-level security decides
(admins and owners of the org, and nothing of any other org)."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from orgbase.core import rbac
from orgbase.core.audit_reads import AuditFilter, org_page
from orgbase.core.context import OrgContext
from orgbase.core.errors import Invalid
from orgbase.core.pg_errors import entry_error
from orgbase.core.postgres import CONTEXT_PARAMS, Database, TenantEntry
from orgbase.core.replicas import ReplicaRouter, writer_of
from orgbase.tenants.schemas import AuditEntry, AuditPage

MAX_PAGE = 200


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
        inner, args = org_page(query, CONTEXT_PARAMS)
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
