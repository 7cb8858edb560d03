"""An org's indexes on its own collections (admins create and drop them).

The collection is the org's own, so an index (a unique one too) binds only the org's
documents, and the org lists and drops only its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orgbase.core import rbac
from orgbase.core.context import OrgContext
from orgbase.core.errors import Invalid, NotFound
from orgbase.services.mongo import guard
from orgbase.services.mongo.store import DocumentStore


@dataclass(frozen=True)
class IndexService:
    store: DocumentStore

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
        created = await self.store.call(
            self.store.collection(ctx, collection).create_index(
                pairs, unique=unique, name=index_name
            ),
            org=ctx.org_id,
        )
        return str(created)

    async def list_indexes(self, ctx: OrgContext, collection: str) -> list[dict[str, Any]]:
        info = await self.store.call(
            self.store.collection(ctx, collection).index_information(), org=ctx.org_id
        )
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
        await self.store.call(
            self.store.collection(ctx, collection).drop_index(name), org=ctx.org_id
        )
