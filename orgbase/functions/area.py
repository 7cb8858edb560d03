"""Builds the functions area: the catalog, the worker pool, the host of ``ctx`` and the
service behind ``/functions/v1``. The platform hands it the limits lookup, the meter and the
task set; it imports no other area."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from orgbase.core.destinations import DestinationPolicy
from orgbase.core.metering import Meter
from orgbase.core.org_limits import LimitsOf
from orgbase.core.periodic import Periodic
from orgbase.core.resources import Resources
from orgbase.core.settings import Settings
from orgbase.core.tasks import TaskSet
from orgbase.functions.database import FunctionDatabase
from orgbase.functions.host import Host
from orgbase.functions.outbound import Outbound
from orgbase.functions.pool import WorkerPool
from orgbase.functions.registry import Registry
from orgbase.functions.service import FunctionService

log = structlog.get_logger("orgbase.functions")
RELOAD_SECONDS = 1.0


@dataclass
class FunctionsArea:
    registry: Registry
    pool: WorkerPool
    host: Host
    service: FunctionService
    reloader: Periodic | None

    async def start(self) -> None:
        self.registry.load()
        if self.registry.catalog.functions:
            await self.pool.start()
        if self.reloader is not None:
            self.reloader.start()

    async def reload_if_changed(self) -> None:
        if not self.registry.changed():
            return
        self.registry.load()
        log.info("functions changed: new workers")
        await self.pool.recycle()

    async def stop(self) -> None:
        if self.reloader is not None:
            await self.reloader.stop()
        await self.pool.close()
        await self.host.outbound.close()


def build_functions(
    settings: Settings,
    resources: Resources,
    *,
    tasks: TaskSet,
    limits_of: LimitsOf | None,
    meter: Meter | None,
) -> FunctionsArea:
    config = settings.functions
    registry = Registry(Path(settings.app.functions_dir), config.secrets_file)
    policy = DestinationPolicy(
        allowed_hosts=frozenset(host.lower() for host in config.allowed_hosts),
        allow_loopback=settings.is_dev,
    )
    database = FunctionDatabase(resources.db, limits_of, settings.limits.statement_timeout_ms)
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
        limits_of=limits_of,
        default_concurrency=settings.limits.concurrent_functions,
        meter=meter,
    )
    area = FunctionsArea(registry, pool, host, service, None)
    if config.reload:
        area.reloader = Periodic("functions reload", area.reload_if_changed, RELOAD_SECONDS)
    return area
