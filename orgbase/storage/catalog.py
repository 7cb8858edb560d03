"""An org's buckets: listing, creating, changing and deleting them (PostgreSQL decides
who may: the org reads, admins and owners write; the triggers audit every change)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from orgbase.core.errors import Forbidden, Invalid
from orgbase.core.postgres import Database
from orgbase.core.settings import StorageSettings
from orgbase.storage import errors, names, org_rows
from orgbase.storage.access import Access
from orgbase.storage.schemas import BucketBody, byte_size

_COLUMNS = "id, policy, file_size_limit, allowed_mime_types, owner_id, created_at, updated_at"


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    policy: str
    file_size_limit: int | None
    allowed_mime_types: list[str] | None
    owner_id: Any = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def public(self) -> bool:
        return self.policy == "public_read"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.id,
            "owner": str(self.owner_id) if self.owner_id else "",
            "public": self.public,
            "policy": self.policy,
            "type": "STANDARD",
            "file_size_limit": self.file_size_limit,
            "allowed_mime_types": self.allowed_mime_types,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


def _bucket(row: asyncpg.Record) -> Bucket:
    return Bucket(**{k: v for k, v in dict(row).items() if k in Bucket.__struct_fields__})


def _mime_list(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if len(value) > 100 or any(not isinstance(v, str) or not 0 < len(v) <= 255 for v in value):
        raise Invalid("allowed_mime_types: at most 100 types", code="InvalidRequest")
    return value or None


def _preset(body: BucketBody, current: str | None) -> str:
    if body.policy is not None:
        if body.public is not None and body.public != (body.policy == "public_read"):
            raise Invalid("public and policy disagree", code="InvalidRequest")
        return body.policy
    if body.public is True:
        return "public_read"
    if body.public is False and (current is None or current == "public_read"):
        return "members"
    return current or "members"


class BucketCatalog:
    def __init__(self, db: Database, settings: StorageSettings) -> None:
        self.db = db
        self.settings = settings

    async def all(self, access: Access) -> list[Bucket]:
        select = (
            f"SELECT {_COLUMNS} FROM storage.buckets WHERE ctx.role IS NOT NULL"
            " ORDER BY id LIMIT 100000"
        )
        return [_bucket(row) for row in await org_rows.rows(self.db, access, select)]

    async def get(self, access: Access, bucket: str) -> Bucket:
        names.bucket_id(bucket)
        if access.entry is None:
            return _bucket(await self._granted(access, bucket))
        select = (
            f"SELECT {_COLUMNS} FROM storage.buckets WHERE ctx.role IS NOT NULL AND id = $5 LIMIT 1"
        )
        row = await org_rows.one_row(self.db, access, select, (bucket,), errors.no_such_bucket)
        return _bucket(row)

    async def _granted(self, access: Access, bucket: str) -> asyncpg.Record:
        async with self.db.tenant_connection(access.org) as connection:
            row: asyncpg.Record | None = await connection.fetchrow(
                "SELECT * FROM storage.granted_bucket($1, $2)", access.org, bucket
            )
        if row is None:
            raise errors.no_such_bucket()
        return row

    async def create(self, access: Access, body: BucketBody) -> Bucket:
        bucket = names.bucket_id(body.id or body.name or "")
        values = (
            bucket,
            _preset(body, None),
            byte_size(body.file_size_limit),
            _mime_list(body.allowed_mime_types),
            access.owner,
        )
        try:
            async with org_rows.transaction(self.db, access) as connection:
                count = await connection.fetchval("SELECT count(*) FROM storage.buckets")
                if count >= self.settings.max_buckets_per_org:
                    raise Invalid(
                        f"an org has at most {self.settings.max_buckets_per_org} buckets",
                        code="too_many_buckets",
                    )
                row = await connection.fetchrow(
                    "INSERT INTO storage.buckets (id, policy, file_size_limit,"
                    " allowed_mime_types, owner_id) VALUES ($1, $2, $3, $4, $5)"
                    f" RETURNING {_COLUMNS}",
                    *values,
                )
        except asyncpg.UniqueViolationError:
            raise errors.bucket_exists() from None
        except asyncpg.InsufficientPrivilegeError:
            raise _admins_only() from None
        assert row is not None
        return _bucket(row)

    async def update(self, access: Access, bucket: str, body: BucketBody) -> Bucket:
        current = await self.get(access, bucket)
        fields = body.__struct_fields__
        limit = byte_size(body.file_size_limit) if "file_size_limit" in fields else None
        try:
            async with org_rows.transaction(self.db, access) as connection:
                row = await connection.fetchrow(
                    "UPDATE storage.buckets SET policy = $2, file_size_limit = $3,"
                    " allowed_mime_types = $4, updated_at = now() WHERE id = $1"
                    f" RETURNING {_COLUMNS}",
                    bucket,
                    _preset(body, current.policy),
                    limit if body.file_size_limit is not None else current.file_size_limit,
                    _mime_list(body.allowed_mime_types)
                    if body.allowed_mime_types is not None
                    else current.allowed_mime_types,
                )
        except asyncpg.InsufficientPrivilegeError:
            raise _admins_only() from None
        if row is None:
            raise _admins_only()
        return _bucket(row)

    async def delete(self, access: Access, bucket: str) -> None:
        await self.get(access, bucket)
        try:
            async with org_rows.transaction(self.db, access) as connection:
                status = await connection.execute(
                    "DELETE FROM storage.buckets WHERE id = $1", bucket
                )
        except asyncpg.ForeignKeyViolationError:
            raise errors.bucket_not_empty() from None
        if status == "DELETE 0":
            raise _admins_only()


def _admins_only() -> Forbidden:
    return Forbidden(
        "buckets are made and changed by the org's admins and owners", code="AccessDenied"
    )
