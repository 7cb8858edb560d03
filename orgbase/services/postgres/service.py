"""The data API's use cases: read, insert (and upsert), update, delete on tenant tables
(the writes are ``writes.DataWrites``).

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
from orgbase.core.metering import Meter
from orgbase.core.org_limits import LimitsOf
from orgbase.core.postgres import CONTEXT_PARAMS, Database, TenantEntry
from orgbase.core.replicas import ReplicaRouter, writer_of
from orgbase.services.postgres.errors import translate
from orgbase.services.postgres.grammar import Query
from orgbase.services.postgres.result import Result
from orgbase.services.postgres.schema_cache import SchemaCache
from orgbase.services.postgres.sql import Builder, Params, json_result
from orgbase.services.postgres.writes import DataWrites

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


class DataService(DataWrites):
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

    def effective_limit(self, query: Query) -> int:
        return query.page_size(self.max_rows)

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
                values[prepared.limit_at] = query.page_size(rows)
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

    # -- helpers -----------------------------------------------------------------------

    async def _in_transaction(self, entry: TenantEntry, sql: str, values: list[Any]) -> Any:
        """One statement in a transaction that entered the context; its first value."""
        try:
            async with self.db.tenant_transaction_with(entry) as connection:
                return await connection.fetchval(sql, *values)
        except asyncpg.PostgresError as exc:
            raise translate(exc) from exc

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


DATA_SERVICE: AppKey[DataService] = AppKey("data_service")
"""Where the data API's handlers find the service (read without injection: the hot path)."""
