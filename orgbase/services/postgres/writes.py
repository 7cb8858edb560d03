"""The data API's writes: insert (and upsert), update, delete and function calls, each one
transaction whose first statement enters the org (``DataService`` adds the reads).

Two bounds act inside the transaction, so a refused write leaves nothing behind:
``Prefer: handling=strict, max-affected=N`` counts the rows the statement changed (for a
function, in every table it wrote, whatever its answer is filtered to), and an org's
``rows_per_response`` bounds a ``return=representation`` (a write's answer cannot be
paged afterwards, so a longer one is refused rather than cut).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import asyncpg
import msgspec

from orgbase.core.errors import Invalid
from orgbase.core.metering import Meter
from orgbase.core.org_limits import LimitsOf, OrgLimits
from orgbase.core.postgres import Database, TenantEntry
from orgbase.core.replicas import ReplicaRouter, parse_lsn, writer_of
from orgbase.services.postgres.errors import translate
from orgbase.services.postgres.grammar import Query
from orgbase.services.postgres.result import Result
from orgbase.services.postgres.schema import Table, quote_ident
from orgbase.services.postgres.schema_cache import SchemaCache
from orgbase.services.postgres.sql import Builder, Params, table_missing

SERVER_COLUMNS = frozenset({"org_id"})
"""Columns no client writes: the org comes from the context."""

# Rows inserted, updated or deleted in the tenant's tables by this backend and not yet
# flushed to the shared statistics: PostgreSQL flushes them between transactions (at most
# once a second), so they include earlier transactions' and only a difference taken inside
# one transaction is that transaction's. orgbase's own schema holds what triggers write
# (the audit trail), not the tenant's rows.
_CHANGED_ROWS = """
SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
FROM pg_catalog.pg_stat_xact_user_tables WHERE schemaname <> 'orgbase'
"""


@dataclass(frozen=True)
class WriteOptions:
    max_affected: int | None = None
    """Prefer: max-affected (with handling=strict): more rows changed is PGRST124, undone."""
    rollback: bool = False
    """Prefer: tx=rollback (when the operator allows it): answer, then keep nothing."""
    count_changes: bool = False
    """Count max-affected in the rows the transaction changed in tables (a function's
    writes), not the rows the statement answers."""


class _RolledBack(Exception):
    """Leaves a write's transaction without committing, carrying its answer."""

    def __init__(self, result: Result) -> None:
        self.result = result


def too_many_affected(rows: int, limit: int) -> Invalid:
    return Invalid(
        "Query result exceeds max-affected preference constraint",
        code="PGRST124",
        details=f"The query affects {rows} rows",
        hint=f"at most {limit} rows may change (Prefer: max-affected)",
    )


def representation_too_long(rows: int, limit: int) -> Invalid:
    return Invalid(
        f"the write changes {rows} rows and this org answers at most {limit} per response",
        code="rows_per_response_exceeded",
        details=f"rows_per_response is {limit}; nothing was written",
        hint="ask Prefer: return=minimal, or write at most that many rows per request",
    )


def represented(source: str, select: str, cap: str) -> str:
    """The first ``cap`` rows of ``source`` as JSON (enough to tell a representation over
    the limit without building all of it), and how many rows it has."""
    return (
        "SELECT (SELECT coalesce(json_agg(_p), '[]')::text"
        f" FROM (SELECT {select} FROM (SELECT * FROM {source} LIMIT {cap}) t) _p) AS body,"
        f" (SELECT count(*) FROM {source}) AS n"
    )


class DataWrites:
    """The writes of ``DataService`` (which sets these attributes)."""

    db: Database
    schema: SchemaCache
    max_rows: int
    replicas: ReplicaRouter | None
    limits_of: LimitsOf | None
    meter: Meter | None
    default_timeout_ms: int

    def table(self, name: str) -> Table:
        table = self.schema.tables.get(name)
        if table is None:
            raise table_missing(name)
        return table

    def _org_limits(self, entry: TenantEntry) -> OrgLimits | None:
        org = entry.org
        return self.limits_of(org) if self.limits_of is not None and org is not None else None

    def row_limit(self, entry: TenantEntry) -> int:
        """The most rows one answer holds for the entry's org (its rows_per_response)."""
        limits = self._org_limits(entry)
        return self.max_rows if limits is None else limits.rows_per_response

    async def _write(
        self,
        entry: TenantEntry,
        sql: str,
        values: list[Any],
        options: WriteOptions = WriteOptions(),
        answer_limit: int | None = None,
    ) -> Result:
        """Run ``sql`` in a transaction that entered the org; a representation of more than
        ``answer_limit`` rows is refused (and undone)."""
        limits = self._org_limits(entry)
        # A rolled-back write (tx=rollback) leaves no position: the exception skips it.
        commit_lsn: list[str] | None = [] if self.replicas is not None else None
        try:
            async with self.db.tenant_transaction_with(entry, commit_lsn) as connection:
                if limits is not None and limits.statement_timeout_ms != self.default_timeout_ms:
                    # Transaction-local: the org's own limit for this write only (the
                    # default is the pool's command timeout, with no round trip).
                    await connection.execute(
                        "SELECT set_config('statement_timeout', $1, true)",
                        str(limits.statement_timeout_ms),
                    )
                counting = options.count_changes and options.max_affected is not None
                before = await connection.fetchval(_CHANGED_ROWS) if counting else 0
                row = await connection.fetchrow(sql, *values)
                assert row is not None
                result = Result(row["body"], row["n"])
                changed = await connection.fetchval(_CHANGED_ROWS) - before if counting else None
                _check_bounds(result, options, answer_limit, changed)
                if options.rollback:
                    raise _RolledBack(result)
        except _RolledBack as undone:
            return undone.result
        except asyncpg.PostgresError as exc:
            raise translate(exc) from exc
        if self.replicas is not None and commit_lsn:
            await self.replicas.wrote(writer_of(entry.args), parse_lsn(commit_lsn[0]))
        if self.meter is not None and entry.org is not None:
            self.meter.add(entry.org, "rows_written", result.rows)
        return result

    async def _write_rows(  # noqa: PLR0917 - the statement and how to answer it
        self,
        entry: TenantEntry,
        table: Table,
        query: Query,
        sql: str,
        builder: Builder,
        returning: bool,
        options: WriteOptions,
    ) -> Result:
        """Run an INSERT, UPDATE or DELETE (``sql``, on ``t``) and answer its rows or count."""
        limit = self.row_limit(entry)
        statement = _returning(table, query, returning, sql, builder, answer_limit=limit)
        answer_limit = limit if returning else None
        return await self._write(entry, statement, builder.params.values, options, answer_limit)

    async def insert(
        self,
        entry: TenantEntry,
        table_name: str,
        rows: list[dict[str, Any]],
        query: Query,
        *,
        returning: bool,
        resolution: Literal["merge-duplicates", "ignore-duplicates"] | None,
        missing_default: bool = False,
        options: WriteOptions = WriteOptions(),
    ) -> Result:
        table = self.table(table_name)
        if not rows:
            return Result("[]" if returning else None, 0)
        columns = list(query.columns) if query.columns else list(rows[0])
        keys = set(columns)
        if missing_default:
            return await self._insert_with_defaults(
                entry,
                table,
                rows,
                query,
                keys=keys,
                returning=returning,
                resolution=resolution,
                options=options,
            )
        if not query.columns and any(set(row) != keys for row in rows):
            raise Invalid("All object keys must match", code="PGRST102")
        builder = Builder(self.schema.tables, Params(1))
        sql = _insert_statement(table, rows, columns, query, resolution, builder=builder)
        return await self._write_rows(entry, table, query, sql, builder, returning, options)

    async def _insert_with_defaults(
        self,
        entry: TenantEntry,
        table: Table,
        rows: list[dict[str, Any]],
        query: Query,
        *,
        keys: set[str],
        returning: bool,
        resolution: Literal["merge-duplicates", "ignore-duplicates"] | None,
        options: WriteOptions,
    ) -> Result:
        """Prefer: missing=default: a key a row leaves out takes the column's default. Rows
        are inserted in groups of the same keys (one statement: all rows or none)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            present = [k for k in row if k in keys] if query.columns else list(row)
            groups.setdefault(tuple(present), []).append(row)
        builder = Builder(self.schema.tables, Params(1))
        parts = []
        for number, (columns, group) in enumerate(groups.items()):
            sql = _insert_statement(table, group, list(columns), query, resolution, builder=builder)
            parts.append(f"_g{number} AS ({sql} RETURNING t.*)")
        union = " UNION ALL ".join(f"SELECT * FROM _g{n}" for n in range(len(parts)))
        limit = self.row_limit(entry)
        if returning:
            select = builder.select_list(table, "t", query.select)
            cap = builder.params.add(limit + 1)
            answer = represented("rows", select, cap)
            statement = f"WITH {', '.join(parts)}, rows AS ({union}) {answer}"
        else:
            statement = (
                f"WITH {', '.join(parts)} SELECT NULL::text AS body, count(*) AS n FROM ({union}) t"
            )
        return await self._write(
            entry, statement, builder.params.values, options, limit if returning else None
        )

    async def update(
        self,
        entry: TenantEntry,
        table_name: str,
        values: dict[str, Any],
        query: Query,
        *,
        returning: bool,
        options: WriteOptions = WriteOptions(),
    ) -> Result:
        table = self.table(table_name)
        _require_filter(query)
        columns = _writable(table, list(values))
        if not columns:
            raise Invalid("nothing to update: the body is empty", code="PGRST102")
        builder = Builder(self.schema.tables, Params(1))
        payload = builder.params.add(msgspec.json.encode(values).decode())
        assignments = ", ".join(f"{quote_ident(c)} = _v.{quote_ident(c)}" for c in columns)
        where = " AND ".join(builder.filters(table, "t", query.filters))
        sql = (
            f"UPDATE {table.qualified} AS t SET {assignments}"
            f" FROM json_populate_record(NULL::{table.qualified}, {payload}::json) AS _v"
            f" WHERE {where}"
        )
        return await self._write_rows(entry, table, query, sql, builder, returning, options)

    async def delete(
        self,
        entry: TenantEntry,
        table_name: str,
        query: Query,
        *,
        returning: bool,
        options: WriteOptions = WriteOptions(),
    ) -> Result:
        table = self.table(table_name)
        _require_filter(query)
        builder = Builder(self.schema.tables, Params(1))
        where = " AND ".join(builder.filters(table, "t", query.filters))
        sql = f"DELETE FROM {table.qualified} AS t WHERE {where}"
        return await self._write_rows(entry, table, query, sql, builder, returning, options)

    # -- functions --------------------------------------------------------------------

    async def call(
        self,
        entry: TenantEntry,
        sql: str,
        values: list[Any],
        options: WriteOptions = WriteOptions(),
    ) -> Result:
        """A function call (built by rpc.build_call): in a transaction that entered the org.
        Its rows are capped by the statement (as a read's); max-affected counts what it
        changed."""
        return await self._write(entry, sql, values, replace(options, count_changes=True))


def _check_bounds(
    result: Result, options: WriteOptions, answer_limit: int | None, changed: int | None
) -> None:
    """``changed``: the rows a function changed (None: the statement's own rows)."""
    if options.max_affected is not None:
        affected = result.rows if changed is None else changed
        if affected > options.max_affected:
            raise too_many_affected(affected, options.max_affected)
    if answer_limit is not None and result.rows > answer_limit:
        raise representation_too_long(result.rows, answer_limit)


def _writable(table: Table, columns: list[str]) -> list[str]:
    for name in columns:
        if name not in table.columns:
            raise Invalid(
                f"Could not find the '{name}' column of '{table.name}' in the schema cache",
                code="PGRST204",
            )
        if name in SERVER_COLUMNS:
            raise Invalid(f"{name} is set by the server", code="PGRST204", hint="leave it out")
    return columns


def _returning(
    table: Table,
    query: Query,
    returning: bool,
    sql: str,
    builder: Builder,
    *,
    answer_limit: int = 0,
) -> str:
    if not returning:
        return (
            f"WITH rows AS ({sql} RETURNING 1) SELECT NULL::text AS body, count(*) AS n FROM rows"
        )
    select = builder.select_list(table, "t", query.select)
    cap = builder.params.add(answer_limit + 1)
    return f"WITH rows AS ({sql} RETURNING t.*) {represented('rows', select, cap)}"


def _insert_statement(
    table: Table,
    rows: list[dict[str, Any]],
    columns: list[str],
    query: Query,
    resolution: Literal["merge-duplicates", "ignore-duplicates"] | None,
    *,
    builder: Builder,
) -> str:
    _writable(table, columns)
    payload = builder.params.add(msgspec.json.encode(rows).decode())
    names = ", ".join(quote_ident(c) for c in columns)
    # An empty object is a row of defaults (as in PostgREST): no column list at all.
    column_list = f" ({names})" if columns else ""
    sql = (
        f"INSERT INTO {table.qualified} AS t{column_list} SELECT {names}"
        f" FROM json_populate_recordset(NULL::{table.qualified}, {payload}::json)"
    )
    if resolution is not None:
        target = list(query.on_conflict) or list(table.primary_key)
        if not target:
            raise Invalid("the table has no primary key: name on_conflict", code="PGRST100")
        for name in target:
            builder.column(table, name)
        conflict = ", ".join(quote_ident(c) for c in target)
        updates = [c for c in columns if c not in target]
        if resolution == "ignore-duplicates" or not updates:
            sql += f" ON CONFLICT ({conflict}) DO NOTHING"
        else:
            assignments = ", ".join(
                f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates
            )
            sql += f" ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"
    return sql


def _require_filter(query: Query) -> None:
    if not query.filters:
        raise Invalid(
            "a filter is required: updates and deletes of every row are refused",
            code="PGRST106",
            hint="add a filter, e.g. ?id=eq.1 (use ?id=not.is.null to mean every row)",
        )
