"""Requests per minute per org and API family: GCRA in Redis, one script call per request
at most.

GCRA (the generic cell rate algorithm) keeps one number per org and family, the
theoretical arrival time of the next request; a request is let in when that time is at
most ``BURST_SECONDS`` of allowance ahead of now. It is a token bucket holding ten
seconds' worth of requests (a sixth of the per-minute limit), refilled continuously, with
one key, one round trip and no clean-up: a burst never takes a whole minute's allowance
at once. Redis's clock is used, so every replica agrees. When Redis is unavailable the
limit fails open: the request goes on and ``failed_open`` counts it.

Three ways in, cheapest first:
- tokens this process took ahead (an org sending fast): no round trip;
- a generous limit (a bucket of ``LOCAL_MIN_BURST`` or more) whose bucket was last seen
  more than half full, or not seen lately: let in at once and counted in Redis by the
  next batch (every ``FLUSH_SECONDS``, one script call for many orgs). With 10,000 orgs
  each sending now and then, a script call per request cost 12% of a worker. A process
  lets in at most 1/20 of the bucket uncounted (then the exact path takes over, counting
  them), so an org's first burst on N processes overshoots by N/20 of a bucket at most;
- otherwise one script call, which also counts what was let in and not sent yet (small
  limits are always exact).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import structlog

from orgbase.core import keys
from orgbase.core.errors import RateLimited
from orgbase.core.org_limits import Family
from orgbase.core.redis import RedisClients, RedisUnavailable
from orgbase.core.tasks import TaskSet

log = structlog.get_logger("orgbase.org_rate")

BURST_SECONDS = 10
"""The bucket holds this many seconds of the rate (the RateLimit-Policy window)."""


def burst_of(per_minute: int) -> int:
    return max(1, -(-per_minute * BURST_SECONDS // 60))


# KEYS: GCRA keys. ARGV, four per key: emission interval (us), burst (requests), requests
# already let in (counted as far as the bucket holds them), tokens wanted now (granted up
# to what the bucket holds: at least one, or none). Returns four per key: {granted,
# remaining, ms until the bucket is full again, ms to wait when refused}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 4
  local interval = tonumber(ARGV[base + 1])
  local tolerance = interval * tonumber(ARGV[base + 2])
  local wanted = tonumber(ARGV[base + 4])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local available = math.floor((tolerance - (tat - now)) / interval)
  local counted = math.max(0, math.min(tonumber(ARGV[base + 3]), available))
  tat = tat + counted * interval
  available = available - counted
  local granted = 0
  local wait = 0
  if wanted > 0 then
    if available < 1 then
      wait = math.ceil((tat + interval - now - tolerance) / 1000)
    else
      granted = math.min(wanted, available)
      tat = tat + granted * interval
    end
  end
  if counted + granted > 0 then
    redis.call('SET', key, string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  end
  out[base + 1] = granted
  out[base + 2] = math.floor((tolerance - (tat - now)) / interval)
  out[base + 3] = math.ceil((tat - now) / 1000)
  out[base + 4] = wait
end
return out
"""

RESERVE_SECONDS = 1.0
"""Tokens a process took ahead are used within this, or lost (never given twice)."""
MAX_RESERVE_SHARE = 20
"""A process takes at most 1/20 of an org's bucket ahead."""
FAST_REFILL_SECONDS = 0.5
LOCAL_KEYS = 100_000
"""Orgs and families whose state a process keeps (about 200 bytes each)."""
LOCAL_MIN_BURST = 1000
"""Buckets this large (6,000 a minute and up) may let requests in before counting them."""
FLUSH_SECONDS = 0.1
KNOWN_SECONDS = 60.0
"""A bucket's remaining count is trusted this long after Redis gave it."""
BATCH_KEYS = 500
"""Orgs counted per script call in a batch (a call holds Redis while it runs)."""
CLUSTER_PARALLEL = 16
"""Script calls in flight at once when a cluster counts a batch (one per org)."""


class _Reserve:
    """Tokens this process took from an org's bucket ahead of its requests."""

    __slots__ = (
        "chunk",
        "known_at",
        "limit",
        "pending",
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
        """What the bucket held at the last answer (tokens taken ahead not included)."""
        self.known_at = -KNOWN_SECONDS
        self.pending = 0
        """Requests let in and not yet counted in Redis."""
        self.reset_seconds = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request, for its RateLimit headers."""

    family: str
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int = 0
    """Seconds to wait when refused (0: admitted)."""
    failed_open: bool = field(default=False, kw_only=True)
    """Admitted because Redis could not be asked."""

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
    """One Redis script call per request at most (see the module's notes). An org sending
    fast takes tokens ahead (its chunk doubles while each chunk lasts under 0.5 s, up to
    1/20 of its bucket, and halves otherwise); an org at a low rate or a small limit takes
    one token at a time (exact)."""

    def __init__(self, redis: RedisClients, tasks: TaskSet) -> None:
        self.redis = redis
        self.tasks = tasks
        """Batches being counted run there (drained at shutdown, before ``close``)."""
        self._script = redis.primary.register_script(_GCRA)
        self._reserves: dict[tuple[UUID, str], _Reserve] = {}
        self._uncounted: dict[tuple[UUID, str], tuple[_Reserve, int]] = {}
        """Reserves with requests let in before being counted, and their limit."""
        self._flush_soon: asyncio.TimerHandle | None = None
        self.rejected = 0
        self.failed_open = 0
        self.round_trips = 0

    async def admit(self, org: UUID, family: Family, per_minute: int) -> Decision:
        """Count one request. A refused one has ``retry_after`` set (see ``refusal``)."""
        reserve = self._reserves.get((org, family))
        if reserve is None:
            if len(self._reserves) >= LOCAL_KEYS:
                self._forget_idle()
            reserve = self._reserves[(org, family)] = _Reserve()
        while True:
            taken = self._take_reserved(reserve, family, per_minute)
            if taken is not None:
                return taken
            let_in = self._let_in_uncounted(org, family, reserve, per_minute)
            if let_in is not None:
                return let_in
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

    async def flush(self) -> None:
        """Count in Redis what was let in before being counted (batches of orgs)."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        batch = [
            (org, family, reserve, per_minute, reserve.pending)
            for (org, family), (reserve, per_minute) in self._uncounted.items()
            if reserve.pending
        ]
        self._uncounted = {}
        for _, _, reserve, _, _ in batch:
            reserve.pending = 0
        for start in range(0, len(batch), BATCH_KEYS):
            part = batch[start : start + BATCH_KEYS]
            try:
                answers = await self._count(part)
            except RedisUnavailable:
                self.failed_open += sum(count for *_, count in part)
                continue
            now = time.monotonic()
            for (_, _, reserve, per_minute, _), answer in zip(part, answers, strict=True):
                _, remaining, reset_ms, _ = answer
                self._learn(reserve, per_minute, int(remaining), int(reset_ms), now)

    async def close(self) -> None:
        await self.flush()

    # -- the three ways in ------------------------------------------------------------

    @staticmethod
    def _take_reserved(reserve: _Reserve, family: str, per_minute: int) -> Decision | None:
        if reserve.tokens and reserve.until > time.monotonic() and reserve.limit == per_minute:
            reserve.tokens -= 1
            return Decision(
                family, per_minute, reserve.remaining + reserve.tokens, reserve.reset_seconds
            )
        return None

    def _let_in_uncounted(
        self, org: UUID, family: str, reserve: _Reserve, per_minute: int
    ) -> Decision | None:
        """A generous limit whose bucket is (or may be taken as) more than half full."""
        burst = burst_of(per_minute)
        if burst < LOCAL_MIN_BURST:
            return None
        fresh = reserve.limit == per_minute and time.monotonic() - reserve.known_at < KNOWN_SECONDS
        remaining = (reserve.remaining if fresh else burst) - reserve.pending
        if remaining <= burst // 2 or reserve.pending >= burst // MAX_RESERVE_SHARE:
            return None  # the exact path, which counts these too
        reserve.pending += 1
        if reserve.pending == 1:
            self._uncounted[(org, family)] = (reserve, per_minute)
            self._schedule_flush()
        return Decision(family, per_minute, remaining - 1, reserve.reset_seconds if fresh else 0)

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
        already, reserve.pending = reserve.pending, 0  # counted with this call
        try:
            self.round_trips += 1
            granted, remaining, reset_ms, wait_ms = await self.redis.run(
                lambda r: self._script(
                    keys=[key], args=[interval_us, burst, already, wanted], client=r
                )
            )
        except RedisUnavailable:
            self.failed_open += 1 + already
            reserve.tokens = 0
            return Decision(family, per_minute, burst, 0, failed_open=True)
        self._learn(reserve, per_minute, int(remaining), int(reset_ms), now)
        if not int(granted):
            self.rejected += 1
            reserve.tokens = 0
            reserve.chunk = 1
            return Decision(
                family,
                per_minute,
                0,
                reserve.reset_seconds,
                max(1, -(-int(wait_ms) // 1000)),
            )
        reserve.tokens = int(granted) - 1
        reserve.until = now + RESERVE_SECONDS
        return Decision(
            family, per_minute, reserve.remaining + reserve.tokens, reserve.reset_seconds
        )

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _learn(
        reserve: _Reserve, per_minute: int, remaining: int, reset_ms: int, now: float
    ) -> None:
        reserve.limit = per_minute
        reserve.remaining = remaining
        reserve.reset_seconds = -(-reset_ms // 1000)
        reserve.known_at = now

    async def _count(self, part: list[tuple[UUID, str, _Reserve, int, int]]) -> list[list[int]]:
        """Count each org's requests let in (one script call; one per org on a cluster,
        whose keys live in different slots)."""
        calls = [
            (
                keys.org_rate(org, family),
                [max(1, 60_000_000 // per_minute), burst_of(per_minute), count, 0],
            )
            for org, family, _, per_minute, count in part
        ]
        self.round_trips += 1 if self.redis.cluster is None else len(calls)

        async def count(r: Any) -> list[list[int]]:
            if self.redis.cluster is not None:
                # Concurrent first commands on a client not yet initialized race in
                # redis-py (connections closed under each other): initialize first.
                await self.redis.cluster.initialize()
                answers: list[list[int]] = []
                # A few at a time: hundreds at once outwait the socket timeout, and
                # redis-py's retry would count a script twice.
                for start in range(0, len(calls), CLUSTER_PARALLEL):
                    answers.extend(
                        list(answer)
                        for answer in await asyncio.gather(
                            *(
                                self._script(keys=[key], args=args, client=r)
                                for key, args in calls[start : start + CLUSTER_PARALLEL]
                            )
                        )
                    )
                return answers
            flat = await self._script(
                keys=[key for key, _ in calls],
                args=[value for _, args in calls for value in args],
                client=r,
            )
            return [list(flat[n : n + 4]) for n in range(0, len(flat), 4)]

        return await self.redis.run(count)

    def _schedule_flush(self) -> None:
        if self._flush_soon is None:
            self._flush_soon = asyncio.get_running_loop().call_later(
                FLUSH_SECONDS, self._start_flush
            )

    def _start_flush(self) -> None:
        self._flush_soon = None
        self.tasks.spawn(self._flush_logged(), "org rate batch")

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # a batch lost is requests not counted: fail open
            log.warning("org rate batch not counted", error=repr(exc))

    def _forget_idle(self) -> None:
        """Past LOCAL_KEYS: keep only the reserves with something in hand."""
        now = time.monotonic()
        self._reserves = {
            key: reserve
            for key, reserve in self._reserves.items()
            if reserve.pending or reserve.refill is not None or reserve.until > now
        }
