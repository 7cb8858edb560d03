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
INSERT_BODY = {
    "oneOf": [_OBJECT, {"type": "array", "items": _OBJECT, "minItems": 1}],
    "description": "A document or a list of documents (all inserted or none)",
}
QUERY_BODY = {
    "type": "object",
    "properties": {
        "filter": _OBJECT,
        "projection": _OBJECT,
        "sort": _OBJECT,
        "skip": {"type": "integer", "minimum": 0},
        "limit": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}
FILTER_BODY = {"type": "object", "properties": {"filter": _OBJECT}}
PIPELINE_BODY = {
    "type": "object",
    "properties": {"pipeline": {"type": "array", "items": _OBJECT}},
    "required": ["pipeline"],
}
UPDATE_BODY = {
    "type": "object",
    "properties": {"filter": _OBJECT, "update": _OBJECT, "upsert": {"type": "boolean"}},
    "required": ["update"],
}
INDEX_BODY = {
    "type": "object",
    "properties": {
        "keys": _OBJECT,
        "unique": {"type": "boolean"},
        "name": {"type": "string"},
    },
    "required": ["keys"],
}
UPDATE_OPERATORS_BODY = {"type": "object", "description": "Update operators ($set, $inc ...)"}
REPLACEMENT_BODY = {"type": "object", "description": "The new document"}
