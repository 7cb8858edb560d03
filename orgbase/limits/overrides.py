"""What a platform admin may set of an org's limits, and the effective limits they make:
the settings' defaults with the org's overrides (kept in ``orgbase.limits``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from orgbase.core.errors import Invalid
from orgbase.core.org_limits import LIMIT_NAMES, OrgLimits
from orgbase.core.settings import LimitsSettings

# What a platform admin may set: 1 up to these (larger is nonsense, and a typo's likely
# result). Sizes in bytes, times in milliseconds.
MAXIMUMS: dict[str, int] = {
    "data_requests_per_minute": 100_000_000,
    "docs_requests_per_minute": 100_000_000,
    "kv_requests_per_minute": 100_000_000,
    "realtime_publishes_per_minute": 100_000_000,
    "concurrent_statements": 1000,
    "statement_timeout_ms": 3_600_000,
    "rows_per_response": 100_000,
    "document_storage_bytes": 1 << 44,
    "cache_storage_bytes": 1 << 40,
    "realtime_connections": 1_000_000,
    "realtime_channels_per_connection": 10_000,
    "realtime_joins_per_second": 1_000_000,
    "storage_requests_per_minute": 100_000_000,
    "storage_bytes": 1 << 50,
    "max_object_bytes": 1 << 42,
    "db_time_weight": 1000,
}


def defaults(settings: LimitsSettings) -> OrgLimits:
    return OrgLimits(**{name: getattr(settings, name) for name in LIMIT_NAMES})


def with_overrides(base: OrgLimits, overrides: dict[str, int]) -> OrgLimits:
    known = {name: value for name, value in overrides.items() if name in MAXIMUMS}
    return msgspec.structs.replace(base, **known) if known else base


def validate_overrides(body: Any) -> dict[str, int | None]:
    """A PUT body: a flat object of limit names to whole numbers (null: back to the
    default). Unknown names, non-integers, negative, zero or absurd values are refused."""
    if not isinstance(body, dict):
        raise Invalid("the limits are one JSON object", code="invalid_limits")
    unknown = sorted(str(key) for key in body if key not in MAXIMUMS)
    if unknown:
        raise Invalid(
            f"unknown limits: {', '.join(unknown)[:200]}",
            code="unknown_limit",
            details={"unknown": unknown[:20], "known": list(LIMIT_NAMES)},
        )
    out: dict[str, int | None] = {}
    for name, value in body.items():
        if value is None:
            out[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"{name} must be a whole number", code="invalid_limit")
        if not 1 <= value <= MAXIMUMS[name]:
            raise Invalid(
                f"{name} must be between 1 and {MAXIMUMS[name]}",
                code="invalid_limit",
                details={"limit": name, "max": MAXIMUMS[name]},
            )
        out[name] = value
    return out
