"""PostgreSQL access: the two asyncpg pools and the one way to apply an org context.

The context is always transaction-local (``set_config(..., true)``), never session-level:
a pooled connection must not carry one request's org into the next. Reads use one
statement (a MATERIALIZED CTE that sets the context, joined LATERAL to the query); writes
use a transaction whose first statement sets the context. See FACTS.md for the figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import structlog

from orgbase.core.context import OrgContext
from orgbase.core.errors import Invalid, Unavailable
from orgbase.core.settings import DatabaseSettings

log = structlog.get_logger("orgbase.postgres")

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]
else:
    Connection = asyncpg.Connection

# Errors that mean "the database is not reachable", as opposed to "the query is wrong".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # Raised when a connection the server is closing (fast shutdown, restart) is used
    # before its socket is gone: the protocol is still consuming the server's FATAL.
    asyncpg.InternalClientError,
)


def database_failure(exc: BaseException) -> Unavailable | Invalid:
    """asyncpg's InterfaceError covers both a lost connection and a value it cannot send
    (a ValueError, e.g. a string with a lone surrogate): only the first is an outage."""
    if isinstance(exc, ValueError):
        return Invalid(f"a value cannot be sent to the database: {exc}"[:300], code="invalid_value")
    return Unavailable("the database is unavailable", code="database_unavailable")


def refused_value(exc: asyncpg.DataError) -> Invalid:
    """Class 22: a value PostgreSQL cannot take (a NUL character in text, an escape jsonb
    refuses, a number out of range) is the request's fault, not an outage. (The data API
    translates these itself, into PostgREST's codes.)"""
    return Invalid(f"a value cannot be stored or compared: {exc}"[:300], code="invalid_value")


def _discard(connection: Connection) -> None:
    """Close a connection that failed at the connection level, so the pool makes a new
    one: the tenant pool skips the reset round trip that would otherwise find it broken."""
    try:
        if not connection.is_closed():
            connection.terminate()
    except asyncpg.InterfaceError:
        pass  # asyncpg saw it close and has already taken it back


def _connection_failure(connection: Connection, exc: BaseException) -> Unavailable | Invalid:
    failure = database_failure(exc)
    if isinstance(failure, Unavailable):
        _discard(connection)
    return failure


_CLOSE_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_ERRORS)

# The context as the first part of a single statement: $1..$5 are org, user, role,
# request id and API key.
CONTEXT_CTE = (
    "WITH ctx AS MATERIALIZED (SELECT"
    " set_config('orgbase.org_id', $1::text, true) AS org,"
    " set_config('orgbase.user_id', $2::text, true) AS usr,"
    " set_config('orgbase.role', $3::text, true) AS role,"
    " set_config('orgbase.request_id', $4::text, true) AS rid,"
    " set_config('orgbase.key_id', $5::text, true) AS kid,"
    " set_config('application_name', 'orgbase ' || $4::text, true) AS app)"
)
CONTEXT_PARAMS = 5
SET_CONTEXT = (
    "SELECT set_config('orgbase.org_id', $1::text, true),"
    " set_config('orgbase.user_id', $2::text, true),"
    " set_config('orgbase.role', $3::text, true),"
    " set_config('orgbase.request_id', $4::text, true),"
    " set_config('orgbase.key_id', $5::text, true),"
    " set_config('application_name', 'orgbase ' || $4::text, true)"
)


def context_args(ctx: OrgContext) -> tuple[str, str, str, str, str]:
    return (
        str(ctx.org_id),
        str(ctx.user_id or ""),
        ctx.role,
        ctx.request_id,
        str(ctx.key_id or ""),
    )


def scoped_select(inner: str) -> str:
    """Wrap a SELECT so the context applies to it in the same statement.

    ``inner`` must mention ``ctx.org IS NOT NULL`` in its WHERE clause and carry a LIMIT or
    ``OFFSET 0``, so the planner cannot flatten it and evaluates the settings first. Its own
    parameters start at ``$5``.
    """
    # ``inner`` is built from the introspected schema and placeholders, never from input.
    return f"{CONTEXT_CTE} SELECT q.* FROM ctx CROSS JOIN LATERAL ({inner}) AS q"  # noqa: S608


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The tenant pool's release: asyncpg still rolls back an open transaction, but skips its
    RESET ALL / UNLISTEN / advisory-unlock round trip. Safe because nothing on this pool
    ever sets session-level state: every setting is transaction-local (set_config(..., true)),
    and it never LISTENs or takes advisory locks. tests/integration/test_rls.py checks
    that a reused connection carries no context."""


class Database:
    """The tenant pool (``orgbase_api``) and the platform pool (``orgbase_system``)."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self._api: asyncpg.Pool | None = None
        self._system: asyncpg.Pool | None = None
        # asyncpg's pool hands a freed connection to whoever asks first, so under load a
        # waiting request can be overtaken again and again (tail latencies of 100+ ms were
        # measured). A FIFO semaphore in front of the tenant pool makes waiting fair.
        self._api_gate = asyncio.Semaphore(settings.api_pool_max)

    async def open(self) -> None:
        s = self.settings
        self._api = await self._create_pool(
            s.api_url, s.api_pool_min, s.api_pool_max, "api", reset=_keep_session
        )
        self._system = await self._create_pool(
            s.system_url, s.system_pool_min, s.system_pool_max, "system"
        )

    async def _create_pool(
        self, dsn: str, min_size: int, max_size: int, name: str, reset: Any = None
    ) -> asyncpg.Pool:
        s = self.settings
        kwargs: dict[str, Any] = {
            "reset": reset,
            "dsn": dsn,
            "max_size": max_size,
            "timeout": s.connect_timeout,
            "command_timeout": s.command_timeout,
            "max_inactive_connection_lifetime": 300.0,
            # JIT only slows down the short queries an API runs.
            "server_settings": {"application_name": f"orgbase-{name}", "jit": "off"},
        }
        try:
            return await asyncpg.create_pool(min_size=min_size, **kwargs)
        except CONNECTION_ERRORS as exc:
            # Start anyway: the pool connects lazily and /health/ready reports the outage.
            log.warning("postgres unreachable at start", pool=name, error=str(exc))
            return await asyncpg.create_pool(min_size=0, **kwargs)

    async def close(self) -> None:
        for pool in (self._api, self._system):
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), timeout=10)
                except _CLOSE_ERRORS:
                    pool.terminate()
        self._api = self._system = None

    @property
    def api(self) -> asyncpg.Pool:
        if self._api is None:
            raise Unavailable("the database is not open", code="database_unavailable")
        return self._api

    @property
    def system(self) -> asyncpg.Pool:
        if self._system is None:
            raise Unavailable("the database is not open", code="database_unavailable")
        return self._system

    @asynccontextmanager
    async def _acquire(self, pool: asyncpg.Pool) -> AsyncIterator[Connection]:
        try:
            connection = await pool.acquire(timeout=self.settings.acquire_timeout)
        except CONNECTION_ERRORS as exc:
            raise Unavailable("the database is unavailable", code="database_unavailable") from exc
        try:
            yield connection
        finally:
            await pool.release(connection)

    @asynccontextmanager
    async def system_connection(self) -> AsyncIterator[Connection]:
        """A platform connection (auth, memberships). Never for tenant data."""
        async with self._acquire(self.system) as connection:
            try:
                yield connection
            except CONNECTION_ERRORS as exc:
                raise _connection_failure(connection, exc) from exc
            except asyncpg.DataError as exc:
                raise refused_value(exc) from exc

    async def tenant_fetch(
        self, ctx: OrgContext, inner: str, args: Sequence[Any] = ()
    ) -> list[asyncpg.Record]:
        """One round trip: set the context and run ``inner`` (see scoped_select)."""
        async with self.tenant_connection() as connection:
            try:
                rows: list[asyncpg.Record] = await connection.fetch(
                    scoped_select(inner), *context_args(ctx), *args
                )
            except asyncpg.DataError as exc:
                raise refused_value(exc) from exc
            return rows

    def tenant_transaction(self, ctx: OrgContext) -> AbstractAsyncContextManager[Connection]:
        """A transaction on the tenant pool whose first statement sets the context."""
        return self.tenant_transaction_with((SET_CONTEXT, context_args(ctx)))

    @asynccontextmanager
    async def tenant_transaction_with(
        self, enter: tuple[str, Sequence[Any]]
    ) -> AsyncIterator[Connection]:
        """A transaction on the tenant pool whose first statement is ``enter`` (it sets
        the context). PostgreSQL errors come out as they are; callers translate them."""
        statement, args = enter
        async with self.tenant_connection() as connection, connection.transaction():
            await connection.execute(statement, *args)
            yield connection

    async def _enter_api(self) -> Connection:
        """A tenant-pool connection, first come first served, waiting at most
        acquire_timeout. Pair with _leave_api."""
        gate = self._api_gate
        if gate.locked():
            try:
                async with asyncio.timeout(self.settings.acquire_timeout):
                    await gate.acquire()
            except TimeoutError as exc:
                raise Unavailable("the database is busy", code="database_unavailable") from exc
        else:
            await gate.acquire()
        try:
            connection: Connection = await self.api.acquire(timeout=self.settings.connect_timeout)
        except CONNECTION_ERRORS as exc:
            gate.release()
            raise Unavailable("the database is unavailable", code="database_unavailable") from exc
        except BaseException:
            gate.release()
            raise
        return connection

    async def _leave_api(self, connection: Connection) -> None:
        try:
            await self.api.release(connection)
        finally:
            self._api_gate.release()

    async def tenant_fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """One statement on the tenant pool (it applies its own context): the hot path of
        reads, without context-manager layers. PostgreSQL errors come out as they are."""
        connection = await self._enter_api()
        try:
            return await connection.fetchrow(sql, *args)
        except CONNECTION_ERRORS as exc:
            raise _connection_failure(connection, exc) from exc
        finally:
            await self._leave_api(connection)

    @asynccontextmanager
    async def tenant_connection(self) -> AsyncIterator[Connection]:
        """A tenant-pool connection (whoever uses it applies the context)."""
        connection = await self._enter_api()
        try:
            yield connection
        except CONNECTION_ERRORS as exc:
            raise _connection_failure(connection, exc) from exc
        finally:
            await self._leave_api(connection)

    async def ping(self) -> None:
        """Run a trivial query on both pools (readiness)."""
        for pool in (self.api, self.system):
            async with self._acquire(pool) as connection:
                await connection.fetchval("SELECT 1")  # readiness: bypasses the fair gate

    def pool_stats(self) -> dict[str, dict[str, int]]:
        stats = {}
        for name, pool in (("api", self._api), ("system", self._system)):
            if pool is not None:
                size, idle = pool.get_size(), pool.get_idle_size()
                stats[name] = {
                    "size": size,
                    "idle": idle,
                    "in_use": size - idle,
                    "max": pool.get_max_size(),
                }
        if "api" in stats:
            # Requests queued at the fair gate, waiting for a tenant connection.
            stats["api"]["waiting"] = len(getattr(self._api_gate, "_waiters", None) or ())
        return stats
