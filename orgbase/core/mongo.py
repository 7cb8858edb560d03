"""The MongoDB client (PyMongo's AsyncMongoClient): connects lazily, bounded timeouts."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from orgbase.core.settings import MongoSettings


class PoolFigures(monitoring.ConnectionPoolListener):
    """Connections open and checked out, from PyMongo's pool events (for metrics)."""

    def __init__(self) -> None:
        self.open = 0
        self.checked_out = 0

    def connection_created(self, event: Any) -> None:
        self.open += 1

    def connection_closed(self, event: Any) -> None:
        self.open = max(0, self.open - 1)

    def connection_checked_out(self, event: Any) -> None:
        self.checked_out += 1

    def connection_checked_in(self, event: Any) -> None:
        self.checked_out = max(0, self.checked_out - 1)

    def pool_created(self, event: Any) -> None: ...
    def pool_ready(self, event: Any) -> None: ...
    def pool_cleared(self, event: Any) -> None: ...
    def pool_closed(self, event: Any) -> None: ...
    def connection_ready(self, event: Any) -> None: ...
    def connection_check_out_started(self, event: Any) -> None: ...
    def connection_check_out_failed(self, event: Any) -> None: ...


class MongoClients:
    def __init__(self, settings: MongoSettings) -> None:
        self.settings = settings
        self.pool = PoolFigures()
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.url,
            appname="orgbase",
            serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
            connectTimeoutMS=settings.connect_timeout_ms,
            socketTimeoutMS=settings.socket_timeout_ms,
            maxPoolSize=settings.pool_max,
            tz_aware=True,
            uuidRepresentation="standard",
            event_listeners=[self.pool],
        )

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self.client[self.settings.database]

    async def close(self) -> None:
        await self.client.close()
