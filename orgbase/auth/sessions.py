"""Sessions: rows in PostgreSQL (the truth), cached in Redis, checked on every request.

The per-request check is one Redis GET. ``last_seen_at`` is written at most once a minute
per session and process, in the background. On a miss, PostgreSQL answers and fills the
cache; while Redis is unavailable (breaker open) or being resynced after an
outage, PostgreSQL answers every check. Revocations write tombstones (see core/cache.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
import structlog
from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.cache import TOMBSTONE, RevocableCache
from orgbase.core.context import IssuedToken
from orgbase.core.events import EventBus, SessionsRevoked
from orgbase.core.postgres import Connection, Database
from orgbase.core.redis import RedisClients, RedisUnavailable
from orgbase.core.settings import AuthSettings
from orgbase.core.tasks import TaskSet

log = structlog.get_logger("orgbase.sessions")

SEEN_SECONDS = 60
WARM_LIMIT = 20000
TOUCH_MEMORY = 50000


class CachedSession(msgspec.Struct, frozen=True, array_like=True):
    user_id: UUID
    expires_at: float


_LOAD = """
SELECT s.user_id, extract(epoch FROM s.expires_at)::float8 AS expires_at
FROM orgbase.sessions s JOIN orgbase.users u ON u.id = s.user_id
WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND u.deleted_at IS NULL
"""

# A token's secret joins its session's live ones (expired ones go; past 16, the most the
# table allows, the ones expiring first make room). One statement: concurrent refreshes of
# one session each add theirs (the row lock orders them, each sees the other's).
_ADD_HASH = """
UPDATE orgbase.sessions s SET (secret_hashes, secret_expires_at) = (
    SELECT coalesce(array_agg(k.h ORDER BY k.e DESC), '{}'),
           coalesce(array_agg(k.e ORDER BY k.e DESC), '{}')
    FROM (SELECT live.h, live.e
          FROM unnest(s.secret_hashes, s.secret_expires_at) AS live(h, e) WHERE live.e > now()
          UNION ALL SELECT orgbase.secret_hash($2), to_timestamp($3)
          ORDER BY 2 DESC LIMIT 16) AS k(h, e)),
    last_seen_at = now()
WHERE s.id = $1
"""


@dataclass(eq=False)
class SessionStore:
    db: Database
    redis: RedisClients
    settings: AuthSettings
    events: EventBus  # told SessionsRevoked: realtime closes their sockets
    tasks: TaskSet
    cache: RevocableCache[CachedSession] = field(init=False)
    _touched: dict[UUID, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.cache = RevocableCache.of_struct(
            self.redis,
            keys.SESSION_CACHE_PREFIX,
            CachedSession,
            ttl_seconds=self.settings.session_cache_seconds,
        )

    # -- the per-request check ---------------------------------------------------------

    async def is_alive(self, session_id: UUID, user_id: UUID) -> bool:
        session = await self._lookup(session_id)
        return (
            session is not None and session.user_id == user_id and session.expires_at > time.time()
        )

    async def _lookup(self, session_id: UUID) -> CachedSession | None:
        key = keys.session_cache_key(session_id)
        if self.cache.trusted():
            try:
                raw = await self.redis.run(lambda r: self.cache.raw_get(r, key))
            except RedisUnavailable:
                pass
            else:
                # The call that closes the breaker after an outage starts a resync: what it
                # read may be stale, so it is not trusted either.
                if self.cache.trusted():
                    return await self.from_cache(session_id, raw)
        self.cache.stats.fallbacks += 1
        return await self._load(session_id)

    async def from_cache(self, session_id: UUID, raw: bytes | None) -> CachedSession | None:
        """Decide from a raw cache value (read by the caller), loading on a miss."""
        session: CachedSession | None
        if raw is None:
            self.cache.stats.misses += 1
            session = await self._load(session_id)
            await self.cache.fill(keys.session_cache_key(session_id), session, self._ttl(session))
        else:
            self.cache.stats.hits += 1
            session = None if raw == TOMBSTONE else self.cache.decode(raw)
        if session is not None:
            self._maybe_touch(session_id)
        return session

    def touch_later(self, session_id: UUID) -> None:
        """Note activity (``last_seen_at``), at most once a minute per session and process."""
        self._maybe_touch(session_id)

    def _maybe_touch(self, session_id: UUID) -> None:
        now = time.monotonic()
        last = self._touched.get(session_id)
        if last is not None and now - last < SEEN_SECONDS:
            return
        if len(self._touched) >= TOUCH_MEMORY:
            self._touched.clear()
        self._touched[session_id] = now
        self.tasks.spawn(self._touch(session_id), "session touch")

    async def _load(self, session_id: UUID) -> CachedSession | None:
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(_LOAD, session_id)
        return None if row is None else CachedSession(row["user_id"], row["expires_at"])

    def _ttl(self, session: CachedSession | None) -> int:
        if session is None:
            return self.settings.session_cache_seconds
        return max(1, int(session.expires_at - time.time()))

    async def _touch(self, session_id: UUID) -> None:
        try:
            async with self.db.system_connection() as connection:
                await connection.execute(
                    "UPDATE orgbase.sessions SET last_seen_at = now() WHERE id = $1", session_id
                )
        except Exception as exc:  # last_seen_at is informative: never fail a request on it
            log.warning("session touch failed", error=repr(exc))

    # -- lifecycle ---------------------------------------------------------------------

    async def create(
        self, connection: Connection, user_id: UUID, user_agent: str | None, ip: str | None
    ) -> tuple[UUID, float]:
        """Insert a session (inside the caller's transaction); cache it with ``cache_new``."""
        row = await connection.fetchrow(
            """
            INSERT INTO orgbase.sessions (user_id, user_agent, ip, expires_at)
            VALUES ($1, $2, $3::inet, now() + make_interval(secs => $4))
            RETURNING id, extract(epoch FROM expires_at)::float8 AS expires_at
            """,
            user_id,
            (user_agent or "")[:400] or None,
            ip,
            float(self.settings.session_seconds),
        )
        assert row is not None
        return row["id"], row["expires_at"]

    @staticmethod
    async def add_secret(connection: Connection, session_id: UUID, issued: IssuedToken) -> None:
        """Let a token just issued for the session enter its org (in the caller's
        transaction, before the token is handed out); notes the session as seen too."""
        await connection.execute(_ADD_HASH, session_id, issued.secret, issued.secret_expires_at)

    async def cache_new(self, session_id: UUID, user_id: UUID, expires_at: float) -> None:
        session = CachedSession(user_id, expires_at)
        await self.cache.put(keys.session_cache_key(session_id), session, self._ttl(session))

    async def revoke(
        self, connection: Connection, session_ids: Sequence[UUID], reason: str
    ) -> list[UUID]:
        """Mark sessions revoked (in the caller's transaction); call ``forget`` after commit."""
        rows = await connection.fetch(
            """
            UPDATE orgbase.sessions SET revoked_at = now(), revoked_reason = $2
            WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL
            RETURNING id
            """,
            list(session_ids),
            reason,
        )
        return [r["id"] for r in rows]

    async def revoke_for_user(
        self,
        connection: Connection,
        user_id: UUID,
        reason: str,
        keep: UUID | None = None,
    ) -> list[UUID]:
        rows = await connection.fetch(
            """
            UPDATE orgbase.sessions SET revoked_at = now(), revoked_reason = $2
            WHERE user_id = $1 AND revoked_at IS NULL AND ($3::uuid IS NULL OR id <> $3)
            RETURNING id
            """,
            user_id,
            reason,
            keep,
        )
        return [r["id"] for r in rows]

    @staticmethod
    async def revoke_signed_in_by(connection: Connection, org_id: UUID, reason: str) -> list[UUID]:
        """End the sessions an org's own provider signed in (the provider was replaced)."""
        rows = await connection.fetch(
            "UPDATE orgbase.sessions SET revoked_at = now(), revoked_reason = $2"
            " WHERE sso_org_id = $1 AND revoked_at IS NULL RETURNING id",
            org_id,
            reason,
        )
        return [r["id"] for r in rows]

    async def forget(self, session_ids: Sequence[UUID]) -> None:
        """Tombstone revoked sessions in the cache (after the revocation committed)."""
        await self.cache.revoke(
            [keys.session_cache_key(s) for s in session_ids],
            ttl=self.settings.session_cache_seconds,
        )
        await self.events.publish(SessionsRevoked(sessions=tuple(session_ids)), must_succeed=True)

    @staticmethod
    async def drop_active_org(connection: Connection, org_id: UUID) -> None:
        """An org is being deleted: refreshing a session no longer lands in it."""
        await connection.execute(
            "UPDATE orgbase.refresh_tokens SET org_id = NULL WHERE org_id = $1", org_id
        )

    async def list_for_user(self, user_id: UUID) -> list[dict[str, Any]]:
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                """
                SELECT id, user_agent, host(ip) AS ip, created_at, last_seen_at, expires_at
                FROM orgbase.sessions
                WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
                ORDER BY last_seen_at DESC
                """,
                user_id,
            )
        return [dict(r) for r in rows]

    # -- warming and resync ------------------------------------------------------------

    async def warm(self) -> int:
        """Load recently active sessions into Redis (SET NX: never over newer facts)."""
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                """
                SELECT s.id, s.user_id, extract(epoch FROM s.expires_at)::float8 AS expires_at
                FROM orgbase.sessions s JOIN orgbase.users u ON u.id = s.user_id
                WHERE s.revoked_at IS NULL AND s.expires_at > now() AND u.deleted_at IS NULL
                  AND s.last_seen_at > now() - make_interval(secs => $1)
                ORDER BY s.last_seen_at DESC
                LIMIT $2
                """,
                float(self.settings.warm_sessions_seconds),
                WARM_LIMIT,
            )
        values = {
            keys.session_cache_key(r["id"]): CachedSession(r["user_id"], r["expires_at"])
            for r in rows
        }
        return await self.cache.fill_many(values)

    async def resync(self, since: float) -> None:
        """Tombstone every session revoked (or whose user was deleted) since ``since``."""
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                """
                SELECT s.id FROM orgbase.sessions s
                WHERE s.revoked_at >= to_timestamp($1)
                UNION
                SELECT s.id FROM orgbase.sessions s JOIN orgbase.users u ON u.id = s.user_id
                WHERE u.deleted_at >= to_timestamp($1)
                """,
                since,
            )
        ids = [keys.session_cache_key(r["id"]) for r in rows]
        if ids:
            await self._revoke_strict(ids)
        log.info("session cache resynced", revoked=len(ids))

    async def _revoke_strict(self, names: list[str]) -> None:
        """Like cache.revoke, but fails (so the resync is retried) when Redis does."""
        seconds = self.settings.session_cache_seconds

        async def write(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for key in names:
                    pipe.set(keys.SESSION_CACHE_PREFIX + key, TOMBSTONE, ex=seconds)
                await pipe.execute()

        await self.redis.run(write)
