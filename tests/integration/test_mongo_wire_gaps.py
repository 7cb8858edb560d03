"""The local Mongo-wire server's gaps, pinned, and the document API's refusals of the
shapes it answers wrongly.

The `mongo_wire_gap` tests talk to the server directly (PyMongo) and assert what MongoDB
answers, per its documented semantics: on the local server they are expected failures
(tests/conftest.py), on MongoDB (or a local server that closed the gap) they pass. The
docs/operations/local-mongo.md lists the same gaps."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import Decimal128, ObjectId, Regex
from litestar.testing import AsyncTestClient
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from tests.support.http import bearer, member_tokens

Client = AsyncTestClient[OrgbaseApp]
Collection = AsyncCollection[dict[str, Any]]
gap = pytest.mark.mongo_wire_gap

O1, O2, O3 = (ObjectId(f"65000000000000000000000{n}") for n in (1, 2, 3))
JAN = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
JUN = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
FRUIT = [
    {
        "_id": 1,
        "name": "apple",
        "tags": ["red", "fruit"],
        "ref": O1,
        "when": JAN,
        "n": 1,
        "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}],
        "sub": {"x": 2, "y": [1, 2]},
        "mixed": 1,
    },
    {
        "_id": 2,
        "name": "Avocado",
        "tags": ["green"],
        "ref": O2,
        "when": JUN,
        "n": 2,
        "items": [{"sku": "b", "qty": 2}],
        "sub": {"x": 1, "y": [3]},
        "mixed": "s",
    },
    {"_id": 3, "name": "pear", "tags": [], "ref": O3, "n": None, "items": [], "sub": {"x": 3}},
    {"_id": 4, "name": "plum", "tags": "red", "n": 4, "sub": {"x": 0, "y": 7}},
]


@pytest.fixture(scope="module")
async def scratch(settings: Settings) -> AsyncIterator[Any]:
    """A database of its own on the configured server, dropped afterwards."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo.url, tz_aware=True)
    name = f"{settings.mongo.database}_wire_gaps"
    await client.drop_database(name)
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest.fixture
async def fruit(scratch: Any, request: pytest.FixtureRequest) -> Collection:
    collection: Collection = scratch[f"fruit_{abs(hash(request.node.name))}"]
    await collection.drop()
    await collection.insert_many([dict(document) for document in FRUIT])
    return collection


async def _ids(collection: Collection, pipeline: list[dict[str, Any]]) -> list[Any]:
    """The ``_id`` values a pipeline outputs, led as the document API leads every pipeline:
    by a ``$project`` removing fields (the server fields; none here)."""
    cursor = await collection.aggregate([{"$project": {"hidden": 0}}, *pipeline])
    return sorted(document["_id"] for document in await cursor.to_list(None))


# Filters the local server answers wrongly (or refuses) in a find, a count, a $match or an
# update, with the documents MongoDB matches.
FILTER_GAPS: list[tuple[str, dict[str, Any], list[int]]] = [
    ("regex value", {"name": Regex("^a")}, [1]),
    ("regex value, case-insensitive", {"name": Regex("^a", "i")}, [1, 2]),
    ("$regex with a BSON regex", {"name": {"$regex": Regex("^a")}}, [1]),
    ("$in with a regex", {"name": {"$in": [Regex("^p")]}}, [3, 4]),
    ("$nin with a regex", {"name": {"$nin": [Regex("^p")]}}, [1, 2]),
    ("$not with a regex", {"name": {"$not": Regex("^p")}}, [1, 2]),
    ("$regex string on an array", {"tags": {"$regex": "^gr"}}, [2]),
    ("ObjectId equality (not _id)", {"ref": O2}, [2]),
    ("ObjectId $eq", {"ref": {"$eq": O2}}, [2]),
    ("ObjectId $in", {"ref": {"$in": [O1, O3]}}, [1, 3]),
    ("ObjectId $ne", {"ref": {"$ne": O2}}, [1, 3, 4]),
    ("ObjectId $gt", {"ref": {"$gt": O1}}, [2, 3]),
    ("date equality", {"when": JAN}, [1]),
    ("date $gte", {"when": {"$gte": JUN}}, [2]),
    ("date $in", {"when": {"$in": [JUN]}}, [2]),
    ("array membership", {"tags": "red"}, [1, 4]),
    ("array membership $eq", {"tags": {"$eq": "red"}}, [1, 4]),
    ("array equality", {"tags": ["red", "fruit"]}, [1]),
    ("empty array equality", {"tags": []}, [3]),
    ("$ne on arrays", {"tags": {"$ne": "red"}}, [2, 3]),
    ("$size", {"tags": {"$size": 1}}, [2]),
    ("dotted path into an array", {"items.sku": "b"}, [1, 2]),
    ("dotted path into an array, $gt", {"items.qty": {"$gt": 4}}, [1]),
    ("dotted path ending at an array", {"sub.y": 3}, [2]),
    ("array-index path", {"items.0.sku": "b"}, [2]),
    ("array-index path to a scalar", {"tags.0": "red"}, [1]),
    ("array-index path, $exists", {"items.1": {"$exists": True}}, [1]),
    ("null equality", {"n": None}, [3]),
    ("$exists false", {"ref": {"$exists": False}}, [4]),
    ("$nor", {"$nor": [{"name": "apple"}, {"name": "pear"}]}, [2, 4]),
    ("$not with an operator", {"mixed": {"$not": {"$gt": 0}}}, [2, 3, 4]),
    ("$gt across types", {"mixed": {"$gt": 0}}, [1]),
    ("subdocument equality", {"sub": {"x": 3}}, [3]),
    ("Decimal128 equality", {"n": Decimal128("4")}, [4]),
]


@gap
@pytest.mark.parametrize(
    ("query", "expected"), [(q, e) for _, q, e in FILTER_GAPS], ids=[i for i, _, _ in FILTER_GAPS]
)
async def test_filter(fruit: Collection, query: dict[str, Any], expected: list[int]) -> None:
    found = sorted(document["_id"] for document in await fruit.find(query).to_list(None))
    counted = await fruit.count_documents(query)
    matched = await _ids(fruit, [{"$match": query}])
    updated = (await fruit.update_many(query, {"$set": {"seen": True}})).matched_count
    assert (found, counted, matched, updated) == (expected, len(expected), expected, len(expected))


@gap
async def test_decimal128_is_stored(scratch: Any) -> None:
    collection: Collection = scratch["decimals"]
    await collection.insert_one({"_id": 1, "price": Decimal128("9.99")})
    assert await collection.find_one({"price": {"$gt": 9}}) == {
        "_id": 1,
        "price": Decimal128("9.99"),
    }


@gap
async def test_objectid_id_in_count_and_match(scratch: Any) -> None:
    collection: Collection = scratch["by_object_id"]
    await collection.insert_many([{"_id": O1, "k": 1}, {"_id": O2, "k": 2}])
    assert await collection.count_documents({"_id": O1}) == 1
    assert await _ids(collection, [{"$match": {"_id": {"$in": [O2]}}}]) == [O2]


@gap
async def test_mod_and_exists_in_match_keep_the_id(fruit: Collection) -> None:
    assert await _ids(fruit, [{"$match": {"sub.x": {"$mod": [2, 0]}}}]) == [1, 4]
    assert await _ids(fruit, [{"$match": {"when": {"$exists": True}}}]) == [1, 2]


@gap
async def test_dotted_projection_nests(fruit: Collection) -> None:
    found = await fruit.find({"_id": 1}, {"sub.x": 1, "items.sku": 1, "_id": 0}).to_list(None)
    assert found == [{"sub": {"x": 2}, "items": [{"sku": "a"}, {"sku": "b"}]}]


@gap
async def test_projection_slice(fruit: Collection) -> None:
    found = await fruit.find({"_id": 1}, {"tags": {"$slice": 1}, "name": 1}).to_list(None)
    assert found == [{"_id": 1, "name": "apple", "tags": ["red"]}]


@gap
async def test_projection_elem_match(fruit: Collection) -> None:
    found = await fruit.find({"_id": 1}, {"items": {"$elemMatch": {"sku": "b"}}}).to_list(None)
    assert found == [{"_id": 1, "items": [{"sku": "b", "qty": 5}]}]


@gap
async def test_sort_on_arrays_uses_the_smallest_element(fruit: Collection) -> None:
    # Ascending, an array sorts by its smallest element and an empty array first.
    found = await fruit.find({"_id": {"$lt": 4}}, {"_id": 1}, sort=[("tags", 1)]).to_list(None)
    assert [document["_id"] for document in found] == [3, 1, 2]


@gap
async def test_count_stage_on_no_input_outputs_nothing(fruit: Collection) -> None:
    cursor = await fruit.aggregate([{"$match": {"name": "none"}}, {"$count": "n"}])
    assert await cursor.to_list(None) == []


@gap
@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (
            {"$facet": {"n": [{"$count": "n"}]}},
            [{"n": [{"n": 4}]}],
        ),
        (
            {"$replaceRoot": {"newRoot": "$sub"}},
            [{"x": 0, "y": 7}, {"x": 1, "y": [3]}, {"x": 2, "y": [1, 2]}, {"x": 3}],
        ),
        (
            {"$replaceWith": "$sub"},
            [{"x": 0, "y": 7}, {"x": 1, "y": [3]}, {"x": 2, "y": [1, 2]}, {"x": 3}],
        ),
        (
            {"$bucketAuto": {"groupBy": "$sub.x", "buckets": 2}},
            [{"_id": {"min": 0, "max": 2}, "count": 2}, {"_id": {"min": 2, "max": 3}, "count": 2}],
        ),
        ({"$sortByCount": "$name"}, None),
        ({"$set": {"double": {"$multiply": ["$sub.x", 2]}}}, None),
        ({"$project": {"sub.x": 1, "_id": 0}}, [{"sub": {"x": n}} for n in (0, 1, 2, 3)]),
    ],
    ids=[
        "$facet",
        "$replaceRoot",
        "$replaceWith",
        "$bucketAuto",
        "$sortByCount",
        "$set",
        "dotted $project",
    ],
)
async def test_stage(fruit: Collection, stage: dict[str, Any], expected: Any) -> None:
    cursor = await fruit.aggregate([{"$sort": {"sub.x": 1}}, stage])
    output = await cursor.to_list(None)
    if expected is None:  # the stage runs; its exact output is checked by other tests
        assert output
    else:
        assert sorted(output, key=repr) == sorted(expected, key=repr)


@pytest.fixture
async def joined(scratch: Any, fruit: Collection) -> Collection:
    colours: Collection = scratch["colours"]
    await colours.drop()
    await colours.insert_many(
        [
            {"_id": O1, "tag": "red", "hex": "f00"},
            {"_id": O2, "tag": ["green", "red"], "hex": "0f0"},
        ]
    )
    return fruit


LOOKUP = {"$lookup": {"from": "colours", "localField": "name", "foreignField": "tag", "as": "c"}}


@gap
async def test_lookup_keeps_the_joined_array_and_ids(joined: Collection) -> None:
    lookup = {
        "$lookup": {"from": "colours", "localField": "tags", "foreignField": "tag", "as": "c"}
    }
    cursor = await joined.aggregate([{"$match": {"_id": 4}}, lookup, {"$project": {"c": 1}}])
    assert await cursor.to_list(None) == [
        {
            "_id": 4,
            "c": [
                {"_id": O1, "tag": "red", "hex": "f00"},
                {"_id": O2, "tag": ["green", "red"], "hex": "0f0"},
            ],
        }
    ]


@gap
async def test_lookup_matches_foreign_arrays(joined: Collection) -> None:
    lookup = {
        "$lookup": {"from": "colours", "localField": "tags", "foreignField": "tag", "as": "c"}
    }
    cursor = await joined.aggregate([{"$match": {"_id": 2}}, lookup])
    (document,) = await cursor.to_list(None)
    assert [colour["hex"] for colour in document["c"]] == ["0f0"]


@gap
@pytest.mark.parametrize(
    ("update", "expected"),
    [
        ({"$set": {"items.0.qty": 9}}, [{"sku": "a", "qty": 9}, {"sku": "b", "qty": 5}]),
        ({"$inc": {"items.$[].qty": 1}}, [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 6}]),
        (
            {"$push": {"items": {"$each": [{"sku": "c", "qty": 3}], "$sort": {"qty": -1}}}},
            [{"sku": "b", "qty": 5}, {"sku": "c", "qty": 3}, {"sku": "a", "qty": 1}],
        ),
    ],
    ids=["index path", "all positional", "$push $sort"],
)
async def test_array_update(fruit: Collection, update: dict[str, Any], expected: Any) -> None:
    after = await fruit.find_one_and_update({"_id": 1}, update, return_document=True)
    assert after is not None
    assert after["items"] == expected


@gap
async def test_unique_index_counts_missing_as_null(scratch: Any) -> None:
    collection: Collection = scratch["unique_missing"]
    await collection.create_index("email", unique=True)
    await collection.insert_one({"x": 1})
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"x": 2})


@gap
async def test_index_names_and_directions_are_kept(scratch: Any) -> None:
    collection: Collection = scratch["named_index"]
    await collection.create_index([("a", -1), ("b", 1)], name="by_a")
    assert (await collection.index_information())["by_a"]["key"] == [("a", -1), ("b", 1)]
    await collection.drop_index("by_a")
    assert "by_a" not in await collection.index_information()


# -- the document API refuses what the local server would answer wrongly ------------------


@pytest.fixture(scope="module")
async def owner(client: Client) -> dict[str, str]:
    _, people = await member_tokens(client, ())
    headers = bearer(people["owner"])
    response = await client.post(
        "/v1/docs/gaps",
        headers=headers,
        json=[
            {"name": "apple", "tags": ["red"], "items": [{"sku": "a"}], "n": 1},
            {"name": "pear", "tags": [], "n": None, "when": {"$date": "2026-01-01T00:00:00Z"}},
        ],
    )
    assert response.status_code == 201, response.text
    return headers


OID = {"$oid": str(O1)}
DATE = {"$date": "2026-01-01T00:00:00Z"}
REFUSED: list[tuple[str, str, dict[str, Any]]] = [
    ("query", "regex", {"filter": {"name": {"$regex": "^a"}}}),
    ("count", "regex", {"filter": {"name": {"$regex": "^a", "$options": "i"}}}),
    ("aggregate", "regex", {"pipeline": [{"$match": {"name": {"$regex": "^a"}}}]}),
    ("query", "regex in $in", {"filter": {"name": {"$in": [{"$regex": "^a"}]}}}),
    ("query", "regex in $not", {"filter": {"name": {"$not": {"$regex": "^a"}}}}),
    ("delete", "regex", {"filter": {"name": {"$regex": "^zz"}}}),
    ("query", "ObjectId field", {"filter": {"ref": OID}}),
    ("count", "ObjectId _id", {"filter": {"_id": OID}}),
    ("aggregate", "ObjectId _id", {"pipeline": [{"$match": {"_id": {"$in": [OID]}}}]}),
    ("query", "$ne", {"filter": {"tags": {"$ne": "red"}}}),
    ("delete", "$ne", {"filter": {"tags": {"$ne": "red"}}}),
    ("query", "$eq", {"filter": {"tags": {"$eq": "red"}}}),
    ("query", "index path", {"filter": {"items.0.sku": "a"}}),
    ("count", "index path", {"filter": {"tags.0": "red"}}),
    ("count", "null", {"filter": {"n": None}}),
    ("count", "Decimal128", {"filter": {"n": {"$numberDecimal": "1"}}}),
    ("aggregate", "date", {"pipeline": [{"$match": {"when": DATE}}]}),
    ("aggregate", "$nor", {"pipeline": [{"$match": {"$nor": [{"n": 1}]}}]}),
    ("aggregate", "$exists", {"pipeline": [{"$match": {"when": {"$exists": True}}}]}),
    ("aggregate", "$count", {"pipeline": [{"$count": "n"}]}),
    ("aggregate", "$facet", {"pipeline": [{"$facet": {"all": [{"$limit": 1}]}}]}),
    ("aggregate", "$replaceWith", {"pipeline": [{"$replaceWith": {"n": "$n"}}]}),
    ("aggregate", "dotted $project", {"pipeline": [{"$project": {"items.sku": 1}}]}),
    (
        "aggregate",
        "$project of a lookup",
        {
            "pipeline": [
                {"$lookup": {"from": "gaps", "localField": "n", "foreignField": "n", "as": "j"}},
                {"$project": {"j": 1}},
            ]
        },
    ),
    ("query", "dotted projection", {"projection": {"items.sku": 1}}),
    ("update", "index path", {"filter": {"n": 1}, "update": {"$set": {"items.0.sku": "b"}}}),
    ("update", "positional", {"filter": {"n": 1}, "update": {"$set": {"items.$[].sku": "b"}}}),
    (
        "update",
        "$push $sort",
        {"filter": {"n": 1}, "update": {"$push": {"tags": {"$each": ["a"], "$sort": 1}}}},
    ),
]


@pytest.mark.parametrize(
    ("route", "body"), [(r, b) for r, _, b in REFUSED], ids=[f"{r} {i}" for r, i, _ in REFUSED]
)
async def test_the_api_refuses_what_the_local_server_answers_wrongly(
    client: Client, owner: dict[str, str], local_wire_server: bool, route: str, body: Any
) -> None:
    if not local_wire_server:
        pytest.skip("MongoDB answers these shapes")
    response = await client.post(f"/v1/docs/gaps/{route}", headers=owner, json=body)
    assert (response.status_code, response.json()["code"]) == (400, "local_server_gap")
    assert "local Mongo-wire server" in response.json()["message"]


async def test_the_api_refuses_by_id_updates_of_array_elements(
    client: Client, owner: dict[str, str], local_wire_server: bool
) -> None:
    if not local_wire_server:
        pytest.skip("MongoDB answers these shapes")
    found = await client.post("/v1/docs/gaps/query", headers=owner, json={"filter": {"n": 1}})
    oid = found.json()[0]["_id"]["$oid"]
    response = await client.patch(
        f"/v1/docs/gaps/{oid}", headers=owner, json={"$set": {"items.0.sku": "b"}}
    )
    assert (response.status_code, response.json()["code"]) == (400, "local_server_gap")


@pytest.mark.parametrize(
    ("route", "body", "expected"),
    [
        (
            "query",
            {"filter": {"tags": {"$nin": ["red"]}}, "projection": {"name": 1, "_id": 0}},
            [{"name": "pear"}],
        ),
        (
            "query",
            {"filter": {"tags": {"$in": ["red"]}}, "projection": {"name": 1, "_id": 0}},
            [{"name": "apple"}],
        ),
        (
            "query",
            {"filter": {"when": DATE}, "projection": {"name": 1, "_id": 0}},
            [{"name": "pear"}],
        ),
        (
            "query",
            {
                "filter": {"$expr": {"$regexMatch": {"input": "$name", "regex": "^a"}}},
                "projection": {"name": 1, "_id": 0},
            },
            [{"name": "apple"}],
        ),
        ("count", {"filter": {"n": {"$in": [None]}}}, {"count": 1}),
        ("count", {"filter": {"tags": {"$in": ["red"]}}}, {"count": 1}),
        (
            "aggregate",
            {"pipeline": [{"$match": {"n": {"$gte": 1}}}, {"$project": {"name": 1, "_id": 0}}]},
            [{"name": "apple"}],
        ),
    ],
    ids=["$nin", "$in", "date in a find", "$regexMatch", "$in null", "count $in", "$match"],
)
async def test_the_workarounds_answer_right(
    client: Client, owner: dict[str, str], route: str, body: Any, expected: Any
) -> None:
    response = await client.post(f"/v1/docs/gaps/{route}", headers=owner, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == expected


async def test_a_found_document_is_read_by_its_object_id(
    client: Client, owner: dict[str, str]
) -> None:
    # The document API's own _id lookups are not refused.
    found = await client.post("/v1/docs/gaps/query", headers=owner, json={"filter": {"n": 1}})
    oid = found.json()[0]["_id"]
    by_id = await client.post("/v1/docs/gaps/query", headers=owner, json={"filter": {"_id": oid}})
    assert [document["name"] for document in by_id.json()] == ["apple"]
    assert (await client.get(f"/v1/docs/gaps/{oid['$oid']}", headers=owner)).status_code == 200
