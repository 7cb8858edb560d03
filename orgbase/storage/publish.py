"""Storing an object: its blob is written whole under a new key first, then one
transaction makes the metadata row name it (insert, or replace when upserting), checks the
org's quota and is audited (the webhook outbox). Until that commit nothing is visible;
after a failure the new blob is deleted (or, after a crash, swept as an orphan). A blob
that an object stops naming is deleted after the commit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import asyncpg
import msgspec
import structlog

from orgbase.core.errors import NotFound, OrgbaseError
from orgbase.core.events import EventBus, StorageObjectChanged
from orgbase.core.metering import Meter
from orgbase.core.org_limits import LimitsOf
from orgbase.core.pg_errors import entry_error, refused_value
from orgbase.core.postgres import Connection, Database
from orgbase.core.settings import StorageSettings
from orgbase.core.tasks import TaskSet
from orgbase.storage import errors, names, org_rows
from orgbase.storage.access import Access
from orgbase.storage.backends.base import Backend
from orgbase.storage.catalog import Bucket, BucketCatalog
from orgbase.storage.receive import Limit, Received, Receiver, backend_call
from orgbase.storage.sniff import check_allowed, essence

log = structlog.get_logger("orgbase.storage")
Change = Literal["created", "updated", "deleted"]


@dataclass(frozen=True, slots=True)
class Target:
    bucket: str
    name: str
    upsert: bool


@dataclass(frozen=True, slots=True)
class Incoming:
    """What came with a body besides its bytes."""

    mimetype: str
    cache_control: str | None = None
    metadata: dict[str, Any] | None = None
    declared_size: int | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    id: UUID
    bucket: str
    name: str
    created: bool
    size: int
    updated_at: datetime

    @property
    def key(self) -> str:
        return f"{self.bucket}/{self.name}"


def new_key(org: UUID) -> str:
    return f"{org}/{uuid.uuid4().hex}"


@dataclass(frozen=True)
class SizeLimits:
    """How large an object and an org's whole storage may grow: the org's own limits, or
    (where the platform wires none) the server's object size and no quota."""

    limits_of: LimitsOf | None
    default_max_bytes: int = 5 << 30

    def limit(self, org: UUID, bucket: Bucket) -> Limit:
        org_max = self.limits_of(org).max_object_bytes if self.limits_of else self.default_max_bytes
        if bucket.file_size_limit is not None and bucket.file_size_limit < org_max:
            return Limit(bucket.file_size_limit, "file_size_limit")
        return Limit(org_max, "max_object_bytes")

    def quota(self, org: UUID) -> int | None:
        return self.limits_of(org).storage_bytes if self.limits_of else None


@dataclass(eq=False)
class Publisher:
    db: Database
    backend: Backend
    buckets: BucketCatalog
    _: KW_ONLY
    settings: StorageSettings
    events: EventBus
    tasks: TaskSet
    sizes: SizeLimits
    meter: Meter | None = None

    async def admit(
        self, access: Access, target: Target, incoming: Incoming
    ) -> tuple[Limit, Bucket]:
        """Checks before any byte is taken: the bucket, its types, the sizes announced."""
        names.object_name(target.name)
        bucket = await self.buckets.get(access, target.bucket)
        check_allowed(incoming.mimetype, bucket.allowed_mime_types)
        limit = self.sizes.limit(access.org, bucket)
        if incoming.declared_size is not None and incoming.declared_size > limit.bytes:
            raise errors.too_large(limit.bytes, limit.which)
        return limit, bucket

    async def check_write(self, access: Access, target: Target) -> None:
        """The caller (a credential, not a grant) may store this object under its bucket's
        policy, replacing the one there when upserting: the rule the objects' policies
        apply to a write (storage.may_put), asked before a signed upload URL is made."""
        assert access.entry is not None
        rows = await self.db.tenant_fetch(
            access.entry,
            "SELECT storage.may_put($5, $6, $7, $8) AS ok WHERE ctx.role IS NOT NULL",
            (access.org, target.bucket, target.name, target.upsert),
        )
        if not rows or not rows[0]["ok"]:
            raise errors.not_allowed("write this object")

    async def store(
        self, access: Access, target: Target, incoming: Incoming, chunks: AsyncIterator[bytes]
    ) -> Stored:
        limit, bucket = await self.admit(access, target, incoming)
        key = new_key(access.org)
        timeout = self.settings.timeout_seconds
        writer = await backend_call(self.backend.writer(key), timeout)
        try:
            receiver = Receiver(
                writer, limit, incoming.mimetype, self.settings.chunk_bytes, timeout
            )
            received = await receiver.take(chunks)
            await backend_call(writer.commit(), timeout)
        except BaseException:
            await writer.abort()
            raise
        return await self.publish(access, target, incoming, key, received, bucket=bucket)

    async def adopt(
        self, access: Access, target: Target, incoming: Incoming, path: Path, received: Received
    ) -> Stored:
        """A finished resumable upload (a complete local file) becomes the object."""
        bucket = await self.buckets.get(access, target.bucket)
        key = new_key(access.org)
        await backend_call(self.backend.adopt(key, path), self.settings.timeout_seconds * 10)
        return await self.publish(access, target, incoming, key, received, bucket=bucket)

    async def publish(
        self,
        access: Access,
        target: Target,
        incoming: Incoming,
        key: str,
        received: Received,
        *,
        bucket: Bucket,
    ) -> Stored:
        try:
            stored, old_blob = await self._commit(access, target, incoming, key, received)
        except BaseException:
            self.forget([key])
            raise
        if old_blob:
            self.forget([old_blob])
        if self.meter is not None:
            self.meter.add(access.org, "storage_bytes_in", received.size)
        change: Change = "created" if stored.created else "updated"
        await self.announce(access.org, bucket, stored, change)
        return stored

    async def _commit(
        self, access: Access, target: Target, incoming: Incoming, key: str, received: Received
    ) -> tuple[Stored, str | None]:
        args = (
            access.org,
            target.bucket,
            target.name,
            key,
            received.size,
            essence(incoming.mimetype),
            incoming.cache_control,
            received.sha256,
            None if incoming.metadata is None else msgspec.json.encode(incoming.metadata).decode(),
            access.owner,
            target.upsert,
        )
        function = "put_object" if access.entry is not None else "put_granted"
        sql = (
            f"SELECT * FROM storage.{function}($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)"
        )
        try:
            row = await (self._upsert if target.upsert else self._put)(access, sql, args)
        except asyncpg.PostgresError as exc:
            mapped = write_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        if self.meter is not None:
            self.meter.level(access.org, "storage_bytes", int(row["total"]))
        stored = Stored(
            row["object_id"],
            target.bucket,
            target.name,
            row["created"],
            received.size,
            row["updated_at"],
        )
        return stored, row["old_blob"]

    async def _upsert(self, access: Access, sql: str, args: tuple[Any, ...]) -> asyncpg.Record:
        try:
            return await self._put(access, sql, args)
        except asyncpg.UniqueViolationError:
            pass  # two upserts of a new name at once, and this one's INSERT lost the race
        try:
            return await self._put(access, sql, args)  # it finds the row now, and replaces it
        except asyncpg.UniqueViolationError:
            # Still unseen: a row the caller may not see (another member's object in an
            # owner_private bucket) is not theirs to replace.
            raise errors.not_allowed("replace this object") from None

    async def _put(self, access: Access, sql: str, args: tuple[Any, ...]) -> asyncpg.Record:
        """One put_object call, the org's quota checked in its transaction."""
        async with self._transaction(access) as connection:
            row: asyncpg.Record | None = await connection.fetchrow(sql, *args)
            assert row is not None
            quota = self.sizes.quota(access.org)
            if quota is not None and row["grown"] > 0 and row["total"] > quota:
                raise errors.quota_exceeded(quota)
        return row

    def _transaction(self, access: Access) -> Any:
        if access.entry is not None:
            return self.db.tenant_transaction_with(access.entry)
        return _granted_transaction(self.db, access.org)

    def forget(self, keys: list[str]) -> None:
        """Delete blobs no object names any more, off the request's path (a failure
        leaves orphans for the sweeper)."""
        if keys:
            self.tasks.spawn(self.backend.delete(keys), "storage: delete unused blobs")

    async def announce(self, org: UUID, bucket: Bucket, stored: Stored, change: Change) -> None:
        """After the commit: realtime hears of it (the outbox already has it)."""
        await self.events.publish(
            StorageObjectChanged(
                org_id=org,
                bucket=bucket.id,
                name=None if bucket.policy == "owner_private" else stored.name,
                object_id=stored.id,
                change=change,
                size=stored.size,
            )
        )


class _GrantedTransaction:
    def __init__(self, db: Database, org: UUID) -> None:
        self.db = db
        self.org = org
        self._connection: Any = None
        self._transaction: Any = None

    async def __aenter__(self) -> Connection:
        self._connection = self.db.tenant_connection(self.org)
        connection: Connection = await self._connection.__aenter__()
        self._transaction = connection.transaction()
        await self._transaction.__aenter__()
        return connection

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._transaction.__aexit__(*exc)
        finally:
            await self._connection.__aexit__(*exc)


def _granted_transaction(db: Database, org: UUID) -> _GrantedTransaction:
    return _GrantedTransaction(db, org)


async def write_row(db: Database, access: Access, sql: str, *args: Any) -> asyncpg.Record | None:
    """One write in the access's org with its credential; PostgreSQL's refusals in the
    API's terms."""
    try:
        async with org_rows.transaction(db, access) as connection:
            row: asyncpg.Record | None = await connection.fetchrow(sql, *args)
            return row
    except asyncpg.PostgresError as exc:
        refused = write_error(exc)
        if refused is None:
            raise
        raise refused from exc


def write_error(exc: asyncpg.PostgresError) -> OrgbaseError | None:
    """A refused object write in the API's terms (None: not a refusal)."""
    entering = entry_error(exc)
    if entering is not None:
        return entering
    state = getattr(exc, "sqlstate", "") or ""
    known = _WRITE_ERRORS.get(state)
    if known is not None:
        return known()
    if state.startswith(("22", "23")):
        # In our words: PostgreSQL's describe the database, not the request.
        return errors.invalid_request(refused_value(exc).message)
    return None


_WRITE_ERRORS: dict[str, Callable[[], OrgbaseError]] = {
    "OBS09": errors.key_exists,
    "OBS10": errors.signer_gone,
    "23505": errors.key_exists,
    "42501": lambda: errors.not_allowed("write here"),
    "23503": errors.no_such_bucket,
    "OB404": lambda: NotFound("no such org", code="org_not_found"),
}
