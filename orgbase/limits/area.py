"""Builds the limits area: the effective limits and their cache, the admission of
requests, the usage meter with its flush, and reading usage back."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.context import Principal
from orgbase.core.metering import Meter
from orgbase.core.org_usage import OrgUsage
from orgbase.core.orgs import LiveOrgs
from orgbase.core.periodic import Periodic
from orgbase.core.redis import unlink_matching
from orgbase.core.resources import Resources
from orgbase.core.tasks import TaskSet
from orgbase.limits.admission import Admission
from orgbase.limits.org_gates import OrgGate, database_gate, document_gate
from orgbase.limits.org_rate import OrgRateLimiter
from orgbase.limits.store import LimitsStore
from orgbase.limits.usage import UsageFlusher, UsageReader

PlatformAdminCheck = Callable[[Principal], Awaitable[UUID]]


@dataclass
class LimitsArea:
    store: LimitsStore
    limiter: OrgRateLimiter
    meter: Meter
    org_usage: OrgUsage
    """The limits lookup (when limits are on) and the meter, for every service that
    enforces an org's limits or counts its usage."""
    admission: Admission
    flusher: UsageFlusher
    usage: UsageReader
    periodic: Periodic
    document_gate: OrgGate
    """The document store's share between orgs (the platform hands it to the store)."""
    require_platform_admin: PlatformAdminCheck
    """The tenancy area's (it knows who the platform admins are)."""

    async def purge_org(self, org_id: UUID) -> int:
        """A deleted org: its counters and rate-limit state go (its rolled-up usage stays)."""
        self.meter.forget(org_id)
        self.flusher.expiring.forget_all()  # its keys go: new ones need their TTL
        removed = 0
        for pattern in keys.org_limit_patterns(org_id):
            removed += await self._unlink(pattern)
        return removed

    async def _unlink(self, pattern: str) -> int:
        async def unlink(r: Redis) -> int:
            return await unlink_matching(r, pattern)

        return await self.flusher.redis.run(unlink)


def build_limits(
    resources: Resources,
    orgs: LiveOrgs,
    tasks: TaskSet,
    *,
    require_platform_admin: PlatformAdminCheck,
) -> LimitsArea:
    """``orgs`` and ``require_platform_admin``: the tenancy area's (admins set the limits
    of live orgs only; it knows the platform admins); ``tasks``: the gateway's task set."""
    settings = resources.settings
    store = LimitsStore(resources.db, settings.limits, orgs, tasks)
    store.listen(resources.notifications)
    limiter = OrgRateLimiter(resources.redis, tasks)
    meter = Meter()
    # The gate shares the database's time between orgs, configured or not; with limits on
    # it caps each org at its concurrent_statements and weighs it by its db_time_weight
    # (from the cache, no I/O).
    limits_of = store.of if settings.limits.enabled else None
    resources.db.gate = database_gate(settings.database, limits_of, meter)
    documents = document_gate(settings.mongo, settings.database, limits_of, meter)
    flusher = UsageFlusher(meter, resources.redis, resources.db)
    periodic = Periodic(
        "usage flush",
        flusher.flush,
        settings.limits.usage_flush_seconds,
        last_round=flusher.flush,
        failure_level=logging.WARNING,
    )
    return LimitsArea(
        store=store,
        limiter=limiter,
        meter=meter,
        org_usage=OrgUsage(limits_of, meter),
        admission=Admission(store, limiter, meter),
        flusher=flusher,
        usage=UsageReader(resources.db),
        periodic=periodic,
        document_gate=documents,
        require_platform_admin=require_platform_admin,
    )
