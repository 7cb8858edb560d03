"""Which request shapes are refused on the local Mongo-wire server, and how it is told."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from bson import Decimal128, ObjectId, Regex

from orgbase.core.errors import Invalid
from orgbase.platform.errors import http_status
from orgbase.services.mongo import wire_gaps
from orgbase.services.mongo.wire_gaps import Use

OID = ObjectId()
WHEN = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def test_the_local_server_is_told_by_its_build_info() -> None:
    # nx-27017 answers buildInfo like serverStatus, with its process name.
    assert wire_gaps.is_local_wire_server({"ok": 1, "version": "7.0.0", "process": "nx_27017"})
    # MongoDB's buildInfo has no process field.
    assert not wire_gaps.is_local_wire_server(
        {"ok": 1.0, "version": "7.0.14", "gitVersion": "ce59cfc", "modules": [], "bits": 64}
    )


REFUSED: list[tuple[dict[str, Any], Use]] = [
    ({"name": Regex("^a")}, Use.FIND),
    ({"name": {"$regex": "^a"}}, Use.COUNT),
    ({"$or": [{"x": 1}, {"name": {"$in": [Regex("a")]}}]}, Use.WRITE),
    ({"name": {"$not": Regex("a")}}, Use.MATCH),
    ({"ref": OID}, Use.FIND),
    ({"ref": {"$in": [OID]}}, Use.WRITE),
    ({"_id": OID}, Use.COUNT),
    ({"_id": {"$in": [OID]}}, Use.MATCH),
    ({"n": Decimal128("1")}, Use.FIND),
    ({"items.0.sku": "a"}, Use.FIND),
    ({"tags.1": {"$exists": True}}, Use.COUNT),
    ({"tags": {"$ne": "red"}}, Use.WRITE),
    ({"tags": {"$eq": "red"}}, Use.FIND),
    ({"when": WHEN}, Use.MATCH),
    ({"when": {"$gte": WHEN}}, Use.MATCH),
    ({"n": None}, Use.COUNT),
    ({"n": {"$eq": None}}, Use.COUNT),
    ({"$nor": [{"n": 1}]}, Use.MATCH),
    ({"n": {"$mod": [2, 0]}}, Use.MATCH),
    ({"n": {"$exists": False}}, Use.MATCH),
    ({"items": {"$elemMatch": {"ref": OID}}}, Use.FIND),
    ({"$and": [{"a.2": 1}]}, Use.FIND),
]


@pytest.mark.parametrize(("query", "use"), REFUSED)
def test_refused_filters(query: dict[str, Any], use: Use) -> None:
    with pytest.raises(Invalid) as refused:
        wire_gaps.check_filter(query, use)
    assert refused.value.code == "local_server_gap"
    assert http_status(refused.value) == 400


ALLOWED: list[tuple[dict[str, Any], Use]] = [
    ({"name": "apple", "n": {"$gte": 1, "$lt": 5}}, Use.MATCH),
    ({"tags": {"$in": ["red"]}, "n": {"$nin": [1]}}, Use.WRITE),
    ({"_id": OID}, Use.FIND),
    ({"_id": {"$in": [OID, "x"]}}, Use.WRITE),
    ({"when": {"$gte": WHEN}}, Use.FIND),
    ({"when": WHEN}, Use.COUNT),
    ({"n": None}, Use.FIND),
    ({"n": {"$in": [None]}}, Use.COUNT),
    ({"n": {"$ne": None}}, Use.WRITE),
    ({"n": {"$eq": 1}}, Use.MATCH),
    ({"$nor": [{"n": 1}]}, Use.FIND),
    ({"n": {"$exists": True}}, Use.COUNT),
    ({"sub.x": 1}, Use.FIND),
    ({"$expr": {"$regexMatch": {"input": "$name", "regex": "^a"}}}, Use.COUNT),
    ({"items": {"$elemMatch": {"sku": "a", "qty": {"$gt": 1}}}}, Use.FIND),
]


@pytest.mark.parametrize(("query", "use"), ALLOWED)
def test_allowed_filters(query: dict[str, Any], use: Use) -> None:
    wire_gaps.check_filter(query, use)


@pytest.mark.parametrize(
    "pipeline",
    [
        [{"$count": "n"}],
        [{"$facet": {"a": [{"$limit": 1}]}}],
        [{"$replaceRoot": {"newRoot": "$sub"}}],
        [{"$replaceWith": "$sub"}],
        [{"$bucketAuto": {"groupBy": "$n", "buckets": 2}}],
        [{"$project": {"sub.x": 1}}],
        [{"$match": {"name": Regex("a")}}],
        [
            {"$lookup": {"from": "b", "localField": "k", "foreignField": "k", "as": "j"}},
            {"$project": {"j": 1}},
        ],
        [
            {
                "$lookup": {
                    "from": "b",
                    "localField": "k",
                    "foreignField": "k",
                    "as": "j",
                    "pipeline": [{"$match": {"ref": OID}}],
                }
            }
        ],
    ],
)
def test_refused_pipelines(pipeline: list[dict[str, Any]]) -> None:
    with pytest.raises(Invalid, match="local Mongo-wire server"):
        wire_gaps.check_pipeline(pipeline)


def test_allowed_pipeline() -> None:
    wire_gaps.check_pipeline(
        [
            {"$match": {"kind": "fruit"}},
            {"$lookup": {"from": "b", "localField": "k", "foreignField": "k", "as": "j"}},
            {"$unwind": "$j"},
            {"$group": {"_id": "$kind", "n": {"$sum": 1}}},
            {"$project": {"n": 1}},
            {"$sort": {"n": -1}},
        ]
    )


@pytest.mark.parametrize(
    "update",
    [
        {"$set": {"items.0.qty": 1}},
        {"$inc": {"items.$[].qty": 1}},
        {"$rename": {"a": "list.1"}},
        {"$push": {"items": {"$each": [1], "$sort": 1}}},
    ],
)
def test_refused_updates(update: dict[str, Any]) -> None:
    with pytest.raises(Invalid, match="local Mongo-wire server"):
        wire_gaps.check_update(update)


def test_allowed_updates_and_projections() -> None:
    wire_gaps.check_update(
        {"$set": {"sub.x": 1, "items.$.qty": 1}, "$push": {"tags": {"$each": [1], "$slice": -3}}}
    )
    wire_gaps.check_projection({"name": 1, "tags": {"$slice": 2}})
    wire_gaps.check_projection(None)
    with pytest.raises(Invalid, match="dotted projection"):
        wire_gaps.check_projection({"sub.x": 1})
