"""The gates the data services get (``core/statement_gate.StatementGate``): the fair gate
with each org's limits, its share of the store's time, and that time metered.

- The tenant pool's: each org capped at its ``concurrent_statements``; time metered as
  ``db_time_ms``.
- The document store's: the Mongo client's pool shared the same way (no per-org cap of its
  own: the pool); time metered as ``docs_time_ms``.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass
from uuid import UUID

from orgbase.core.metering import Counter, Meter
from orgbase.core.org_limits import LimitsOf
from orgbase.core.settings import DatabaseSettings, MongoSettings
from orgbase.limits.fair_gate import FairGate
from orgbase.limits.time_share import TimeShare

SHARE_WINDOW_SECONDS = 1.0
"""How far back an org's time counts (the decay's time constant)."""


@dataclass(eq=False)
class OrgGate:
    gate: FairGate
    limits_of: LimitsOf | None
    """None: limits are off; every org may use the whole pool, with weight 1."""
    capped: bool
    """Whether an org holds at most its ``concurrent_statements`` (else the whole pool)."""

    @property
    def waiting(self) -> int:
        return self.gate.waiting

    async def enter(self, org: UUID | None, wait_at_most: float) -> None:
        cap, weight = self.gate.capacity, 1
        if org is not None and self.limits_of is not None:
            limits = self.limits_of(org)
            weight = limits.db_time_weight
            if self.capped:
                cap = limits.concurrent_statements
        await self.gate.acquire(org, cap, wait_at_most, weight)

    def leave(self, org: UUID | None) -> None:
        self.gate.release(org)


def shared_statements(settings: DatabaseSettings) -> int:
    """What the database runs at full speed at once, as one process shares it: the
    setting, else this host's cores (the database's, when it runs here), within the pool."""
    wanted = settings.api_shared_statements or os.cpu_count() or 1
    return max(1, min(wanted, settings.api_pool_max))


def _time_share(statements: int, meter: Meter, counter: Counter) -> TimeShare:
    def metered(org: Hashable, milliseconds: int) -> None:
        if isinstance(org, UUID):
            meter.add(org, counter, milliseconds)

    return TimeShare(statements, SHARE_WINDOW_SECONDS, meter=metered)


def database_gate(settings: DatabaseSettings, limits_of: LimitsOf | None, meter: Meter) -> OrgGate:
    share = _time_share(shared_statements(settings), meter, "db_time_ms")
    gate = FairGate(
        settings.api_pool_max, heavy_seconds=settings.api_heavy_statement_ms / 1000, share=share
    )
    return OrgGate(gate, limits_of, capped=True)


def document_gate(
    settings: MongoSettings, database: DatabaseSettings, limits_of: LimitsOf | None, meter: Meter
) -> OrgGate:
    """The document store's, sharing as many calls at once as the tenant pool's statements
    (the store's cores are not known either)."""
    statements = max(1, min(shared_statements(database), settings.pool_max))
    share = _time_share(statements, meter, "docs_time_ms")
    return OrgGate(FairGate(settings.pool_max, share=share), limits_of, capped=False)
