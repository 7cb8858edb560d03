"""What the document routes take and give, for the OpenAPI document.

The routes read and write MongoDB Extended JSON themselves (``{"$oid": ...}``,
``{"$date": ...}``), which no typed body model decodes, so these describe the shapes:
request bodies as JSON Schema (``opt["request_body"]``), answers as response specs.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec

Document = dict[str, Any]


class Counted(msgspec.Struct):
    count: int


class Deleted(msgspec.Struct):
    deleted: int


class Updated(msgspec.Struct):
    matched: int
    modified: int
    upserted_id: str | None


class IndexName(msgspec.Struct):
    name: str


class IndexInfo(msgspec.Struct):
    name: str
    keys: dict[str, Any]
    unique: bool


class CollectionInfo(msgspec.Struct):
    name: str
    count: int


def answer(model: Any, description: str) -> ResponseSpec:
    return ResponseSpec(model, description=description, generate_examples=False)


_OBJECT = {"type": "object"}
_MAYBE_OBJECT = {"type": ["object", "null"]}
"""null means left out"""


def _closed(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


INSERT_BODY = {
    "oneOf": [_OBJECT, {"type": "array", "items": _OBJECT}],
    "description": "A document or a list of documents (all inserted or none)",
}
QUERY_FIELDS = {
    "filter": _MAYBE_OBJECT,
    "projection": _MAYBE_OBJECT,
    "sort": _MAYBE_OBJECT,
    "skip": {"type": ["integer", "null"], "minimum": 0},
    "limit": {"type": ["integer", "null"], "minimum": 0},
}
QUERY_BODY = _closed(QUERY_FIELDS)
FILTER_BODY = _closed({"filter": _MAYBE_OBJECT})
PIPELINE_BODY = _closed({"pipeline": {"type": "array", "items": _OBJECT}}, "pipeline")
UPDATE_BODY = _closed(
    {"filter": _MAYBE_OBJECT, "update": _OBJECT, "upsert": {"type": "boolean"}}, "update"
)
INDEX_BODY = _closed(
    {"keys": _OBJECT, "unique": {"type": "boolean"}, "name": {"type": ["string", "null"]}},
    "keys",
)
UPDATE_OPERATORS_BODY = {"type": "object", "description": "Update operators ($set, $inc ...)"}
REPLACEMENT_BODY = {"type": "object", "description": "The new document"}
