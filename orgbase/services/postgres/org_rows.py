"""An org's rows of every tenant table, out of and back into PostgreSQL (the data part of
``orgbase org export`` / ``import``, docs/operations/export.md).

Both run on a tenant connection whose transaction entered the org through a transfer
grant (``orgbase.enter_org_transfer``): row-level security picks the org's rows on the way
out, and checks every row on the way in. Rows are JSON objects as PostgreSQL writes them
(``to_jsonb``) and are read back by ``jsonb_populate_recordset``, so every type keeps its
value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec

from orgbase.core.postgres import AnyConnection
from orgbase.services.postgres.statements import (
    ARCHIVE_TABLES,
    archive_rows,
    largest,
    restore_rows,
)

_ADVANCE = "SELECT orgbase.advance_sequence($1::regclass, $2, $3)"
_SEQUENCE_COLUMNS = "SELECT orgbase.sequence_columns($1::regclass)"
_BATCH = 1000


@dataclass(frozen=True)
class ArchiveTable:
    name: str
    """Quoted and qualified: the archive's name for it."""
    oid: int
    columns: list[str]
    parents: list[int]


async def archive_tables(
    connection: AnyConnection, query: str = ARCHIVE_TABLES
) -> list[ArchiveTable]:
    """The tenant tables (or ``query``'s, e.g. APP_TABLES), parents before children (their
    foreign keys' order)."""
    found = [
        ArchiveTable(r["name"], r["oid"], list(r["columns"]), list(r["parents"]))
        for r in await connection.fetch(query)
    ]
    ordered: list[ArchiveTable] = []
    placed: set[int] = set()
    known = {t.oid for t in found}
    while len(ordered) < len(found):
        ready = [
            t
            for t in found
            if t.oid not in placed and all(p in placed or p not in known for p in t.parents)
        ]
        if not ready:  # a cycle of foreign keys: the rest in name order
            ready = [t for t in found if t.oid not in placed]
        for table in ready:
            ordered.append(table)
            placed.add(table.oid)
    return ordered


async def dump_rows(connection: AnyConnection, table: ArchiveTable) -> list[str]:
    """The org's rows of ``table``, one JSON text each."""
    return [r[0] for r in await connection.fetch(archive_rows(table.name))]


def _moved(row: dict[str, Any], org: UUID, users: Mapping[str, str]) -> dict[str, Any]:
    row["org_id"] = str(org)
    creator = row.get("created_by")
    if creator is not None:
        row["created_by"] = users.get(creator)
    return row


async def restore_table(
    connection: AnyConnection,
    table: ArchiveTable,
    lines: list[bytes],
    org: UUID,
    users: Mapping[str, str],
) -> int:
    """Write ``lines`` (the archive's rows of ``table``) into ``org``: ``org_id`` is the new
    org's, ``created_by`` the user's new id (by email; none when not a member any more)."""
    statement = restore_rows(table.name, table.columns)
    for start in range(0, len(lines), _BATCH):
        rows = [
            _moved(msgspec.json.decode(line), org, users) for line in lines[start : start + _BATCH]
        ]
        await connection.execute(statement, msgspec.json.encode(rows).decode())
    for record in await connection.fetch(_SEQUENCE_COLUMNS, table.name):
        column = record[0]
        top = await connection.fetchval(largest(table.name, column))
        if top is not None:
            await connection.execute(_ADVANCE, table.name, column, int(top))
    return len(lines)
