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

import inspect
from typing import Any
from uuid import UUID

from bson import ObjectId
from bson.errors import InvalidDocument, InvalidStringData
from pymongo import ReturnDocument
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteError,
)

from orgbase.core import rbac
from orgbase.core.breaker import CircuitBreaker
from orgbase.core.context import OrgContext
from orgbase.core.errors import Conflict, Invalid, NotFound, OrgbaseError, TimedOut, Unavailable
from orgbase.core.mongo import MongoClients
from orgbase.core.settings import MongoSettings
from orgbase.services.mongo import guard, wire_gaps
from orgbase.services.mongo.wire_gaps import Use

DOWN = (ServerSelectionTimeoutError, ConnectionFailure, AutoReconnect, NetworkTimeout)


def _store_down() -> Unavailable:
    return Unavailable(
        "the document store is unavailable", code="mongo_unavailable", dependency="mongo"
    )


def _duplicate(details: Any) -> Conflict:
    key = details.get("keyValue") if isinstance(details, dict) else None
    return Conflict(
        "a document with this unique key exists",
        code="duplicate_key",
        details={k: str(v) for k, v in key.items() if k not in guard.HIDDEN} if key else None,
    )


def _document_id(value: str) -> Any:
    """The ``_id`` a path names: documents may carry an ObjectId, a string or an integer
    ``_id``, and a path is text, so it matches any of those it can be."""
    candidates: list[Any] = [value]
    if ObjectId.is_valid(value):
        candidates.append(ObjectId(value))
    if value.isascii() and value.lstrip("-").isdigit() and len(value) <= 18:
        candidates.append(int(value))
    return candidates[0] if len(candidates) == 1 else {"$in": candidates}


class DocumentService:
    def __init__(self, mongo: MongoClients, settings: MongoSettings) -> None:
        self.mongo = mongo
        self.settings = settings
        self.breaker = CircuitBreaker(
            "mongo",
            failure_threshold=settings.breaker_failures,
            reset_seconds=settings.breaker_reset_seconds,
        )
        self._local_server: bool | None = None

    async def _on_local_server(self) -> bool:
        """Whether the server is the local Mongo-wire server, asked once (``buildInfo``)
        on the first request that needs to know: its silently wrong shapes are refused."""
        if self._local_server is None:
            info = await self._call(self.mongo.client.admin.command("buildInfo"))
            self._local_server = wire_gaps.is_local_wire_server(info)
        return self._local_server

    async def _check_update(self, update: Any) -> None:
        guard.check_update(update)
        if await self._on_local_server():
            wire_gaps.check_update(update)

    async def _check_filter(self, query: Any, use: Use) -> None:
        guard.check_filter(query)
        if await self._on_local_server():
            wire_gaps.check_filter(query, use)

    @staticmethod
    def prefix(org_id: UUID) -> str:
        """The start of every collection name of an org."""
        return f"d{org_id.hex}_"

    @classmethod
    def physical(cls, org_id: UUID, name: str) -> str:
        return cls.prefix(org_id) + guard.collection_name(name)

    def _collection(self, ctx: OrgContext, name: str) -> Any:
        return self.mongo.database[self.physical(ctx.org_id, name)]

    async def _call(self, operation: Any) -> Any:
        """Run one MongoDB call through the breaker, mapping its errors."""
        if not self.breaker.allow():
            if inspect.iscoroutine(operation):
                operation.close()  # refused before it ran: not "never awaited"
            raise _store_down()
        try:
            result = await operation
        except DOWN as exc:
            self.breaker.record_failure()
            raise _store_down() from exc
        except DuplicateKeyError as exc:
            self.breaker.record_success()
            raise _duplicate(exc.details) from exc
        except BulkWriteError as exc:
            self.breaker.record_success()
            refused: OrgbaseError = Invalid("MongoDB refused a document", code="invalid_document")
            if any(e.get("code") == 11000 for e in exc.details.get("writeErrors", [])):
                refused = _duplicate(exc.details["writeErrors"][0])
            refused.details = {
                "inserted_before_error": exc.details.get("nInserted", 0),
                **(refused.details or {}),
            }
            raise refused from exc
        except ExecutionTimeout as exc:
            self.breaker.record_success()
            raise TimedOut(
                "the query ran out of time",
                code="query_timeout",
                hint="narrow the filter or add an index",
            ) from exc
        except (WriteError, OperationFailure) as exc:
            self.breaker.record_success()
            raise Invalid(
                f"MongoDB refused the request: {exc.details.get('errmsg') if exc.details else exc}",
                code="invalid_query",
            ) from exc
        except PyMongoError as exc:
            self.breaker.release_trial()
            raise Invalid(f"MongoDB refused the request: {exc}", code="invalid_query") from exc
        except (InvalidDocument, InvalidStringData, UnicodeEncodeError, OverflowError) as exc:
            # The document cannot be encoded as BSON (a lone surrogate, a huge integer...).
            self.breaker.release_trial()
            raise Invalid(
                f"the document cannot be stored: {exc}"[:300], code="invalid_document"
            ) from exc
        except BaseException:
            self.breaker.release_trial()
            raise
        self.breaker.record_success()
        return result

    def _limit(self, limit: int | None) -> int:
        if limit is None:
            return self.settings.max_limit
        if limit < 0:
            raise Invalid("limit cannot be negative", code="invalid_limit")
        return min(limit, self.settings.max_limit)

    @staticmethod
    def _owner(ctx: OrgContext) -> str:
        return str(ctx.user_id) if ctx.user_id else f"key:{ctx.key_id}"

    def _write_scope(self, ctx: OrgContext) -> str | None:
        """Members write only what they created; admins and owners everything."""
        rbac.require(ctx, "member", "writing documents")
        return None if ctx.at_least("admin") else self._owner(ctx)

    # -- reads ------------------------------------------------------------------------

    async def get(self, ctx: OrgContext, collection: str, document_id: str) -> dict[str, Any]:
        found = await self._call(
            self._collection(ctx, collection).find_one(
                guard.scoped({"_id": _document_id(document_id)}, str(ctx.org_id)),
                max_time_ms=self.settings.max_time_ms,
            )
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
        await self._check_filter(query, Use.FIND)
        if skip < 0:
            raise Invalid("skip cannot be negative", code="invalid_skip")
        fields = guard.check_projection(projection)
        if await self._on_local_server():
            wire_gaps.check_projection(fields)
        cursor = self._collection(ctx, collection).find(
            guard.scoped(query, str(ctx.org_id)),
            fields,
            sort=guard.check_sort(sort),
            skip=skip,
            limit=self._limit(limit),
            max_time_ms=self.settings.max_time_ms,
        )
        documents = await self._call(cursor.to_list(None))
        return guard.hide_server_fields(documents)  # type: ignore[no-any-return]

    async def count(self, ctx: OrgContext, collection: str, filter_: Any = None) -> int:
        query = filter_ or {}
        await self._check_filter(query, Use.COUNT)
        return int(
            await self._call(
                self._collection(ctx, collection).count_documents(
                    guard.scoped(query, str(ctx.org_id)), maxTimeMS=self.settings.max_time_ms
                )
            )
        )

    async def collections(self, ctx: OrgContext) -> list[dict[str, Any]]:
        """The org's collections holding documents, with their counts."""
        prefix = self.prefix(ctx.org_id)
        found = []
        for physical in sorted(await self._org_collections(ctx.org_id)):
            name = physical.removeprefix(prefix)
            count = await self.count(ctx, name)
            if count:
                found.append({"name": name, "count": count})
        return found

    async def aggregate(
        self, ctx: OrgContext, collection: str, pipeline: Any
    ) -> list[dict[str, Any]]:
        stages = guard.scoped_pipeline(
            pipeline, str(ctx.org_id), lambda name: self.physical(ctx.org_id, name)
        )
        if await self._on_local_server():
            wire_gaps.check_pipeline(pipeline)
        stages.append({"$limit": self.settings.max_limit})
        cursor = await self._call(
            self._collection(ctx, collection).aggregate(stages, maxTimeMS=self.settings.max_time_ms)
        )
        documents = await self._call(cursor.to_list(None))
        return guard.hide_server_fields(documents)  # type: ignore[no-any-return]

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
        target = self._collection(ctx, collection)
        try:
            await self._call(target.insert_many(stored, ordered=True))
        except (Conflict, Invalid) as refused:
            # All or nothing: take back the documents that went in before the refused one
            # (an ordered insert stops at the first error).
            details = refused.details if isinstance(refused.details, dict) else {}
            went_in = int(details.pop("inserted_before_error", 0))
            if went_in:
                ids = [document["_id"] for document in stored[:went_in]]
                await self._call(
                    target.delete_many({"_id": {"$in": ids}, guard.ORG: str(ctx.org_id)})
                )
            raise
        return guard.hide_server_fields(stored)  # type: ignore[no-any-return]

    async def update_one(
        self, ctx: OrgContext, collection: str, document_id: str, update: Any
    ) -> dict[str, Any]:
        owner = self._write_scope(ctx)
        await self._check_update(update)
        found = await self._call(
            self._collection(ctx, collection).find_one_and_update(
                guard.scoped({"_id": _document_id(document_id)}, str(ctx.org_id), owner),
                update,
                return_document=ReturnDocument.AFTER,
            )
        )
        if found is None:
            raise NotFound("no such document (or not yours to change)", code="document_not_found")
        return guard.hide_server_fields(found)  # type: ignore[no-any-return]

    async def replace(
        self, ctx: OrgContext, collection: str, document_id: str, document: Any
    ) -> dict[str, Any]:
        owner = self._write_scope(ctx)
        clean = dict(guard.check_document(document))
        clean.pop("_id", None)
        return await self._replace(ctx, collection, document_id, clean, owner)

    async def _replace(
        self,
        ctx: OrgContext,
        collection: str,
        document_id: str,
        clean: dict[str, Any],
        owner: str | None,
    ) -> dict[str, Any]:
        identifier = _document_id(document_id)
        scope = guard.scoped({"_id": identifier}, str(ctx.org_id), owner)
        current = await self._call(
            self._collection(ctx, collection).find_one(scope, {guard.OWNER: 1})
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
        result = await self._call(self._collection(ctx, collection).replace_one(scope, replacement))
        if result.matched_count == 0:
            raise NotFound("no such document (or not yours to change)", code="document_not_found")
        return guard.hide_server_fields(replacement)  # type: ignore[no-any-return]

    async def update_many(
        self, ctx: OrgContext, collection: str, filter_: Any, update: Any, *, upsert: bool = False
    ) -> dict[str, Any]:
        owner = self._write_scope(ctx)
        query = filter_ or {}
        await self._check_filter(query, Use.WRITE)
        await self._check_update(update)
        if upsert and owner is None:
            # An inserted document takes the org (and a member's owner) from the filter;
            # an admin's insert is theirs.
            on_insert = {**update.get("$setOnInsert", {}), guard.OWNER: self._owner(ctx)}
            update = {**update, "$setOnInsert": on_insert}
        scope = guard.scoped(query, str(ctx.org_id), owner)
        result = await self._call(
            self._collection(ctx, collection).update_many(scope, update, upsert=upsert)
        )
        upserted = str(result.upserted_id) if result.upserted_id is not None else None
        return {
            "matched": result.matched_count,
            "modified": result.modified_count,
            "upserted_id": upserted,
        }

    async def delete_one(self, ctx: OrgContext, collection: str, document_id: str) -> None:
        owner = self._write_scope(ctx)
        result = await self._call(
            self._collection(ctx, collection).delete_one(
                guard.scoped({"_id": _document_id(document_id)}, str(ctx.org_id), owner)
            )
        )
        if result.deleted_count == 0:
            raise NotFound("no such document (or not yours to delete)", code="document_not_found")

    async def delete_many(self, ctx: OrgContext, collection: str, filter_: Any) -> int:
        owner = self._write_scope(ctx)
        if not filter_:
            raise Invalid("a filter is required to delete documents", code="filter_required")
        await self._check_filter(filter_, Use.WRITE)
        result = await self._call(
            self._collection(ctx, collection).delete_many(
                guard.scoped(filter_, str(ctx.org_id), owner)
            )
        )
        return int(result.deleted_count)

    # -- indexes ----------------------------------------------------------------------

    async def create_index(
        self,
        ctx: OrgContext,
        collection: str,
        keys: Any,
        *,
        unique: bool = False,
        name: str | None = None,
    ) -> str:
        rbac.require(ctx, "admin", "managing indexes")
        pairs = guard.check_sort(keys)
        if not pairs:
            raise Invalid('an index needs keys, like {"email": 1}', code="invalid_index")
        index_name = name or "_".join(f"{f}_{d}" for f, d in pairs)
        if not guard.COLLECTION_NAME.fullmatch(index_name):
            raise Invalid("index names are letters, digits, _ and -", code="invalid_index")
        # The collection is the org's own: the index (a unique one too) binds only its
        # documents.
        created = await self._call(
            self._collection(ctx, collection).create_index(pairs, unique=unique, name=index_name)
        )
        return str(created)

    async def list_indexes(self, ctx: OrgContext, collection: str) -> list[dict[str, Any]]:
        info = await self._call(self._collection(ctx, collection).index_information())
        result = []
        for name, spec in info.items():
            keys = [(field, direction) for field, direction in spec["key"] if field != guard.ORG]
            if name.startswith("_id"):
                continue
            result.append({"name": name, "keys": dict(keys), "unique": bool(spec.get("unique"))})
        return result

    async def drop_index(self, ctx: OrgContext, collection: str, name: str) -> None:
        rbac.require(ctx, "admin", "managing indexes")
        existing = await self.list_indexes(ctx, collection)
        if name not in {index["name"] for index in existing}:
            raise NotFound("no such index", code="index_not_found")
        await self._call(self._collection(ctx, collection).drop_index(name))

    # -- org deletion -----------------------------------------------------------------

    async def purge_org(self, org_id: UUID) -> int:
        """Drop every collection of a deleted org."""
        names = await self._org_collections(org_id)
        for name in names:
            await self._call(self.mongo.database.drop_collection(name))
        return len(names)

    async def _org_collections(self, org_id: UUID) -> list[str]:
        """The physical names of an org's collections."""
        prefix = self.prefix(org_id)
        names = await self._call(
            self.mongo.database.list_collection_names(filter={"name": {"$regex": f"^{prefix}"}})
        )
        # Filtered again: the local Mongo-wire server may ignore the filter.
        return [name for name in names if name.startswith(prefix)]
