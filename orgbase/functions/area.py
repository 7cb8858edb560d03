"""Builds the functions area: the catalog, the worker pool, the host of ``ctx`` and the
service behind ``/functions/v1``. The platform hands it the limits lookup, the meter and the
task set; it imports no other area."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import structlog

from orgbase.core.context import Principal
from orgbase.core.destinations import DestinationPolicy
from orgbase.core.errors import OrgbaseError
from orgbase.core.org_usage import OrgUsage
from orgbase.core.periodic import Periodic
from orgbase.core.resources import Resources
from orgbase.core.tasks import TaskSet
from orgbase.functions.database import FunctionDatabase
from orgbase.functions.deliveries import Deliveries
from orgbase.functions.host import Host
from orgbase.functions.invocation_log import InvocationLog
from orgbase.functions.outbound import Outbound
from orgbase.functions.pool import WorkerPool
from orgbase.functions.registry import Registry
from orgbase.functions.schedules import Scheduler
from orgbase.functions.service import FunctionService
from orgbase.functions.subscriptions import write_subscriptions
from orgbase.functions.triggers import CHANNEL, EventDispatcher

log = structlog.get_logger("orgbase.functions")
RELOAD_SECONDS = 1.0
PlatformAdminCheck = Callable[[Principal], Awaitable[UUID]]


@dataclass
class FunctionsArea:
    registry: Registry
    pool: WorkerPool
    host: Host
    service: FunctionService
    invocations: InvocationLog
    deliveries: Deliveries
    events: EventDispatcher | None
    """Runs the functions the database's events are owed to (None: events are off)."""
    schedules: Scheduler | None
    reload: bool = False
    """Whether a change of the functions' folder starts new workers (a development server)."""
    reloader: Periodic | None = field(init=False, default=None)
    require_platform_admin: PlatformAdminCheck | None = None
    """Wired by the platform (the tenancy area knows who the platform admins are)."""

    def __post_init__(self) -> None:
        if self.reload:
            self.reloader = Periodic("functions reload", self.reload_if_changed, RELOAD_SECONDS)

    async def start(self) -> None:
        self.registry.load()
        if self.registry.catalog.functions:
            self.pool.start_soon()
        self.invocations.periodic.start()
        if self.events is not None:
            await self._subscribe(self.events)
            self.events.start()
        if self.schedules is not None:
            self.schedules.start()
        if self.reloader is not None:
            self.reloader.start()

    async def reload_if_changed(self) -> None:
        if not self.registry.changed():
            return
        self.registry.load()
        log.info("functions changed: new workers")
        await self.pool.recycle()
        if self.events is not None:
            await self._subscribe(self.events)

    async def _subscribe(self, events: EventDispatcher) -> None:
        """The catalog's triggers become the deployment's subscriptions (a database that
        is away at start leaves them as they were: they are the same code's)."""
        try:
            count = await write_subscriptions(events.db, self.registry.catalog.usable)
        except (OrgbaseError, OSError) as exc:
            log.warning("function subscriptions not written", error=repr(exc))
            return
        log.info("function subscriptions written", subscriptions=count)

    def describe(self, *, with_errors: bool = False) -> list[dict[str, Any]]:
        """Each function's config (and, for the operator, why it cannot run)."""
        failures = self.pool.load_failures
        described = []
        for spec in sorted(self.registry.catalog.functions.values(), key=lambda s: s.name):
            entry: dict[str, Any] = {
                "name": spec.name,
                **msgspec.structs.asdict(spec.config),
                "usable": spec.usable and spec.name not in failures,
            }
            if with_errors:
                entry["error"] = spec.error or failures.get(spec.name)
            described.append(entry)
        return described

    def workers(self) -> dict[str, Any]:
        pool = self.pool
        return {
            "live": pool.live,
            "pids": [w.pid for w in pool.workers if w.alive],
            "started": pool.started,
            "lost": pool.lost,
            "killed": pool.killed,
        }

    def counts(self) -> dict[tuple[str, ...], float]:
        """Running totals for the metrics (keyed by metric and labels; no org)."""
        totals: dict[tuple[str, ...], float] = {
            ("function_invocations", kind, outcome): count
            for (kind, outcome), count in self.service.outcomes.items()
        }
        pool = self.pool
        for event, count in (
            ("started", pool.started),
            ("lost", pool.lost),
            ("killed", pool.killed),
        ):
            totals[("function_workers", event)] = count
        if self.events is not None:
            for outcome, count in self.events.outcomes.items():
                totals[("function_events", outcome)] = count
        if self.schedules is not None:
            for outcome, count in self.schedules.outcomes.items():
                totals[("function_ticks", outcome)] = count
        return totals

    async def stop(self) -> None:
        if self.reloader is not None:
            await self.reloader.stop()
        if self.events is not None:
            await self.events.stop()
        if self.schedules is not None:
            await self.schedules.stop()
        await self.pool.close()
        await self.invocations.periodic.stop()
        await self.host.outbound.close()


def build_functions(resources: Resources, *, tasks: TaskSet, usage: OrgUsage) -> FunctionsArea:
    settings = resources.settings
    config = settings.functions
    registry = Registry(Path(settings.app.functions_dir), config.secrets_file)
    policy = DestinationPolicy(
        allowed_hosts=frozenset(host.lower() for host in config.allowed_hosts),
        allow_loopback=settings.is_dev,
    )
    database = FunctionDatabase(resources.db, usage.limits_of, settings.limits.statement_timeout_ms)
    host = Host(database, Outbound(policy, config.http_timeout_seconds))
    pool = WorkerPool(
        config,
        registry.directory,
        tasks,
        max_body=settings.http.max_body_bytes,
        on_call=host.serve,
        on_log=host.heard,
    )
    service = FunctionService(
        config,
        registry,
        pool,
        host,
        usage=usage,
        default_concurrency=settings.limits.concurrent_functions,
    )
    invocations = InvocationLog(resources.db, config.log_retention_days)
    service.recorders.append(invocations.record)
    events = EventDispatcher(resources.db, config, registry, service) if config.events else None
    if events is not None:
        resources.notifications.subscribe(CHANNEL, events.announced)
    return FunctionsArea(
        registry,
        pool,
        host,
        service,
        invocations,
        Deliveries(resources.db),
        events,
        Scheduler(resources.db, config, registry, service) if config.schedules else None,
        reload=config.reload,
    )
