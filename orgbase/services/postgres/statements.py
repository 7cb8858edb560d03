"""The data API's whole statements, built from the expressions of ``sql.Builder``: reads,
totals, inserts, updates, deletes, function calls and the purge of an org's rows. With
sql.py this is the only place in the data API that writes SQL text (the catalogs' own
queries live with their readers: schema.py, functions.py, lint.py).

Inputs are already checked by the plan (plan.py, rpc.py): names come from the schema
cache, quoted; values go through ``builder.params`` as bound parameters. The shapes are
the ones docs/architecture.md measures: a read is one statement behind the context CTE
(``ctx``, which the executor puts in front), with ``ctx.role IS NOT NULL`` inside a
LIMITed subquery; a write is a plain statement in a transaction whose first statement
entered the org.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from orgbase.services.postgres.functions import Function
from orgbase.services.postgres.grammar import Query
from orgbase.services.postgres.schema import Table, quote_ident
from orgbase.services.postgres.sql import Builder

Resolution = Literal["merge-duplicates", "ignore-duplicates"]

CHANGED_ROWS = """
SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
FROM pg_catalog.pg_stat_xact_user_tables WHERE schemaname <> 'orgbase'
"""
"""Rows inserted, updated or deleted in the tenant's tables by this backend and not yet
flushed to the shared statistics: PostgreSQL flushes them between transactions (at most
once a second), so they include earlier transactions' and only a difference taken inside
one transaction is that transaction's. orgbase's own schema holds what triggers write
(the audit trail), not the tenant's rows."""

TABLES_TO_PURGE = """
SELECT format('%I.%I', schema_name, table_name) AS name FROM orgbase.tenant_tables
WHERE to_regclass(format('%I.%I', schema_name, table_name)) IS NOT NULL
  AND policy <> 'shared_read'
"""
"""The tenant tables an org's rows are deleted from, each name quoted by format('%I')."""


def purge_rows(qualified: str) -> str:
    """Delete an org's rows from one table (``qualified``: a name from TABLES_TO_PURGE)."""
    return f"DELETE FROM {qualified} WHERE org_id = $1"


def json_result(source: str, select: str) -> str:
    """Aggregate rows into one JSON text in PostgreSQL (no per-row work in Python)."""
    return (
        "SELECT coalesce(json_agg(_p), '[]')::text AS body, count(*) AS n"
        f" FROM (SELECT {select} FROM {source}) _p"
    )


# -- reads ----------------------------------------------------------------------------


def read(builder: Builder, table: Table, query: Query, limit: int, *, exact: bool) -> str:
    """A page of rows as (body, n, total), behind the context CTE: total is the count of
    every matching row with ``exact``, else NULL."""
    select = builder.select_list(table, "t", query.select)
    conditions = ["ctx.role IS NOT NULL", *builder.filters(table, "t", query.filters)]
    conditions += builder.inner_joins(table, "t", query.select)
    where = " AND ".join(conditions)
    order = builder.order(table, "t", query.order)
    order_sql = f" ORDER BY {order}" if order else ""
    limit_at = builder.params.add(limit)
    offset = builder.params.add(query.offset)
    total = f"(SELECT count(*) FROM {table.qualified} t WHERE {where})" if exact else "NULL::bigint"
    page = f"{table.qualified} t WHERE {where}{order_sql} LIMIT {limit_at} OFFSET {offset}"
    return (
        f"SELECT q.body, q.n, {total} AS total FROM ctx CROSS JOIN LATERAL ("
        f"{json_result(page, select)}) q"
    )


def totals(builder: Builder, table: Table, query: Query) -> tuple[str, str]:
    """The planner's estimate of the matching rows (EXPLAIN) and their exact count, for a
    transaction that entered the org."""
    conditions = ["true", *builder.filters(table, "t", query.filters)]
    source = f"FROM {table.qualified} t WHERE {' AND '.join(conditions)}"
    return f"EXPLAIN (FORMAT JSON) SELECT 1 {source}", f"SELECT count(*) {source}"


# -- writes ---------------------------------------------------------------------------


def represented(source: str, select: str, cap: str) -> str:
    """The first ``cap`` rows of ``source`` as JSON (enough to tell a representation over
    the limit without building all of it), and how many rows it has."""
    return (
        "SELECT (SELECT coalesce(json_agg(_p), '[]')::text"
        f" FROM (SELECT {select} FROM (SELECT * FROM {source} LIMIT {cap}) t) _p) AS body,"
        f" (SELECT count(*) FROM {source}) AS n"
    )


def answered(builder: Builder, table: Table, query: Query, statement: str, cap: int | None) -> str:
    """An INSERT, UPDATE or DELETE (on ``t``) answering (body, n): its rows as JSON, at
    most ``cap`` of them (None: the count alone, no body)."""
    if cap is None:
        return (
            f"WITH rows AS ({statement} RETURNING 1)"
            " SELECT NULL::text AS body, count(*) AS n FROM rows"
        )
    select = builder.select_list(table, "t", query.select)
    limit = builder.params.add(cap)
    return f"WITH rows AS ({statement} RETURNING t.*) {represented('rows', select, limit)}"


def insert(
    builder: Builder,
    table: Table,
    rows: list[dict[str, Any]],
    columns: list[str],
    conflict: tuple[Resolution, list[str]] | None,
) -> str:
    """Insert ``rows`` (bound as one JSON parameter) into ``columns``; ``conflict``: what
    to do with a row whose target key exists (the target checked by the plan)."""
    payload = builder.params.add(msgspec.json.encode(rows).decode())
    names = ", ".join(quote_ident(c) for c in columns)
    # An empty object is a row of defaults (as in PostgREST): no column list at all.
    column_list = f" ({names})" if columns else ""
    sql = (
        f"INSERT INTO {table.qualified} AS t{column_list} SELECT {names}"
        f" FROM json_populate_recordset(NULL::{table.qualified}, {payload}::json)"
    )
    if conflict is None:
        return sql
    resolution, target = conflict
    keys = ", ".join(quote_ident(c) for c in target)
    updates = [c for c in columns if c not in target]
    if resolution == "ignore-duplicates" or not updates:
        return f"{sql} ON CONFLICT ({keys}) DO NOTHING"
    assignments = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates)
    return f"{sql} ON CONFLICT ({keys}) DO UPDATE SET {assignments}"


def insert_groups(
    builder: Builder, table: Table, query: Query, groups: list[str], cap: int | None
) -> str:
    """Several INSERTs (``groups``, each from ``insert``) as one statement answering
    (body, n) over all their rows, as ``answered`` does for one."""
    parts = [f"_g{number} AS ({sql} RETURNING t.*)" for number, sql in enumerate(groups)]
    union = " UNION ALL ".join(f"SELECT * FROM _g{n}" for n in range(len(parts)))
    if cap is None:
        return f"WITH {', '.join(parts)} SELECT NULL::text AS body, count(*) AS n FROM ({union}) t"
    select = builder.select_list(table, "t", query.select)
    limit = builder.params.add(cap)
    return f"WITH {', '.join(parts)}, rows AS ({union}) {represented('rows', select, limit)}"


def update(
    builder: Builder, table: Table, query: Query, values: dict[str, Any], columns: list[str]
) -> str:
    """Set ``columns`` from ``values`` (one JSON parameter, typed by the table's row type)
    on the rows the filters match."""
    payload = builder.params.add(msgspec.json.encode(values).decode())
    assignments = ", ".join(f"{quote_ident(c)} = _v.{quote_ident(c)}" for c in columns)
    where = " AND ".join(builder.filters(table, "t", query.filters))
    return (
        f"UPDATE {table.qualified} AS t SET {assignments}"
        f" FROM json_populate_record(NULL::{table.qualified}, {payload}::json) AS _v"
        f" WHERE {where}"
    )


def delete(builder: Builder, table: Table, query: Query) -> str:
    where = " AND ".join(builder.filters(table, "t", query.filters))
    return f"DELETE FROM {table.qualified} AS t WHERE {where}"


# -- function calls -------------------------------------------------------------------


def _call_source(builder: Builder, fn: Function, args: Any, *, whole: bool, gated: bool) -> str:
    """The function called LATERAL to its arguments' row (``_a``): ``whole``, the body as
    its one argument; else the arguments by name, typed by ``json_to_record``."""
    payload = builder.params.add(msgspec.json.encode(args).decode())
    gate = " WHERE ctx.role IS NOT NULL OFFSET 0" if gated else ""
    if whole:
        cast = fn.arguments[0].type
        return f"(SELECT 1{gate}) _a CROSS JOIN LATERAL {fn.qualified}({payload}::{cast})"
    given = [a for a in fn.arguments if a.name in args]
    if not given:
        return f"(SELECT {payload}::text{gate}) _a CROSS JOIN LATERAL {fn.qualified}()"
    record = ", ".join(f"{quote_ident(a.name)} {a.type}" for a in given)
    call = ", ".join(f"{quote_ident(a.name)} => _a.{quote_ident(a.name)}" for a in given)
    return (  # names and types from the catalogs, values bound
        f"(SELECT * FROM json_to_record({payload}::json) AS _r({record}){gate}) _a"
        f" CROSS JOIN LATERAL {fn.qualified}({call})"
    )


def _scalar_call(builder: Builder, fn: Function, source: str, query: Query, limit: int) -> str:
    if fn.returns == "void":
        return f"SELECT NULL::text AS body, 0 AS n FROM {source} AS t"
    if fn.returns_set:
        # A set of scalars is capped and paged as rows are, though it has no columns.
        first = builder.params.add(limit)
        offset = builder.params.add(query.offset)
        return (
            "SELECT coalesce(json_agg(t.v), '[]')::text AS body, count(*) AS n"
            f" FROM (SELECT t.v FROM {source} AS t(v) LIMIT {first} OFFSET {offset}) AS t"
        )
    return f"SELECT to_json(t.v)::text AS body, 1 AS n FROM {source} AS t(v)"


def call(
    builder: Builder,
    fn: Function,
    table: Table | None,
    args: Any,
    query: Query,
    *,
    limit: int,
    whole: bool,
    gated: bool,
) -> str:
    """A call answering (body, n): the result as JSON text and its row count. ``table``:
    the result's columns as a table (None for a scalar or void result), which the query
    selects, filters, orders and pages as a table's rows.

    ``gated``: the statement follows the context CTE of a single-statement read: the
    arguments' row exists only once the context is entered, in a subquery the planner
    cannot flatten, and the function is called lateral to it, so it never runs before the
    org is entered."""
    source = _call_source(builder, fn, args, whole=whole, gated=gated)
    if table is None:
        sql = _scalar_call(builder, fn, source, query, limit)
    else:
        select = builder.select_list(table, "t", query.select)
        conditions = ["true", *builder.filters(table, "t", query.filters)]
        conditions += builder.inner_joins(table, "t", query.select)
        order = builder.order(table, "t", query.order)
        first = builder.params.add(limit)
        offset = builder.params.add(query.offset)
        page = (
            f"{source} AS t WHERE {' AND '.join(conditions)}"
            f"{' ORDER BY ' + order if order else ''} LIMIT {first} OFFSET {offset}"
        )
        sql = json_result(page, select)
    if gated:
        return f"SELECT q.body, q.n FROM ctx CROSS JOIN LATERAL ({sql}) q"
    return sql


# -- an org's archive (orgbase org export / import) -------------------------------------

_TABLE_SHAPE = """
SELECT format('%I.%I', n.nspname, c.relname) AS name, c.oid,
       ARRAY(SELECT format('%I', a.attname) FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attgenerated = '' ORDER BY a.attnum) AS columns,
       ARRAY(SELECT DISTINCT con.confrelid FROM pg_constraint con
             WHERE con.conrelid = c.oid AND con.contype = 'f' AND con.confrelid <> c.oid)
           AS parents
"""
ARCHIVE_TABLES = (
    _TABLE_SHAPE
    + """FROM orgbase.tenant_tables tt
JOIN pg_namespace n ON n.nspname = tt.schema_name
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = tt.table_name
WHERE tt.policy <> 'shared_read'
ORDER BY 1
"""
)
"""The tenant tables an org's archive holds: their quoted names, the columns written back
(generated ones are computed again) and the tables their foreign keys point at."""


def archive_rows(qualified: str) -> str:
    """An org's rows of one table (``qualified``: a name from ARCHIVE_TABLES), as JSON
    text, under the export's context (row-level security picks the org)."""
    return f"SELECT to_jsonb(t)::text FROM {qualified} t"


def restore_rows(qualified: str, columns: list[str], *, skip_existing: bool = False) -> str:
    """Rows back from JSON (``$1``: an array of objects), ids kept; ``skip_existing``: a
    row whose key is there already is left as it is (an import run again)."""
    names = ", ".join(columns)
    return (
        f"INSERT INTO {qualified} ({names}) OVERRIDING SYSTEM VALUE"
        f" SELECT {names} FROM jsonb_populate_recordset(NULL::{qualified}, $1::jsonb)"
        + (" ON CONFLICT DO NOTHING" if skip_existing else "")
    )


APP_TABLES = (
    _TABLE_SHAPE
    + """FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY 1
"""
)
"""An app's tables (schema public), as ARCHIVE_TABLES describes tenant tables."""


def largest(qualified: str, column: str) -> str:
    """The largest value of ``column`` (a name from the catalogs) among the rows seen."""
    return f"SELECT max({quote_ident(column)}) FROM {qualified}"
