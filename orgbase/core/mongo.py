"""The MongoDB client (PyMongo's AsyncMongoClient): connects lazily, bounded timeouts."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from orgbase.core.settings import MongoSettings


class MongoClients:
    def __init__(self, settings: MongoSettings) -> None:
        self.settings = settings
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.url,
            appname="orgbase",
            serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
            connectTimeoutMS=settings.connect_timeout_ms,
            socketTimeoutMS=settings.socket_timeout_ms,
            maxPoolSize=settings.pool_max,
            tz_aware=True,
            uuidRepresentation="standard",
        )

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self.client[self.settings.database]

    async def close(self) -> None:
        await self.client.close()
