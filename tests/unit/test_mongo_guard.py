"""The allow-lists and rewrites that keep document queries inside their org."""

from __future__ import annotations

from typing import Any

import pytest

from orgbase.core.errors import Invalid
from orgbase.services.mongo import guard

ORG = "org-a"


def physical(name: str) -> str:
    return f"d_{name}"


def test_filters_are_scoped_without_being_overridable() -> None:
    assert guard.scoped({}, ORG) == {"_org": ORG}
    assert guard.scoped({"x": 1, "$or": [{"a": 1}]}, ORG, "u1") == {
        "x": 1,
        "$or": [{"a": 1}],
        "_org": ORG,
        "_owner": "u1",
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"$where": "this.a == 1"},
        {"a": {"$where": "1"}},
        {"_org": "org-b"},
        {"_org.x": 1},
        {"$or": [{"_org": "org-b"}]},
        {"_owner": "someone"},
        {"a": {"$function": {"body": "x", "args": [], "lang": "js"}}},
        {"$expr": {"$function": {"body": "x", "args": [], "lang": "js"}}},
        {"$expr": {"$eq": ["$_org", "org-b"]}},
        {"a": {"$accumulator": {}}},
        {"$or": []},
        {"a": {"$bogus": 1}},
        {"$comment": "x"},
        "not an object",
    ],
)
def test_dangerous_filters_are_refused(bad: Any) -> None:
    with pytest.raises(Invalid):
        guard.check_filter(bad)


def test_ordinary_filters_pass() -> None:
    guard.check_filter(
        {
            "a": 1,
            "b": {"$gt": 2, "$lt": 9},
            "$or": [{"c": {"$in": [1, 2]}}, {"d": {"$exists": False}}],
            "e": {"$elemMatch": {"f": 1}},
            "g": {"$regex": "^x", "$options": "i"},
            "$expr": {"$gt": ["$a", "$b"]},
        }
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"x": 1},
        {"$set": {"_org": "org-b"}},
        {"$set": {"_owner": "me"}},
        {"$rename": {"x": "_org"}},
        {"$unset": {"_org": ""}},
        {"$set": {"_id": 1}},
        {"$where": {}},
        {"$set": {"x": {"$function": {}}}},
        {"$push": {"x": {"$each": [1], "$bogus": 1}}},
        {},
    ],
)
def test_dangerous_updates_are_refused(bad: Any) -> None:
    with pytest.raises(Invalid):
        guard.check_update(bad)


def test_pipelines_are_led_by_the_org_and_lookups_scoped() -> None:
    stages = guard.scoped_pipeline(
        [
            {"$match": {"a": 1}},
            {"$lookup": {"from": "other", "localField": "k", "foreignField": "k", "as": "o"}},
            {"$group": {"_id": "$a", "n": {"$sum": 1}}},
        ],
        ORG,
        physical,
    )
    # Led by the org, then the server fields go: no later stage can reach them ($$ROOT).
    scope = [{"$match": {"_org": ORG}}, {"$project": {"_org": 0, "_owner": 0}}]
    assert stages[:2] == scope
    lookup = stages[3]["$lookup"]
    assert lookup["from"] == "d_other"
    assert lookup["pipeline"][:2] == scope


@pytest.mark.parametrize(
    "expression",
    [
        {"$eq": ["$$ROOT._org", ORG]},
        {"$eq": ["$$CURRENT._owner", "x"]},
        {"$gt": [{"$size": {"$objectToArray": "$$ROOT"}}, 0]},
        {"$eq": [{"$getField": {"field": {"$concat": ["_", "org"]}, "input": "$$ROOT"}}, 1]},
        {"$eq": [{"$getField": "_org"}, ORG]},
        {"$eq": ["$_org", ORG]},
        {"$eq": ["$a._owner", 1]},
        {"$let": {"vars": {"d": "$$ROOT"}, "in": "$$d._org"}},
    ],
)
def test_find_expressions_cannot_reach_server_fields(expression: Any) -> None:
    with pytest.raises(Invalid):
        guard.check_filter({"$expr": expression})


@pytest.mark.parametrize(
    "projection",
    [
        {"all": {"$objectToArray": "$$ROOT"}},
        {"o": {"$literal": 1}},
        {"a": {"$slice": 2, "$objectToArray": "$$ROOT"}},
        {"a": {}},
    ],
)
def test_find_projections_are_inclusion_and_array_operators_only(projection: Any) -> None:
    with pytest.raises(Invalid):
        guard.check_projection(projection)


def test_find_projections_keep_what_they_did() -> None:
    allowed = {"a": 1, "b": 0, "c": {"$slice": 2}, "d": {"$elemMatch": {"x": 1}}}
    assert guard.check_projection(allowed) == allowed
    guard.check_filter({"$expr": {"$gt": ["$a", "$b.c"]}})


@pytest.mark.parametrize(
    "stage",
    [
        {"$out": "x"},
        {"$merge": {"into": "x"}},
        {"$unionWith": {"coll": "x"}},
        {"$graphLookup": {"from": "x"}},
        {"$collStats": {}},
        {"$currentOp": {}},
        {"$lookup": {"from": "x", "let": {}, "pipeline": [], "as": "y"}},
        {"$lookup": {"from": "system.users", "localField": "a", "foreignField": "b", "as": "y"}},
        {"$group": {"_id": None, "x": {"$accumulator": {}}}},
        {"$project": {"o": "$_org"}},
        {"$match": {"$where": "1"}},
        {"$facet": {"a": [{"$out": "x"}]}},
        {"$bogus": {}},
    ],
)
def test_dangerous_stages_are_refused(stage: Any) -> None:
    with pytest.raises(Invalid):
        guard.scoped_pipeline([stage], ORG, physical)


def test_server_fields_never_leave() -> None:
    assert guard.hide_server_fields([{"_org": 1, "_owner": 2, "a": {"_org": 3, "b": 4}}]) == [
        {"a": {"b": 4}}
    ]


@pytest.mark.parametrize("name", ["", "1abc", "a.b", "a$b", "system_x", "x" * 65, "a/b"])
def test_collection_names(name: str) -> None:
    with pytest.raises(Invalid):
        guard.collection_name(name)
