"""Request shapes the local Mongo-wire server (nx-27017) answers wrongly without an error.

Locally the document store is nx-27017, a MongoDB wire-protocol server backed by SQLite.
Some shapes it answers with a wrong count, an empty result or an unchanged field, and no
error. When the server is nx-27017 the document service refuses those shapes with a 400
``local_server_gap`` rather than answer wrongly; against MongoDB nothing here runs. Only
shapes told from the request alone are refused: gaps that depend on the stored data (an
equality on a field holding arrays in ``$match``, a sort on an array field...) and gaps
the server already reports as errors are listed in docs/operations/local-mongo.md and
pinned by ``tests/integration/test_mongo_wire_gaps.py``.

Pure functions, like the guard: they run after it, on requests it has accepted.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from enum import Enum
from typing import Any

from bson import Decimal128, ObjectId, Regex

from orgbase.core.errors import Invalid

LOCAL_SERVER_PROCESS = "nx_27017"
CODE = "local_server_gap"


class Use(Enum):
    """Where a filter runs: the local server answers the same filter differently in each."""

    FIND = "find"
    COUNT = "count"
    MATCH = "$match"
    WRITE = "update or delete"


def is_local_wire_server(build_info: Mapping[str, Any]) -> bool:
    """nx-27017 answers ``buildInfo`` with its process name; MongoDB's answer has no
    ``process`` field (and the version is no help: nx-27017 reports 7.0.0)."""
    return build_info.get("process") == LOCAL_SERVER_PROCESS


def _refuse(shape: str, hint: str | None = None) -> Invalid:
    return Invalid(
        f"the local Mongo-wire server answers {shape} wrongly, so it is refused here "
        "(MongoDB answers it)",
        code=CODE,
        hint=hint or "see docs/operations/local-mongo.md: the local Mongo-wire server's gaps",
    )


def _index_path(path: str) -> bool:
    """A path naming an array element (``items.0.sku``) or all or filtered elements in an
    update (``items.$[].qty``); the positional ``items.$.qty`` works locally."""
    return any(part.isdigit() or part.startswith("$[") for part in path.split(".")[1:])


# -- filters --------------------------------------------------------------------------


def check_filter(query: Mapping[str, Any], use: Use) -> None:
    for key, value in query.items():
        if key in ("$and", "$or", "$nor"):
            if key == "$nor" and use is Use.MATCH:
                raise _refuse("$nor in $match (it returns _id as a string)")
            for item in value:
                check_filter(item, use)
        elif not key.startswith("$"):  # $expr and $text work as MongoDB's
            _check_condition(key, value, use)


def _check_condition(path: str, condition: Any, use: Use) -> None:
    if _index_path(path):
        raise _refuse(f"array-index paths ({path})")
    if isinstance(condition, dict) and any(key.startswith("$") for key in condition):
        for operator, operand in condition.items():
            _check_operator(path, operator, operand, use)
    else:
        _check_equality(path, condition, use)


def _check_equality(path: str, value: Any, use: Use) -> None:
    if value is None and use is Use.COUNT:
        raise _refuse("a count of documents equal to null", "count with $in: [null]")
    _check_values(path, value, use)


def _check_operator(path: str, operator: str, operand: Any, use: Use) -> None:
    if operator in ("$regex", "$options"):
        raise _refuse("$regex", "use $expr with $regexMatch")
    if operator == "$ne" and operand is not None:
        raise _refuse("$ne on fields that may hold arrays", f"use {path}: {{$nin: [value]}}")
    if operator == "$eq" and operand is not None and use in (Use.FIND, Use.WRITE):
        raise _refuse("$eq on fields that may hold arrays", f"use {path}: {{$in: [value]}}")
    if operator in ("$mod", "$exists") and use is Use.MATCH:
        raise _refuse(f"{operator} in $match (it returns _id as a string)")
    if operator == "$eq":
        _check_equality(path, operand, use)
    elif operator == "$elemMatch" and isinstance(operand, dict):
        if any(key.startswith("$") for key in operand):
            _check_condition(path, operand, use)
        else:
            check_filter(operand, use)
    elif operator == "$not":
        _check_condition(path, operand, use)
    else:
        _check_values(path, operand, use)


def _check_values(path: str, value: Any, use: Use) -> None:
    """Values the local server cannot compare (in some uses), wherever they sit."""
    if isinstance(value, list | tuple):
        for item in value:
            _check_values(path, item, use)
    elif isinstance(value, dict):
        for item in value.values():
            _check_values(path, item, use)
    elif isinstance(value, Regex):
        raise _refuse("regular expressions", "use $expr with $regexMatch")
    elif isinstance(value, Decimal128):
        raise _refuse("Decimal128 values")
    elif isinstance(value, ObjectId) and (path != "_id" or use in (Use.COUNT, Use.MATCH)):
        raise _refuse(f"ObjectId values in a {use.value} on {path}")
    elif isinstance(value, datetime.datetime) and use is Use.MATCH:
        raise _refuse("dates in $match", "filter with find (POST .../query) instead")


# -- projections, pipelines, updates -----------------------------------------------------


def check_projection(projection: Mapping[str, Any] | None) -> None:
    for path in projection or {}:
        if "." in path:
            raise _refuse(f"dotted projection paths ({path})", "project the whole field")


# Stages whose output the local server gets wrong whatever the data.
WRONG_STAGES = {
    "$count": "$count (it answers {n: 0} where MongoDB answers nothing)",
    "$facet": "$facet (it adds an _id field)",
    "$replaceRoot": "$replaceRoot (it adds an _id field)",
    "$replaceWith": "$replaceWith (it adds an _id field)",
    "$bucketAuto": "$bucketAuto (wrong bucket bounds)",
}


def check_pipeline(pipeline: list[dict[str, Any]]) -> None:
    joined: set[str] = set()  # the `as` fields of earlier $lookup stages
    for stage in pipeline:
        ((name, body),) = stage.items()
        if name in WRONG_STAGES:
            raise _refuse(WRONG_STAGES[name])
        if name == "$match":
            check_filter(body, Use.MATCH)
        elif name == "$project":
            for path in body:
                if "." in path:
                    raise _refuse(f"dotted $project paths ({path})")
                if path in joined:
                    raise _refuse(f"$project of a $lookup's array ({path}: it becomes a string)")
        elif name == "$lookup":
            joined.add(body["as"])
            check_pipeline(body.get("pipeline", []))


def check_update(update: Mapping[str, Any]) -> None:
    for operator, fields in update.items():
        for path, value in fields.items():
            targets = [path, value] if operator == "$rename" else [path]
            for target in targets:
                if _index_path(target):
                    raise _refuse(f"updates of array elements by index or position ({target})")
            if isinstance(value, dict) and "$sort" in value:
                raise _refuse(f"{operator} with $sort (the array is left unsorted)")
