"""What a client may send to MongoDB, and how it is rewritten to stay inside its org.

Pure functions: they check filters, updates, projections, sorts and pipelines against
allow-lists and rewrite them so every read and write carries the org field. Nothing here
talks to MongoDB.

Every document carries ``_org`` (the org) and ``_owner`` (who created it); clients can
neither set, change, filter on, nor see them: not by name, not through ``$$ROOT`` or
``$$CURRENT``, not by a computed field name (``$getField``). Pipelines start by removing
them, so no later stage can reach them at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from orgbase.core.errors import Invalid

ORG = "_org"
OWNER = "_owner"
HIDDEN = frozenset({ORG, OWNER})
COLLECTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
MAX_DEPTH = 32

QUERY_OPERATORS = frozenset(
    {
        "$eq",
        "$ne",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$in",
        "$nin",
        "$and",
        "$or",
        "$nor",
        "$not",
        "$exists",
        "$type",
        "$regex",
        "$options",
        "$elemMatch",
        "$size",
        "$all",
        "$mod",
        "$expr",
        "$text",
        "$search",
        "$language",
        "$caseSensitive",
    }
)
UPDATE_OPERATORS = frozenset(
    {
        "$set",
        "$unset",
        "$inc",
        "$mul",
        "$min",
        "$max",
        "$push",
        "$pull",
        "$pullAll",
        "$addToSet",
        "$pop",
        "$rename",
        "$currentDate",
        "$setOnInsert",
    }
)
PUSH_MODIFIERS = frozenset({"$each", "$slice", "$sort", "$position"})
PROJECTION_OPERATORS = frozenset({"$slice", "$elemMatch"})
STAGES = frozenset(
    {
        "$match",
        "$project",
        "$group",
        "$sort",
        "$limit",
        "$skip",
        "$unwind",
        "$lookup",
        "$count",
        "$addFields",
        "$set",
        "$unset",
        "$replaceRoot",
        "$replaceWith",
        "$facet",
        "$sortByCount",
        "$sample",
        "$bucket",
        "$bucketAuto",
    }
)
# Refused anywhere in a request: they run code, write elsewhere, or read around the org.
FORBIDDEN = frozenset(
    {
        "$where",
        "$function",
        "$accumulator",
        "$out",
        "$merge",
        "$unionWith",
        "$graphLookup",
        "$collStats",
        "$currentOp",
        "$indexStats",
        "$listSessions",
        "$listLocalSessions",
        "$planCacheStats",
        "$documents",
        "$changeStream",
        "$changeStreamSplitLargeEvent",
    }
)


def refuse(message: str, code: str = "invalid_query") -> Invalid:
    return Invalid(message, code=code)


def collection_name(name: str) -> str:
    if not COLLECTION_NAME.fullmatch(name) or name.lower().startswith("system"):
        raise refuse(
            "collection names are 1-64 letters, digits, _ and -, starting with a letter",
            "invalid_collection",
        )
    return name


def _field(path: str, *, writing: bool = False) -> None:
    if not path or path.startswith("$") or "\x00" in path:
        raise refuse(f"invalid field name {path!r}")
    root = path.split(".", 1)[0]
    if root in HIDDEN:
        raise refuse(f"{root} is managed by the server", "reserved_field")
    if writing and root == "_id" and path != "_id":
        raise refuse("_id cannot be changed", "reserved_field")


# Expression operators that read or write a field by a computed name: they could reach the
# server fields without naming them.
FIELD_BY_NAME = frozenset({"$getField", "$setField", "$unsetField"})
# System variables that hold the whole document (server fields included) in a find.
WHOLE_DOCUMENT = frozenset({"ROOT", "CURRENT"})


def check_expression(value: Any) -> None:
    """An aggregation expression in a find (``$expr``): it may not reach the server fields,
    by path (``$_org``), through the whole document (``$$ROOT``) or by computed name."""
    scan_forbidden(value, expression=True)


def _check_reference(value: str) -> None:
    """A field path (``$a.b``) or variable (``$$v.a``) in an expression."""
    if not value.startswith("$"):
        return
    variable, _, path = value[2:].partition(".") if value.startswith("$$") else ("", "", value[1:])
    if variable in WHOLE_DOCUMENT:
        raise refuse(f"$${variable} is not available here", "reserved_field")
    if any(part in HIDDEN for part in path.split(".")):
        raise refuse("server fields cannot be referenced", "reserved_field")


def scan_forbidden(value: Any, depth: int = 0, *, expression: bool = False) -> None:
    """Refuse forbidden operators anywhere inside ``value``; in an ``expression`` also
    references to the server fields and operators that name a field at run time."""
    if depth > MAX_DEPTH:
        raise refuse("the request nests too deeply")
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str):
                raise refuse("keys must be strings")
            if key in FORBIDDEN or (expression and key in FIELD_BY_NAME):
                raise refuse(f"{key} is not allowed", "forbidden_operator")
            scan_forbidden(inner, depth + 1, expression=expression)
    elif isinstance(value, list):
        for inner in value:
            scan_forbidden(inner, depth + 1, expression=expression)
    elif expression and isinstance(value, str):
        _check_reference(value)


def check_filter(query: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise refuse("the filter nests too deeply")
    if not isinstance(query, dict):
        raise refuse("a filter is a JSON object")
    for key, value in query.items():
        if key.startswith("$"):
            if key not in QUERY_OPERATORS:
                raise refuse(f"query operator {key} is not allowed", "forbidden_operator")
            if key in ("$and", "$or", "$nor"):
                if not isinstance(value, list) or not value:
                    raise refuse(f"{key} takes a non-empty list of filters")
                for item in value:
                    check_filter(item, depth + 1)
            elif key == "$expr":
                check_expression(value)
            elif key == "$text" and not isinstance(value, dict):
                raise refuse("$text takes an object")
            continue
        _field(key)
        _check_condition(value, depth + 1)


def _check_condition(value: Any, depth: int) -> None:
    if isinstance(value, dict) and any(k.startswith("$") for k in value):
        for operator, operand in value.items():
            if operator not in QUERY_OPERATORS:
                raise refuse(f"query operator {operator} is not allowed", "forbidden_operator")
            if operator == "$elemMatch" and isinstance(operand, dict):
                check_filter(operand, depth + 1)
            elif operator == "$not":
                _check_condition(operand, depth + 1)
            else:
                scan_forbidden(operand, depth + 1)
    else:
        scan_forbidden(value, depth)


def scoped(query: dict[str, Any], org: str, owner: str | None = None) -> dict[str, Any]:
    """The filter restricted to the org (and to one owner's documents, for members' writes).

    A checked filter never names the server fields, so adding them as top-level equalities
    cannot be overridden; an upsert copies them into the document it inserts. The org
    field leads (docs/scaling.md: it leads every shard key and index too)."""
    scope = {ORG: org, **query}
    if owner is not None:
        scope[OWNER] = owner
    return scope


def check_update(update: Any) -> None:
    if not isinstance(update, dict) or not update:
        raise refuse("an update is a non-empty object of update operators")
    for operator, fields in update.items():
        if operator not in UPDATE_OPERATORS:
            raise refuse(
                f"update operator {operator!r} is not allowed (use $set, $inc, ...)",
                "forbidden_operator",
            )
        if not isinstance(fields, dict) or not fields:
            raise refuse(f"{operator} takes an object of fields")
        for path, value in fields.items():
            _field(path, writing=True)
            if path == "_id":
                raise refuse("_id cannot be changed", "reserved_field")
            if operator == "$rename":
                if not isinstance(value, str):
                    raise refuse("$rename takes new field names")
                _field(value, writing=True)
            if isinstance(value, dict) and operator in ("$push", "$addToSet"):
                for modifier in value:
                    if modifier.startswith("$") and modifier not in PUSH_MODIFIERS:
                        raise refuse(f"{modifier} is not allowed here", "forbidden_operator")
            scan_forbidden(value)


def check_document(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise refuse("a document is a JSON object", "invalid_document")
    for key in document:
        if not isinstance(key, str) or key.startswith("$"):
            raise refuse(f"invalid field name {key!r}", "invalid_document")
        if key in HIDDEN:
            raise refuse(f"{key} is managed by the server", "reserved_field")
    scan_forbidden(document)
    return document


def check_projection(projection: Any) -> dict[str, Any] | None:
    if projection is None:
        return None
    if not isinstance(projection, dict):
        raise refuse('a projection is an object like {"field": 1}')
    for path, value in projection.items():
        _field(path)
        if isinstance(value, dict):
            # Array operators only: an aggregation expression could rebuild the whole
            # document ($objectToArray of $$ROOT) with the server fields in it.
            if not value or set(value) - PROJECTION_OPERATORS:
                raise refuse("projection values are 0, 1, {$slice: n} or {$elemMatch: filter}")
            if "$elemMatch" in value:
                check_filter(value["$elemMatch"])
            scan_forbidden(value)
        elif value not in (0, 1, True, False):
            raise refuse("projection values are 0 or 1")
    return projection


def check_sort(sort: Any) -> list[tuple[str, int]] | None:
    if sort is None:
        return None
    pairs = list(sort.items()) if isinstance(sort, dict) else sort
    result: list[tuple[str, int]] = []
    if not isinstance(pairs, list):
        raise refuse('sort is an object like {"field": -1}')
    for pair in pairs:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise refuse('sort is an object like {"field": -1}')
        field, direction = pair
        _field(field)
        if direction not in (1, -1):
            raise refuse("sort directions are 1 or -1")
        result.append((field, direction))
    return result


def scoped_pipeline(
    pipeline: Any, org: str, physical: Callable[[str], str], depth: int = 0
) -> list[dict[str, Any]]:
    """Check a pipeline and return it led by ``$match`` on the org and a ``$project`` that
    removes the server fields (so ``$$ROOT`` no longer holds them), with every ``$lookup``
    scoped the same way (``physical`` maps a collection name to the org's stored name)."""
    return [*_scope(org), *_checked_stages(pipeline, org, physical, depth)]


def _scope(org: str) -> list[dict[str, Any]]:
    return [{"$match": {ORG: org}}, {"$project": {ORG: 0, OWNER: 0}}]


def _checked_stages(
    pipeline: Any, org: str, physical: Callable[[str], str], depth: int
) -> list[dict[str, Any]]:
    if not isinstance(pipeline, list):
        raise refuse("a pipeline is a list of stages")
    if depth > 3:
        raise refuse("lookups nest at most 3 deep")
    scan_forbidden(pipeline)
    stages: list[dict[str, Any]] = []
    for stage in pipeline:
        if not isinstance(stage, dict) or len(stage) != 1:
            raise refuse("each stage is an object with one operator")
        ((name, body),) = stage.items()
        if "$" + ORG in repr(body) or "$" + OWNER in repr(body):
            raise refuse("server fields cannot be referenced", "reserved_field")
        if name not in STAGES:
            raise refuse(f"stage {name} is not allowed", "forbidden_operator")
        if name == "$match":
            check_filter(body)
        elif name == "$lookup":
            body = _scoped_lookup(body, org, physical, depth)
        elif name == "$facet":
            if not isinstance(body, dict):
                raise refuse("$facet takes an object of pipelines")
            body = {k: _checked_stages(v, org, physical, depth + 1) for k, v in body.items()}
        stages.append({name: body})
    return stages


def _scoped_lookup(
    body: Any, org: str, physical: Callable[[str], str], depth: int
) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("from"), str):
        raise refuse("$lookup needs from")
    allowed = {"from", "localField", "foreignField", "as", "let", "pipeline"}
    if set(body) - allowed:
        raise refuse(f"$lookup takes only {sorted(allowed)}")
    if not ("localField" in body and "foreignField" in body):
        raise refuse("$lookup needs localField and foreignField", "unscoped_lookup")
    for key in ("localField", "foreignField"):
        if not isinstance(body[key], str):
            raise refuse(f"{key} is a field name")
        _field(body[key])
    if not isinstance(body.get("as"), str):
        raise refuse("$lookup needs as")
    _field(body["as"])
    inner = scoped_pipeline(body.get("pipeline", []), org, physical, depth + 1)
    return {**body, "from": physical(collection_name(body["from"])), "pipeline": inner}


def hide_server_fields(value: Any) -> Any:
    """Remove ``_org`` and ``_owner`` wherever they appear in a result."""
    if isinstance(value, dict):
        return {k: hide_server_fields(v) for k, v in value.items() if k not in HIDDEN}
    if isinstance(value, list):
        return [hide_server_fields(v) for v in value]
    return value
