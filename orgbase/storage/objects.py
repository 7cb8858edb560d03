"""Objects' metadata: reading one (for a download), listing a folder, moving, copying
and removing. Reads are one statement through the org's entry; what row-level security
hides is, to the caller, not there."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from orgbase.core import rbac
from orgbase.core.errors import Invalid
from orgbase.core.postgres import Database
from orgbase.storage import errors, names, org_rows
from orgbase.storage.access import Access
from orgbase.storage.publish import Incoming, Publisher, Stored, Target, new_key, write_row
from orgbase.storage.receive import Received, backend_call
from orgbase.storage.schemas import ListBody

_FIELDS = (
    "id, name, blob_key, size, mimetype, cache_control, sha256, user_metadata,"
    " owner_id, created_at, updated_at"
)
MAX_LIST = 1000
MAX_REMOVE = 1000


@dataclass(frozen=True, slots=True)
class ObjectRow:
    id: UUID
    bucket: str
    name: str
    blob_key: str
    size: int
    mimetype: str
    cache_control: str | None
    sha256: bytes
    updated_at: datetime
    created_at: datetime | None = None
    user_metadata: Any = None
    owner_id: UUID | None = None

    @property
    def etag(self) -> str:
        return f'"{self.sha256.hex()}"'

    def metadata(self) -> dict[str, Any]:
        """Supabase's ``metadata`` of a listed object."""
        return {
            "eTag": self.etag,
            "size": self.size,
            "mimetype": self.mimetype,
            "cacheControl": self.cache_control or "no-cache",
            "lastModified": self.updated_at.isoformat(),
            "contentLength": self.size,
            "httpStatusCode": 200,
        }

    def info(self) -> dict[str, Any]:
        """``GET /object/info``: the object's own fields."""
        return {
            "id": str(self.id),
            "name": self.name,
            "bucket_id": self.bucket,
            "version": self.blob_key.rsplit("/", 1)[-1],
            "size": self.size,
            "content_type": self.mimetype,
            "cache_control": self.cache_control,
            "etag": self.etag,
            "sha256": self.sha256.hex(),
            "metadata": self.user_metadata,
            "last_modified": self.updated_at.isoformat(),
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def row_of(bucket: str, row: Any, name: str | None = None) -> ObjectRow:
    data = {k: v for k, v in dict(row).items() if k not in ("bucket_id", "entry", "folder")}
    if name is not None:
        data.setdefault("name", name)
    meta = data.get("user_metadata")
    if isinstance(meta, str):
        data["user_metadata"] = json.loads(meta)
    return ObjectRow(bucket=bucket, **data)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ObjectCatalog:
    def __init__(self, db: Database, publisher: Publisher) -> None:
        self.db = db
        self.publisher = publisher

    async def find(
        self, access: Access, bucket: str, name: str, *, public: bool = False
    ) -> ObjectRow:
        names.bucket_id(bucket)
        names.object_name(name)
        if access.entry is None:
            async with self.db.tenant_connection(access.org) as connection:
                rows = await connection.fetch(
                    "SELECT * FROM storage.granted_object($1, $2, $3, $4)",
                    access.org,
                    bucket,
                    name,
                    public,
                )
            found = [row_of(bucket, r, name) for r in rows]
        else:
            rows = await org_rows.rows(
                self.db,
                access,
                f"SELECT {_FIELDS} FROM storage.objects WHERE ctx.role IS NOT NULL"
                " AND bucket_id = $5 AND name = $6 LIMIT 1",
                (bucket, name),
            )
            found = [row_of(bucket, r) for r in rows]
        if not found:
            raise errors.no_such_key()
        return found[0]

    async def listing(self, access: Access, bucket: str, body: ListBody) -> list[dict[str, Any]]:
        await self.publisher.buckets.get(access, bucket)
        folder = names.prefix(body.prefix)
        start = f"{folder}/" if folder else ""
        order = "DESC" if body.sortBy.order.lower() == "desc" else "ASC"
        column = {"name": "entry", "last_accessed_at": "updated_at"}.get(
            body.sortBy.column, body.sortBy.column
        )
        limit = max(1, min(body.limit, MAX_LIST))
        inner = f"""
            SELECT e.* FROM (
              SELECT DISTINCT ON (u.entry, u.folder) u.* FROM (
                SELECT split_part(substr(o.name, $6::int + 1), '/', 1) AS entry,
                       strpos(substr(o.name, $6::int + 1), '/') > 0 AS folder,
                       {_FIELDS}
                FROM storage.objects o
                WHERE ctx.role IS NOT NULL AND o.bucket_id = $5
                  AND o.name LIKE $7 ESCAPE '\\'
                OFFSET 0) AS u
              WHERE $8 = '' OR u.entry ILIKE $8 ESCAPE '\\'
              ORDER BY u.entry, u.folder) AS e
            ORDER BY e.{column} {order} NULLS LAST, e.entry LIMIT $9 OFFSET $10
        """
        rows = await org_rows.rows(
            self.db,
            access,
            inner,
            (
                bucket,
                len(start),
                _like_prefix(start) + "%",
                _like_prefix(body.search) + "%" if body.search else "",
                limit,
                max(0, body.offset),
            ),
        )
        return [_listed(bucket, row) for row in rows]

    async def move(self, access: Access, source: tuple[str, str], target: tuple[str, str]) -> None:
        for bucket, name in (source, target):
            names.bucket_id(bucket)
            names.object_name(name)
        moving = await self.find(access, *source)
        # What moves in obeys the target bucket's types and sizes, as a copy does.
        moved_in = Incoming(moving.mimetype, declared_size=moving.size)
        _, into = await self.publisher.admit(access, Target(*target, upsert=False), moved_in)
        # Only what the target admitted: an object replaced meanwhile is not moved.
        row = await write_row(
            self.db,
            access,
            "UPDATE storage.objects SET bucket_id = $3, name = $4, updated_at = now()"
            " WHERE bucket_id = $1 AND name = $2 AND size = $5 AND mimetype = $6"
            " RETURNING id, size, updated_at",
            *source,
            *target,
            moving.size,
            moving.mimetype,
        )
        if row is None:
            raise errors.no_such_key()
        stored = Stored(row["id"], target[0], target[1], False, row["size"], row["updated_at"])
        await self.publisher.announce(access.org, into, stored, "updated")

    async def copy(
        self, access: Access, source: tuple[str, str], target: tuple[str, str], upsert: bool
    ) -> Stored:
        found = await self.find(access, *source)
        target_ = Target(target[0], target[1], upsert)
        incoming = Incoming(found.mimetype, found.cache_control, found.user_metadata, found.size)
        _, bucket = await self.publisher.admit(access, target_, incoming)
        key = new_key(access.org)
        publisher = self.publisher
        await backend_call(
            publisher.backend.copy(found.blob_key, key), publisher.settings.timeout_seconds
        )
        received = Received(found.size, found.sha256)
        return await publisher.publish(access, target_, incoming, key, received, bucket=bucket)

    async def remove(self, access: Access, bucket: str, paths: list[str]) -> list[dict[str, Any]]:
        names.bucket_id(bucket)
        if len(paths) > MAX_REMOVE:
            raise Invalid(f"at most {MAX_REMOVE} objects at once", code="InvalidRequest")
        wanted = [names.object_name(p) for p in paths]
        rows = await self._delete(
            access, "bucket_id = $1 AND name = ANY($2::text[])", bucket, wanted
        )
        return [_removed(bucket, r) for r in rows]

    async def empty(self, access: Access, bucket: str) -> int:
        """Delete every object (the org's admins and owners, as for the bucket itself)."""
        await self.publisher.buckets.get(access, bucket)
        if access.ctx is not None:
            rbac.require(access.ctx, "admin", "emptying a bucket")
        removed = 0
        while rows := await self._delete(
            access,
            "(bucket_id, name) IN (SELECT bucket_id, name FROM storage.objects"
            " WHERE bucket_id = $1 LIMIT $2)",
            bucket,
            MAX_REMOVE,
        ):
            removed += len(rows)
        return removed

    async def _delete(self, access: Access, where: str, *args: Any) -> list[asyncpg.Record]:
        async with org_rows.transaction(self.db, access) as connection:
            rows: list[asyncpg.Record] = await connection.fetch(
                f"DELETE FROM storage.objects WHERE {where} RETURNING bucket_id, {_FIELDS}",
                *args,
            )
            total = await connection.fetchval(
                "SELECT bytes FROM storage.usage WHERE org_id = $1", access.org
            )
        publisher = self.publisher
        publisher.forget([r["blob_key"] for r in rows])
        if publisher.meter is not None and total is not None:
            publisher.meter.level(access.org, "storage_bytes", int(total))
        if rows:
            bucket = await publisher.buckets.get(access, rows[0]["bucket_id"])
            for row in rows:
                stored = Stored(
                    row["id"], row["bucket_id"], row["name"], False, row["size"], row["updated_at"]
                )
                await publisher.announce(access.org, bucket, stored, "deleted")
        return rows


def _listed(bucket: str, row: asyncpg.Record) -> dict[str, Any]:
    if row["folder"]:
        return {
            "name": row["entry"],
            "id": None,
            "updated_at": None,
            "created_at": None,
            "last_accessed_at": None,
            "metadata": None,
        }
    obj = row_of(bucket, row)
    return {
        "name": row["entry"],
        "id": str(obj.id),
        "updated_at": obj.updated_at.isoformat(),
        "created_at": obj.created_at.isoformat() if obj.created_at else None,
        "last_accessed_at": obj.updated_at.isoformat(),
        "metadata": obj.metadata(),
    }


def _removed(bucket: str, row: asyncpg.Record) -> dict[str, Any]:
    obj = row_of(bucket, row)
    return {
        "name": obj.name,
        "bucket_id": bucket,
        "owner": str(obj.owner_id) if obj.owner_id else "",
        "id": str(obj.id),
        "updated_at": obj.updated_at.isoformat(),
        "created_at": obj.created_at.isoformat() if obj.created_at else None,
        "last_accessed_at": obj.updated_at.isoformat(),
        "metadata": obj.metadata(),
    }
