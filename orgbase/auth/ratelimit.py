"""Rate limits and lockouts in Redis, shared by every gateway replica.

Fixed windows (``INCR`` + ``EXPIRE NX`` in one round trip). When Redis is unavailable the
limits fail open (the request goes on and the event is logged): the alternative, refusing
every sign-in during a Redis outage, is worse. Account lockouts have a PostgreSQL fallback
in the auth service.
"""

from __future__ import annotations

import time

import structlog
from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.errors import RateLimited
from orgbase.core.redis import RedisClients, RedisUnavailable

log = structlog.get_logger("orgbase.ratelimit")


class RateLimiter:
    def __init__(self, redis: RedisClients) -> None:
        self.redis = redis
        self.rejections = 0

    async def hit(self, bucket: str, limit: int, window_seconds: int) -> None:
        """Count one event in ``bucket``; raise RateLimited past ``limit`` per window."""
        now = time.time()
        window = int(now // window_seconds)
        key = keys.rate_limit(bucket, window)

        async def count(r: Redis) -> int:
            async with r.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_seconds + 1, nx=True)
                results = await pipe.execute()
            return int(results[0])

        try:
            used = await self.redis.run(count)
        except RedisUnavailable:
            log.warning(
                "rate limit not enforced: redis unavailable",
                bucket=bucket.split(":", maxsplit=1)[0],
            )
            return
        if used > limit:
            self.rejections += 1
            retry_after = int((window + 1) * window_seconds - now) + 1
            raise RateLimited(
                "too many requests; slow down",
                retry_after=retry_after,
                details={"limit": limit, "window_seconds": window_seconds},
            )


# KEYS: lock, attempts. ARGV: max attempts, window ms, lock ms.
# Returns 0 when an attempt is reserved, else the lock's remaining milliseconds.
_RESERVE = """
local locked = redis.call('PTTL', KEYS[1])
if locked > 0 then return locked end
local attempts = redis.call('INCR', KEYS[2])
if attempts == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
if attempts > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return tonumber(ARGV[3])
end
return 0
"""


class Lockout:
    """Lock an account for a while after repeated failures.

    An attempt is *reserved* before its password is checked (one atomic script: refused
    when locked, counted otherwise) and the count is cleared only by a success, so at most
    ``max_failures`` guesses are checked per lock period however they are timed: guesses
    sent in parallel cannot all pass a check made before any of them is counted.
    """

    def __init__(
        self, redis: RedisClients, *, max_failures: int, window_seconds: int, lock_seconds: int
    ) -> None:
        self.redis = redis
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.lock_seconds = lock_seconds
        self._reserve = redis.primary.register_script(_RESERVE)

    async def reserve(self, account: str) -> int | None:
        """Reserve one attempt; the seconds the account stays locked when none is left.
        Raises RedisUnavailable (the caller falls back to PostgreSQL)."""
        locked_ms = await self.redis.run(
            lambda r: self._reserve(
                keys=list(keys.lockout(account)),
                args=[self.max_failures, self.window_seconds * 1000, self.lock_seconds * 1000],
                client=r,
            )
        )
        return -(-int(locked_ms) // 1000) if int(locked_ms) > 0 else None

    async def succeeded(self, account: str) -> bool:
        """A right answer: the attempts counted so far are forgiven. False when Redis could
        not be told (the caller may note the success elsewhere)."""
        try:
            await self.redis.run(lambda r: r.delete(keys.lockout(account)[1]))
        except RedisUnavailable:
            return False
        return True
