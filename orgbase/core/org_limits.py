"""An org's effective limits: one flat object, the settings' defaults with the overrides a
platform admin set (``orgbase.limits`` keeps them; the limits area loads and caches them).

The data services take a ``LimitsOf`` callable (org id -> OrgLimits, answered from the
process's cache without I/O), so the hot path never waits for a lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal
from uuid import UUID

import msgspec

Family = Literal["data", "docs", "kv", "realtime", "storage"]
FAMILIES: tuple[Family, ...] = ("data", "docs", "kv", "realtime", "storage")


class OrgLimits(msgspec.Struct, frozen=True, kw_only=True):
    data_requests_per_minute: int
    docs_requests_per_minute: int
    kv_requests_per_minute: int
    realtime_publishes_per_minute: int
    concurrent_statements: int
    statement_timeout_ms: int
    rows_per_response: int
    document_storage_bytes: int
    cache_storage_bytes: int
    realtime_connections: int
    realtime_channels_per_connection: int
    realtime_joins_per_second: int
    storage_requests_per_minute: int
    storage_bytes: int
    """Bytes an org's objects may take in all (lowering it refuses growth, deletes nothing)."""
    max_object_bytes: int
    db_time_weight: int
    """The org's share of the database's and document store's time against the others'
    while they compete."""

    def per_minute(self, family: Family) -> int:
        if family == "realtime":
            return self.realtime_publishes_per_minute
        value: int = getattr(self, f"{family}_requests_per_minute")
        return value


LIMIT_NAMES: tuple[str, ...] = OrgLimits.__struct_fields__

LimitsOf = Callable[[UUID], OrgLimits]
"""The effective limits of an org, from the process's cache (no I/O)."""
