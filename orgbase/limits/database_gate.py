"""The gate the tenant pool gets: the fair gate with each org's limits and its metered
database time (``core/statement_gate.StatementGate``)."""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass
from uuid import UUID

from orgbase.core.metering import Meter
from orgbase.core.org_limits import LimitsOf
from orgbase.core.settings import DatabaseSettings
from orgbase.limits.fair_gate import FairGate
from orgbase.limits.time_share import TimeShare

SHARE_WINDOW_SECONDS = 1.0
"""How far back an org's database time counts (the decay's time constant)."""


@dataclass(eq=False)
class DatabaseGate:
    gate: FairGate
    limits_of: LimitsOf | None
    """None: limits are off; every org may use the whole pool, with weight 1."""

    @property
    def waiting(self) -> int:
        return self.gate.waiting

    async def enter(self, org: UUID | None, wait_at_most: float) -> None:
        cap, weight = self.gate.capacity, 1
        if org is not None and self.limits_of is not None:
            limits = self.limits_of(org)
            cap, weight = limits.concurrent_statements, limits.db_time_weight
        await self.gate.acquire(org, cap, wait_at_most, weight)

    def leave(self, org: UUID | None) -> None:
        self.gate.release(org)


def shared_statements(settings: DatabaseSettings) -> int:
    """What the database runs at full speed at once, as one process shares it: the
    setting, else this host's cores (the database's, when it runs here), within the pool."""
    wanted = settings.api_shared_statements or os.cpu_count() or 1
    return max(1, min(wanted, settings.api_pool_max))


def database_gate(
    settings: DatabaseSettings, limits_of: LimitsOf | None, meter: Meter
) -> DatabaseGate:
    def metered(org: Hashable, milliseconds: int) -> None:
        if isinstance(org, UUID):
            meter.add(org, "db_time_ms", milliseconds)

    share = TimeShare(shared_statements(settings), SHARE_WINDOW_SECONDS, meter=metered)
    gate = FairGate(
        settings.api_pool_max,
        heavy_seconds=settings.api_heavy_statement_ms / 1000,
        share=share,
    )
    return DatabaseGate(gate, limits_of)
