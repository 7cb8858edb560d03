"""The schema cache: the tenant tables of the `api` schema, their columns, keys and
foreign keys, read from the catalogs at start and again on ``NOTIFY orgbase_schema``.

Every identifier the data API puts in SQL comes from here, quoted; nothing a client
sends is ever spliced into SQL as a name it did not find here.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from orgbase.core.postgres import Connection, Database

if TYPE_CHECKING:
    from orgbase.services.postgres.functions import Function

log = structlog.get_logger("orgbase.schema")

SCHEMA = "api"
CHANNEL = "orgbase_schema"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """As format_type() writes it: ``bigint``, ``timestamp with time zone``..."""
    category: str
    """pg_type.typcategory: N numeric, S string, B boolean, D date/time, U user (json)..."""
    nullable: bool
    has_default: bool
    identity: str
    """'' or 'a' (GENERATED ALWAYS) or 'd' (BY DEFAULT)."""
    generated: bool
    is_array: bool
    is_json: bool


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class Table:
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    unique_keys: list[tuple[str, ...]]
    outgoing: list[ForeignKey] = field(default_factory=list)
    incoming: list[ForeignKey] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        return f"{quote_ident(SCHEMA)}.{quote_ident(self.name)}"


_TABLES = """
SELECT c.oid, c.relname
FROM orgbase.tenant_tables tt
JOIN pg_namespace n ON n.nspname = tt.schema_name
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = tt.table_name
WHERE tt.schema_name = $1 AND c.relkind IN ('r', 'p')
"""
_COLUMNS = """
SELECT a.attrelid AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       t.typcategory AS category, NOT a.attnotnull AS nullable, a.atthasdef AS has_default,
       a.attidentity::text AS identity, a.attgenerated <> '' AS generated,
       t.typcategory = 'A' AS is_array,
       a.atttypid IN ('json'::regtype, 'jsonb'::regtype) AS is_json
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
_KEYS = """
SELECT i.indrelid AS oid, i.indisprimary AS primary,
       array_agg(a.attname ORDER BY k.ord) AS columns
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = ANY($1::oid[]) AND i.indisunique AND i.indpred IS NULL
GROUP BY i.indexrelid, i.indrelid, i.indisprimary
"""
_FOREIGN_KEYS = """
SELECT con.conname AS name, con.conrelid AS oid, con.confrelid AS ref_oid,
       (SELECT array_agg(a.attname ORDER BY k.ord)
        FROM unnest(con.conkey) WITH ORDINALITY k(n, ord)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) AS columns,
       (SELECT array_agg(a.attname ORDER BY k.ord)
        FROM unnest(con.confkey) WITH ORDINALITY k(n, ord)
        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) AS ref_columns
FROM pg_constraint con
WHERE con.contype = 'f' AND con.conrelid = ANY($1::oid[]) AND con.confrelid = ANY($1::oid[])
"""


async def introspect(connection: Connection) -> dict[str, Table]:
    tables = {r["oid"]: r["relname"] for r in await connection.fetch(_TABLES, SCHEMA)}
    oids = list(tables)
    columns: dict[int, dict[str, Column]] = {oid: {} for oid in oids}
    for r in await connection.fetch(_COLUMNS, oids):
        columns[r["oid"]][r["name"]] = Column(
            name=r["name"],
            type=r["type"],
            category=r["category"],
            nullable=r["nullable"],
            has_default=r["has_default"],
            identity=r["identity"],
            generated=r["generated"],
            is_array=r["is_array"],
            is_json=r["is_json"],
        )
    primary: dict[int, tuple[str, ...]] = {}
    unique: dict[int, list[tuple[str, ...]]] = {oid: [] for oid in oids}
    for r in await connection.fetch(_KEYS, oids):
        key = tuple(r["columns"])
        unique[r["oid"]].append(key)
        if r["primary"]:
            primary[r["oid"]] = key
    result = {
        name: Table(
            name=name,
            columns=columns[oid],
            primary_key=primary.get(oid, ()),
            unique_keys=unique[oid],
        )
        for oid, name in tables.items()
    }
    for r in await connection.fetch(_FOREIGN_KEYS, oids):
        fk = ForeignKey(
            name=r["name"],
            table=tables[r["oid"]],
            columns=tuple(r["columns"]),
            ref_table=tables[r["ref_oid"]],
            ref_columns=tuple(r["ref_columns"]),
        )
        result[fk.table].outgoing.append(fk)
        result[fk.ref_table].incoming.append(fk)
    return result


class SchemaCache:
    """The current schema, reloaded when told to (``reload_soon``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.tables: dict[str, Table] = {}
        self.functions: dict[str, list[Function]] = {}
        self.version = 0
        # One load at a time, so a later load never loses to an earlier one.
        self._loading = asyncio.Lock()
        self._reloader: asyncio.Task[None] | None = None
        self._reload_wanted = False
        self._stopped = False

    async def load(self) -> None:
        # functions.py builds on this module's types: imported when first needed.
        from orgbase.services.postgres.functions import introspect_functions

        async with self._loading:
            async with self.db.system_connection() as connection:
                tables = await introspect(connection)
                functions = await introspect_functions(connection)
            self.tables = tables
            self.functions = functions
            self.version += 1
        log.info(
            "schema loaded",
            tables=sorted(tables),
            functions=sorted(functions),
            version=self.version,
        )

    def reload_soon(self) -> None:
        """Reload in the background (a NOTIFY, or a reconnection of the listener after
        which notifications may have been missed). Requests arriving during a reload make
        one more reload, not one each."""
        if self._stopped:
            return
        self._reload_wanted = True
        if self._reloader is None or self._reloader.done():
            self._reloader = asyncio.get_running_loop().create_task(self._reload_while_wanted())

    async def stop(self) -> None:
        self._stopped = True
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader

    async def _reload_while_wanted(self) -> None:
        while self._reload_wanted:
            self._reload_wanted = False
            await self._reload_quietly()

    async def _reload_quietly(self) -> None:
        try:
            await self.load()
        except Exception as exc:  # the old schema stays until the next try
            log.warning("schema reload failed", error=repr(exc))
