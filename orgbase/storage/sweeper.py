"""Keeping the backend clean: blobs that no object names (a crash between a blob's write
and its row's commit, a delete whose blob removal failed) once they are older than the
grace period, unfinished scratch writes, expired resumable uploads; and a deleted org's
files and rows (retried by the org deletion while the backend is down)."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import structlog

from orgbase.core.errors import NotFound
from orgbase.core.postgres import Database, TenantEntry
from orgbase.core.settings import StorageSettings
from orgbase.storage.backends.base import Backend
from orgbase.storage.receive import backend_call

log = structlog.get_logger("orgbase.storage")
BATCH = 1000


def staging_folder(root: Path, org: UUID) -> Path:
    return root / "uploads" / str(org)


@dataclass(eq=False)
class Sweeper:
    db: Database
    backend: Backend
    settings: StorageSettings
    root: Path
    swept: int = field(default=0, init=False)

    async def sweep(self) -> None:
        cutoff = time.time() - self.settings.orphan_grace_seconds
        await self.backend.sweep_scratch(cutoff)
        await self.expired_uploads()
        batch: list[str] = []
        async for key, changed in self.backend.list_keys(""):
            if changed < cutoff:
                batch.append(key)
            if len(batch) >= BATCH:
                await self._drop_unreferenced(batch)
                batch = []
        await self._drop_unreferenced(batch)

    async def _drop_unreferenced(self, keys: list[str]) -> None:
        if not keys:
            return
        async with self.db.system_connection() as connection:
            rows = await connection.fetch("SELECT storage.unreferenced_blobs($1) AS k", keys)
        orphans = [row["k"] for row in rows]
        if orphans:
            await self.backend.delete(orphans)
            self.swept += len(orphans)
            log.info("orphaned blobs removed", count=len(orphans))

    async def expired_uploads(self) -> int:
        async with self.db.system_connection() as connection:
            rows = await connection.fetch("SELECT * FROM storage.take_expired_uploads($1)", BATCH)
        for row in rows:
            part = staging_folder(self.root, row["org_id"]) / str(row["id"])
            await asyncio.to_thread(part.unlink, missing_ok=True)
        return len(rows)

    async def purge_org(self, org_id: UUID) -> int:
        removed: int = await backend_call(
            self.backend.delete_prefix(f"{org_id}/"), self.settings.timeout_seconds * 10
        )
        await asyncio.to_thread(shutil.rmtree, staging_folder(self.root, org_id), True)
        entry = TenantEntry.org_purge(org_id, f"purge-{org_id}")
        try:
            async with self.db.tenant_transaction_with(entry) as connection:
                for table in ("uploads", "objects", "buckets", "usage"):
                    await connection.execute(
                        f"DELETE FROM storage.{table} WHERE org_id = $1",
                        org_id,
                    )
        except NotFound:
            pass  # swept again after the org row went: its rows went first
        return removed
