"""The data API's use cases: read, insert (and upsert), update, delete on tenant tables.

Reads are one round trip: the statement enters the org (``TenantEntry``: PostgreSQL checks
the session and membership, the API key or the impersonation, and sets the verified
context) and runs the query, so a revocation acts on the very next request at no extra
cost. Writes are one transaction whose first statement enters the org.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import msgspec

from orgbase.core.app_state import AppKey
from orgbase.core.errors import Invalid
from orgbase.core.metering import Meter
from orgbase.core.org_limits import LimitsOf, OrgLimits
from orgbase.core.postgres import CONTEXT_PARAMS, Database, TenantEntry
from orgbase.core.replicas import ReplicaRouter, parse_lsn, writer_of
from orgbase.services.postgres.errors import translate
from orgbase.services.postgres.grammar import Query
from orgbase.services.postgres.schema import SchemaCache, Table, quote_ident
from orgbase.services.postgres.sql import Builder, Params, json_result, table_missing

SERVER_COLUMNS = frozenset({"org_id"})
"""Columns no client writes: the org comes from the context."""

Count = Literal["exact", "planned", "estimated"] | None


@dataclass(frozen=True)
class PreparedRead:
    """A read's parsed query and its statement (shared by every request of the same key:
    never changed once built)."""

    table: str
    query: Query
    count: Count
    sql: str
    values: list[Any]
    limit_at: int = -1
    """Where the page's LIMIT sits in ``values`` (an org's rows_per_response replaces it)."""


@dataclass(frozen=True)
class Result:
    body: str | None
    rows: int
    total: int | None = None


@dataclass(frozen=True)
class WriteOptions:
    max_affected: int | None = None
    """Prefer: max-affected (with handling=strict): more rows changed is PGRST124, undone."""
    rollback: bool = False
    """Prefer: tx=rollback (when the operator allows it): answer, then keep nothing."""


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


class DataService:
    def __init__(
        self,
        db: Database,
        schema: SchemaCache,
        max_rows: int,
        statement_cache: int = 2048,
        replicas: ReplicaRouter | None = None,
        *,
        allow_tx_rollback: bool = False,
        limits_of: LimitsOf | None = None,
        meter: Meter | None = None,
    ) -> None:
        self.db = db
        self.replicas = replicas if replicas is not None and replicas.enabled else None
        self.allow_tx_rollback = allow_tx_rollback
        self.schema = schema
        self.max_rows = max_rows
        self.limits_of = limits_of
        self.meter = meter
        self.default_timeout_ms = int(db.settings.command_timeout * 1000)
        # Prepared reads by the request as received: a repeated query skips parsing and
        # building.
        self._reads: OrderedDict[tuple[Any, ...], PreparedRead] = OrderedDict()
        self._cache_size = statement_cache

    def table(self, name: str) -> Table:
        table = self.schema.tables.get(name)
        if table is None:
            raise table_missing(name)
        return table

    def effective_limit(self, query: Query) -> int:
        return self.max_rows if query.limit is None else min(query.limit, self.max_rows)

    # -- reads ------------------------------------------------------------------------

    def build_read(self, table_name: str, query: Query, count: Count) -> tuple[str, list[Any], int]:
        table = self.table(table_name)
        builder = Builder(self.schema.tables, Params(CONTEXT_PARAMS + 1))
        select = builder.select_list(table, "t", query.select)
        conditions = ["ctx.role IS NOT NULL", *builder.filters(table, "t", query.filters)]
        conditions += builder.inner_joins(table, "t", query.select)
        where = " AND ".join(conditions)
        order = builder.order(table, "t", query.order)
        order_sql = f" ORDER BY {order}" if order else ""
        limit = builder.params.add(self.effective_limit(query))
        limit_at = len(builder.params.values) - 1
        offset = builder.params.add(query.offset)
        total = "NULL::bigint"
        if count == "exact":
            total = f"(SELECT count(*) FROM {table.qualified} t WHERE {where})"
        page = f"{table.qualified} t WHERE {where}{order_sql} LIMIT {limit} OFFSET {offset}"
        sql = (
            f"SELECT q.body, q.n, {total} AS total FROM ctx CROSS JOIN LATERAL ("
            f"{json_result(page, select)}) q"
        )
        return sql, builder.params.values, limit_at

    def prepare_read(
        self,
        table_name: str,
        request_key: tuple[str, ...],
        count: Count,
        parse: Callable[[], Query],
    ) -> PreparedRead:
        """The read for ``request_key`` (what of the request shapes the statement, as it was
        received), from the cache when it came before; else ``parse()`` and build it. The
        schema version is part of the key: a reload builds again."""
        key = (self.schema.version, table_name, count, *request_key)
        prepared = self._reads.get(key)
        if prepared is None:
            query = parse()
            sql, values, limit_at = self.build_read(table_name, query, count)
            prepared = PreparedRead(table_name, query, count, sql, values, limit_at)
            self._reads[key] = prepared
            if len(self._reads) > self._cache_size:
                self._reads.popitem(last=False)
        return prepared

    def _org_limits(self, entry: TenantEntry) -> OrgLimits | None:
        org = entry.org
        return self.limits_of(org) if self.limits_of is not None and org is not None else None

    async def read(self, entry: TenantEntry, prepared: PreparedRead) -> Result:
        table_name, query, count = prepared.table, prepared.query, prepared.count
        values = prepared.values
        limits = self._org_limits(entry)
        timeout = None
        if limits is not None:
            if limits.statement_timeout_ms != self.default_timeout_ms:
                timeout = limits.statement_timeout_ms / 1000  # else the pool's command timeout
            if limits.rows_per_response != self.max_rows and prepared.limit_at >= 0:
                rows = limits.rows_per_response
                values = list(values)
                values[prepared.limit_at] = rows if query.limit is None else min(query.limit, rows)
        sql, args = f"{entry.cte()} {prepared.sql}", (*entry.args, *values)
        if self.replicas is None:
            row = await self._fetchrow(entry.org, sql, *args, time_limit=timeout)
        else:
            row = await self._read_on_replica(entry, sql, args, timeout)
        assert row is not None
        if self.meter is not None and entry.org is not None:
            self.meter.add(entry.org, "rows_read", row["n"])
        total = row["total"]
        if count in ("planned", "estimated"):
            total = await self._planned_total(entry, table_name, query)
            if count == "estimated" and total <= self.max_rows:
                total = await self._exact_total(entry, table_name, query)
        return Result(row["body"], row["n"], total)

    async def _read_on_replica(
        self, entry: TenantEntry, sql: str, args: tuple[Any, ...], time_limit: float | None
    ) -> asyncpg.Record | None:
        """On a replica that has the writer's own writes, else on the primary. A replica's
        pool is its own: the fair gate and an org's statement timeout apply on the primary
        (a timeout on a replica would read as the replica failing, and run twice)."""
        assert self.replicas is not None
        try:
            return await self.replicas.read(
                writer_of(entry.args),
                lambda: self.db.tenant_fetchrow(entry.org, sql, *args, time_limit=time_limit),
                lambda pool: self.db.replica_fetchrow(pool, sql, *args),
            )
        except asyncpg.PostgresError as exc:
            raise translate(exc) from exc

    async def _fetchrow(
        self, org: Any, sql: str, *args: Any, time_limit: float | None = None
    ) -> asyncpg.Record | None:
        try:
            return await self.db.tenant_fetchrow(org, sql, *args, time_limit=time_limit)
        except asyncpg.PostgresError as exc:
            raise translate(exc) from exc

    def _count_query(self, table_name: str, query: Query, start: int) -> tuple[str, list[Any]]:
        table = self.table(table_name)
        builder = Builder(self.schema.tables, Params(start))
        conditions = ["true", *builder.filters(table, "t", query.filters)]
        return f"FROM {table.qualified} t WHERE {' AND '.join(conditions)}", builder.params.values

    async def _planned_total(self, entry: TenantEntry, table_name: str, query: Query) -> int:
        source, values = self._count_query(table_name, query, 1)
        plan = await self._in_transaction(entry, f"EXPLAIN (FORMAT JSON) SELECT 1 {source}", values)
        return int(msgspec.json.decode(plan)[0]["Plan"]["Plan Rows"])

    async def _exact_total(self, entry: TenantEntry, table_name: str, query: Query) -> int:
        source, values = self._count_query(table_name, query, 1)
        return int(await self._in_transaction(entry, f"SELECT count(*) {source}", values))

    # -- writes -----------------------------------------------------------------------

    async def _in_transaction(self, entry: TenantEntry, sql: str, values: list[Any]) -> Any:
        """One statement in a transaction that entered the context; its first value."""
        try:
            async with self.db.tenant_transaction_with(entry) as connection:
                return await connection.fetchval(sql, *values)
        except asyncpg.PostgresError as exc:
            raise translate(exc) from exc

    async def _write(
        self,
        entry: TenantEntry,
        sql: str,
        values: list[Any],
        options: WriteOptions = WriteOptions(),
    ) -> Result:
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
                row = await connection.fetchrow(sql, *values)
                assert row is not None
                result = Result(row["body"], row["n"])
                if options.max_affected is not None and result.rows > options.max_affected:
                    raise too_many_affected(result.rows, options.max_affected)
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

    def _writable(self, table: Table, columns: list[str]) -> list[str]:
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
        self, table: Table, query: Query, returning: bool, sql: str, builder: Builder
    ) -> str:
        if not returning:
            return (
                f"WITH rows AS ({sql} RETURNING 1)"
                " SELECT NULL::text AS body, count(*) AS n FROM rows"
            )
        select = builder.select_list(table, "t", query.select)
        return f"WITH rows AS ({sql} RETURNING t.*) {json_result('rows t', select)}"

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
        sql = self._insert_statement(table, rows, columns, query, resolution, builder=builder)
        return await self._write(
            entry,
            self._returning(table, query, returning, sql, builder),
            builder.params.values,
            options,
        )

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
            sql = self._insert_statement(
                table, group, list(columns), query, resolution, builder=builder
            )
            parts.append(f"_g{number} AS ({sql} RETURNING t.*)")
        union = " UNION ALL ".join(f"SELECT * FROM _g{n}" for n in range(len(parts)))
        if returning:
            select = builder.select_list(table, "t", query.select)
            statement = f"WITH {', '.join(parts)} {json_result(f'({union}) t', select)}"
        else:
            statement = (
                f"WITH {', '.join(parts)} SELECT NULL::text AS body, count(*) AS n FROM ({union}) t"
            )
        return await self._write(entry, statement, builder.params.values, options)

    def _insert_statement(
        self,
        table: Table,
        rows: list[dict[str, Any]],
        columns: list[str],
        query: Query,
        resolution: Literal["merge-duplicates", "ignore-duplicates"] | None,
        *,
        builder: Builder,
    ) -> str:
        self._writable(table, columns)
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
        self._require_filter(query)
        columns = self._writable(table, list(values))
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
        return await self._write(
            entry,
            self._returning(table, query, returning, sql, builder),
            builder.params.values,
            options,
        )

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
        self._require_filter(query)
        builder = Builder(self.schema.tables, Params(1))
        where = " AND ".join(builder.filters(table, "t", query.filters))
        sql = f"DELETE FROM {table.qualified} AS t WHERE {where}"
        return await self._write(
            entry,
            self._returning(table, query, returning, sql, builder),
            builder.params.values,
            options,
        )

    # -- functions --------------------------------------------------------------------

    async def call(
        self,
        entry: TenantEntry,
        sql: str,
        values: list[Any],
        options: WriteOptions = WriteOptions(),
    ) -> Result:
        """A function call (built by rpc.build_call): in a transaction that entered the org."""
        return await self._write(entry, sql, values, options)

    async def call_read(self, entry: TenantEntry, sql: str, values: list[Any]) -> Result:
        """A read-only function call in one statement behind the context CTE (built gated
        by rpc.build_call)."""
        row = await self._fetchrow(
            entry.org,
            f"{entry.cte()} SELECT q.body, q.n FROM ctx CROSS JOIN LATERAL ({sql}) q",
            *entry.args,
            *values,
        )
        assert row is not None
        return Result(row["body"], row["n"])

    @staticmethod
    def _require_filter(query: Query) -> None:
        if not query.filters:
            raise Invalid(
                "a filter is required: updates and deletes of every row are refused",
                code="PGRST106",
                hint="add a filter, e.g. ?id=eq.1 (use ?id=not.is.null to mean every row)",
            )


DATA_SERVICE: AppKey[DataService] = AppKey("data_service")
"""Where the data API's handlers find the service (read without injection: the hot path)."""
