"""Requests per minute per org and API family: GCRA in Redis, one script call per request.

GCRA (the generic cell rate algorithm) keeps one number per org and family, the
theoretical arrival time of the next request; a request is let in when that time is at
most ``BURST_SECONDS`` of allowance ahead of now. It is a token bucket holding ten
seconds' worth of requests (a sixth of the per-minute limit), refilled continuously, with
one key, one round trip and no clean-up: a burst never takes a whole minute's allowance
at once. Redis's
clock is used, so every replica agrees. When Redis is unavailable the limit fails open:
the request goes on and ``failed_open`` counts it.
"""

from __future__ import annotations

from uuid import UUID

import structlog

from orgbase.core.errors import RateLimited
from orgbase.core.org_limits import Family
from orgbase.core.redis import RedisClients, RedisUnavailable
from orgbase.core.redis_names import rate_key

log = structlog.get_logger("orgbase.org_rate")

BURST_SECONDS = 10
"""The bucket holds this many seconds of the rate (the RateLimit-Policy window)."""


def burst_of(per_minute: int) -> int:
    return max(1, -(-per_minute * BURST_SECONDS // 60))


# KEYS: the GCRA key. ARGV: emission interval (us), burst (requests).
# Returns {allowed (1/0), remaining, ms until the full allowance is back, ms to wait}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > tolerance then
  return {0, 0, math.ceil((tat - now) / 1000), math.ceil((next_tat - now - tolerance) / 1000)}
end
local ahead = next_tat - now
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil(ahead / 1000) + 1)
return {1, math.floor((tolerance - ahead) / interval), math.ceil(ahead / 1000), 0}
"""


class Decision:
    """The answer for one request, for its RateLimit headers."""

    __slots__ = ("family", "limit", "remaining", "reset_seconds", "retry_after")

    def __init__(
        self, family: str, limit: int, remaining: int, reset_seconds: int, retry_after: int = 0
    ) -> None:
        self.family = family
        self.limit = limit
        self.remaining = remaining
        self.reset_seconds = reset_seconds
        self.retry_after = retry_after
        """Seconds to wait when refused (0: admitted)."""

    def refusal(self) -> RateLimited | None:
        if not self.retry_after:
            return None
        return RateLimited(
            f"this org sent more than {self.limit} {self.family} requests a minute; slow down",
            retry_after=self.retry_after,
            code="org_rate_limited",
            details={"family": self.family, "limit_per_minute": self.limit},
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        """draft-ietf-httpapi-ratelimit-headers: the policy (quota q per window w seconds:
        the bucket) and what is left of it (r), with the seconds until it is whole (t)."""
        name = self.family.encode()
        policy = b'"%s";q=%d;w=%d' % (name, burst_of(self.limit), BURST_SECONDS)
        return [
            (b"ratelimit-policy", policy),
            (b"ratelimit", b'"%s";r=%d;t=%d' % (name, self.remaining, self.reset_seconds)),
        ]


class OrgRateLimiter:
    def __init__(self, redis: RedisClients) -> None:
        self.redis = redis
        self._script = redis.primary.register_script(_GCRA)
        self.rejected = 0
        self.failed_open = 0

    async def admit(self, org: UUID, family: Family, per_minute: int) -> Decision:
        """Count one request. A refused one has ``retry_after`` set (see ``refusal``)."""
        interval_us = max(1, 60_000_000 // per_minute)
        key = rate_key(org, family)
        try:
            allowed, remaining, reset_ms, wait_ms = await self.redis.run(
                lambda r: self._script(
                    keys=[key], args=[interval_us, burst_of(per_minute)], client=r
                )
            )
        except RedisUnavailable:
            self.failed_open += 1
            return Decision(family, per_minute, burst_of(per_minute), 0)
        reset = -(-int(reset_ms) // 1000)
        if int(allowed):
            return Decision(family, per_minute, int(remaining), reset)
        self.rejected += 1
        return Decision(family, per_minute, 0, reset, max(1, -(-int(wait_ms) // 1000)))
