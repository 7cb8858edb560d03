"""The document service: org-scoped collections in MongoDB (PyMongo's async client).

Each org's collection is a MongoDB collection of its own, ``d<org id>_<name>``, so
documents, ``_id`` values and indexes (a unique one included) of two orgs never meet: an
org lists and drops only its own indexes, a unique index binds only its own documents, and
the same client ``_id`` in two orgs does not collide. Every document also carries ``_org``
and ``_owner``, which every filter, update and pipeline is scoped by (defence in depth) and
which no answer ever carries. Members change only the documents they created, admins and
owners every document of the org (as for tables). A circuit breaker makes calls fail at
once with a 503 while MongoDB is down, and only these routes are affected.
"""

from __future__ import annotations

from typing import Any

import bson
from bson import ObjectId
from bson.errors import InvalidDocument, InvalidStringData
from pymongo import ReturnDocument

from orgbase.core import rbac
from orgbase.core.context import OrgContext
from orgbase.core.errors import Conflict, Invalid, NotFound
from orgbase.core.events import EventBus
from orgbase.core.org_usage import OrgUsage
from orgbase.core.settings import MongoSettings
from orgbase.services.mongo import guard
from orgbase.services.mongo.events import DocumentEvents
from orgbase.services.mongo.reads import DocumentReads, document_id_filter
from orgbase.services.mongo.storage import DocumentStorage
from orgbase.services.mongo.store import DocumentStore
from orgbase.services.mongo.wire_gaps import Use


def _bson_size(documents: list[dict[str, Any]]) -> int:
    try:
        return sum(len(bson.encode(document)) for document in documents)
    except (InvalidDocument, InvalidStringData, UnicodeEncodeError, OverflowError) as exc:
        # A lone surrogate, an integer beyond 8 bytes...: the same answer MongoDB's gives.
        raise Invalid(
            f"the document cannot be stored: {exc}"[:300], code="invalid_document"
        ) from exc


class DocumentService(DocumentReads):
    """Reads (``DocumentReads``) and writes of an org's documents."""

    def __init__(
        self,
        store: DocumentStore,
        settings: MongoSettings,
        events: EventBus,
        usage: OrgUsage,
    ) -> None:
        super().__init__(store, settings)
        self.events = DocumentEvents(events)
        self.usage = usage
        self.storage = DocumentStorage(store)

    async def _room_for(self, ctx: OrgContext, adding: int) -> None:
        """The org's document storage limit: refuse a write that would grow it past."""
        limits_of = self.usage.limits_of
        if limits_of is None:
            return
        used = await self.storage.check(
            ctx.org_id, limits_of(ctx.org_id).document_storage_bytes, adding
        )
        self.usage.meter.level(ctx.org_id, "documents_bytes", used + adding)

    @staticmethod
    def _owner(ctx: OrgContext) -> str:
        return str(ctx.user_id) if ctx.user_id else f"key:{ctx.key_id}"

    def _write_scope(self, ctx: OrgContext) -> str | None:
        """Members write only what they created; admins and owners everything."""
        rbac.require(ctx, "member", "writing documents")
        return None if ctx.at_least("admin") else self._owner(ctx)

    # -- writes -----------------------------------------------------------------------

    async def insert(
        self, ctx: OrgContext, collection: str, documents: list[Any]
    ) -> list[dict[str, Any]]:
        self._write_scope(ctx)
        guard.collection_name(collection)  # even when there is nothing to insert
        if not documents:
            return []
        if len(documents) > self.settings.max_limit:
            raise Invalid(
                f"at most {self.settings.max_limit} documents at once", code="too_many_documents"
            )
        stored = []
        for document in documents:
            clean = dict(guard.check_document(document))
            if "_id" in clean and not isinstance(clean["_id"], ObjectId | str | int):
                raise Invalid(
                    "_id must be an ObjectId, a string or an integer", code="invalid_document"
                )
            clean.setdefault("_id", ObjectId())
            stored.append({**clean, guard.ORG: str(ctx.org_id), guard.OWNER: self._owner(ctx)})
        size = _bson_size(stored)
        await self._room_for(ctx, size)
        target = self.store.collection(ctx, collection)
        try:
            await self.store.call(target.insert_many(stored, ordered=True), org=ctx.org_id)
        except (Conflict, Invalid) as refused:
            # All or nothing: take back the documents that went in before the refused one
            # (an ordered insert stops at the first error).
            details = refused.details if isinstance(refused.details, dict) else {}
            went_in = int(details.pop("inserted_before_error", 0))
            if went_in:
                ids = [document["_id"] for document in stored[:went_in]]
                await self.store.call(
                    target.delete_many({"_id": {"$in": ids}, guard.ORG: str(ctx.org_id)}),
                    org=ctx.org_id,
                )
            raise
        self.storage.added(ctx.org_id, size)
        ids = [document["_id"] for document in stored]
        await self.events.changed(ctx, collection, "insert", {"ids": ids, "count": len(ids)})
        return guard.hide_server_fields(stored)  # type: ignore[no-any-return]

    async def update_one(
        self, ctx: OrgContext, collection: str, document_id: str, update: Any
    ) -> dict[str, Any]:
        owner = self._write_scope(ctx)
        await self.store.check_update(update)
        await self._room_for(ctx, 0)
        found = await self.store.call(
            self.store.collection(ctx, collection).find_one_and_update(
                guard.scoped({"_id": document_id_filter(document_id)}, str(ctx.org_id), owner),
                update,
                return_document=ReturnDocument.AFTER,
            ),
            org=ctx.org_id,
        )
        if found is None:
            raise NotFound("no such document (or not yours to change)", code="document_not_found")
        await self.events.changed(ctx, collection, "update", {"ids": [found["_id"]]})
        return guard.hide_server_fields(found)  # type: ignore[no-any-return]

    async def replace(
        self, ctx: OrgContext, collection: str, document_id: str, document: Any
    ) -> dict[str, Any]:
        owner = self._write_scope(ctx)
        clean = dict(guard.check_document(document))
        clean.pop("_id", None)
        await self._room_for(ctx, 0)
        return await self._replace(ctx, collection, document_id, clean, owner)

    async def _replace(
        self,
        ctx: OrgContext,
        collection: str,
        document_id: str,
        clean: dict[str, Any],
        owner: str | None,
    ) -> dict[str, Any]:
        identifier = document_id_filter(document_id)
        scope = guard.scoped({"_id": identifier}, str(ctx.org_id), owner)
        current = await self.store.call(
            self.store.collection(ctx, collection).find_one(scope, {guard.OWNER: 1}), org=ctx.org_id
        )
        if current is None:
            raise NotFound("no such document (or not yours to change)", code="document_not_found")
        # The replacement keeps its _id (as stored), its org and its owner.
        scope = guard.scoped({"_id": current["_id"]}, str(ctx.org_id), owner)
        replacement = {
            "_id": current["_id"],
            **clean,
            guard.ORG: str(ctx.org_id),
            guard.OWNER: current[guard.OWNER],
        }
        result = await self.store.call(
            self.store.collection(ctx, collection).replace_one(scope, replacement), org=ctx.org_id
        )
        if result.matched_count == 0:
            raise NotFound("no such document (or not yours to change)", code="document_not_found")
        await self.events.changed(ctx, collection, "update", {"ids": [current["_id"]]})
        return guard.hide_server_fields(replacement)  # type: ignore[no-any-return]

    async def update_many(
        self, ctx: OrgContext, collection: str, filter_: Any, update: Any, *, upsert: bool = False
    ) -> dict[str, Any]:
        owner = self._write_scope(ctx)
        query = filter_ or {}
        await self.store.check_filter(query, Use.WRITE)
        await self.store.check_update(update)
        await self._room_for(ctx, 0)
        if upsert and owner is None:
            # An inserted document takes the org (and a member's owner) from the filter;
            # an admin's insert is theirs.
            on_insert = {**update.get("$setOnInsert", {}), guard.OWNER: self._owner(ctx)}
            update = {**update, "$setOnInsert": on_insert}
        scope = guard.scoped(query, str(ctx.org_id), owner)
        result = await self.store.call(
            self.store.collection(ctx, collection).update_many(scope, update, upsert=upsert),
            org=ctx.org_id,
        )
        upserted = str(result.upserted_id) if result.upserted_id is not None else None
        outcome = {
            "matched": result.matched_count,
            "modified": result.modified_count,
            "upserted_id": upserted,
        }
        if result.modified_count or upserted:
            await self.events.changed(ctx, collection, "update", dict(outcome))
        return outcome

    async def delete_one(self, ctx: OrgContext, collection: str, document_id: str) -> None:
        owner = self._write_scope(ctx)
        result = await self.store.call(
            self.store.collection(ctx, collection).delete_one(
                guard.scoped({"_id": document_id_filter(document_id)}, str(ctx.org_id), owner)
            ),
            org=ctx.org_id,
        )
        if result.deleted_count == 0:
            raise NotFound("no such document (or not yours to delete)", code="document_not_found")
        await self.events.changed(ctx, collection, "delete", {"ids": [document_id]})

    async def delete_many(self, ctx: OrgContext, collection: str, filter_: Any) -> int:
        owner = self._write_scope(ctx)
        if not filter_:
            raise Invalid("a filter is required to delete documents", code="filter_required")
        await self.store.check_filter(filter_, Use.WRITE)
        result = await self.store.call(
            self.store.collection(ctx, collection).delete_many(
                guard.scoped(filter_, str(ctx.org_id), owner)
            ),
            org=ctx.org_id,
        )
        if result.deleted_count:
            await self.events.changed(ctx, collection, "delete", {"count": result.deleted_count})
        return int(result.deleted_count)
