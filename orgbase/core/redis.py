"""The Redis client: Sentinel discovery (writes go to the primary), short timeouts."""

from __future__ import annotations

from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orgbase.core.settings import RedisSettings

log = structlog.get_logger("orgbase.redis")

# Errors that mean "Redis is not reachable right now" (MasterNotFoundError is a
# ConnectionError); anything else is a bug in how we call it.
REDIS_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    TimeoutError,
)
_DISCOVERY_ERRORS: tuple[type[BaseException], ...] = (RedisError, *REDIS_DOWN_ERRORS)


class RedisClients:
    """The primary client (and the Sentinel manager that finds it)."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        common: dict[str, Any] = {
            "password": settings.password,
            "db": settings.db,
            "socket_timeout": settings.socket_timeout,
            "socket_connect_timeout": settings.connect_timeout,
        }
        self.sentinel: Sentinel | None = None
        if settings.sentinels:
            self.sentinel = Sentinel(  # type: ignore[no-untyped-call]
                settings.sentinel_addresses(),
                sentinel_kwargs={
                    "password": settings.sentinel_password,
                    "socket_timeout": settings.socket_timeout,
                    "socket_connect_timeout": settings.connect_timeout,
                },
                **common,
            )
            self.primary: Redis = self.sentinel.master_for(
                settings.service_name, max_connections=settings.pool_max
            )
        else:
            assert settings.url is not None
            self.primary = Redis.from_url(settings.url, max_connections=settings.pool_max, **common)

    async def primary_address(self) -> tuple[str, int] | None:
        if self.sentinel is None:
            return None
        try:
            host, port = await self.sentinel.discover_master(self.settings.service_name)
        except _DISCOVERY_ERRORS:
            return None
        return str(host), int(port)

    def pool_stats(self) -> dict[str, int]:
        pool: Any = self.primary.connection_pool
        in_use = len(getattr(pool, "_in_use_connections", ()))
        idle = len(getattr(pool, "_available_connections", ()))
        return {"in_use": in_use, "idle": idle, "max": int(getattr(pool, "max_connections", 0))}

    async def close(self) -> None:
        await self.primary.aclose()
        if self.sentinel is not None:
            for client in self.sentinel.sentinels:
                await client.aclose()
