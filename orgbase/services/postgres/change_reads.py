"""Which row changes a caller may see, decided by PostgreSQL (``core.row_changes``).

For one caller context and a batch of changes of one table, one statement entered with the
caller's own credential (``TenantEntry``: the session, API key or impersonation checked
again, the signed context set) answers which of them the caller may SELECT now, with the
row as the change left it (as it was before, for a deletion):

- announced rows (every change's row, unless too large for NOTIFY): the table's SELECT
  policies are evaluated by PostgreSQL on that row version, under the caller's context.
  The policies are those that apply to the tenant role, taken from the catalog as
  PostgreSQL deparses them and combined as row-level security combines them (permissive
  ones OR-ed, restrictive ones AND-ed; none: nothing), with the role's SELECT privilege.
  Evaluating the version itself keeps every change of a row that is changed and deleted
  at once (it can no longer be read), and never shows anyone a version they could not
  read (a row made visible to them later does not show what it held before);
- rows too large to announce: the table is read by primary key, so row-level security
  decides as for any read of the data API, and the row comes as it is now.

Each subscriber's filter is one more boolean column of the same statement, built by the
data API's builder (names from the schema cache, values bound and cast to the column's
type). A filter is ``column=op.value`` in PostgREST's grammar: Supabase Realtime's eq, neq,
lt, lte, gt, gte and in, and beside them like, ilike, is, match, imatch, isdistinct,
``not.`` and several conditions joined by commas (all must hold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from orgbase.core.errors import Invalid
from orgbase.core.postgres import CONTEXT_PARAMS, Database, TenantEntry
from orgbase.core.row_changes import Column, RowChange, SeenRow, TableShape
from orgbase.services.postgres.grammar import Condition, parse_field, parse_operation, split_top
from orgbase.services.postgres.schema import SCHEMA, Table, quote_ident
from orgbase.services.postgres.schema_cache import SchemaCache
from orgbase.services.postgres.sql import Builder, Params

FILTER_OPERATORS = frozenset(
    {"eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch"}
    | {"isdistinct"}
)
_TYPED = frozenset({"eq", "neq", "lt", "lte", "gt", "gte", "in", "isdistinct"})
"""The operators whose value is cast to the column's type (checked at subscription)."""
MAX_CONDITIONS = 8
TENANT_ROLE = "orgbase_api"
"""The role tenant statements run as: the policies that apply to it decide."""

# By name through the catalogs: a regclass cast would need USAGE on the schema, which the
# platform role has not.
_RELATION = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2
"""
_TYPES = """
SELECT a.attname AS name, t.typname AS type
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
# Deparsed with only pg_catalog on the search path, so every other name comes out
# schema-qualified and means the same wherever the expression is used.
_POLICIES = """
SELECT c.relrowsecurity AS secured, p.polpermissive AS permissive,
       pg_get_expr(p.polqual, p.polrelid) AS qual
FROM pg_class c
LEFT JOIN pg_policy p ON p.polrelid = c.oid AND p.polcmd IN ('r', '*')
    AND ('0'::oid = ANY (p.polroles) OR EXISTS (
        SELECT 1 FROM unnest(p.polroles) AS r(oid)
        WHERE r.oid <> 0 AND pg_has_role($2, r.oid, 'MEMBER')))
WHERE c.oid = $1
"""


@dataclass(frozen=True)
class _Catalog:
    """What the catalogs say of one table (kept per schema version)."""

    shape: TableShape
    policy: str
    """The SQL condition a row version must meet to be visible (its columns unqualified)."""


def parse_filter(text: str) -> list[Condition]:
    """``column=op.value`` (Supabase Realtime's filter), several joined by commas (all must
    hold), ``not.`` negating one; the operators of FILTER_OPERATORS."""
    conditions = []
    for part in split_top(text)[: MAX_CONDITIONS + 1]:
        column, equals, operation = part.partition("=")
        if not equals or not column:
            raise Invalid(
                "a filter is column=op.value (e.g. id=eq.1)",
                code="invalid_filter",
                details=text[:200],
            )
        condition = parse_operation(parse_field(column), operation)
        if condition.op not in FILTER_OPERATORS or condition.field.path:
            raise Invalid(
                f"filters take {', '.join(sorted(FILTER_OPERATORS))} on a column",
                code="invalid_filter",
                details=text[:200],
            )
        conditions.append(condition)
    if len(conditions) > MAX_CONDITIONS:
        raise Invalid(f"at most {MAX_CONDITIONS} conditions in a filter", code="invalid_filter")
    return conditions


def _combine(relation: int, rows: Sequence[Any]) -> str:
    """RLS's rule: the role may read the table, some permissive policy passes and every
    restrictive one does."""
    readable = f"has_table_privilege({int(relation)}::oid, 'SELECT')"
    if not rows or not rows[0]["secured"]:
        return readable
    permissive = [f"({r['qual']})" for r in rows if r["permissive"] and r["qual"] is not None]
    restrictive = [f"({r['qual']})" for r in rows if not r["permissive"] and r["qual"]]
    if not permissive:
        return "false"
    return " AND ".join([readable, f"({' OR '.join(permissive)})", *restrictive])


class ChangeReads:
    def __init__(self, db: Database, schema: SchemaCache) -> None:
        self.db = db
        self.schema = schema
        self._catalog: dict[tuple[int, str], _Catalog] = {}

    def _table(self, name: str) -> Table | None:
        return self.schema.tables.get(name)

    async def _described(self, name: str) -> _Catalog | None:
        table = self._table(name)
        if table is None:
            return None
        key = (self.schema.version, name)
        found = self._catalog.get(key)
        if found is None:
            found = await self._read_catalog(table)
            self._catalog = {k: v for k, v in self._catalog.items() if k[0] == key[0]}
            self._catalog[key] = found
        return found

    async def _read_catalog(self, table: Table) -> _Catalog:
        async with self.db.system_connection() as connection, connection.transaction():
            await connection.execute("SELECT set_config('search_path', 'pg_catalog', true)")
            relation = await connection.fetchval(_RELATION, SCHEMA, table.name)
            types = await connection.fetch(_TYPES, relation)
            policies = await connection.fetch(_POLICIES, relation, TENANT_ROLE)
        columns = tuple(Column(r["name"], r["type"]) for r in types)
        return _Catalog(TableShape(columns, table.primary_key), _combine(relation, policies))

    async def shape(self, table: str) -> TableShape | None:
        described = await self._described(table)
        return None if described is None else described.shape

    async def check_filter(self, table_name: str, filter_text: str) -> None:
        """The filter names a column of the table and its value casts to the column's type
        (checked here, so a bad value is refused at subscription, not at every change)."""
        table = self._table(table_name)
        if table is None:
            raise Invalid(f"no table {table_name!r}", code="invalid_filter")
        for condition in parse_filter(filter_text):
            Builder(self.schema.tables, Params(1)).condition(table, "t", condition)  # columns
            if condition.op in _TYPED:
                await self._check_value(table, condition)

    async def _check_value(self, table: Table, condition: Condition) -> None:
        column = table.columns[condition.field.column]
        array = "[]" if condition.op == "in" else ""
        cast = f"SELECT $1::text{array}::{column.type}{array}"
        value = list(condition.value or ()) if condition.op == "in" else condition.value
        async with self.db.system_connection() as connection:
            try:
                await connection.fetchval(cast, value)
            except asyncpg.DataError as exc:  # not a value of the column's type
                raise Invalid(
                    f"the filter's value is not a valid {column.type}",
                    code="invalid_filter",
                    details=str(exc)[:200],
                ) from None

    async def visible(
        self,
        entry: TenantEntry,
        table_name: str,
        changes: Sequence[RowChange],
        filters: Sequence[str],
    ) -> list[SeenRow]:
        described = await self._described(table_name)
        table = self._table(table_name)
        if described is None or table is None or not table.primary_key:
            return []
        conditions = [parse_filter(f) for f in filters]
        policy = described.policy
        arm = _Arms(Builder(self.schema.tables, Params(CONTEXT_PARAMS + 1)), table, conditions)
        written = [c for c in changes if c.op != "delete" and c.key]
        arms = [
            # Announced rows (inserted, updated, deleted): the policies on the row as it was.
            arm.tested(_items(changes, [c for c in written if c.new is not None], "new"), policy),
            arm.tested(_items(changes, [c for c in changes if c.op == "delete"], "old"), policy),
            # Rows too large to announce: as the caller reads them now (RLS).
            arm.current(_items(changes, [c for c in written if c.new is None], "key")),
        ]
        union = " UNION ALL ".join(a for a in arms if a)
        if not union:
            return []
        inner = f"SELECT u.i, u.row, u.matched FROM ({union}) u OFFSET 0"  # noqa: S608
        rows = await self.db.tenant_fetch(entry, inner, arm.builder.params.values)
        seen = [
            SeenRow(int(r["i"]), msgspec.json.decode(r["row"]), tuple(r["matched"])) for r in rows
        ]
        return sorted(seen, key=lambda r: r.index)  # in the order the changes were made


def _items(
    every: Sequence[RowChange], chosen: Sequence[RowChange], image: str
) -> list[dict[str, Any]]:
    """The batch's entries for one arm: its index, the key, the announced row."""
    at = {id(c): i for i, c in enumerate(every)}
    return [
        {"i": at[id(c)], "k": c.key, "r": getattr(c, image)}
        for c in chosen
        if getattr(c, image) is not None
    ]


@dataclass
class _Arms:
    """The statement's parts, each a SELECT of (i, row, matched) for one kind of change.
    Names come from the schema cache and the catalog, values are bound: nothing a client
    sent is spliced in."""

    builder: Builder
    table: Table
    filters: list[list[Condition]]

    def _matched(self, alias: str) -> str:
        """One boolean per filter: all its conditions hold (NULL counts as no)."""
        each = [
            " AND ".join(self.builder.condition(self.table, alias, c) for c in conditions)
            for conditions in self.filters
        ]
        matched = [f"coalesce({c}, false)" for c in each]
        return f"ARRAY[{', '.join(matched)}]::boolean[]" if matched else "'{}'::boolean[]"

    def _batch(self, items: list[dict[str, Any]]) -> str:
        return self.builder.params.add(msgspec.json.encode(items).decode())

    def _by_key(self) -> str:
        """The table's row (under RLS) whose primary key is the entry's."""
        return " AND ".join(
            f"t.{quote_ident(c)} = (e.value -> 'k' ->> {self.builder.params.add(c)}::text)"
            f"::{self.table.columns[c].type}"
            for c in self.table.primary_key
        )

    def current(self, items: list[dict[str, Any]]) -> str:
        """Rows not announced (too large): as the caller reads them now."""
        if not items:
            return ""
        batch, on, matched = self._batch(items), self._by_key(), self._matched("t")
        return (
            f"SELECT (e.value ->> 'i')::int AS i, to_jsonb(t)::text AS row, {matched} AS matched"  # noqa: S608
            f" FROM jsonb_array_elements({batch}::jsonb) AS e(value)"
            f" JOIN {self.table.qualified} t ON {on} WHERE ctx.role IS NOT NULL"
        )

    def tested(self, items: list[dict[str, Any]], policy: str) -> str:
        """Announced rows that pass the table's SELECT policies for this caller."""
        if not items:
            return ""
        batch, matched = self._batch(items), self._matched("n")
        return (
            f"SELECT d.i, d.row, d.matched FROM jsonb_array_elements({batch}::jsonb) AS e(value)"  # noqa: S608
            f" CROSS JOIN LATERAL (SELECT (e.value ->> 'i')::int AS i, to_jsonb(n)::text AS row,"
            f" {matched} AS matched"
            f" FROM jsonb_populate_record(NULL::{self.table.qualified}, e.value -> 'r') AS n"
            f" WHERE ({policy})) d WHERE ctx.role IS NOT NULL"
        )
