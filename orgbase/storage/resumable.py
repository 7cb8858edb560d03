"""Resumable uploads (the TUS 1.0.0 protocol, as Supabase serves it at
``/storage/v1/upload/resumable``: tus-js-client and tuspy speak it). An upload is a row
(what it will become, under the org's policies) and a staging file its PATCHes append to,
fsync'd as they go. A PATCH cut short keeps what arrived: HEAD tells the client the
offset to resume from. The last byte publishes the object like any upload. One PATCH at a
time per upload (a file lock); the staging folder must be shared by the gateways that
serve one upload (docs/storage.md)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from orgbase.core.errors import Conflict, PreconditionFailed
from orgbase.core.postgres import Database
from orgbase.core.settings import StorageSettings
from orgbase.storage import errors, names, org_rows
from orgbase.storage.access import Access
from orgbase.storage.forms import cache_control, user_metadata
from orgbase.storage.publish import Incoming, Publisher, Stored, Target, write_row
from orgbase.storage.receive import Interrupted, Received
from orgbase.storage.sniff import check_content, essence
from orgbase.storage.sweeper import staging_folder

VERSION = "1.0.0"
_COLUMNS = "id, bucket_id, name, size, upsert, mimetype, cache_control, user_metadata, expires_at"


def parse_metadata(header: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in (header or "").split(","):
        key, _, value = item.strip().partition(" ")
        if not key:
            continue
        try:
            found[key] = base64.b64decode(value, validate=True).decode() if value else ""
        except (ValueError, UnicodeDecodeError):
            raise errors.invalid_request(
                f"Upload-Metadata {key[:40]!r} is not base64 of UTF-8"
            ) from None
    return found


def whole_number(value: str | None, header: str) -> int:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 18:
        raise errors.invalid_request(f"{header} must be a whole number of bytes")
    return int(value)


def _append(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _digest(path: Path) -> tuple[bytes, bytes]:
    """The file's SHA-256 and its first bytes (the type check)."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        head = handle.read(64)
        hasher.update(head)
        while block := handle.read(1 << 20):
            hasher.update(block)
    return hasher.digest(), head


@dataclass(eq=False)
class Resumable:
    db: Database
    publisher: Publisher
    settings: StorageSettings
    root: Path

    def prepare(self) -> None:
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)

    def part(self, org: UUID, upload: UUID) -> Path:
        return staging_folder(self.root, org) / str(upload)

    async def create(
        self, access: Access, length: int, metadata: dict[str, str], upsert: bool
    ) -> tuple[UUID, datetime]:
        bucket, name = metadata.get("bucketName", ""), metadata.get("objectName", "")
        mimetype = essence(metadata.get("contentType") or "application/octet-stream")
        incoming = Incoming(mimetype, declared_size=length)
        target = Target(names.bucket_id(bucket), name, upsert)
        await self.publisher.admit(access, target, incoming)
        # Refused now, as signing is, rather than at the last byte.
        await self.publisher.check_write(access, target)
        cache = cache_control(metadata.get("cacheControl") or "3600")
        user_meta = metadata.get("metadata") or None
        user_metadata(user_meta)  # checked now: the last PATCH must not find it bad
        expires = datetime.now(UTC) + timedelta(seconds=self.settings.resumable_seconds)
        row = await write_row(
            self.db,
            access,
            "INSERT INTO storage.uploads (bucket_id, name, size, upsert, mimetype,"
            " cache_control, user_metadata, owner_id, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9) RETURNING id",
            bucket,
            name,
            length,
            upsert,
            mimetype,
            cache,
            user_meta,
            access.owner,
            expires,
        )
        assert row is not None
        upload: UUID = row["id"]
        path = self.part(access.org, upload)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(path.touch)
        return upload, expires

    async def find(self, access: Access, upload: UUID) -> dict[str, Any]:
        # An upload is its creator's: the object it becomes is theirs, so nobody else (an
        # admin who may see the row included) sends its bytes or reads its offset.
        select = (
            f"SELECT {_COLUMNS} FROM storage.uploads WHERE ctx.role IS NOT NULL"
            " AND id = $5 AND owner_id IS NOT DISTINCT FROM $6 AND expires_at > now() LIMIT 1"
        )
        keys = (upload, access.owner)
        row = await org_rows.one_row(self.db, access, select, keys, errors.no_such_upload)
        return dict(row)

    async def offset(self, access: Access, upload: UUID) -> tuple[int, dict[str, Any]]:
        row = await self.find(access, upload)
        try:
            size = (await asyncio.to_thread(os.stat, self.part(access.org, upload))).st_size
        except FileNotFoundError:
            raise errors.no_such_upload() from None
        return size, row

    async def patch(
        self, access: Access, upload: UUID, offset: int, chunks: AsyncIterator[bytes]
    ) -> tuple[int, Stored | None]:
        row = await self.find(access, upload)
        path = self.part(access.org, upload)
        try:
            fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            raise errors.no_such_upload() from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(
                    "another PATCH of this upload is under way", code="upload_busy"
                ) from None
            size = await self._receive(fd, row, offset, chunks)
        finally:
            os.close(fd)
        if size < row["size"]:
            return size, None
        return size, await self._finish(access, upload, row, path)

    async def _receive(
        self, fd: int, row: dict[str, Any], offset: int, chunks: AsyncIterator[bytes]
    ) -> int:
        size = os.fstat(fd).st_size
        if offset != size:
            raise Conflict(
                f"Upload-Offset is {offset}, the upload is at {size}",
                code="offset_mismatch",
                details={"offset": size},
            )
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > row["size"]:
                    raise errors.too_large(row["size"], "Upload-Length")
                await asyncio.to_thread(_append, fd, chunk)
        except Interrupted:
            pass  # what arrived is kept: the client resumes from HEAD's offset
        except OSError as exc:
            raise errors.backend_full() if exc.errno == 28 else errors.backend_down() from exc
        finally:
            await asyncio.to_thread(os.fsync, fd)
            size = os.fstat(fd).st_size
            if size > row["size"]:
                os.ftruncate(fd, row["size"])
        return size

    async def _finish(
        self, access: Access, upload: UUID, row: dict[str, Any], path: Path
    ) -> Stored:
        sha, head = await asyncio.to_thread(_digest, path)
        check_content(row["mimetype"], head)
        meta = row["user_metadata"]
        incoming = Incoming(
            row["mimetype"],
            row["cache_control"],
            None if meta is None else _json(meta),
            row["size"],
        )
        target = Target(row["bucket_id"], row["name"], row["upsert"])
        stored = await self.publisher.adopt(
            access, target, incoming, path, Received(row["size"], sha)
        )
        await self.terminate(access, upload, keep_file=True)
        return stored

    async def terminate(self, access: Access, upload: UUID, *, keep_file: bool = False) -> None:
        async with org_rows.transaction(self.db, access) as connection:
            status = await connection.execute(
                "DELETE FROM storage.uploads WHERE id = $1 AND owner_id IS NOT DISTINCT FROM $2",
                upload,
                access.owner,
            )
        if status == "DELETE 0" and not keep_file:
            raise errors.no_such_upload()
        if not keep_file:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(self.part(access.org, upload).unlink)


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def check_version(headers: Any) -> None:
    if headers.get("tus-resumable") != VERSION:
        raise PreconditionFailed("Tus-Resumable: 1.0.0 is required", code="tus_version")
