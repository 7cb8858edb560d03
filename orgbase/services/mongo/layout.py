"""Documents stored before each org had collections of its own: the shared collections
``d_<name>`` (every document carrying ``_org``) are split into ``d<org>_<name>`` by
``orgbase migrate``. Idempotent: a document already moved is skipped (same ``_id``), and a
shared collection is dropped only once all its documents are moved. Its indexes are not
carried over (they belonged to every org at once): admins make their own again.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any
from uuid import UUID

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from orgbase.services.mongo.guard import ORG
from orgbase.services.mongo.store import physical

SHARED_PREFIX = "d_"


async def split_shared_collections(database: AsyncDatabase[dict[str, Any]]) -> dict[str, int]:
    """Move every document of the shared collections into its org's own; returns how many
    documents each shared collection had. A collection holding a document without a
    readable ``_org`` is left in place (moved documents stay moved) and reported as -1."""
    moved: dict[str, int] = {}
    for shared in await database.list_collection_names():
        if not shared.startswith(SHARED_PREFIX):
            continue
        name = shared.removeprefix(SHARED_PREFIX)
        count, orphans = 0, 0
        async for document in database[shared].find({}):
            org_id = _org_of(document)
            if org_id is None:
                orphans += 1
                continue
            await _insert_missing(database, physical(org_id, name), document)
            count += 1
        if orphans:
            moved[name] = -1
            continue
        await database.drop_collection(shared)
        moved[name] = count
    return moved


def _org_of(document: dict[str, Any]) -> UUID | None:
    try:
        return UUID(str(document[ORG]))
    except (KeyError, ValueError):
        return None


async def _insert_missing(
    database: AsyncDatabase[dict[str, Any]], target: str, document: dict[str, Any]
) -> None:
    # A duplicate _id: moved by an earlier run that stopped before dropping the shared one.
    with suppress(DuplicateKeyError):
        await database[target].insert_one(document)
