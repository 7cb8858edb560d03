"""Builds the storage area: its backend, the bucket and object catalogs, uploads and
downloads, signed URLs, resumable uploads and the sweeper. The platform hands it the
limits lookup, the usage meter, the event bus and the task set; it imports no other area."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from orgbase.core.events import EventBus
from orgbase.core.org_usage import OrgUsage
from orgbase.core.periodic import Periodic
from orgbase.core.resources import Resources
from orgbase.core.settings import StorageSettings
from orgbase.core.tasks import TaskSet
from orgbase.storage.backends.base import Backend
from orgbase.storage.backends.filesystem import FilesystemBackend
from orgbase.storage.catalog import BucketCatalog
from orgbase.storage.objects import ObjectCatalog
from orgbase.storage.publish import Publisher, SizeLimits
from orgbase.storage.resumable import Resumable
from orgbase.storage.serve import Downloads
from orgbase.storage.signing import Signer
from orgbase.storage.sweeper import Sweeper

Admit = Callable[[Any, UUID], Awaitable[None]]


@dataclass
class StorageArea:
    settings: StorageSettings
    backend: Backend
    buckets: BucketCatalog
    publisher: Publisher
    objects: ObjectCatalog
    downloads: Downloads
    signer: Signer
    resumable: Resumable
    sweeper: Sweeper
    periodic: Periodic
    admit: Admit
    """Counts a request that carries no credential (a signed URL, a public link) against
    its org's storage allowance (the limits area's admission, given by the platform)."""

    async def admitted(self, scope: Any, org: UUID) -> None:
        await self.admit(scope, org)

    def start(self) -> None:
        if not self.settings.enabled:
            return  # not routed; a deleted org's files are still purged (purge_org)
        if isinstance(self.backend, FilesystemBackend):
            self.backend.prepare()
        self.resumable.prepare()
        self.periodic.start()

    async def purge_org(self, org_id: UUID) -> int:
        """A deleted org's files and metadata (raises while the backend is down: the
        deletion retries until it goes through)."""
        return await self.sweeper.purge_org(org_id)


def make_backend(settings: StorageSettings) -> Backend:
    if settings.backend == "s3":
        from orgbase.storage.backends.s3 import S3Backend

        return S3Backend(settings)
    return FilesystemBackend(Path(settings.root), settings.chunk_bytes)


def build_storage(
    resources: Resources,
    *,
    events: EventBus,
    tasks: TaskSet,
    usage: OrgUsage,
    admit: Admit,
) -> StorageArea:
    settings = resources.settings
    config = settings.storage
    backend = make_backend(config)
    db = resources.db
    buckets = BucketCatalog(db, config)
    publisher = Publisher(
        db,
        backend,
        buckets,
        settings=config,
        events=events,
        tasks=tasks,
        sizes=SizeLimits(usage.limits_of, settings.limits.max_object_bytes),
        meter=usage.meter,
    )
    objects = ObjectCatalog(db, publisher)
    sweeper = Sweeper(db, backend, config, Path(config.root))
    return StorageArea(
        settings=config,
        backend=backend,
        buckets=buckets,
        publisher=publisher,
        objects=objects,
        downloads=Downloads(objects, backend, config, usage.meter),
        signer=Signer.from_setting(config.signing_key, dev=settings.is_dev),
        resumable=Resumable(db, publisher, config, Path(config.root)),
        sweeper=sweeper,
        periodic=Periodic(
            "storage sweep", sweeper.sweep, config.sweep_seconds, failure_level=logging.WARNING
        ),
        admit=admit,
    )
