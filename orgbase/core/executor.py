"""Runs a planned statement inside an org: the data API's execute stage.

- ``read``: one statement behind the entry's context CTE (a single round trip that checks
  the credential and enters the org), on a read replica that has the writer's own writes
  or else on the primary (``ReplicaRouter``: read-your-writes by commit LSN).
- ``value``: one statement in a transaction whose first statement entered the org.
- ``write``: a write's transaction (entered first, under the org's statement timeout);
  once it commits, its position is recorded so the writer's next reads see it.

What the statements say is the caller's; a failed statement keeps its SQLSTATE as the
API's code (``pg_errors.translate``, as PostgREST does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg

from orgbase.core.pg_errors import translate
from orgbase.core.postgres import CONNECTION_ERRORS, Connection, Database, TenantEntry, discard
from orgbase.core.replicas import ReplicaRouter, parse_lsn, writer_of

T = TypeVar("T")
_STATEMENT_TIMEOUT = "SELECT set_config('statement_timeout', $1, true)"


@contextmanager
def _translated() -> Iterator[None]:
    """A failed statement comes out as the API's error, its SQLSTATE as the code."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        raise translate(exc) from exc


class TenantExecutor:
    def __init__(self, db: Database, replicas: ReplicaRouter | None) -> None:
        self.db = db
        self.replicas = replicas if replicas is not None and replicas.enabled else None

    async def read(
        self,
        entry: TenantEntry,
        statement: str,
        values: Sequence[Any],
        time_limit: float | None = None,
        *,
        routed: bool = True,
    ) -> asyncpg.Record:
        """``statement`` (which reads ``ctx``) behind the entry's CTE; past ``time_limit``
        seconds it is stopped. ``routed``: a replica may answer. An entry switched to an
        app role reads in a transaction (the role must be set before the statement is
        planned), on the primary."""
        sql = f"{entry.cte()} {statement}"
        args = (*entry.args, *values)
        with _translated():
            if entry.switched:
                row = await self._read_switched(entry, statement, values, time_limit)
            elif routed and self.replicas is not None:
                row = await self._on_replica(self.replicas, entry, sql, args, time_limit)
            else:
                row = await self.db.tenant_fetchrow(entry.org, sql, *args, time_limit=time_limit)
        assert row is not None
        return row

    async def _read_switched(
        self,
        entry: TenantEntry,
        statement: str,
        values: Sequence[Any],
        time_limit: float | None,
    ) -> asyncpg.Record | None:
        async with self.db.tenant_transaction_with(entry) as connection:
            if time_limit is not None:
                await connection.execute(_STATEMENT_TIMEOUT, str(int(time_limit * 1000)))
            return await connection.fetchrow(
                f"{entry.entered_cte()} {statement}", *entry.args, *values
            )

    async def _on_replica(
        self,
        replicas: ReplicaRouter,
        entry: TenantEntry,
        sql: str,
        args: tuple[Any, ...],
        time_limit: float | None,
    ) -> asyncpg.Record | None:
        """On a replica that has the writer's own writes, else on the primary. A replica's
        pool is its own: the fair gate and an org's statement timeout apply on the primary
        (a timeout on a replica would read as the replica failing, and run twice)."""
        return await replicas.read(
            writer_of(entry.args),
            lambda: self.db.tenant_fetchrow(entry.org, sql, *args, time_limit=time_limit),
            lambda pool: self._replica_fetchrow(pool, sql, args),
        )

    async def _replica_fetchrow(
        self, pool: asyncpg.Pool, sql: str, args: tuple[Any, ...]
    ) -> asyncpg.Record | None:
        """One statement on a replica's pool. Connection failures come out as they are
        (the router then reads from the primary)."""
        connection = await pool.acquire(timeout=self.db.settings.acquire_timeout)
        try:
            return await connection.fetchrow(sql, *args)
        except CONNECTION_ERRORS:
            discard(connection)
            raise
        finally:
            await pool.release(connection)

    async def value(self, entry: TenantEntry, sql: str, values: Sequence[Any]) -> Any:
        """One statement in a transaction that entered the org; its first value."""
        with _translated():
            async with self.db.tenant_transaction_with(entry) as connection:
                return await connection.fetchval(sql, *values)

    async def write(
        self,
        entry: TenantEntry,
        work: Callable[[Connection], Awaitable[T]],
        timeout_ms: int | None = None,
    ) -> T:
        """``work`` in a write's transaction, entered; ``timeout_ms``: the org's own
        statement timeout for this transaction only (else the pool's command timeout, with
        no round trip). An exception out of ``work`` rolls it back and records nothing."""
        commit_lsn: list[str] | None = [] if self.replicas is not None else None
        with _translated():
            async with self.db.tenant_transaction_with(entry, commit_lsn) as connection:
                if timeout_ms is not None:
                    await connection.execute(_STATEMENT_TIMEOUT, str(timeout_ms))
                done = await work(connection)
        if self.replicas is not None and commit_lsn:
            await self.replicas.wrote(writer_of(entry.args), parse_lsn(commit_lsn[0]))
        return done
