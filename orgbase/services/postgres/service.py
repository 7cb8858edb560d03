"""The data API's stages, put together (as PostgREST's App.hs puts its own):

    parse (request.py, called by the routes) -> plan (plan.py, rpc.py: pure; reads cached)
    -> build (sql.py, statements.py: every statement's text) -> execute
    (core/executor.py: the tenant entry, replica routing with read-your-writes)
    -> render (render.py, called by the routes)

``DataService`` holds what the stages need and adds what lies between them: the org's
limits, as the plan's inputs; its usage, metered after a statement ran. The credential
comes with each call as the request's ``TenantEntry``, from the request-auth component
given at construction (``access``).

Reads are one round trip: the statement enters the org (``TenantEntry``: PostgreSQL checks
the session and membership, the API key or the impersonation, and sets the verified
context) and runs the query, so a revocation acts on the very next request at no extra
cost. Writes are one transaction whose first statement enters the org.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from orgbase.core.app_state import AppKey
from orgbase.core.executor import TenantExecutor
from orgbase.core.metering import Counter
from orgbase.core.org_usage import OrgUsage
from orgbase.core.postgres import DataAccessSource, Database, TenantEntry
from orgbase.core.replicas import ReplicaRouter
from orgbase.services.postgres.functions import Function
from orgbase.services.postgres.plan import (
    Bounds,
    ReadPlan,
    ReadPlans,
    Totals,
    WritePlan,
    plan_write,
)
from orgbase.services.postgres.request import CallRequest, ReadRequest, WriteRequest, read_parser
from orgbase.services.postgres.result import Result
from orgbase.services.postgres.rpc import plan_call
from orgbase.services.postgres.schema_cache import SchemaCache
from orgbase.services.postgres.writes import run_write


class DataService:
    def __init__(
        self,
        db: Database,
        schema: SchemaCache,
        access: DataAccessSource,
        *,
        max_rows: int,
        statement_cache: int = 2048,
        replicas: ReplicaRouter | None = None,
        allow_tx_rollback: bool = False,
        usage: OrgUsage,
    ) -> None:
        self.db = db
        self.schema = schema
        self.access = access
        """Gives each request its entry (the platform's request-auth component)."""
        self.max_rows = max_rows
        self.allow_tx_rollback = allow_tx_rollback
        self.usage = usage
        self.executor = TenantExecutor(db, replicas)
        self.parse_read = read_parser(statement_cache)
        self.read_plans = ReadPlans(schema, statement_cache)
        self._default_bounds = Bounds(max_rows)
        self._default_timeout_ms = int(db.settings.command_timeout * 1000)

    def bounds(self, entry: TenantEntry) -> Bounds:
        """The entry's org's limits, as the plans take them."""
        org, limits_of = entry.org, self.usage.limits_of
        if limits_of is None or org is None:
            return self._default_bounds
        limits = limits_of(org)
        timeout: int | None = limits.statement_timeout_ms
        if timeout == self._default_timeout_ms:
            timeout = None  # the pool's command timeout: nothing to set
        if limits.rows_per_response == self.max_rows and timeout is None:
            return self._default_bounds
        return Bounds(limits.rows_per_response, timeout)

    def _meter(self, org: UUID | None, counter: Counter, rows: int) -> None:
        if org is not None:
            self.usage.meter.add(org, counter, rows)

    # -- reads ------------------------------------------------------------------------

    def plan_read(self, entry: TenantEntry, request: ReadRequest) -> ReadPlan:
        return self.read_plans.plan(request, self.bounds(entry))

    async def read(self, entry: TenantEntry, plan: ReadPlan) -> Result:
        if plan.app_role:
            entry = entry.as_app_role()
        row = await self.executor.read(entry, plan.sql, plan.values, plan.time_limit)
        self._meter(entry.org, "rows_read", row["n"])
        total = row["total"]
        if plan.totals is not None:
            total = await self._total(entry, plan.totals)
        return Result(row["body"], row["n"], total)

    async def _total(self, entry: TenantEntry, totals: Totals) -> int:
        """Prefer: count=planned (the planner's estimate) or estimated (the exact count
        when the estimate is at most max_rows)."""
        plan = await self.executor.value(entry, totals.explain, totals.values)
        total = int(msgspec.json.decode(plan)[0]["Plan"]["Plan Rows"])
        if totals.estimated and total <= self.max_rows:
            total = int(await self.executor.value(entry, totals.exact, totals.values))
        return total

    # -- writes and function calls ----------------------------------------------------

    def plan_write(self, entry: TenantEntry, request: WriteRequest) -> WritePlan:
        return plan_write(self.schema.tables, request, self.bounds(entry))

    async def write(self, entry: TenantEntry, plan: WritePlan) -> Result:
        if plan.app_role:
            entry = entry.as_app_role()
        result = await run_write(self.executor, entry, plan)
        if plan.sql is not None and not plan.options.rollback:
            self._meter(entry.org, "rows_written", result.rows)
        return result

    def plan_call(
        self, entry: TenantEntry, fn: Function, request: CallRequest
    ) -> ReadPlan | WritePlan:
        return plan_call(self.schema.tables, fn, request, self.bounds(entry))

    async def call(self, entry: TenantEntry, plan: ReadPlan | WritePlan) -> Result:
        """A read-only function: one statement on the primary; else a write."""
        if isinstance(plan, WritePlan):
            return await self.write(entry, plan)
        row = await self.executor.read(entry, plan.sql, plan.values, routed=False)
        return Result(row["body"], row["n"])


DATA_SERVICE: AppKey[DataService] = AppKey("data_service")
"""Where the data API's handlers find the service (read without injection: the hot path)."""
