"""The effective limits of each org: the settings' defaults with a platform admin's
overrides (``orgbase.org_limits``), cached in process.

Overrides are few (orgs a platform admin set by hand): each process holds all of them,
read in one query at start and again every ``cache_seconds`` in the background, so an
org without overrides has the defaults and no request waits for a load (with 10,000
orgs, loading each org's limits on its first request cost 6% of a worker). Should there be
more overrides than ``cache_size``, the store falls back to loading each org when first
seen, in a bounded cache (least recently used out) refreshed the same way.

A change is notified on ``orgbase_limits`` in its own transaction; every gateway reloads
that org at once, and reloads everything after its LISTEN connection comes back (a notice
may have been missed).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import structlog

from orgbase.core.errors import OrgbaseError
from orgbase.core.org_limits import OrgLimits
from orgbase.core.orgs import LiveOrgs
from orgbase.core.pg_listener import PgListener
from orgbase.core.postgres import Database
from orgbase.core.settings import LimitsSettings
from orgbase.core.tasks import TaskSet
from orgbase.limits.overrides import defaults, validate_overrides, with_overrides

log = structlog.get_logger("orgbase.limits")

CHANNEL = "orgbase_limits"
RETRY_SECONDS = 5.0
"""How soon an org whose limits could not be loaded (PostgreSQL down) is tried again."""


class LimitsStore:
    def __init__(
        self, db: Database, settings: LimitsSettings, orgs: LiveOrgs, tasks: TaskSet
    ) -> None:
        self.db = db
        self.settings = settings
        self.orgs = orgs
        """The tenancy area's: an admin changes the limits of live orgs only."""
        self.defaults = defaults(settings)
        self._everyone: dict[UUID, OrgLimits] | None = None
        """Every org with overrides (the rest have the defaults); None: not read yet, or
        more than cache_size of them (then orgs are loaded one by one into _cache)."""
        self._everyone_expires = 0.0
        self._everyone_loading: asyncio.Task[None] | None = None
        self._changes = 0
        """Notices seen: a full read that saw one arrive meanwhile reads again."""
        self._cache: OrderedDict[UUID, tuple[OrgLimits, float]] = OrderedDict()
        self._loading: dict[UUID, asyncio.Task[OrgLimits]] = {}
        self.tasks = tasks

    def listen(self, listener: PgListener) -> None:
        listener.subscribe(CHANNEL, self._changed)
        listener.on_connected(self._reload_all)

    def start(self) -> None:
        self._read_everyone_soon()

    # -- the hot path -----------------------------------------------------------------

    def of(self, org: UUID) -> OrgLimits:
        """The org's limits from the cache (no I/O): the defaults when not loaded yet."""
        everyone = self._everyone
        if everyone is not None:
            if self._everyone_expires < time.monotonic():
                self._read_everyone_soon()
            return everyone.get(org, self.defaults)
        found = self._cache.get(org)
        if found is None:
            return self.defaults
        limits, expires = found
        if expires < time.monotonic():
            self._start_load(org)
        return limits

    async def ensure(self, org: UUID) -> OrgLimits:
        """The org's limits, loaded first when this process has not seen it lately."""
        if self._everyone is not None:
            return self.of(org)
        found = self._cache.get(org)
        if found is not None:
            self._cache.move_to_end(org)
            limits, expires = found
            if expires < time.monotonic():
                self._start_load(org)
            return limits
        return await self._start_load(org)

    # -- loading ----------------------------------------------------------------------

    def _read_everyone_soon(self) -> None:
        if self._everyone_loading is None or self._everyone_loading.done():
            work = self._read_everyone()
            self._everyone_loading = self.tasks.spawn(work, "org limits: read all")

    async def _read_everyone(self) -> None:
        while True:
            changes = self._changes
            try:
                async with self.db.system_connection() as connection:
                    rows = await connection.fetch(
                        "SELECT org_id, overrides FROM orgbase.org_limits LIMIT $1",
                        self.settings.cache_size + 1,
                    )
            except (OrgbaseError, OSError, asyncpg.PostgresError) as exc:
                log.warning("org limits not read: kept as they were", error=repr(exc))
                self._everyone_expires = time.monotonic() + RETRY_SECONDS
                return
            if changes != self._changes:
                continue  # a change was notified while reading: the rows may predate it
            if len(rows) > self.settings.cache_size:
                self._everyone = None
                return
            self._everyone = {
                row["org_id"]: with_overrides(self.defaults, _decode(row["overrides"]))
                for row in rows
            }
            self._everyone_expires = time.monotonic() + self.settings.cache_seconds
            return

    def _start_load(self, org: UUID) -> asyncio.Task[OrgLimits]:
        task = self._loading.get(org)
        if task is None:
            task = self.tasks.spawn(self._load(org), "org limits: load one")
            self._loading[org] = task
            task.add_done_callback(lambda _: self._loading.pop(org, None))
        return task

    async def _load(self, org: UUID) -> OrgLimits:
        try:
            async with self.db.system_connection() as connection:
                raw = await connection.fetchval(
                    "SELECT overrides FROM orgbase.org_limits WHERE org_id = $1", org
                )
        except (OrgbaseError, OSError, asyncpg.PostgresError) as exc:
            log.warning("org limits not loaded: defaults apply", org=str(org), error=repr(exc))
            stale = self._cache.get(org)
            limits = stale[0] if stale else self.defaults
            self._remember(org, limits, RETRY_SECONDS)
            return limits
        overrides = _decode(raw)
        limits = with_overrides(self.defaults, overrides)
        self._remember(org, limits, self.settings.cache_seconds, bool(overrides))
        return limits

    def _remember(
        self, org: UUID, limits: OrgLimits, seconds: float, overridden: bool | None = None
    ) -> None:
        everyone = self._everyone
        if everyone is not None:
            if overridden is None:  # PostgreSQL could not say: keep what is held
                return
            if overridden:
                everyone[org] = limits
            else:
                everyone.pop(org, None)
            if len(everyone) > self.settings.cache_size:
                self._everyone = None  # too many to hold: one by one from now on
            return
        self._cache[org] = (limits, time.monotonic() + seconds)
        self._cache.move_to_end(org)
        while len(self._cache) > self.settings.cache_size:
            self._cache.popitem(last=False)

    def _changed(self, payload: str) -> None:
        try:
            org = UUID(payload)
        except ValueError:
            return
        self._changes += 1
        if self._everyone is not None or org in self._cache:
            self.tasks.spawn(self._load(org), "org limits: reload one")

    def _reload_all(self) -> None:
        self._changes += 1
        self._read_everyone_soon()
        for org in list(self._cache):
            self.tasks.spawn(self._load(org), "org limits: reload one")

    @property
    def holds_everyone(self) -> bool:
        """Every override is held (no per-org loads); False: one by one into the cache."""
        return self._everyone is not None

    @property
    def cached(self) -> int:
        return len(self._cache) if self._everyone is None else len(self._everyone)

    # -- platform admins --------------------------------------------------------------

    async def overrides(self, org: UUID) -> dict[str, int]:
        async with self.db.system_connection() as connection:
            await self.orgs.hold(connection, org)
            raw = await connection.fetchval(
                "SELECT overrides FROM orgbase.org_limits WHERE org_id = $1", org
            )
        return _decode(raw)

    async def effective(self, org: UUID) -> OrgLimits:
        return with_overrides(self.defaults, await self.overrides(org))

    async def replace(self, org: UUID, body: Any, admin: UUID) -> OrgLimits:
        """Set the org's limits (a flat object; absent or null names use the defaults).
        Lowering a storage limit below what the org holds refuses its writes that would
        grow it; nothing held is deleted."""
        given = validate_overrides(body)
        overrides = {name: value for name, value in given.items() if value is not None}
        async with self.db.system_connection() as connection, connection.transaction():
            await self.orgs.hold(connection, org)
            if overrides:
                await connection.execute(
                    "INSERT INTO orgbase.org_limits (org_id, overrides, updated_by)"
                    " VALUES ($1, $2::jsonb, $3) ON CONFLICT (org_id) DO UPDATE"
                    " SET overrides = EXCLUDED.overrides, updated_by = EXCLUDED.updated_by,"
                    " updated_at = now()",
                    org,
                    msgspec.json.encode(overrides).decode(),
                    admin,
                )
            else:
                await connection.execute("DELETE FROM orgbase.org_limits WHERE org_id = $1", org)
            await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, str(org))
        limits = with_overrides(self.defaults, overrides)
        self._remember(org, limits, self.settings.cache_seconds, bool(overrides))
        return limits


def _decode(raw: Any) -> dict[str, int]:
    if raw is None:
        return {}
    value = msgspec.json.decode(raw) if isinstance(raw, str | bytes) else raw
    return {str(k): int(v) for k, v in dict(value).items() if isinstance(v, int)}
