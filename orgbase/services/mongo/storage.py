"""How many bytes an org's documents take, for its document storage limit.

Measured with ``collStats`` over the org's collections (each org's collections are its
own), remembered for a few seconds, and raised at once by what this process inserts in
between, so a burst of inserts cannot run far past the limit between two measures. A write
that would grow an org past its limit is refused; nothing stored is ever deleted for it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from uuid import UUID

from orgbase.core.errors import Conflict
from orgbase.services.mongo.store import DocumentStore

MEASURE_SECONDS = 5.0
REMEMBERED_ORGS = 10_000


class DocumentStorage:
    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._used: OrderedDict[UUID, tuple[int, float]] = OrderedDict()

    async def used(self, org: UUID) -> int:
        found = self._used.get(org)
        if found is not None and found[1] > time.monotonic():
            return found[0]
        total = 0
        for name in await self.store.org_collections(org):
            stats = await self.store.call(self.store.mongo.database.command("collStats", name))
            total += int(stats.get("size", 0))
        self._used[org] = (total, time.monotonic() + MEASURE_SECONDS)
        self._used.move_to_end(org)
        while len(self._used) > REMEMBERED_ORGS:
            self._used.popitem(last=False)
        return total

    async def check(self, org: UUID, limit: int, adding: int) -> int:
        """Refuse a write of ``adding`` bytes that takes the org past ``limit`` (a write
        that adds nothing is refused once the org is at or over it). The bytes held."""
        used = await self.used(org)
        if used + adding > limit or (adding == 0 and used >= limit):
            raise Conflict(
                f"this org's documents take {used} bytes; its storage limit is {limit} bytes",
                code="document_storage_exceeded",
                details={"limit_bytes": limit, "used_bytes": used},
                hint="delete documents (nothing is deleted for you)",
            )
        return used

    def added(self, org: UUID, size: int) -> None:
        found = self._used.get(org)
        if found is not None:
            self._used[org] = (found[0] + size, found[1])

    def forget(self, org: UUID) -> None:
        self._used.pop(org, None)
