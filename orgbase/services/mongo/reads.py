"""The reads of the document service: one org's documents, never another's.

Every filter and pipeline is scoped by the org (``guard.scoped``) and checked against what
the server in use can answer; no answer carries the server's own fields.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from orgbase.core.context import OrgContext
from orgbase.core.errors import Invalid, NotFound
from orgbase.core.settings import MongoSettings
from orgbase.services.mongo import guard, wire_gaps
from orgbase.services.mongo.store import DocumentStore, physical, prefix
from orgbase.services.mongo.wire_gaps import Use


def document_id_filter(value: str) -> Any:
    """The ``_id`` a path names: documents may carry an ObjectId, a string or an integer
    ``_id``, and a path is text, so it matches any of those it can be."""
    candidates: list[Any] = [value]
    if ObjectId.is_valid(value):
        candidates.append(ObjectId(value))
    if value.isascii() and value.lstrip("-").isdigit() and len(value) <= 18:
        candidates.append(int(value))
    return candidates[0] if len(candidates) == 1 else {"$in": candidates}


class DocumentReads:
    def __init__(self, store: DocumentStore, settings: MongoSettings) -> None:
        self.store = store
        self.settings = settings

    def _limit(self, limit: int | None) -> int:
        if limit is None:
            return self.settings.max_limit
        if limit < 0:
            raise Invalid("limit cannot be negative", code="invalid_limit")
        return min(limit, self.settings.max_limit)

    # -- reads ------------------------------------------------------------------------

    async def get(self, ctx: OrgContext, collection: str, document_id: str) -> dict[str, Any]:
        found = await self.store.call(
            self.store.collection(ctx, collection).find_one(
                guard.scoped({"_id": document_id_filter(document_id)}, str(ctx.org_id)),
                max_time_ms=self.settings.max_time_ms,
            ),
            org=ctx.org_id,
        )
        if found is None:
            raise NotFound("no such document", code="document_not_found")
        return guard.hide_server_fields(found)  # type: ignore[no-any-return]

    async def find(
        self,
        ctx: OrgContext,
        collection: str,
        *,
        filter_: Any = None,
        projection: Any = None,
        sort: Any = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        query = filter_ or {}
        await self.store.check_filter(query, Use.FIND)
        if skip < 0:
            raise Invalid("skip cannot be negative", code="invalid_skip")
        fields = guard.check_projection(projection)
        if await self.store.on_local_server():
            wire_gaps.check_projection(fields)
        cursor = self.store.collection(ctx, collection).find(
            guard.scoped(query, str(ctx.org_id)),
            fields,
            sort=guard.check_sort(sort),
            skip=skip,
            limit=self._limit(limit),
            max_time_ms=self.settings.max_time_ms,
        )
        documents = await self.store.call(cursor.to_list(None), org=ctx.org_id)
        return guard.hide_server_fields(documents)  # type: ignore[no-any-return]

    async def count(self, ctx: OrgContext, collection: str, filter_: Any = None) -> int:
        query = filter_ or {}
        await self.store.check_filter(query, Use.COUNT)
        return int(
            await self.store.call(
                self.store.collection(ctx, collection).count_documents(
                    guard.scoped(query, str(ctx.org_id)), maxTimeMS=self.settings.max_time_ms
                ),
                org=ctx.org_id,
            )
        )

    async def collections(self, ctx: OrgContext) -> list[dict[str, Any]]:
        """The org's collections holding documents, with their counts."""
        start = prefix(ctx.org_id)
        found = []
        for stored in sorted(await self.store.org_collections(ctx.org_id)):
            name = stored.removeprefix(start)
            count = await self.count(ctx, name)
            if count:
                found.append({"name": name, "count": count})
        return found

    async def aggregate(
        self, ctx: OrgContext, collection: str, pipeline: Any
    ) -> list[dict[str, Any]]:
        stages = guard.scoped_pipeline(
            pipeline, str(ctx.org_id), lambda name: physical(ctx.org_id, name)
        )
        if await self.store.on_local_server():
            wire_gaps.check_pipeline(pipeline)
        stages.append({"$limit": self.settings.max_limit})
        cursor = await self.store.call(
            self.store.collection(ctx, collection).aggregate(
                stages, maxTimeMS=self.settings.max_time_ms
            ),
            org=ctx.org_id,
        )
        documents = await self.store.call(cursor.to_list(None), org=ctx.org_id)
        return guard.hide_server_fields(documents)  # type: ignore[no-any-return]
