"""An org's documents out of and back into MongoDB (``orgbase org export`` / ``import``):
each collection's documents as canonical Extended JSON, one per line, so every BSON type
(ObjectId, dates, binary, 64-bit integers) comes back as it was. The org field is the new
org's on the way in, and the owner field the owner's new id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS

from orgbase.core.mongo import MongoClients
from orgbase.services.mongo import guard
from orgbase.services.mongo.store import physical, prefix

_BATCH = 1000


async def dump_documents(mongo: MongoClients, org: UUID) -> dict[str, list[str]]:
    """Every collection of the org by its logical name: its documents as Extended JSON."""
    start = prefix(org)
    database = mongo.database
    names = [n for n in await database.list_collection_names() if n.startswith(start)]
    dumped: dict[str, list[str]] = {}
    for name in sorted(names):
        documents = database[name].find({}).sort("_id", 1)
        dumped[name[len(start) :]] = [
            json_util.dumps(doc, json_options=CANONICAL_JSON_OPTIONS) async for doc in documents
        ]
    return dumped


def _moved(doc: dict[str, Any], org: UUID, users: Mapping[str, str]) -> dict[str, Any]:
    doc[guard.ORG] = str(org)
    owner = doc.get(guard.OWNER)
    if isinstance(owner, str) and owner in users:
        doc[guard.OWNER] = users[owner]
    return doc


async def restore_documents(
    mongo: MongoClients, org: UUID, name: str, lines: list[bytes], users: Mapping[str, str]
) -> int:
    collection = mongo.database[physical(org, name)]
    for start in range(0, len(lines), _BATCH):
        batch = [
            _moved(json_util.loads(line), org, users) for line in lines[start : start + _BATCH]
        ]
        await collection.insert_many(batch, ordered=True)
    return len(lines)


async def drop_documents(mongo: MongoClients, org: UUID) -> None:
    """An import cut short: the org's collections go."""
    start = prefix(org)
    for name in await mongo.database.list_collection_names():
        if name.startswith(start):
            await mongo.database.drop_collection(name)
