"""Versioned org settings: a JSON document with a version, every version kept, optimistic
concurrency with If-Match, rollback as a new version equal to an old one. Their size is
limited as stored (jsonb), not as sent."""

from __future__ import annotations

from typing import Any

import msgspec

from orgbase.core import audit, rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, RequestMeta
from orgbase.core.errors import NotFound, PreconditionFailed, TooLarge
from orgbase.core.postgres import Connection, Database
from orgbase.core.stored_json import stored_length
from orgbase.tenants.schemas import SettingsDocument

_TABLE = "orgbase.org_settings"
_DOC = (
    "SELECT version, settings, updated_at, updated_by FROM orgbase.org_settings WHERE org_id = $1"
)
_HISTORY = """
SELECT version, settings, updated_at, updated_by FROM orgbase.org_settings_history
WHERE org_id = $1 ORDER BY version DESC LIMIT $2
"""
_OLD = "SELECT settings::text FROM orgbase.org_settings_history WHERE org_id = $1 AND version = $2"
_VERSION = "SELECT version FROM orgbase.org_settings WHERE org_id = $1"

_WRITE = """
WITH doc AS (
    UPDATE orgbase.org_settings
    SET version = version + 1, settings = $3::jsonb, updated_at = now(), updated_by = $4
    WHERE org_id = $1 AND version = $2
    RETURNING org_id, version, settings, updated_at, updated_by),
kept AS (
    INSERT INTO orgbase.org_settings_history
    SELECT org_id, version, settings, updated_at, updated_by FROM doc)
SELECT version, settings, updated_at, updated_by FROM doc
"""


def _document(row: Any) -> SettingsDocument:
    settings = row["settings"]
    if isinstance(settings, str):
        settings = msgspec.json.decode(settings)
    return SettingsDocument(
        version=row["version"],
        settings=settings,
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


class OrgSettingsService:
    def __init__(self, db: Database, max_bytes: int) -> None:
        self.db = db
        self.max_bytes = max_bytes

    async def get(self, ctx: OrgContext) -> SettingsDocument:
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(_DOC, ctx.org_id)
        if row is None:
            raise NotFound("no settings for this org", code="settings_not_found")
        return _document(row)

    async def versions(self, ctx: OrgContext, limit: int = 100) -> list[SettingsDocument]:
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_HISTORY, ctx.org_id, limit)
        return [_document(r) for r in rows]

    async def put(
        self, ctx: OrgContext, settings: dict[str, Any], if_match: int, meta: RequestMeta
    ) -> SettingsDocument:
        rbac.require(ctx, "admin", "changing settings")
        text = msgspec.json.encode(settings).decode()
        # The limit is on what is stored (jsonb writes 1e308 out in 309 digits); a text
        # over it is over it stored too (core.stored_json), so most refusals cost no query.
        if len(text.encode()) > self.max_bytes:
            raise self._too_large()
        async with self.db.system_connection() as connection, connection.transaction():
            if await stored_length(connection, text, octets=True) > self.max_bytes:
                raise self._too_large()
            event = _event(ctx, meta, "settings.updated", from_version=if_match)
            return await _write(connection, ctx, text, if_match, event)

    def _too_large(self) -> TooLarge:
        return TooLarge(
            f"settings are limited to {self.max_bytes} bytes as stored",
            code="settings_too_large",
        )

    async def rollback(
        self, ctx: OrgContext, version: int, if_match: int | None, meta: RequestMeta
    ) -> SettingsDocument:
        rbac.require(ctx, "admin", "rolling settings back")
        async with self.db.system_connection() as connection, connection.transaction():
            old = await connection.fetchval(_OLD, ctx.org_id, version)
            if old is None:
                raise NotFound(f"there is no version {version}", code="version_not_found")
            current = await connection.fetchval(_VERSION + " FOR UPDATE", ctx.org_id)
            expected = current if if_match is None else if_match
            event = _event(ctx, meta, "settings.rolled_back", to_version=version)
            return await _write(connection, ctx, old, expected, event)


def _event(ctx: OrgContext, meta: RequestMeta, action: str, **details: int) -> AuditEvent:
    """A change of the settings, as the audit log tells it (``_write`` adds the version)."""
    return AuditEvent.in_org(ctx, meta, action, target_table=_TABLE, details=details)


async def _write(
    connection: Connection, ctx: OrgContext, settings_json: str, expected: int, event: AuditEvent
) -> SettingsDocument:
    """The next version, if the settings are still at ``expected``; ``event`` is recorded
    with the version made, in the write's transaction (both or neither)."""
    row = await connection.fetchrow(_WRITE, ctx.org_id, expected, settings_json, ctx.user_id)
    if row is None:
        current = await connection.fetchval(_VERSION, ctx.org_id)
        raise PreconditionFailed(
            f"the settings are at version {current}, not {expected}",
            code="version_conflict",
            details={"current_version": current},
            hint="GET the settings, merge, and PUT with If-Match: <current version>",
        )
    document = _document(row)
    details = {**(event.details or {}), "version": document.version}
    await audit.record(connection, msgspec.structs.replace(event, details=details))
    return document
