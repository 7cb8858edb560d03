"""The parse stage of the data API (PostgREST's ApiRequest): a request's parts (query
string, Prefer, Range, Accept, body) into typed descriptions of what is asked. Pure: no
HTTP objects, no schema, no SQL. The routes call it; the plan stage (plan.py, rpc.py)
takes what it gives.

A read's description is the same for the same text, so ``read_parser`` memoizes it: a
repeated read skips parsing. A description is shared by every request of that text and is
never changed once made.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qsl

import msgspec

from orgbase.core.errors import Invalid
from orgbase.services.postgres.errors import (
    NotAcceptable,
    RangeNotSatisfiable,
    UnsupportedMediaType,
)
from orgbase.services.postgres.grammar import MAX_DIGITS, Query, is_number, parse_query

Count = Literal["exact", "planned", "estimated"] | None
Resolution = Literal["merge-duplicates", "ignore-duplicates"]
Shape = Literal["array", "object", "csv"]
"""How rows are answered: a JSON array, one JSON object, or CSV."""
SINGULAR = "application/vnd.pgrst.object+json"


class Prefer(msgspec.Struct):
    returning: Literal["representation", "minimal", "headers-only"] = "minimal"
    count: Count = None
    resolution: Resolution | None = None
    missing_default: bool = False
    strict: bool = False
    max_affected: int | None = None
    rollback: bool = False
    single_object: bool = False
    escape_formulas: bool = False
    """Prefer: csv-formulas=escape (CSV answers only; see csv_output)."""
    applied: tuple[str, ...] = ()


_SIMPLE_PREFERENCES = {
    "return": ("representation", "minimal", "headers-only"),
    "count": ("exact", "planned", "estimated"),
    "resolution": ("merge-duplicates", "ignore-duplicates"),
    "missing": ("default", "null"),
    "handling": ("strict", "lenient"),
    "tx": ("commit", "rollback"),
    "params": ("single-object",),
    "csv-formulas": ("escape", "keep"),
}


def _set_preference(prefer: Prefer, key: str, setting: str) -> None:
    """One of _SIMPLE_PREFERENCES, already known valid."""
    if key == "return":
        prefer.returning = setting  # type: ignore[assignment]
    elif key == "count":
        prefer.count = setting  # type: ignore[assignment]
    elif key == "resolution":
        prefer.resolution = setting  # type: ignore[assignment]
    elif key == "missing":
        prefer.missing_default = setting == "default"
    elif key == "handling":
        prefer.strict = setting == "strict"
    elif key == "csv-formulas":
        prefer.escape_formulas = setting == "escape"
    elif key == "tx":
        prefer.rollback = setting == "rollback"
    else:
        prefer.single_object = True


def parse_prefer(values: list[str], *, allow_rollback: bool = False) -> Prefer:
    """PostgREST's preferences. Unknown or invalid ones are ignored, unless
    ``handling=strict`` is among them (400 PGRST122). ``tx=rollback`` is honoured only
    when the operator allows it (``ORGBASE_DATA_ALLOW_TX_ROLLBACK``)."""
    prefer = Prefer()
    applied = []
    invalid = []
    for value in values:
        for raw in value.split(","):
            token = raw.strip()
            if not token:
                continue
            key, _, setting = token.partition("=")
            if key == "max-affected" and is_number(setting) and len(setting) <= MAX_DIGITS:
                prefer.max_affected = int(setting)
            elif setting in _SIMPLE_PREFERENCES.get(key, ()) and (key != "tx" or allow_rollback):
                _set_preference(prefer, key, setting)
            else:
                invalid.append(token)
                continue
            applied.append(token)
    if prefer.strict and invalid:
        raise Invalid(
            "Invalid preferences given with handling=strict",
            code="PGRST122",
            details="Invalid preferences: " + ", ".join(invalid)[:200],
        )
    if not prefer.strict and prefer.max_affected is not None:
        # As PostgREST: max-affected binds only with handling=strict.
        prefer.max_affected = None
        applied = [a for a in applied if not a.startswith("max-affected=")]
    prefer.applied = tuple(applied)
    return prefer


def apply_range(query: Query, header: str | None) -> None:
    if not header:
        return
    unit, _, span = header.partition("=")
    if not span:
        unit, span = "items", header
    first, dash, last = span.strip().partition("-")
    if (
        unit.strip() != "items"
        or not dash
        or not is_number(first)
        or (last and not is_number(last))
        or max(len(first), len(last)) > MAX_DIGITS
    ):
        raise RangeNotSatisfiable("Requested range not satisfiable", details=header[:100])
    start = int(first)
    if last:
        if int(last) < start:
            raise RangeNotSatisfiable("Requested range not satisfiable", details=header[:100])
        span_limit = int(last) - start + 1
        query.limit = span_limit if query.limit is None else min(query.limit, span_limit)
    query.offset = start


def negotiate(accept: str, *, csv: bool = False) -> Shape:
    """The answer's shape from Accept: one object, CSV (where ``csv``), or a JSON array."""
    if SINGULAR in accept:
        return "object"
    if csv and "text/csv" in accept:
        return "csv"
    if accept and not any(kind in accept for kind in ("json", "*/*")):
        raise NotAcceptable(
            "None of these media types are available: " + accept[:100], code="PGRST107"
        )
    return "array"


def require_json(content_type: str) -> None:
    if "json" not in content_type:
        raise UnsupportedMediaType(f"Content-Type {content_type[:100]} is not supported: send JSON")


def parse_body(raw: bytes) -> Any:
    if not raw.strip():
        raise Invalid("Empty or invalid json", code="PGRST102")
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise Invalid("Empty or invalid json", code="PGRST102", details=str(exc)[:200]) from None


def parse_filters(query_string: str) -> Query:
    """A write's or a call's query string (PostgREST repeats keys: ``id=gt.1&id=lt.9``)."""
    return parse_query(parse_qsl(query_string, keep_blank_values=True))


# -- reads ----------------------------------------------------------------------------


class ReadRequest(msgspec.Struct, frozen=True):
    table: str
    query: Query
    count: Count
    key: tuple[str, str, str, Count]
    """The text it was parsed from (table, query string, Range header, Prefer's count):
    whatever shapes its statement, as received."""


def parse_read(table: str, query_string: str, range_header: str, count: Count) -> ReadRequest:
    query = parse_filters(query_string)
    apply_range(query, range_header)
    return ReadRequest(table, query, count, (table, query_string, range_header, count))


def read_parser(size: int) -> Callable[[str, str, str, Count], ReadRequest]:
    """``parse_read``, remembering the last ``size`` descriptions (0: none)."""
    return functools.lru_cache(maxsize=size)(parse_read)


# -- writes ---------------------------------------------------------------------------


class WriteOptions(msgspec.Struct, frozen=True):
    max_affected: int | None = None
    """Prefer: max-affected (with handling=strict): more rows changed is PGRST124, undone."""
    rollback: bool = False
    """Prefer: tx=rollback (when the operator allows it): answer, then keep nothing."""
    count_changes: bool = False
    """Count max-affected in the rows the transaction changed in tables (a function's
    writes), not the rows the statement answers."""


_NO_OPTIONS = WriteOptions()


def write_options(prefer: Prefer) -> WriteOptions:
    if prefer.max_affected is None and not prefer.rollback:
        return _NO_OPTIONS
    return WriteOptions(max_affected=prefer.max_affected, rollback=prefer.rollback)


class Insert(msgspec.Struct, frozen=True):
    rows: list[dict[str, Any]]
    resolution: Resolution | None = None
    missing_default: bool = False
    """Prefer: missing=default: a key a row leaves out takes the column's default."""


class Update(msgspec.Struct, frozen=True):
    values: dict[str, Any]


class Delete(msgspec.Struct, frozen=True):
    pass


class WriteRequest(msgspec.Struct, frozen=True):
    table: str
    query: Query
    change: Insert | Update | Delete
    returning: bool
    """Prefer: return=representation: answer the rows written."""
    options: WriteOptions = _NO_OPTIONS


def parse_rows(payload: Any) -> list[dict[str, Any]]:
    """An insert's body: one object or a list of objects."""
    rows = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(row, dict) for row in rows):
        raise Invalid("the body must be an object or a list of objects", code="PGRST102")
    return rows


def parse_changes(payload: Any) -> dict[str, Any]:
    """An update's body: one object of the columns to change."""
    if not isinstance(payload, dict):
        raise Invalid("the body must be an object", code="PGRST102")
    return payload


# -- function calls -------------------------------------------------------------------


class CallRequest(msgspec.Struct, frozen=True):
    args: Any
    """The arguments: an object by name, or the whole body (``single_object``, or a
    function taking one json/jsonb argument)."""
    query: Query
    """Shapes a function's rows as a table's (select, filters, order, limit, offset)."""
    single_object: bool = False
    options: WriteOptions = _NO_OPTIONS
