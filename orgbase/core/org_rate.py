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

import asyncio
import time
from uuid import UUID

import structlog

from orgbase.core import keys
from orgbase.core.errors import RateLimited
from orgbase.core.org_limits import Family
from orgbase.core.redis import RedisClients, RedisUnavailable

log = structlog.get_logger("orgbase.org_rate")

BURST_SECONDS = 10
"""The bucket holds this many seconds of the rate (the RateLimit-Policy window)."""


def burst_of(per_minute: int) -> int:
    return max(1, -(-per_minute * BURST_SECONDS // 60))


# KEYS: the GCRA key. ARGV: emission interval (us), burst (requests), tokens wanted.
# Grants up to the tokens wanted that the bucket holds (at least one, or none).
# Returns {granted, remaining, ms until the bucket is full again, ms to wait when none}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local available = math.floor((tolerance - (tat - now)) / interval)
if available < 1 then
  return {0, 0, math.ceil((tat - now) / 1000), math.ceil((tat + interval - now - tolerance) / 1000)}
end
local granted = math.min(tonumber(ARGV[3]), available)
local ahead = tat + granted * interval - now
redis.call('SET', KEYS[1], string.format('%d', now + ahead), 'PX', math.ceil(ahead / 1000) + 1)
return {granted, math.floor((tolerance - ahead) / interval), math.ceil(ahead / 1000), 0}
"""

RESERVE_SECONDS = 1.0
"""Tokens a process took ahead are used within this, or lost (never given twice)."""
MAX_RESERVE_SHARE = 20
"""A process takes at most 1/20 of an org's bucket ahead."""
FAST_REFILL_SECONDS = 0.5
LOCAL_KEYS = 10_000


class _Reserve:
    """Tokens this process took from an org's bucket ahead of its requests."""

    __slots__ = (
        "chunk",
        "limit",
        "refill",
        "refilled",
        "remaining",
        "reset_seconds",
        "tokens",
        "until",
    )

    def __init__(self) -> None:
        self.refill: asyncio.Future[Decision] | None = None
        """The script call in flight: requests that find the reserve empty meanwhile
        wait for it rather than each taking a chunk (tokens taken twice over would be
        lost, and an org far below its limit would be refused)."""
        self.tokens = 0
        self.until = 0.0
        self.chunk = 1
        self.refilled = 0.0
        self.limit = 0
        self.remaining = 0
        self.reset_seconds = 0


class Decision:
    """The answer for one request, for its RateLimit headers."""

    __slots__ = ("failed_open", "family", "limit", "remaining", "reset_seconds", "retry_after")

    def __init__(
        self,
        family: str,
        limit: int,
        remaining: int,
        reset_seconds: int,
        retry_after: int = 0,
        *,
        failed_open: bool = False,
    ) -> None:
        self.failed_open = failed_open
        """Admitted because Redis could not be asked."""
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
    """One Redis script call per request at most. An org sending fast takes tokens ahead
    (its chunk doubles while each chunk lasts under 0.5 s, up to 1/20 of its bucket, and
    halves otherwise), so at high rates most requests cost no round trip at all; an org at
    a low rate or a small limit takes one token at a time (exact)."""

    def __init__(self, redis: RedisClients) -> None:
        self.redis = redis
        self._script = redis.primary.register_script(_GCRA)
        self._reserves: dict[tuple[UUID, str], _Reserve] = {}
        self.rejected = 0
        self.failed_open = 0
        self.round_trips = 0

    async def admit(self, org: UUID, family: Family, per_minute: int) -> Decision:
        """Count one request. A refused one has ``retry_after`` set (see ``refusal``)."""
        reserve = self._reserves.get((org, family))
        if reserve is None:
            if len(self._reserves) >= LOCAL_KEYS:
                self._reserves.clear()
            reserve = self._reserves[(org, family)] = _Reserve()
        while True:
            taken = self._take_reserved(reserve, family, per_minute)
            if taken is not None:
                return taken
            if reserve.refill is None:
                return await self._refill(reserve, org, family, per_minute)
            answer = await asyncio.shield(reserve.refill)
            taken = self._take_reserved(reserve, family, per_minute)
            if taken is not None:
                return taken
            if answer.retry_after:
                self.rejected += 1
                return answer
            if answer.failed_open:
                self.failed_open += 1
                return answer
            # The refill's tokens went to those ahead: take a chunk of our own.

    @staticmethod
    def _take_reserved(reserve: _Reserve, family: str, per_minute: int) -> Decision | None:
        if reserve.tokens and reserve.until > time.monotonic() and reserve.limit == per_minute:
            reserve.tokens -= 1
            return Decision(
                family, per_minute, reserve.remaining + reserve.tokens, reserve.reset_seconds
            )
        return None

    async def _refill(
        self, reserve: _Reserve, org: UUID, family: Family, per_minute: int
    ) -> Decision:
        """One script call; its answer is this request's and tells those waiting on it."""
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        reserve.refill = future
        try:
            decision = await self._call(reserve, org, family, per_minute)
        except BaseException:
            future.set_result(Decision(family, per_minute, 0, 0))  # waiters try themselves
            raise
        finally:
            reserve.refill = None
        future.set_result(decision)
        return decision

    async def _call(
        self, reserve: _Reserve, org: UUID, family: Family, per_minute: int
    ) -> Decision:
        now = time.monotonic()
        burst = burst_of(per_minute)
        if now - reserve.refilled < FAST_REFILL_SECONDS:
            reserve.chunk = min(reserve.chunk * 2, max(1, burst // MAX_RESERVE_SHARE))
        else:
            reserve.chunk = max(1, reserve.chunk // 2)
        reserve.refilled = now
        interval_us = max(1, 60_000_000 // per_minute)
        key = keys.org_rate(org, family)
        wanted = reserve.chunk
        try:
            self.round_trips += 1
            granted, remaining, reset_ms, wait_ms = await self.redis.run(
                lambda r: self._script(keys=[key], args=[interval_us, burst, wanted], client=r)
            )
        except RedisUnavailable:
            self.failed_open += 1
            reserve.tokens = 0
            return Decision(family, per_minute, burst, 0, failed_open=True)
        reset = -(-int(reset_ms) // 1000)
        if not int(granted):
            self.rejected += 1
            reserve.tokens = 0
            reserve.chunk = 1
            return Decision(family, per_minute, 0, reset, max(1, -(-int(wait_ms) // 1000)))
        reserve.tokens = int(granted) - 1
        reserve.until = now + RESERVE_SECONDS
        reserve.limit = per_minute
        reserve.remaining = int(remaining)
        reserve.reset_seconds = reset
        return Decision(family, per_minute, reserve.remaining + reserve.tokens, reset)
