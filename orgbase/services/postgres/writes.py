"""Running a write's plan (insert, upsert, update, delete, or a function call in a
transaction): one transaction whose first statement enters the org.

Two bounds act inside the transaction, so a refused write leaves nothing behind:
``Prefer: handling=strict, max-affected=N`` counts the rows the statement changed (for a
function, in every table it wrote, whatever its answer is filtered to), and an org's
``rows_per_response`` bounds a ``return=representation`` (a write's answer cannot be
paged afterwards, so a longer one is refused rather than cut). ``Prefer: tx=rollback``
answers, then keeps nothing.
"""

from __future__ import annotations

from orgbase.core.errors import Invalid
from orgbase.core.executor import TenantExecutor
from orgbase.core.postgres import Connection, TenantEntry
from orgbase.services.postgres.plan import WritePlan
from orgbase.services.postgres.result import Result
from orgbase.services.postgres.statements import CHANGED_ROWS


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


async def run_write(executor: TenantExecutor, entry: TenantEntry, plan: WritePlan) -> Result:
    """Run ``plan`` (a statement answering (body, n)) and check its bounds before the
    commit."""
    if plan.sql is None:
        return Result("[]" if plan.returning else None, 0)
    sql = plan.sql
    counting = plan.options.count_changes and plan.options.max_affected is not None

    async def bounded(connection: Connection) -> Result:
        before = await connection.fetchval(CHANGED_ROWS) if counting else 0
        row = await connection.fetchrow(sql, *plan.values)
        assert row is not None
        result = Result(row["body"], row["n"])
        changed = await connection.fetchval(CHANGED_ROWS) - before if counting else None
        _check_bounds(result, plan, changed)
        if plan.options.rollback:
            raise _RolledBack(result)
        return result

    try:
        return await executor.write(entry, bounded, plan.timeout_ms)
    except _RolledBack as undone:
        return undone.result


def _check_bounds(result: Result, plan: WritePlan, changed: int | None) -> None:
    """``changed``: the rows a function changed (None: the statement's own rows)."""
    limit = plan.options.max_affected
    if limit is not None:
        affected = result.rows if changed is None else changed
        if affected > limit:
            raise too_many_affected(affected, limit)
    if plan.answer_limit is not None and result.rows > plan.answer_limit:
        raise representation_too_long(result.rows, plan.answer_limit)
