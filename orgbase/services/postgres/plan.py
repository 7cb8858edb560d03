"""The plan stage of the data API (PostgREST's Plan): from a request's description, the
schema and the org's bounds to the statement that answers it and how to run it.

Pure: the same inputs make the same plan, and nothing is changed afterwards. The org's
limits are inputs (``Bounds``: its rows per response and statement timeout), so an org
with its own limits has plans of its own rather than values patched into a shared one.
Reads, whose plans depend on nothing else, are cached (``ReadPlans``); a write's plan
carries its body, so it is made for each request.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from orgbase.core.errors import Invalid
from orgbase.core.postgres import CONTEXT_PARAMS
from orgbase.services.postgres import statements
from orgbase.services.postgres.grammar import Query
from orgbase.services.postgres.request import (
    Delete,
    Insert,
    ReadRequest,
    Update,
    WriteOptions,
    WriteRequest,
)
from orgbase.services.postgres.schema import Table
from orgbase.services.postgres.schema_cache import SchemaCache
from orgbase.services.postgres.sql import Builder, Params, table_missing

SERVER_COLUMNS = frozenset({"org_id"})
"""Columns no client writes: the org comes from the context."""


class Bounds(msgspec.Struct, frozen=True):
    """An org's limits as a plan sees them."""

    rows: int
    """The most rows one answer holds (max_rows, or the org's rows_per_response)."""
    timeout_ms: int | None = None
    """The org's statement timeout (None: the pool's command timeout applies)."""

    @property
    def time_limit(self) -> float | None:
        return None if self.timeout_ms is None else self.timeout_ms / 1000


def table_of(tables: dict[str, Table], name: str) -> Table:
    table = tables.get(name)
    if table is None:
        raise table_missing(name)
    return table


# -- reads ----------------------------------------------------------------------------


class Totals(msgspec.Struct, frozen=True):
    """Prefer: count=planned or estimated: statements run in a transaction after the read
    (the planner's estimate, and for ``estimated`` the exact count when it is small)."""

    explain: str
    exact: str
    values: tuple[Any, ...]
    estimated: bool


class ReadPlan(msgspec.Struct, frozen=True):
    sql: str
    """The statement after the entry's context CTE (its parameters start after the
    entry's), answering (body, n, total)."""
    values: tuple[Any, ...]
    time_limit: float | None = None
    """Seconds the statement may run (the org's statement timeout)."""
    totals: Totals | None = None
    app_role: bool = False
    """An app table's: run as the caller's Supabase role (``TenantEntry.as_app_role``)."""


def plan_read(tables: dict[str, Table], request: ReadRequest, bounds: Bounds) -> ReadPlan:
    table = table_of(tables, request.table)
    query = request.query
    builder = Builder(tables, Params(CONTEXT_PARAMS + 1))
    limit = query.page_size(bounds.rows)
    sql = statements.read(builder, table, query, limit, exact=request.count == "exact")
    totals = None
    if request.count in ("planned", "estimated"):
        counting = Builder(tables, Params(1))
        explain, exact = statements.totals(counting, table, query)
        values = tuple(counting.params.values)
        totals = Totals(explain, exact, values, estimated=request.count == "estimated")
    values = tuple(builder.params.values)
    return ReadPlan(sql, values, bounds.time_limit, totals, app_role=table.app_role)


class ReadPlans:
    """Read plans by what makes them: the schema's version, the request as received and
    the org's bounds. Past ``size`` plans the oldest goes."""

    def __init__(self, schema: SchemaCache, size: int) -> None:
        self.schema = schema
        self.size = size
        self._plans: OrderedDict[tuple[Any, ...], ReadPlan] = OrderedDict()

    def plan(self, request: ReadRequest, bounds: Bounds) -> ReadPlan:
        key = (self.schema.version, request.key, bounds)
        plan = self._plans.get(key)
        if plan is None:
            plan = plan_read(self.schema.tables, request, bounds)
            self._plans[key] = plan
            if len(self._plans) > self.size:
                self._plans.popitem(last=False)
        return plan


# -- writes ---------------------------------------------------------------------------


class WritePlan(msgspec.Struct, frozen=True):
    sql: str | None
    """The statement, answering (body, n); None: nothing to write (no rows given)."""
    values: list[Any]
    returning: bool
    answer_limit: int | None
    """A representation of more rows is refused, and the write undone (None: unbounded)."""
    timeout_ms: int | None
    options: WriteOptions
    app_role: bool = False
    """An app table's: run as the caller's Supabase role (``TenantEntry.as_app_role``)."""


def plan_write(tables: dict[str, Table], request: WriteRequest, bounds: Bounds) -> WritePlan:
    table = table_of(tables, request.table)
    change, query = request.change, request.query
    builder = Builder(tables, Params(1))
    cap = bounds.rows + 1 if request.returning else None
    if isinstance(change, Insert):
        if not change.rows:
            return WritePlan(None, [], request.returning, None, None, request.options)
        sql = _insert(builder, table, query, change, cap)
    elif isinstance(change, Update):
        _require_filter(query)
        columns = _writable(table, list(change.values))
        if not columns:
            raise Invalid("nothing to update: the body is empty", code="PGRST102")
        statement = statements.update(builder, table, query, change.values, columns)
        sql = statements.answered(builder, table, query, statement, cap)
    else:
        assert isinstance(change, Delete)
        _require_filter(query)
        statement = statements.delete(builder, table, query)
        sql = statements.answered(builder, table, query, statement, cap)
    answer_limit = bounds.rows if request.returning else None
    values = builder.params.values
    return WritePlan(
        sql,
        values,
        request.returning,
        answer_limit,
        bounds.timeout_ms,
        request.options,
        app_role=table.app_role,
    )


def _insert(builder: Builder, table: Table, query: Query, change: Insert, cap: int | None) -> str:
    rows = change.rows
    columns = list(query.columns) if query.columns else list(rows[0])
    if change.missing_default:
        # Rows are inserted in groups of the same keys (one statement: all rows or none).
        keys = set(columns)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            present = [k for k in row if k in keys] if query.columns else list(row)
            groups.setdefault(tuple(present), []).append(row)
        parts = [
            _insert_one(builder, table, change, group, list(names), query=query)
            for names, group in groups.items()
        ]
        return statements.insert_groups(builder, table, query, parts, cap)
    if not query.columns and any(set(row) != set(columns) for row in rows):
        raise Invalid("All object keys must match", code="PGRST102")
    statement = _insert_one(builder, table, change, rows, columns, query=query)
    return statements.answered(builder, table, query, statement, cap)


def _insert_one(
    builder: Builder,
    table: Table,
    change: Insert,
    rows: list[dict[str, Any]],
    columns: list[str],
    *,
    query: Query,
) -> str:
    _writable(table, columns)
    conflict = None
    if change.resolution is not None:
        target = list(query.on_conflict) or list(table.primary_key)
        if not target:
            raise Invalid("the table has no primary key: name on_conflict", code="PGRST100")
        for name in target:
            builder.column(table, name)
        conflict = (change.resolution, target)
    return statements.insert(builder, table, rows, columns, conflict)


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


def _require_filter(query: Query) -> None:
    if not query.filters:
        raise Invalid(
            "a filter is required: updates and deletes of every row are refused",
            code="PGRST106",
            hint="add a filter, e.g. ?id=eq.1 (use ?id=not.is.null to mean every row)",
        )
