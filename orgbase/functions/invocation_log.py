"""The invocation log (``orgbase.function_invocations``): one row per invocation, kept in
process and written in batches every second (an invocation costs no statement of its
own), read back per org and function, and forgotten after the retention."""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
import structlog

from orgbase.core.periodic import Periodic
from orgbase.core.postgres import Database
from orgbase.functions.host import Invocation

log = structlog.get_logger("orgbase.functions")

MOST_PENDING = 10_000
"""Rows kept while the database is away; past it the oldest are dropped (and counted)."""
FLUSH_SECONDS = 1.0
EXPIRE_EVERY_SECONDS = 600.0

_INSERT = """
INSERT INTO orgbase.function_invocations
    (org_id, function, kind, request_id, status, outcome, duration_ms, cpu_ms, error, logs,
     created_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                     $7::int[], $8::int[], $9::text[], $10::jsonb[], $11::timestamptz[])
"""
_EXPIRE = """
DELETE FROM orgbase.function_invocations WHERE id IN (
    SELECT id FROM orgbase.function_invocations
    WHERE created_at < now() - make_interval(days => $1) LIMIT 5000)
"""
_RECENT = """
SELECT id, org_id, function, kind, request_id, status, outcome, duration_ms, cpu_ms,
       CASE WHEN $4 THEN error END AS error, logs, created_at
FROM orgbase.function_invocations
WHERE ($1::uuid IS NULL OR org_id = $1) AND ($2::text IS NULL OR function = $2)
  AND ($5::boolean IS NULL OR (status >= 500) = $5)
ORDER BY id DESC LIMIT $3
"""
_COLUMNS = 11


class InvocationLog:
    def __init__(self, db: Database, retention_days: int) -> None:
        self.db = db
        self.retention_days = retention_days
        self.dropped = 0
        self._pending: deque[tuple[Any, ...]] = deque()
        self._last_expiry = 0.0
        self.periodic = Periodic(
            "function invocation log", self.flush, FLUSH_SECONDS, last_round=self.flush
        )

    def record(  # noqa: PLR0917 - a recorder: one row's columns, positionally
        self,
        invocation: Invocation,
        outcome: str,
        status: int,
        seconds: float,
        cpu_ms: float,
        error: str | None,
    ) -> None:
        if len(self._pending) >= MOST_PENDING:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(
            (
                invocation.org,
                invocation.spec.name,
                invocation.kind,
                invocation.request_id or None,
                status,
                outcome,
                round(seconds * 1000),
                round(cpu_ms),
                error,
                msgspec.json.encode(invocation.lines).decode() if invocation.lines else None,
                _now(),
            )
        )

    async def flush(self) -> None:
        rows, self._pending = list(self._pending), deque()
        if rows:
            columns = [list(column) for column in zip(*rows, strict=True)]
            try:
                async with self.db.system_connection() as connection:
                    await connection.execute(_INSERT, *columns)
            except Exception:
                self._pending.extendleft(reversed(rows))  # written by a later round
                raise
        if time.monotonic() - self._last_expiry > EXPIRE_EVERY_SECONDS:
            self._last_expiry = time.monotonic()
            async with self.db.system_connection() as connection:
                await connection.execute(_EXPIRE, self.retention_days)

    async def recent(
        self,
        *,
        org: UUID | None,
        function: str | None,
        limit: int,
        with_errors: bool,
        failed: bool | None = None,
    ) -> list[dict[str, Any]]:
        """The newest invocations (of an org, of a function); ``error`` (the traceback)
        only ``with_errors`` (platform admins)."""
        await self.flush()
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_RECENT, org, function, limit, with_errors, failed)
        return [_shown(dict(row)) for row in rows]


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    row["created_at"] = row["created_at"].isoformat()
    row["org_id"] = str(row["org_id"]) if row["org_id"] else None
    if row["logs"] is not None:
        row["logs"] = msgspec.json.decode(row["logs"])
    return row


def _now() -> datetime:
    return datetime.now(UTC)
