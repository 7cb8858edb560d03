"""`/v1/db/{table}`: the PostgREST-compatible data API's routes. Each handler runs the
stages in order (service.py names them): it parses the request (request.py), has the
service plan and execute it, and renders the result (render.py).

The handlers read the raw query string (PostgREST repeats keys: ``id=gt.1&id=lt.9``) and
the Prefer, Range, Accept and Content-Type headers themselves, and skip dependency
injection: this is the hot path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from litestar import Request, Response, delete, get, head, patch, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from orgbase.core.context import OrgContext
from orgbase.core.errors import OrgbaseError, TimedOut, Unauthorized, Unavailable
from orgbase.core.postgres import TenantEntry
from orgbase.services.postgres import render
from orgbase.services.postgres.grammar import Query
from orgbase.services.postgres.request import (
    Delete,
    Insert,
    Prefer,
    Shape,
    Update,
    WriteRequest,
    negotiate,
    parse_body,
    parse_changes,
    parse_filters,
    parse_prefer,
    parse_rows,
    require_json,
    write_options,
)
from orgbase.services.postgres.result import Result
from orgbase.services.postgres.schema import Table
from orgbase.services.postgres.service import DATA_SERVICE, DataService

T = TypeVar("T")
AnyRequest = Request[Any, Any, Any]

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
TAGS = ["data"]


def data_route(
    kind: Callable[..., HTTPRouteHandler],
    path: str,
    summary: str,
    *,
    opt: dict[str, Any] | None = None,
    **options: Any,
) -> HTTPRouteHandler:
    """A route of the data API that takes a credential (the handler reads it itself, so
    ``opt`` tells the OpenAPI document; the handler's body is described there too)."""
    return kind(
        path, tags=TAGS, summary=summary, opt={**WITH_CREDENTIALS, **(opt or {})}, **options
    )


def query_string(request: AnyRequest) -> str:
    return str(request.scope["query_string"].decode("latin-1"))


def prefer_of(request: AnyRequest, data: DataService) -> Prefer:
    allow = data.allow_tx_rollback
    return parse_prefer(request.headers.getall("prefer", []), allow_rollback=allow)


def accept(request: AnyRequest, *, csv: bool = False) -> Shape:
    return negotiate(request.headers.get("accept", ""), csv=csv)


def json_content(request: AnyRequest) -> None:
    """The body is JSON, by its Content-Type (none said: JSON)."""
    require_json(request.headers.get("content-type", "application/json"))


# Refusals that say nothing about the request itself: the credential's own (already
# first), or a service down.
_NOT_THE_REQUESTS_FAULT = (Unauthorized, Unavailable, TimedOut)


async def credential_first(
    request: AnyRequest, data: DataService, work: Callable[[TenantEntry], Awaitable[T]]
) -> T:
    """Run ``work`` with the request's entry, from the request-auth component the service
    was given. Its credential is checked by PostgreSQL in the statement; a request refused
    before any statement ran has it checked here, so a dead credential hears that first
    (401), not something about its request."""
    access = await data.access.data_access(request)
    try:
        return await work(access.entry)
    except OrgbaseError as refused:
        if not isinstance(refused, _NOT_THE_REQUESTS_FAULT):
            await access.confirm()
        raise


async def _read(
    request: AnyRequest, data: DataService, entry: TenantEntry, table: str
) -> Response[bytes]:
    # The query string, the Range header and Prefer's count make the statement (the other
    # preferences and Accept shape only the response): a repeated read is parsed and
    # planned once.
    range_header = request.headers.get("range", "")
    prefer = prefer_of(request, data)
    described = data.parse_read(table, query_string(request), range_header, prefer.count)
    plan = data.plan_read(entry, described)
    shape = accept(request, csv=True)
    result = await data.read(entry, plan)
    return render.read(result, described.query.offset, prefer, shape)


async def _json_body(request: AnyRequest) -> Any:
    json_content(request)
    return parse_body(await request.body())


def _writing(request: AnyRequest, data: DataService) -> tuple[Query, Prefer, Shape]:
    return parse_filters(query_string(request)), prefer_of(request, data), accept(request)


async def _write(
    data: DataService,
    entry: TenantEntry,
    table: str,
    change: Insert | Update | Delete,
    *,
    query: Query,
    prefer: Prefer,
) -> Result:
    returning = prefer.returning == "representation"
    described = WriteRequest(table, query, change, returning, write_options(prefer))
    return await data.write(entry, data.plan_write(entry, described))


@data_route(
    get,
    TABLE,
    "Read rows: select, filters, order, limit/offset, Range, Prefer: count",
    responses={200: ROWS, 206: ROWS},
)
async def read_rows(request: AnyRequest, table: FromPath[str]) -> Response[bytes]:
    data = DATA_SERVICE.of(request)
    return await credential_first(request, data, lambda entry: _read(request, data, entry, table))


@data_route(
    post,
    TABLE,
    "Insert rows (upsert with Prefer: resolution=...)",
    responses={201: INSERTED},
    opt={"request_body": ROW_BODY},
)
async def insert_rows(request: AnyRequest, table: FromPath[str]) -> Response[bytes]:
    data = DATA_SERVICE.of(request)

    async def insert(entry: TenantEntry) -> Response[bytes]:
        payload = await _json_body(request)
        query, prefer, shape = _writing(request, data)
        change = Insert(parse_rows(payload), prefer.resolution, prefer.missing_default)
        result = await _write(data, entry, table, change, query=query, prefer=prefer)
        return render.written(result, prefer, shape, created=True)

    return await credential_first(request, data, insert)


@data_route(
    patch,
    TABLE,
    "Update the rows the filters match (a filter is required)",
    responses={200: ROWS, 204: NO_CONTENT},
    opt={"request_body": CHANGES_BODY},
)
async def update_rows(request: AnyRequest, table: FromPath[str]) -> Response[bytes]:
    data = DATA_SERVICE.of(request)

    async def update(entry: TenantEntry) -> Response[bytes]:
        values = parse_changes(await _json_body(request))
        query, prefer, shape = _writing(request, data)
        result = await _write(data, entry, table, Update(values), query=query, prefer=prefer)
        return render.written(result, prefer, shape)

    return await credential_first(request, data, update)


@data_route(
    delete,
    TABLE,
    "Delete the rows the filters match (a filter is required)",
    status_code=200,
    responses={200: ROWS, 204: NO_CONTENT},
)
async def delete_rows(request: AnyRequest, table: FromPath[str]) -> Response[bytes]:
    data = DATA_SERVICE.of(request)

    async def remove(entry: TenantEntry) -> Response[bytes]:
        query, prefer, shape = _writing(request, data)
        result = await _write(data, entry, table, Delete(), query=query, prefer=prefer)
        return render.written(result, prefer, shape)

    return await credential_first(request, data, remove)


@data_route(head, TABLE, "Like GET, without the body (counts)")
async def table_head(request: AnyRequest, table: FromPath[str]) -> Response[None]:
    data = DATA_SERVICE.of(request)

    async def head_of(entry: TenantEntry) -> Response[None]:
        full = await _read(request, data, entry, table)
        return Response(None, status_code=full.status_code, headers=dict(full.headers))

    return await credential_first(request, data, head_of)


@get(
    "/v1/db",
    tags=TAGS,
    summary="The tenant tables: columns with their types, keys and relations",
)
async def list_tables(
    request: AnyRequest, active_ctx: NamedDependency[OrgContext]
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
