"""The tenant tables of the `api` schema as the data API sees them (columns, keys, foreign
keys), and how they are read from the catalogs (``schema_cache`` keeps the current ones).

Every identifier the data API puts in SQL comes from here, quoted; nothing a client
sends is ever spliced into SQL as a name it did not find here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from orgbase.core.postgres import Connection

SCHEMA = "api"
APP_SCHEMA = "public"
"""A Supabase app's tables (docs/supabase-sql.md): served when row-level security is on,
each request on them running as the caller's Supabase role."""


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
    schema: str = SCHEMA

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def app_role(self) -> bool:
        """An app table: requests on it run as the caller's Supabase role."""
        return self.schema != SCHEMA


_TABLES = """
SELECT c.oid, c.relname, n.nspname
FROM orgbase.tenant_tables tt
JOIN pg_namespace n ON n.nspname = tt.schema_name
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = tt.table_name
WHERE tt.schema_name = $1 AND c.relkind IN ('r', 'p')
UNION ALL
SELECT c.oid, c.relname, n.nspname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $2 AND c.relkind IN ('r', 'p') AND c.relrowsecurity
  AND NOT EXISTS (SELECT 1 FROM orgbase.tenant_tables tt
                  WHERE tt.schema_name = $1 AND tt.table_name = c.relname)
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
    found = await connection.fetch(_TABLES, SCHEMA, APP_SCHEMA)
    tables = {r["oid"]: r["relname"] for r in found}
    schemas = {r["oid"]: r["nspname"] for r in found}
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
            schema=schemas[oid],
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


_DESCRIBE = """
SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       tt.policy AS preset,
       (SELECT coalesce(json_agg(json_build_object(
            'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
            'nullable', NOT a.attnotnull,
            'default', pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]')
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::text AS columns,
       (SELECT coalesce(json_agg(json_build_object(
            'name', p.polname,
            'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
            'roles', (SELECT coalesce(array_agg(CASE WHEN r = 0 THEN 'public'
                ELSE pg_get_userbyid(r)::text END), '{}') FROM unnest(p.polroles) r),
            'using', pg_get_expr(p.polqual, p.polrelid),
            'check', pg_get_expr(p.polwithcheck, p.polrelid)) ORDER BY p.polname), '[]')
        FROM pg_policy p WHERE p.polrelid = c.oid)::text AS policies,
       (SELECT coalesce(json_agg(json_build_object(
            'name', i.relname, 'definition', pg_get_indexdef(x.indexrelid)) ORDER BY i.relname),
            '[]')
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = c.oid)::text AS indexes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN orgbase.tenant_tables tt ON tt.schema_name = n.nspname AND tt.table_name = c.relname
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


async def describe_tables(connection: Connection) -> list[asyncpg.Record]:
    """Every table of the schema (served or not) with its columns, policies and indexes as
    JSON text: what the studio's schema page shows."""
    rows: list[asyncpg.Record] = await connection.fetch(_DESCRIBE, SCHEMA)
    return rows
