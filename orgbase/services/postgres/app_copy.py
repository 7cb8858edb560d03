"""A Supabase app's rows into orgbase (``orgbase import supabase``, the rows part).

The app's schema comes by its own migrations (``orgbase migrate`` applies them unchanged,
docs/supabase-sql.md); this copies the rows of every table of the source's ``public``
that exists here, parents first, ids kept, a row whose key is there already left as it is
(a second run adds nothing). A table here with org isolation (``org_id``) takes the org the
import names. Written as the migration owner, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
import msgspec

from orgbase.services.postgres.org_rows import ArchiveTable, archive_tables, dump_rows
from orgbase.services.postgres.statements import APP_TABLES, restore_rows

_BATCH = 1000
_ORG = '"org_id"'  # as the catalogs' column lists quote it


@dataclass
class AppRows:
    tables: list[tuple[ArchiveTable, list[str], list[str]]] = field(default_factory=list)
    """Each table here, the columns both sides have, and the source's rows."""
    refused: list[dict[str, str]] = field(default_factory=list)


async def read_app_rows(
    source: asyncpg.Connection, target: asyncpg.Connection, org: UUID | None
) -> AppRows:
    found = AppRows()
    theirs = {t.name: t for t in await archive_tables(source, APP_TABLES)}
    for table in await archive_tables(target, APP_TABLES):
        source_table = theirs.pop(table.name, None)
        if source_table is None:
            continue
        columns = [c for c in table.columns if c in source_table.columns]
        if _ORG not in source_table.columns and _ORG in table.columns:
            if org is None:
                found.refused.append(
                    {"kind": "table", "id": table.name, "reason": "an org table: name --org"}
                )
                continue
            columns.append(_ORG)
        found.tables.append((table, columns, await dump_rows(source, source_table)))
    for name in sorted(theirs):
        found.refused.append(
            {"kind": "table", "id": name, "reason": "not here: apply the app's migrations first"}
        )
    return found


async def write_app_rows(
    target: asyncpg.Connection, rows: AppRows, org: UUID | None
) -> dict[str, int]:
    """In the caller's transaction; the new rows of each table."""
    counts: dict[str, int] = {}
    for table, columns, lines in rows.tables:
        statement = restore_rows(table.name, columns, skip_existing=True)
        added = 0
        for start in range(0, len(lines), _BATCH):
            batch = [msgspec.json.decode(line) for line in lines[start : start + _BATCH]]
            if _ORG in columns and org is not None:
                for row in batch:
                    row["org_id"] = str(org)
            status = await target.execute(statement, msgspec.json.encode(batch).decode())
            added += int(status.split()[-1])
        counts[table.name] = added
    return counts
