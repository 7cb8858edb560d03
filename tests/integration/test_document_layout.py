"""`orgbase migrate` splits the shared document collections of earlier versions into each
org's own: every document lands in its org's collection, nothing crosses orgs, a second run
changes nothing, and a collection with an unreadable ``_org`` is kept, not dropped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from orgbase.core.mongo import MongoClients
from orgbase.core.settings import Settings
from orgbase.services.mongo.layout import split_shared_collections
from orgbase.services.mongo.store import physical
from tests.support.stack import with_overrides

Database = AsyncDatabase[dict[str, Any]]


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    name = f"layout_{uuid.uuid4().hex[:12]}"
    mongo = MongoClients(with_overrides(settings, mongo={"database": name}).mongo)
    try:
        yield mongo.database
    finally:
        await mongo.client.drop_database(name)
        await mongo.close()


async def test_shared_collection_is_split_by_org(database: Database) -> None:
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    await database["d_notes"].insert_many(
        [
            {"_id": "a1", "_org": str(org_a), "_owner": "u1", "title": "a one"},
            {"_id": "a2", "_org": str(org_a), "_owner": "u1", "title": "a two"},
            {"_id": "b1", "_org": str(org_b), "_owner": "u2", "title": "b one"},
        ]
    )
    # A document already moved by an earlier, interrupted run.
    await database[physical(org_a, "notes")].insert_one(
        {"_id": "a1", "_org": str(org_a), "_owner": "u1", "title": "a one"}
    )

    assert await split_shared_collections(database) == {"notes": 3}

    names = await database.list_collection_names()
    assert "d_notes" not in names
    in_a = await database[physical(org_a, "notes")].find({}).to_list()
    in_b = await database[physical(org_b, "notes")].find({}).to_list()
    assert sorted(d["_id"] for d in in_a) == ["a1", "a2"]
    assert [d["_id"] for d in in_b] == ["b1"]
    assert {d["_org"] for d in in_a} == {str(org_a)}
    assert in_b[0]["title"] == "b one"

    assert await split_shared_collections(database) == {}


async def test_collection_with_unreadable_org_is_kept(database: Database) -> None:
    org = uuid.uuid4()
    await database["d_tasks"].insert_many(
        [
            {"_id": 1, "_org": str(org), "title": "kept"},
            {"_id": 2, "_org": "not-a-uuid", "title": "orphan"},
            {"_id": 3, "title": "no org"},
        ]
    )

    assert await split_shared_collections(database) == {"tasks": -1}

    assert "d_tasks" in await database.list_collection_names()
    assert await database["d_tasks"].count_documents({}) == 3
    moved = await database[physical(org, "tasks")].find({}).to_list()
    assert [d["_id"] for d in moved] == [1]
