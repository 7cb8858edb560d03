"""`/v1/db/{table}`: the PostgREST-compatible data API.

The handler reads the raw query string (PostgREST repeats keys: ``id=gt.1&id=lt.9``),
the Prefer, Range and Accept headers, and answers with the JSON PostgreSQL built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, Response, delete, get, head, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.response.base import ASGIResponse
from litestar.types import ControllerRouterHandler

from orgbase.core.context import OrgContext
from orgbase.core.errors import Invalid, OrgbaseError, TimedOut, Unauthorized, Unavailable
from orgbase.core.postgres import DATA_ACCESS, TenantEntry
from orgbase.services.postgres.csv_output import CSV, rows_to_csv
from orgbase.services.postgres.errors import (
    NotAcceptable,
    RangeNotSatisfiable,
    UnsupportedMediaType,
)
from orgbase.services.postgres.grammar import MAX_DIGITS, Query, is_number, parse_query
from orgbase.services.postgres.result import Result
from orgbase.services.postgres.schema import Table
from orgbase.services.postgres.service import DATA_SERVICE, Count
from orgbase.services.postgres.writes import WriteOptions

T = TypeVar("T")
SINGULAR = "application/vnd.pgrst.object+json"
_JSON = "application/json; charset=utf-8"


class NoBody(Response[bytes]):
    """A 201 without a body (``Prefer: return=minimal``, the default) carries no
    Content-Type either, as PostgREST answers: a client that sees a JSON type parses the
    empty body and fails (Litestar would add one)."""

    def __init__(self, status_code: int, headers: dict[str, str]) -> None:
        super().__init__(b"", status_code=status_code, headers=headers)

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        response = super().to_asgi_response(*args, **kwargs)
        if "content-type" in response.headers:
            del response.headers["content-type"]
        return response


class Prefer(msgspec.Struct):
    returning: Literal["representation", "minimal", "headers-only"] = "minimal"
    count: Count = None
    resolution: Literal["merge-duplicates", "ignore-duplicates"] | None = None
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


def parse_prefer(  # noqa: PLR0912 - one branch per preference
    values: list[str], *, allow_rollback: bool = False
) -> Prefer:
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
            elif setting in _SIMPLE_PREFERENCES.get(key, ()):
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
                    if not allow_rollback:
                        invalid.append(token)
                        continue
                    prefer.rollback = setting == "rollback"
                else:
                    prefer.single_object = True
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


def _prefer(request: Request[Any, Any, Any]) -> Prefer:
    allow = DATA_SERVICE.of(request).allow_tx_rollback
    return parse_prefer(request.headers.getall("prefer", []), allow_rollback=allow)


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


def _body(raw: bytes) -> Any:
    if not raw.strip():
        raise Invalid("Empty or invalid json", code="PGRST102")
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise Invalid("Empty or invalid json", code="PGRST102", details=str(exc)[:200]) from None


def _content_range(result: Result, offset: int) -> str:
    total = "*" if result.total is None else str(result.total)
    if result.rows == 0:
        return f"*/{total}"
    return f"{offset}-{offset + result.rows - 1}/{total}"


def _respond(
    result: Result,
    status: int,
    prefer: Prefer,
    singular: bool | str,
    headers: dict[str, str],
) -> Response[bytes]:
    if prefer.applied:
        headers["Preference-Applied"] = ", ".join(prefer.applied)
    if singular == CSV_KIND:
        csv = rows_to_csv(result.body, escape_formulas=prefer.escape_formulas)
        return Response(csv, status_code=status, media_type=CSV, headers=headers)
    if singular:
        if result.rows != 1:
            raise NotAcceptable(
                "JSON object requested, multiple (or no) rows returned",
                details=f"The result contains {result.rows} rows",
            )
        body = (result.body or "[]")[1:-1]
        return Response(body.encode(), status_code=status, media_type=SINGULAR, headers=headers)
    if result.body is None:
        return NoBody(204 if status != 201 else 201, headers)
    return Response(result.body.encode(), status_code=status, media_type=_JSON, headers=headers)


CSV_KIND = "csv"


def _wants_singular(request: Request[Any, Any, Any], *, csv: bool = False) -> bool | str:
    """True for one object, ``CSV_KIND`` for CSV (reads only), False for a JSON array."""
    accept = request.headers.get("accept", "")
    if SINGULAR in accept:
        return True
    if csv and "text/csv" in accept:
        return CSV_KIND
    if accept and not any(kind in accept for kind in ("json", "*/*")):
        raise NotAcceptable(
            "None of these media types are available: " + accept[:100], code="PGRST107"
        )
    return False


async def _read(
    request: Request[Any, Any, Any], entry: TenantEntry, table: str, query_string: str
) -> tuple[Result, Query, Prefer, bool | str]:
    data = DATA_SERVICE.of(request)
    range_header = request.headers.get("range", "")
    prefer = _prefer(request)

    def parse() -> Query:
        query = parse_query(parse_qsl(query_string, keep_blank_values=True))
        apply_range(query, range_header)
        return query

    # The query string, the Range header and Prefer's count make the statement (the other
    # preferences and Accept shape only the response): a repeated read skips parsing.
    prepared = data.prepare_read(table, (query_string, range_header), prefer.count, parse)
    singular = _wants_singular(request, csv=True)
    return await data.read(entry, prepared), prepared.query, prefer, singular


def _read_response(
    result: Result, query: Query, prefer: Prefer, singular: bool | str
) -> Response[bytes]:
    if result.total is not None and query.offset > result.total:
        # As PostgREST: a known total and an offset past it.
        raise RangeNotSatisfiable(
            "Requested range not satisfiable",
            details=f"An offset of {query.offset} was requested, but there are only"
            f" {result.total} rows.",
        )
    headers = {"Content-Range": _content_range(result, query.offset)}
    partial = result.total is not None and (query.offset > 0 or result.rows < result.total)
    return _respond(result, 206 if partial else 200, prefer, singular, headers)


TABLE = "/v1/db/{table:str}"
# The handlers read the raw query string and body themselves (PostgREST's grammar repeats
# keys and bodies are rows of any shape), so the document says what they take and give.
ROWS = ResponseSpec(
    list[dict[str, Any]],
    description="The rows, as JSON objects (one object with the singular Accept type)",
    generate_examples=False,
)
NO_CONTENT = ResponseSpec(None, description="Done (Prefer: return=minimal)")
INSERTED = ResponseSpec(
    None,
    description="Inserted: the rows with Prefer: return=representation, else no body",
    generate_examples=False,
)
ROW_BODY = {
    "oneOf": [
        {"type": "object"},
        {"type": "array", "items": {"type": "object"}},
    ],
    "description": "One row or a list of rows (inserted in one statement: all or none)",
}
CHANGES_BODY = {"type": "object", "description": "The columns to change, with their values"}
WITH_CREDENTIALS = {"credentials": True}


def _query_string(request: Request[Any, Any, Any]) -> str:
    return str(request.scope["query_string"].decode("latin-1"))


def _require_json(request: Request[Any, Any, Any]) -> None:
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type:
        raise UnsupportedMediaType(f"Content-Type {content_type[:100]} is not supported: send JSON")


async def _json_body(request: Request[Any, Any, Any]) -> Any:
    """A write's body: JSON (by Content-Type), decoded."""
    _require_json(request)
    return _body(await request.body())


def _writing(request: Request[Any, Any, Any]) -> tuple[Query, Prefer, bool]:
    query = parse_query(parse_qsl(_query_string(request), keep_blank_values=True))
    prefer = _prefer(request)
    return query, prefer, bool(_wants_singular(request))


def _options(prefer: Prefer) -> WriteOptions:
    return WriteOptions(max_affected=prefer.max_affected, rollback=prefer.rollback)


def _written(result: Result, prefer: Prefer, singular: bool) -> Response[bytes]:
    returning = prefer.returning == "representation"
    status = 200 if returning else 204
    return _respond(
        result, status, prefer, singular and returning, {"Content-Range": f"*/{result.rows}"}
    )


# Refusals that say nothing about the request itself: the credential's own (already
# first), or a service down.
_NOT_THE_REQUESTS_FAULT = (Unauthorized, Unavailable, TimedOut)


async def _credential_first(
    request: Request[Any, Any, Any], work: Callable[[TenantEntry], Awaitable[T]]
) -> T:
    """Run ``work`` with the request's entry, from the request-auth component (read from the
    app's state, not injected: this is the hot path). Its credential is checked by
    PostgreSQL in the statement; a request refused before any statement ran has it checked
    here, so a dead credential hears that first (401), not something about its request."""
    source = DATA_ACCESS.of(request)
    access = await source.data_access(request)
    try:
        return await work(access.entry)
    except OrgbaseError as refused:
        if not isinstance(refused, _NOT_THE_REQUESTS_FAULT):
            await access.confirm()
        raise


@get(
    TABLE,
    tags=["data"],
    summary="Read rows: select, filters, order, limit/offset, Range, Prefer: count",
    responses={200: ROWS, 206: ROWS},
    opt=WITH_CREDENTIALS,
)
async def read_rows(request: Request[Any, Any, Any], table: FromPath[str]) -> Response[bytes]:
    async def read(entry: TenantEntry) -> Response[bytes]:
        result, query, prefer, singular = await _read(request, entry, table, _query_string(request))
        return _read_response(result, query, prefer, singular)

    return await _credential_first(request, read)


@post(
    TABLE,
    tags=["data"],
    summary="Insert rows (upsert with Prefer: resolution=...)",
    responses={201: INSERTED},
    opt={**WITH_CREDENTIALS, "request_body": ROW_BODY},
)
async def insert_rows(request: Request[Any, Any, Any], table: FromPath[str]) -> Response[bytes]:
    async def insert(entry: TenantEntry) -> Response[bytes]:
        payload = await _json_body(request)
        query, prefer, singular = _writing(request)
        rows = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(row, dict) for row in rows):
            raise Invalid("the body must be an object or a list of objects", code="PGRST102")
        returning = prefer.returning == "representation"
        result = await DATA_SERVICE.of(request).insert(
            entry,
            table,
            rows,
            query,
            returning=returning,
            resolution=prefer.resolution,
            missing_default=prefer.missing_default,
            options=_options(prefer),
        )
        return _respond(
            result, 201, prefer, singular and returning, {"Content-Range": f"*/{result.rows}"}
        )

    return await _credential_first(request, insert)


@patch(
    TABLE,
    tags=["data"],
    summary="Update the rows the filters match (a filter is required)",
    responses={200: ROWS, 204: NO_CONTENT},
    opt={**WITH_CREDENTIALS, "request_body": CHANGES_BODY},
)
async def update_rows(request: Request[Any, Any, Any], table: FromPath[str]) -> Response[bytes]:
    async def update(entry: TenantEntry) -> Response[bytes]:
        values = await _json_body(request)
        if not isinstance(values, dict):
            raise Invalid("the body must be an object", code="PGRST102")
        query, prefer, singular = _writing(request)
        result = await DATA_SERVICE.of(request).update(
            entry,
            table,
            values,
            query,
            returning=prefer.returning == "representation",
            options=_options(prefer),
        )
        return _written(result, prefer, singular)

    return await _credential_first(request, update)


@delete(
    TABLE,
    tags=["data"],
    summary="Delete the rows the filters match (a filter is required)",
    status_code=200,
    responses={200: ROWS, 204: NO_CONTENT},
    opt=WITH_CREDENTIALS,
)
async def delete_rows(request: Request[Any, Any, Any], table: FromPath[str]) -> Response[bytes]:
    async def remove(entry: TenantEntry) -> Response[bytes]:
        data = DATA_SERVICE.of(request)
        query, prefer, singular = _writing(request)
        result = await data.delete(
            entry,
            table,
            query,
            returning=prefer.returning == "representation",
            options=_options(prefer),
        )
        return _written(result, prefer, singular)

    return await _credential_first(request, remove)


@head(TABLE, tags=["data"], summary="Like GET, without the body (counts)", opt=WITH_CREDENTIALS)
async def table_head(request: Request[Any, Any, Any], table: FromPath[str]) -> Response[None]:
    async def head_of(entry: TenantEntry) -> Response[None]:
        result, query, prefer, singular = await _read(request, entry, table, _query_string(request))
        full = _read_response(result, query, prefer, singular)
        return Response(None, status_code=full.status_code, headers=dict(full.headers))

    return await _credential_first(request, head_of)


@get(
    "/v1/db",
    tags=["data"],
    summary="The tenant tables: columns with their types, keys and relations",
)
async def list_tables(
    request: Request[Any, Any, Any], active_ctx: NamedDependency[OrgContext]
) -> dict[str, Any]:
    del active_ctx  # only members of an org see the schema
    data = DATA_SERVICE.of(request)
    return {"tables": [describe_table(t) for t in sorted(data.schema.tables.values(), key=_name)]}


def _name(table: Table) -> str:
    return table.name


def describe_table(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "primary_key": list(table.primary_key),
        "columns": [
            {
                "name": c.name,
                "type": c.type,
                "nullable": c.nullable,
                "has_default": c.has_default,
                "identity": c.identity != "",
                "generated": c.generated,
                "json": c.is_json,
                "array": c.is_array,
            }
            for c in table.columns.values()
        ],
        "foreign_keys": [
            {"columns": list(f.columns), "table": f.ref_table, "references": list(f.ref_columns)}
            for f in table.outgoing
        ],
    }


data_handlers: list[ControllerRouterHandler] = [
    list_tables,
    read_rows,
    insert_rows,
    update_rows,
    delete_rows,
    table_head,
]
