"""The admission of one request into its org's allowance: requests per minute per API
family, counted in Redis (one script call) and in the usage meter (in process).

The request-auth component calls ``admit`` once it knows the org; the decision goes into
the request's scope state, where the response layer (``platform/ratelimit_headers.py``)
turns it into the ``RateLimit-Policy`` and ``RateLimit`` headers, on refusals too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from orgbase.core.metering import Meter
from orgbase.core.org_limits import Family
from orgbase.limits.org_rate import Decision, OrgRateLimiter
from orgbase.limits.store import LimitsStore

STATE_KEY = "ratelimit"
"""Where the decision waits in the scope's state for the response headers."""

_COUNTERS: dict[str, Any] = {
    "data": "requests_data",
    "docs": "requests_docs",
    "kv": "requests_kv",
    "realtime": "requests_realtime",
    "storage": "requests_storage",
    "functions": "requests_functions",
}


_PREFIXES: tuple[tuple[tuple[str, ...], Family], ...] = (
    (("/v1/db", "/rest/v1"), "data"),
    (("/v1/docs",), "docs"),
    (("/v1/kv/",), "kv"),
    (("/storage/v1/",), "storage"),
    (("/functions/v1/",), "functions"),
)


def family_of(method: str, path: str) -> Family | None:
    """The API family a request's path belongs to (None: not limited per org)."""
    for prefixes, family in _PREFIXES:
        if path.startswith(prefixes):
            return family
    if method == "POST" and path.startswith(("/v1/realtime/", "/realtime/v1/api/")):
        return "realtime"  # a publish (sockets and event streams are counted as connections)
    return None


@dataclass(eq=False)
class Admission:
    store: LimitsStore
    limiter: OrgRateLimiter
    meter: Meter
    enabled: bool = field(init=False)

    def __post_init__(self) -> None:
        self.enabled = self.store.settings.enabled

    async def admit(self, scope: Any, org: UUID) -> None:
        """Count the request against its org's family; RateLimited past the limit."""
        family = family_of(scope.get("method", ""), scope["path"])
        if family is None:
            return
        if self.enabled:
            decision = await self.decide(org, family)
            scope.setdefault("state", {})[STATE_KEY] = decision
            refusal = decision.refusal()
            if refusal is not None:
                raise refusal
        self.meter.add(org, _COUNTERS[family])  # metered with limits off too

    async def decide(self, org: UUID, family: Family) -> Decision:
        limits = await self.store.ensure(org)
        return await self.limiter.admit(org, family, limits.per_minute(family))

    async def publish(self, org: UUID) -> None:
        """A publish on an open socket (no HTTP request to admit)."""
        if self.enabled:
            refusal = (await self.decide(org, "realtime")).refusal()
            if refusal is not None:
                raise refusal
        self.meter.add(org, "requests_realtime")
