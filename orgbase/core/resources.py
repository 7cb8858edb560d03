"""The clients of the three backing services, opened once per process."""

from __future__ import annotations

from orgbase.core.mongo import MongoClients
from orgbase.core.pg_listener import PgListener
from orgbase.core.postgres import Database
from orgbase.core.redis import RedisClients
from orgbase.core.replicas import ReplicaRouter
from orgbase.core.settings import Settings


class Resources:
    """PostgreSQL pools and its one LISTEN connection, the Redis client and the Mongo
    client of one gateway process.

    Opening never fails because a service is down: each client connects lazily or falls
    back to connecting lazily, and /health/ready tells which service is missing.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database)
        self.notifications = PgListener(
            settings.database.listener_url, settings.database.connect_timeout
        )
        self.redis = RedisClients(settings.redis)
        self.mongo = MongoClients(settings.mongo)
        self.replicas = ReplicaRouter(settings.database, self.db, self.redis)

    async def open(self) -> None:
        await self.db.open()
        await self.replicas.open()
        self.notifications.start()

    async def close(self) -> None:
        await self.notifications.stop()
        await self.replicas.close()
        await self.mongo.close()
        await self.redis.close()
        await self.db.close()
