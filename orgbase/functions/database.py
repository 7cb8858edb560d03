"""``ctx.db``: a function's SQL, run as its caller.

Each call is a transaction on the tenant pool (through the fair gate, as the org's other
statements) whose first statement enters the caller's org with the caller's own credential
(``TenantEntry``): PostgreSQL checks it again and row-level security decides what the
statement sees. No other org is reachable: the entry's proof names one org, and a context
set by hand proves nothing.

The statement is one statement (the extended protocol takes no second), and statements that
would change the pooled connection beyond their transaction (transaction control, session
settings, session-level advisory locks, LISTEN) are refused: the next request on that
connection must find it as the pool left it.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from orgbase.core.errors import Invalid
from orgbase.core.org_limits import LimitsOf
from orgbase.core.pg_errors import entry_error, refused_value
from orgbase.core.postgres import Database, TenantEntry

MAX_ROWS = 10_000
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_REFUSED_FIRST = frozenset(
    [
        "abort",
        "alter",
        "analyze",
        "begin",
        "call",
        "checkpoint",
        "close",
        "cluster",
        "comment",
        "commit",
        "copy",
        "create",
        "deallocate",
        "declare",
        "discard",
        "do",
        "drop",
        "end",
        "fetch",
        "grant",
        "import",
        "listen",
        "load",
        "lock",
        "move",
        "notify",
        "prepare",
        "reassign",
        "refresh",
        "reindex",
        "release",
        "reset",
        "revoke",
        "rollback",
        "savepoint",
        "security",
        "set",
        "start",
        "truncate",
        "unlisten",
        "vacuum",
    ]
)
_REFUSED_CALLS = re.compile(
    r"\b(set_config|pg_advisory_lock(?:_shared)?|pg_try_advisory_lock(?:_shared)?"
    r"|pg_advisory_unlock\w*|dblink\w*|lo_import|lo_export|pg_read_\w*file|pg_ls_\w+)\s*\(",
    re.IGNORECASE,
)
_FIRST_WORD = re.compile(r"[A-Za-z_]+")


def statement_refusal(sql: str) -> str | None:
    """Why ``sql`` may not run as a function's statement (None: it may)."""
    rest = sql[_LEADING_COMMENTS.match(sql).end() :]  # type: ignore[union-attr]
    first = _FIRST_WORD.match(rest)
    if first is None:
        return "the statement is empty or does not start with a keyword"
    if first.group(0).lower() in _REFUSED_FIRST:
        return f"{first.group(0).upper()} is not run from a function (each call is a transaction)"
    called = _REFUSED_CALLS.search(sql)
    if called is not None:
        return f"{called.group(1)}() is not called from a function: it outlives the statement"
    return None


class FunctionDatabase:
    def __init__(self, db: Database, limits_of: LimitsOf | None, default_timeout_ms: int) -> None:
        self.db = db
        self.limits_of = limits_of
        self.default_timeout_ms = default_timeout_ms
        self.statements = 0

    async def query(self, entry: TenantEntry, mode: str, sql: str, args: list[Any]) -> Any:
        """Rows as dicts (``fetch``) or the status line (``execute``)."""
        self._check(mode, sql)
        self.statements += 1
        try:
            async with self.db.tenant_transaction_with(entry) as connection:
                await self._time_limit(entry, connection)
                return await self._run(connection, mode, sql, args)
        except asyncpg.DataError as exc:
            raise refused_value(exc) from exc
        except asyncpg.PostgresError as exc:
            raise entry_error(exc) or exc from exc

    @staticmethod
    def _check(mode: str, sql: str) -> None:
        if not isinstance(sql, str) or mode not in ("fetch", "execute"):
            raise Invalid("ctx.db takes a statement as text", code="function_statement_refused")
        refusal = statement_refusal(sql)
        if refusal is not None:
            raise Invalid(refusal, code="function_statement_refused")

    @staticmethod
    async def _run(connection: Any, mode: str, sql: str, args: list[Any]) -> Any:
        if mode == "execute":
            prepared = await connection.prepare(sql)
            await prepared.fetch(*args)
            return prepared.get_statusmsg()
        rows = await connection.fetch(sql, *args)
        if len(rows) > MAX_ROWS:
            raise Invalid(
                f"the statement returned {len(rows)} rows (at most {MAX_ROWS}): add a LIMIT",
                code="function_result_too_large",
            )
        return [dict(row) for row in rows]

    async def as_platform(self, mode: str, sql: str, args: list[Any]) -> Any:
        """``ctx.system_db`` of a privileged function: the platform's pool, the same
        statement rules, no org's row-level security."""
        self._check(mode, sql)
        self.statements += 1
        try:
            async with self.db.system_connection() as connection, connection.transaction():
                return await self._run(connection, mode, sql, args)
        except asyncpg.PostgresError as exc:
            raise entry_error(exc) or exc from exc

    async def _time_limit(self, entry: TenantEntry, connection: Any) -> None:
        if self.limits_of is None or entry.org is None:
            return
        limit = self.limits_of(entry.org).statement_timeout_ms
        if limit != self.default_timeout_ms:
            # Transaction-local: the org's own limit, for this statement only.
            await connection.execute("SELECT set_config('statement_timeout', $1, true)", str(limit))
