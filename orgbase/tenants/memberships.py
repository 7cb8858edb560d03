"""Who is in which org with which role: PostgreSQL, cached in Redis per (org, user).

A change writes the new role over the cached one and a removal writes a tombstone, so the
next request on any replica sees it. After a Redis outage every cached membership is
dropped (they are cheap to reload) before the cache is trusted again.
"""

from __future__ import annotations

from typing import cast
from uuid import UUID

import structlog

from orgbase.core import keys
from orgbase.core.cache import RevocableCache
from orgbase.core.context import Role
from orgbase.core.events import EventBus, MembershipChanged
from orgbase.core.postgres import Connection, Database
from orgbase.core.redis import RedisClients, unlink_matching

log = structlog.get_logger("orgbase.memberships")

# A deleted account has no memberships: its deletion ends them in its own transaction
# (``OrgDirectory.leave_all``), and whoever makes a membership holds the account first.
_LOAD = """
SELECT m.role FROM orgbase.memberships m
JOIN orgbase.orgs o ON o.id = m.org_id AND o.deleted_at IS NULL
WHERE m.org_id = $1 AND m.user_id = $2
"""


class MembershipCache:
    PREFIX = keys.MEMBERSHIP_CACHE_PREFIX

    def __init__(
        self, db: Database, redis: RedisClients, ttl_seconds: int, events: EventBus
    ) -> None:
        self.db = db
        self.redis = redis
        self.cache: RevocableCache[str] = RevocableCache(
            redis,
            self.PREFIX,
            encode=str.encode,
            decode=bytes.decode,
            ttl_seconds=ttl_seconds,
        )
        self.events = events
        """Told about changed (the new role) and ended (None) memberships
        (``MembershipChanged``): open sockets lose rights or close."""

    @staticmethod
    def _key(org_id: UUID, user_id: UUID) -> str:
        return keys.membership_cache_key(org_id, user_id)

    async def role(
        self, org_id: UUID, user_id: UUID, connection: Connection | None = None
    ) -> Role | None:
        """``connection``: the caller's, for a load (no second connection while it holds one)."""

        async def load() -> str | None:
            if connection is not None:
                found: str | None = await connection.fetchval(_LOAD, org_id, user_id)
                return found
            async with self.db.system_connection() as own:
                role: str | None = await own.fetchval(_LOAD, org_id, user_id)
            return role

        return cast("Role | None", await self.cache.get_or_load(self._key(org_id, user_id), load))

    async def changed(self, org_id: UUID, user_id: UUID, role: Role | None) -> None:
        """Call after the change committed: the new role, or None when removed."""
        key = self._key(org_id, user_id)
        if role is None:
            await self.cache.revoke([key])
        else:
            await self.cache.put(key, role)
            await self.redis.revoked()  # a demotion acts at once on replicas too
        changed = MembershipChanged(org_id=org_id, user_id=user_id, role=role)
        await self.events.publish(changed, must_succeed=True)

    async def removed_all(self, org_id: UUID, user_ids: list[UUID]) -> None:
        """Every membership of a deleted org (the deletion itself is announced, once)."""
        await self.cache.revoke([self._key(org_id, u) for u in user_ids])

    async def resync(self, since: float) -> None:
        """Drop every cached membership (reloaded from PostgreSQL on demand)."""

        dropped = await self.redis.run(lambda r: unlink_matching(r, f"{self.PREFIX}*"))
        # Said neutrally: this also runs at every start, when nothing failed.
        log.info("membership cache cleared; entries reload from PostgreSQL", keys=dropped)
