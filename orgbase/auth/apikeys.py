"""API keys: per org, shown once, stored as a SHA-256 (they carry 256 bits of entropy, so a
slow hash adds nothing), scoped to a role, optionally expiring, revocable at once. A key
acts with its maker's authority: it is revoked (by PostgreSQL, in the same transaction)
when its maker leaves the org, drops below the key's role or deletes their account.

Lookups go through the same revocable Redis cache as sessions, and never find a key whose
org is gone: closing an org revokes its keys in the same transaction (``revoke_for_org``),
and a key is made only while its org is held live. PostgreSQL checks the key again
whenever a statement enters its org.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import structlog
from redis.asyncio import Redis

from orgbase.core import keys
from orgbase.core.cache import TOMBSTONE, RevocableCache
from orgbase.core.events import EventBus, KeysRevoked
from orgbase.core.postgres import Connection, Database
from orgbase.core.redis import RedisClients

log = structlog.get_logger("orgbase.apikeys")

KEY_PREFIX = "obk_"
CACHE_SECONDS = 300


# A creator's keys revoked within a cache lifetime: any older one can no longer be cached.
_REVOKED_OF_CREATOR = """
SELECT id, org_id, key_hash FROM orgbase.api_keys
WHERE created_by = $1 AND ($2::uuid IS NULL OR org_id = $2)
  AND revoked_at >= now() - make_interval(secs => $3)
"""


class CachedKey(msgspec.Struct, frozen=True, array_like=True):
    key_id: UUID
    org_id: UUID
    role: str
    expires_at: float | None


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeyStore:
    def __init__(self, db: Database, redis: RedisClients, events: EventBus) -> None:
        self.db = db
        self.redis = redis
        self.cache = RevocableCache.of_struct(
            redis, keys.API_KEY_CACHE_PREFIX, CachedKey, ttl_seconds=CACHE_SECONDS
        )
        self.events = events
        """Told after keys were revoked (``KeysRevoked``): their sockets close, their
        pending invitations are revoked; a revocation fails when its announcement does."""

    async def authenticate(self, key: str) -> CachedKey | None:
        if len(key) > 200:
            return None
        return await self.authenticate_digest(digest(key))

    async def authenticate_digest(self, hashed: bytes) -> CachedKey | None:
        """The key with this SHA-256, when it is usable (cached, revocable)."""
        found = await self.cache.get_or_load(hashed.hex(), lambda: self._load(hashed))
        if found is None or (found.expires_at is not None and found.expires_at <= time.time()):
            return None
        return found

    async def _load(self, hashed: bytes) -> CachedKey | None:
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(
                """
                SELECT id, org_id, role, extract(epoch FROM expires_at)::float8 AS exp
                FROM orgbase.api_keys
                WHERE key_hash = $1 AND revoked_at IS NULL
                  AND (expires_at IS NULL OR expires_at > now())
                """,
                hashed,
            )
        if row is None:
            return None
        return CachedKey(row["id"], row["org_id"], row["role"], row["exp"])

    async def create(
        self,
        connection: Connection,
        *,
        org_id: UUID,
        name: str,
        role: str,
        created_by: UUID | None,
        expires_at: datetime | None,
    ) -> tuple[dict[str, Any], str]:
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        row = await connection.fetchrow(
            """
            INSERT INTO orgbase.api_keys
                (org_id, name, prefix, key_hash, role, created_by, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING id, org_id, name, prefix, role, created_by, created_at, expires_at,
                      last_used_at, revoked_at
            """,
            org_id,
            name,
            plaintext[:12],
            digest(plaintext),
            role,
            created_by,
            expires_at,
        )
        assert row is not None
        return dict(row), plaintext

    async def list_for_org(self, connection: Connection, org_id: UUID) -> list[dict[str, Any]]:
        rows = await connection.fetch(
            """
            SELECT id, org_id, name, prefix, role, created_by, created_at, expires_at,
                   last_used_at, revoked_at
            FROM orgbase.api_keys WHERE org_id = $1 ORDER BY created_at DESC
            """,
            org_id,
        )
        return [dict(r) for r in rows]

    async def revoke(self, connection: Connection, org_id: UUID, key_id: UUID) -> bytes | None:
        """Revoke (in the caller's transaction); returns the hash to ``forget`` after commit."""
        hashed: bytes | None = await connection.fetchval(
            """
            UPDATE orgbase.api_keys SET revoked_at = now()
            WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL
            RETURNING key_hash
            """,
            key_id,
            org_id,
        )
        return hashed

    async def revoke_for_org(self, connection: Connection, org_id: UUID) -> list[bytes]:
        """Revoke every key of an org being deleted (in the caller's transaction). The keys'
        rows go with the org, so the hashes are also journaled for a resync after a Redis
        outage; ``forget`` them after commit."""
        rows = await connection.fetch(
            """
            WITH revoked AS (
                UPDATE orgbase.api_keys SET revoked_at = coalesce(revoked_at, now())
                WHERE org_id = $1 RETURNING key_hash),
            journaled AS (
                INSERT INTO orgbase.credential_revocations (cache_key)
                SELECT 'akey:' || encode(key_hash, 'hex') FROM revoked)
            SELECT key_hash FROM revoked
            """,
            org_id,
        )
        return [r["key_hash"] for r in rows]

    async def creator_changed(self, user_id: UUID, org_id: UUID | None = None) -> None:
        """After a change that may have ended a key creator's authority committed (their
        membership of ``org_id`` removed or lowered, their account deleted): PostgreSQL's
        triggers revoked those keys in that transaction (sql/rls/0031_api_key_creators.sql);
        they are forgotten and announced here like any revocation. (Keys revoked earlier
        within a cache lifetime are announced again: harmless.)"""
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_REVOKED_OF_CREATOR, user_id, org_id, CACHE_SECONDS)
        if not rows:
            return
        await self.forget([row["key_hash"] for row in rows])
        by_org: dict[UUID, list[UUID]] = {}
        for row in rows:
            by_org.setdefault(row["org_id"], []).append(row["id"])
        for org, key_ids in by_org.items():
            await self.revoked(org, key_ids)

    async def forget(self, hashes: list[bytes]) -> None:
        """Tombstone revoked keys in the cache (after the revocation committed)."""
        await self.cache.revoke([h.hex() for h in hashes])

    async def revoked(self, org_id: UUID, key_ids: list[UUID]) -> None:
        revoked = KeysRevoked(org_id=org_id, keys=tuple(key_ids))
        await self.events.publish(revoked, must_succeed=True)

    async def resync(self, since: float) -> None:
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                """
                SELECT 'akey:' || encode(key_hash, 'hex') AS cache_key FROM orgbase.api_keys
                WHERE revoked_at >= to_timestamp($1)
                UNION
                SELECT cache_key FROM orgbase.credential_revocations
                WHERE revoked_at >= to_timestamp($1)
                """,
                since,
            )
            # The journal only has to outlive a cache entry (and an outage): keep a day.
            await connection.execute(
                "DELETE FROM orgbase.credential_revocations"
                " WHERE revoked_at < now() - interval '1 day'"
            )
        if not rows:
            return

        async def write(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.set(row["cache_key"], TOMBSTONE, ex=CACHE_SECONDS)
                await pipe.execute()

        await self.redis.run(write)
