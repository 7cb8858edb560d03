"""`/v1/db/rpc/{fn}`: functions of the `api` schema, with PostgREST's grammar.

POST takes the arguments as a JSON object (or, for a function with one unnamed json/jsonb
parameter or with ``Prefer: params=single-object``, the whole body as that argument);
GET takes them from the query string and calls only STABLE or IMMUTABLE functions.
Other query parameters (select, filters, order, limit, offset) shape a set-returning
function's rows as they shape a table's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from orgbase.core.errors import Invalid
from orgbase.core.postgres import TenantEntry
from orgbase.services.postgres import render
from orgbase.services.postgres.grammar import RESERVED, parse_query
from orgbase.services.postgres.request import CallRequest, parse_body, write_options
from orgbase.services.postgres.routes import (
    accept,
    credential_first,
    data_route,
    json_content,
    prefer_of,
    query_string,
)
from orgbase.services.postgres.rpc import resolve
from orgbase.services.postgres.service import DATA_SERVICE

RPC = "/v1/db/rpc/{fn:str}"


async def _call(
    request: Request[Any, Any, Any], fn_name: str, args: Any, filter_pairs: list[tuple[str, str]]
) -> Response[bytes]:
    is_get = request.method == "GET"
    data = DATA_SERVICE.of(request)

    async def run(entry: TenantEntry) -> Response[bytes]:
        prefer = prefer_of(request, data)
        fn = resolve(data.schema, fn_name, args, single_object=prefer.single_object, is_get=is_get)
        query = parse_query(filter_pairs)
        shape = accept(request, csv=True)
        described = CallRequest(args, query, prefer.single_object, write_options(prefer))
        result = await data.call(entry, data.plan_call(entry, fn, described))
        return render.called(fn, result, prefer, shape, query.offset)

    return await credential_first(request, data, run)


@data_route(
    post,
    RPC,
    "Call a function of the api schema (arguments as a JSON object)",
    status_code=200,
    opt={
        "request_body": {"type": "object", "description": "The function's arguments by name"},
        "request_body_optional": True,
    },
)
async def call_function(request: Request[Any, Any, Any], fn: FromPath[str]) -> Response[bytes]:
    raw = await request.body()
    if raw.strip():
        json_content(request)
        args = parse_body(raw)
    else:
        args = {}
    pairs = parse_qsl(query_string(request), keep_blank_values=True)
    return await _call(request, fn, args, pairs)


@data_route(get, RPC, "Call a STABLE or IMMUTABLE function (arguments in the query string)")
async def call_function_get(request: Request[Any, Any, Any], fn: FromPath[str]) -> Response[bytes]:
    data = DATA_SERVICE.of(request)
    names = {a.name for f in data.schema.functions.get(fn, []) for a in f.arguments}
    args: dict[str, str] = {}
    filters: list[tuple[str, str]] = []
    for key, value in parse_qsl(query_string(request), keep_blank_values=True):
        if key in names and key not in RESERVED:
            if key in args:
                raise Invalid(f"argument {key} given twice", code="PGRST100")
            args[key] = value
        else:
            filters.append((key, value))
    return await _call(request, fn, args, filters)


rpc_handlers: list[ControllerRouterHandler] = [call_function, call_function_get]
