"""PostgreSQL access: the two asyncpg pools and the one way to enter an org.

The context is always transaction-local, never session-level: a pooled connection must not
carry one request's org into the next. Reads use one statement (a MATERIALIZED CTE that
enters the org, joined LATERAL to the query); writes use a transaction whose first
statement enters it. docs/architecture.md has the model and the figures it rests on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from uuid import UUID

import asyncpg
import structlog

from orgbase.core.context import OrgContext
from orgbase.core.errors import Invalid, Unavailable
from orgbase.core.pg_errors import (
    database_failure,
    database_unavailable,
    entry_error,
    refused_value,
    statement_timed_out,
)
from orgbase.core.settings import DatabaseSettings
from orgbase.core.statement_gate import GateTimeout, StatementGate

log = structlog.get_logger("orgbase.postgres")

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]
else:
    Connection = asyncpg.Connection
AnyConnection: TypeAlias = "Connection | asyncpg.Connection[asyncpg.Record]"
"""A pool's connection or one opened alone (the command line's)."""

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


def discard(connection: Connection) -> None:
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
        discard(connection)
    return failure


_CLOSE_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_ERRORS)

# -- entering an org ----------------------------------------------------------------------
#
# A statement or transaction on the tenant pool enters its org through one of the entry
# functions of sql/rls/0009_verified_context.sql: each checks a credential in PostgreSQL
# and sets the transaction-local context with a proof the policies verify. A context set by
# hand (set_config) has no valid proof and reads nothing. A session or an impersonation
# enters with its id and the secret of a live token (sql/rls/0023_session_secrets.sql):
# ids alone, which tokens and the audit log carry, enter nothing. Every entry takes four
# parameters, $1..$4, so a query's own parameters always start at $5.

CONTEXT_PARAMS = 4
_SESSION = "orgbase.enter_session($1::uuid, $2::text, $3::uuid, $4::text)"
_API_KEY = "orgbase.enter_api_key($1::bytea, $2::uuid, $3::uuid, $4::text)"
_IMPERSONATION = "orgbase.enter_impersonation($1::uuid, $2::text, $3::uuid, $4::text)"
ORG_LOCK = "SELECT pg_advisory_xact_lock(orgbase.org_lock_key($1))"
"""Taken by the deletion of an org: it waits for every transaction inside the org."""


@dataclass(frozen=True, slots=True)
class TenantEntry:
    """How one statement or transaction enters an org, with the credential PostgreSQL checks.

    ``cte()`` starts a single-statement read (its rows need ``ctx.role IS NOT NULL`` inside a
    subquery the planner cannot flatten); ``statement()`` is the first statement of a
    transaction. The entry fails with OB401 (session ended), OB411 (API key unusable),
    OB412 (impersonation ended) or OB404 (no such org), which ``pg_errors.entry_error``
    turns into the API's errors.
    """

    call: str
    args: tuple[Any, ...] = field(repr=False)  # a credential: never shown
    holds_org: bool = True
    """A write transaction holds the org's advisory lock (shared) from before its entry, so
    an org's deletion waits for it and a later entry finds the org closed. Its org is $3."""
    app_role: str = "authenticated"
    """The Supabase role the caller's requests on app tables run as (sql/rls/0034)."""
    switched: bool = False
    """Runs as ``app_role`` after the entry (a transaction: see ``as_app_role``)."""

    @property
    def org(self) -> UUID | None:
        """The org entered (the fair gate's queue)."""
        org: UUID | None = self.args[2] if self.holds_org else self.args[0]
        return org

    @classmethod
    def session(
        cls, session_id: UUID, secret: str | None, org_id: UUID, request_id: str
    ) -> TenantEntry:
        """``secret``: the access token's own (its ``ssec`` claim)."""
        return cls(_SESSION, (session_id, secret, org_id, request_id))

    @classmethod
    def api_key(cls, digest: bytes, org_id: UUID | None, request_id: str) -> TenantEntry:
        return cls(_API_KEY, (digest, None, org_id, request_id), app_role="service_role")

    @classmethod
    def impersonation(
        cls, impersonation_id: UUID, secret: str | None, org_id: UUID, request_id: str
    ) -> TenantEntry:
        """``secret``: the impersonation token's own."""
        return cls(_IMPERSONATION, (impersonation_id, secret, org_id, request_id))

    @classmethod
    def org_purge(cls, org_id: UUID, request_id: str) -> TenantEntry:
        """The owner's context in an org already closed for deletion (only to delete its
        rows; a transaction's first statement only: it takes two parameters)."""
        return cls(
            "orgbase.enter_org_purge($1::uuid, $2::text)", (org_id, request_id), holds_org=False
        )

    @classmethod
    def for_context(cls, ctx: OrgContext) -> TenantEntry:
        """The entry of an already resolved context (PostgreSQL checks its credential again)."""
        if ctx.impersonation_id is not None:
            return cls.impersonation(
                ctx.impersonation_id, ctx.session_secret, ctx.org_id, ctx.request_id
            )
        if ctx.key_digest is not None:
            return cls.api_key(ctx.key_digest, ctx.org_id, ctx.request_id)
        if ctx.session_id is not None:
            return cls.session(ctx.session_id, ctx.session_secret, ctx.org_id, ctx.request_id)
        raise ValueError("this context carries no credential to enter its org with")

    def as_app_role(self) -> TenantEntry:
        """This entry for an app table (outside ``api``): its transaction switches to the
        caller's Supabase role once entered, so the app's grants and policies apply."""
        return replace(self, switched=True)

    def cte(self) -> str:
        return f"WITH ctx AS MATERIALIZED (SELECT {self.call} AS role)"

    def entered_cte(self) -> str:
        """``cte()`` for a statement after the entry in its transaction: the role it set
        (its parameters stay $1..$4, unused)."""
        call = self.call.split("(", 1)[1]
        return f"WITH ctx AS MATERIALIZED (SELECT orgbase.entered_role({call} AS role)"

    def statement(self) -> str:
        switch = f", set_config('role', '{self.app_role}', true)" if self.switched else ""
        if self.holds_org:
            # Left to right: the lock first, then the entry's checks (on a fresh snapshot).
            return (
                f"SELECT pg_advisory_xact_lock_shared(orgbase.org_lock_key($3::uuid)),"
                f" {self.call}{switch}"
            )
        return f"SELECT {self.call}{switch}"


class DeferredEntry:
    """A data API request's entry whose credential only PostgreSQL checks (in the query's
    own statement). ``confirm()`` checks it here instead, for a request refused before any
    statement runs: a dead credential is told so (401) before anything about its request.
    (A plain class: made on every data API request, the cheapest to make.)"""

    __slots__ = ("confirm", "entry")

    def __init__(self, entry: TenantEntry, confirm: Callable[[], Awaitable[object]]) -> None:
        self.entry = entry
        self.confirm = confirm


class DataAccessSource(Protocol):
    """Gives a data API request its entry (the request-auth component, handed to the data
    service at construction by the platform)."""

    async def data_access(self, connection: Any) -> DeferredEntry: ...


def scoped_select(entry: TenantEntry, inner: str) -> str:
    """Wrap a SELECT so it enters the org in the same statement.

    ``inner`` must mention ``ctx.role IS NOT NULL`` in its WHERE clause and carry a LIMIT or
    ``OFFSET 0``, so the planner cannot flatten it and enters the org first. Its own
    parameters start at ``$5``.
    """
    # ``inner`` is built from the introspected schema and placeholders, never from input.
    return f"{entry.cte()} SELECT q.* FROM ctx CROSS JOIN LATERAL ({inner}) AS q"  # noqa: S608


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The tenant pool's release: asyncpg still rolls back an open transaction, but skips its
    RESET ALL / UNLISTEN / advisory-unlock round trip. Safe because nothing on this pool
    ever sets session-level state: every setting is transaction-local (set_config(..., true)),
    it never LISTENs, and its advisory locks are transaction-level (released at commit).
    tests/integration/test_rls.py checks
    that a reused connection carries no context."""


class Database:
    """The tenant pool (``orgbase_api``) and the platform pool (``orgbase_system``)."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self._api: asyncpg.Pool | None = None
        self._system: asyncpg.Pool | None = None
        # asyncpg's pool hands a freed connection to whoever asks first, so under load a
        # waiting request can be overtaken again and again (tail latencies of 100+ ms were
        # measured), and one org's flood takes every connection and database core. The
        # gate in front of the tenant pool (the limits area's fair share of database time)
        # decides who goes next; without one, connections come straight from the pool.
        self.gate: StatementGate | None = None

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
            # JIT only slows down the short queries an API runs. A random page read costs
            # about a sequential one on SSDs and in memory (PostgreSQL's docs suggest 1.1
            # there, its default 4 is for disks): without it the planner prefers walking a
            # small table's primary key and filtering other orgs' rows out (half the table
            # per read, in bench/data_bench.py) to the (org_id, key) index.
            "server_settings": {
                "application_name": f"orgbase-{name}",
                "jit": "off",
                "random_page_cost": "1.1",
            },
        }
        try:
            return await asyncpg.create_pool(min_size=min_size, **kwargs)
        except CONNECTION_ERRORS as exc:
            # Start anyway: the pool connects lazily and /health/ready reports the outage.
            log.warning("postgres unreachable at start", pool=name, error=str(exc))
            return await asyncpg.create_pool(min_size=0, **kwargs)

    async def replica_pool(self, url: str, name: str) -> asyncpg.Pool:
        """A pool on a read replica (the tenant role, sized like the tenant pool)."""
        s = self.settings
        return await self._create_pool(url, 0, s.api_pool_max, name, reset=_keep_session)

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
            raise database_unavailable("the database is not open")
        return self._api

    @property
    def system(self) -> asyncpg.Pool:
        if self._system is None:
            raise database_unavailable("the database is not open")
        return self._system

    @asynccontextmanager
    async def _acquire(self, pool: asyncpg.Pool) -> AsyncIterator[Connection]:
        try:
            connection = await pool.acquire(timeout=self.settings.acquire_timeout)
        except CONNECTION_ERRORS as exc:
            raise database_unavailable("the database is unavailable") from exc
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
        self, entry: TenantEntry, inner: str, args: Sequence[Any] = ()
    ) -> list[asyncpg.Record]:
        """One round trip: enter the org and run ``inner`` (see scoped_select)."""
        async with self.tenant_connection(entry.org) as connection:
            try:
                rows: list[asyncpg.Record] = await connection.fetch(
                    scoped_select(entry, inner), *entry.args, *args
                )
            except asyncpg.DataError as exc:
                raise refused_value(exc) from exc
            except asyncpg.PostgresError as exc:
                raise entry_error(exc) or exc from exc
            return rows

    async def replica_fetch(
        self, pool: asyncpg.Pool, entry: TenantEntry, inner: str, args: Sequence[Any] = ()
    ) -> list[asyncpg.Record]:
        """``tenant_fetch`` on a replica's pool (errors come out as they are)."""
        connection = await pool.acquire(timeout=self.settings.acquire_timeout)
        try:
            rows: list[asyncpg.Record] = await connection.fetch(
                scoped_select(entry, inner), *entry.args, *args
            )
            return rows
        except CONNECTION_ERRORS:
            discard(connection)
            raise
        finally:
            await pool.release(connection)

    def tenant_transaction(self, ctx: OrgContext) -> AbstractAsyncContextManager[Connection]:
        """A transaction on the tenant pool whose first statement enters the context's org."""
        return self.tenant_transaction_with(TenantEntry.for_context(ctx))

    @asynccontextmanager
    async def tenant_transaction_with(
        self, entry: TenantEntry, commit_lsn: list[str] | None = None
    ) -> AsyncIterator[Connection]:
        """A transaction on the tenant pool whose first statement enters the org. A failed
        entry is the API's error; the caller's own statements' errors come out as they are.
        With ``commit_lsn``, the WAL position after the commit is appended to it (a replica
        past it has the write: read-your-writes)."""
        async with self.tenant_connection(entry.org) as connection:
            async with connection.transaction():
                try:
                    await connection.execute(entry.statement(), *entry.args)
                except asyncpg.PostgresError as exc:
                    raise entry_error(exc) or exc from exc
                yield connection
            if commit_lsn is not None:
                # The insert position, not pg_current_wal_lsn() (the write position): with
                # synchronous_commit off the commit record may not be written out yet.
                commit_lsn.append(
                    await connection.fetchval("SELECT pg_current_wal_insert_lsn()::text")
                )

    async def _enter_api(self, org: UUID | None) -> Connection:
        """A tenant-pool connection through the gate, waiting at most acquire_timeout.
        Pair with _leave_api."""
        gate = self.gate
        if gate is None:
            return await self._pool_connection(self.settings.acquire_timeout)
        try:
            await gate.enter(org, self.settings.acquire_timeout)
        except GateTimeout as exc:
            raise database_unavailable("the database is busy") from exc
        try:
            return await self._pool_connection(self.settings.connect_timeout)
        except BaseException:
            gate.leave(org)
            raise

    async def _pool_connection(self, wait_at_most: float) -> Connection:
        try:
            connection: Connection = await self.api.acquire(timeout=wait_at_most)
        except CONNECTION_ERRORS as exc:
            raise database_unavailable("the database is unavailable") from exc
        return connection

    async def _leave_api(self, org: UUID | None, connection: Connection) -> None:
        try:
            await self.api.release(connection)
        finally:
            if self.gate is not None:
                self.gate.leave(org)

    async def tenant_fetchrow(
        self, org: UUID | None, sql: str, *args: Any, time_limit: float | None = None
    ) -> asyncpg.Record | None:
        """One statement on the tenant pool (it applies its own context): the hot path of
        reads, without context-manager layers. PostgreSQL errors come out as they are;
        past ``time_limit`` seconds (an org's own statement timeout) the statement is
        stopped (504 statement_timeout)."""
        connection = await self._enter_api(org)
        try:
            return await connection.fetchrow(sql, *args, timeout=time_limit)
        except TimeoutError as exc:
            if time_limit is None:  # the pool's command timeout: the server stopped answering
                raise _connection_failure(connection, exc) from exc
            # Past the org's own limit (or the server stopped answering): not reused.
            discard(connection)
            raise statement_timed_out(time_limit) from exc
        except CONNECTION_ERRORS as exc:
            raise _connection_failure(connection, exc) from exc
        finally:
            await self._leave_api(org, connection)

    @asynccontextmanager
    async def tenant_connection(self, org: UUID | None) -> AsyncIterator[Connection]:
        """A tenant-pool connection (whoever uses it applies the context)."""
        connection = await self._enter_api(org)
        try:
            yield connection
        except CONNECTION_ERRORS as exc:
            raise _connection_failure(connection, exc) from exc
        finally:
            await self._leave_api(org, connection)

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
        if "api" in stats and self.gate is not None:
            # Requests queued at the gate, waiting for a tenant connection.
            stats["api"]["waiting"] = self.gate.waiting
        return stats
