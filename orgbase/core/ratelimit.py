"""Rate limits and lockouts in Redis, shared by every gateway replica.

Fixed windows (``INCR`` + ``EXPIRE NX`` in one round trip). When Redis is unavailable the
limits fail open (the request goes on and the event is logged): the alternative, refusing
every sign-in during a Redis outage, is worse. Account lockouts have a PostgreSQL fallback
in the auth service.
"""

from __future__ import annotations

import contextlib
import time

import structlog
from redis.asyncio import Redis

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
        key = f"rl:{bucket}:{window}"

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


class Lockout:
    """Lock an account for a while after repeated failures."""

    def __init__(
        self, redis: RedisClients, *, max_failures: int, window_seconds: int, lock_seconds: int
    ) -> None:
        self.redis = redis
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.lock_seconds = lock_seconds

    async def locked_for(self, account: str) -> int | None:
        """Seconds the account stays locked (None: not locked). Raises RedisUnavailable."""
        ttl = await self.redis.run(lambda r: r.ttl(f"lock:{account}"))
        return int(ttl) if ttl and ttl > 0 else None

    async def record_failure(self, account: str) -> None:
        async def count(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                pipe.incr(f"fail:{account}")
                pipe.expire(f"fail:{account}", self.window_seconds, nx=True)
                failures, _ = await pipe.execute()
            if int(failures) >= self.max_failures:
                async with r.pipeline(transaction=False) as pipe:
                    pipe.set(f"lock:{account}", b"1", ex=self.lock_seconds)
                    pipe.delete(f"fail:{account}")
                    await pipe.execute()

        try:
            await self.redis.run(count)
        except RedisUnavailable:
            log.warning("sign-in failure not counted in redis")

    async def clear(self, account: str) -> None:
        with contextlib.suppress(RedisUnavailable):
            await self.redis.run(lambda r: r.delete(f"fail:{account}"))
