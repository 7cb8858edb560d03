"""``orgbase org export ORG`` and ``orgbase org import ARCHIVE`` (docs/operations/export.md).

Export: one consistent snapshot of PostgreSQL. The tenant connection enters the org
through a one-time transfer grant in a REPEATABLE READ transaction and exports its
snapshot; the platform connection reads the org's platform part in that same snapshot
(SET TRANSACTION SNAPSHOT). Documents and cache values are read right after (MongoDB and
Redis have no snapshot shared with PostgreSQL: a write landing during an export may be in
them and not in the rows).

Import: the archive is checked whole first; then the org is made closed (nobody enters it),
its rows, documents and cache are written, and only then is it opened. An import cut short
leaves nothing: what it wrote is removed and the closed org deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from pymongo.errors import PyMongoError

from orgbase.core.errors import Conflict, Unavailable
from orgbase.core.mongo import MongoClients
from orgbase.core.pg_errors import database_unavailable, org_not_found
from orgbase.core.postgres import CONNECTION_ERRORS
from orgbase.core.redis import RedisClients
from orgbase.core.settings import Settings
from orgbase.platform.migrations import default_directory, load_migrations
from orgbase.platform.org_archive import Archive, ArchiveWriter, archive_invalid, read_archive
from orgbase.services.mongo.org_documents import (
    drop_documents,
    dump_documents,
    restore_documents,
)
from orgbase.services.postgres.org_rows import archive_tables, dump_rows, restore_table
from orgbase.services.postgres.statements import TABLES_TO_PURGE, purge_rows
from orgbase.services.redis.org_keys import CachedKey, drop_keys, dump_keys, restore_keys

_GRANT = "SELECT id, secret FROM orgbase.org_transfer_grant($1, $2)"
_ENTER = "SELECT orgbase.enter_org_transfer($1, $2, $3, $4)"
_PURGE = "SELECT orgbase.enter_org_purge($1, $2)"
_AUDIT_PAGE = 5000


def schema_version() -> str:
    """The newest of orgbase's migrations this release ships."""
    return load_migrations(default_directory())[-1].version


@dataclass
class Stores:
    """The three stores an org lives in, opened for one command."""

    api: asyncpg.Connection
    system: asyncpg.Connection
    mongo: MongoClients
    redis: RedisClients

    @classmethod
    async def open(cls, settings: Settings) -> Stores:
        db = settings.database
        api = await asyncpg.connect(db.api_url)
        system = await asyncpg.connect(db.system_url)
        return cls(api, system, MongoClients(settings.mongo), RedisClients(settings.redis))

    async def close(self) -> None:
        await self.api.close()
        await self.system.close()
        await self.mongo.close()
        await self.redis.close()


async def _enter(stores: Stores, org: UUID, kind: str) -> None:
    """In the tenant connection's open transaction: enter ``org`` by a fresh grant."""
    grant = await stores.system.fetchrow(_GRANT, org, kind)
    assert grant is not None
    await stores.api.execute(_ENTER, grant["id"], grant["secret"], org, f"{kind}-{org}")


# -- export -------------------------------------------------------------------------------


async def export_org(settings: Settings, org: UUID, path: Path) -> dict[str, Any]:
    """Write ``org``'s archive to ``path``; its manifest. A store that cannot answer is a
    503 of its own (nothing is written)."""
    try:
        return await _export(settings, org, path)
    except PyMongoError as exc:
        raise Unavailable(
            "the document store cannot answer now", code="mongo_unavailable", dependency="mongo"
        ) from exc
    except CONNECTION_ERRORS as exc:
        raise database_unavailable() from exc


async def _export(settings: Settings, org: UUID, path: Path) -> dict[str, Any]:
    stores = await Stores.open(settings)
    try:
        writer = ArchiveWriter()
        platform = await _export_postgres(stores, org, writer)
        documents = await dump_documents(stores.mongo, org)
        for name, lines in documents.items():
            writer.add_lines(f"documents/{name}.jsonl", lines)
        cached = await dump_keys(stores.redis, org)
        writer.add_lines("cache.jsonl", [msgspec.json.encode(c) for c in cached])
    finally:
        await stores.close()
    header = {
        "schema": schema_version(),
        "org": platform["org"],
        "exported_at": datetime.now(UTC).isoformat(),
    }
    return writer.write(path, header)


async def _export_postgres(stores: Stores, org: UUID, writer: ArchiveWriter) -> dict[str, Any]:
    api, system = stores.api, stores.system
    async with api.transaction(isolation="repeatable_read"):
        live = await system.fetchval("SELECT orgbase.org_archive_platform($1) -> 'org'", org)
        if live is None or live == "null":
            raise org_not_found()
        await _enter(stores, org, "export")
        snapshot = await api.fetchval("SELECT pg_export_snapshot()")
        async with system.transaction(isolation="repeatable_read", readonly=True):
            await system.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            platform = msgspec.json.decode(
                await system.fetchval("SELECT orgbase.org_archive_platform($1)::text", org)
            )
            writer.add_json("platform.json", platform)
            writer.add_lines("audit.jsonl", await _audit_lines(system, org))
        for table in await archive_tables(api):
            writer.add_lines(f"tables/{table.name}.jsonl", await dump_rows(api, table))
    return dict(platform)


async def _audit_lines(system: asyncpg.Connection, org: UUID) -> list[str]:
    lines: list[str] = []
    after = 0
    while True:
        page = await system.fetch(
            "SELECT id, event::text FROM orgbase.org_archive_audit($1, $2, $3)",
            org,
            after,
            _AUDIT_PAGE,
        )
        lines += [r["event"] for r in page]
        if len(page) < _AUDIT_PAGE:
            return lines
        after = page[-1]["id"]


# -- import -------------------------------------------------------------------------------


async def import_org(settings: Settings, path: Path, name: str | None = None) -> dict[str, Any]:
    """Restore the archive at ``path`` as a new org (its id kept when free); a summary."""
    archive = read_archive(path, schema_version())
    stores = await Stores.open(settings)
    try:
        local = {t.name: t for t in await archive_tables(stores.api)}
        # A table the archive holds rows of must exist here; an empty one is nothing lost.
        missing = set(archive.names("tables")) - set(local)
        unknown = sorted(n for n in missing if archive.lines(f"tables/{n}.jsonl"))
        if unknown:
            raise archive_invalid(f"tables {unknown} do not exist here: migrate the app first")
        restored = msgspec.json.decode(
            await stores.system.fetchval(
                "SELECT orgbase.org_restore_platform($1::jsonb, $2)::text",
                archive.files["platform.json"].decode(),
                name,
            )
        )
        org, users = UUID(restored["org"]), restored["users"]
        try:
            counts = await _import_data(stores, archive, org, users, local)
            details = msgspec.json.encode({"from": archive.manifest["org"], **counts}).decode()
            await stores.system.execute(
                "SELECT orgbase.org_restore_open($1, $2::jsonb)", org, details
            )
        except BaseException:
            await _abandon(stores, org)
            raise
    finally:
        await stores.close()
    return {"org": str(org), **counts}


async def _import_data(
    stores: Stores, archive: Archive, org: UUID, users: dict[str, str], local: dict[str, Any]
) -> dict[str, int]:
    audit = archive.lines("audit.jsonl")
    for start in range(0, len(audit), _AUDIT_PAGE):
        page = b"[" + b",".join(audit[start : start + _AUDIT_PAGE]) + b"]"
        await stores.system.execute(
            "SELECT orgbase.org_restore_audit($1, $2::jsonb, $3::jsonb)",
            org,
            page.decode(),
            msgspec.json.encode(users).decode(),
        )
    rows = 0
    async with stores.api.transaction():
        await _enter(stores, org, "import")
        for table in local.values():
            if table.name in archive.names("tables"):
                lines = archive.lines(f"tables/{table.name}.jsonl")
                try:
                    rows += await restore_table(stores.api, table, lines, org, users)
                except asyncpg.UniqueViolationError as exc:
                    raise _clash(table.name, exc) from None
    documents = 0
    for collection in archive.names("documents"):
        lines = archive.lines(f"documents/{collection}.jsonl")
        documents += await restore_documents(stores.mongo, org, collection, lines, users)
    cached = [msgspec.json.decode(line, type=CachedKey) for line in archive.lines("cache.jsonl")]
    keys = await restore_keys(stores.redis, org, cached)
    return {"rows": rows, "documents": documents, "cache_keys": keys, "audit_events": len(audit)}


def _clash(table: str, exc: asyncpg.UniqueViolationError) -> Conflict:
    return Conflict(
        f"a row of {table} has an id (or unique value) taken here: nothing was imported",
        code="archive_id_clash",
        details={"table": table, "constraint": exc.constraint_name},
        hint="import into a deployment without the original org, or delete it first",
    )


async def _abandon(stores: Stores, org: UUID) -> None:
    """Remove what an import cut short wrote; the org is still closed."""
    async with stores.api.transaction():
        await stores.api.execute(_PURGE, org, f"abandon-{org}")
        for table in await stores.api.fetch(TABLES_TO_PURGE):
            await stores.api.execute(purge_rows(table["name"]), org)
    await drop_documents(stores.mongo, org)
    await drop_keys(stores.redis, org)
    await stores.system.execute("SELECT orgbase.org_restore_abandon($1)", org)
