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
from orgbase.core.postgres import CONTEXT_PARAMS, TenantEntry
from orgbase.services.postgres.functions import Function
from orgbase.services.postgres.grammar import RESERVED, parse_query
from orgbase.services.postgres.result import Result
from orgbase.services.postgres.routes import (
    WITH_CREDENTIALS,
    Prefer,
    _body,
    _credential_first,
    _options,
    _prefer,
    _query_string,
    _require_json,
    _respond,
    _wants_singular,
)
from orgbase.services.postgres.rpc import build_call, resolve
from orgbase.services.postgres.service import DATA_SERVICE

RPC = "/v1/db/rpc/{fn:str}"
_JSON = "application/json; charset=utf-8"


def _answer(
    fn: Function, result: Result, prefer: Prefer, singular: bool | str, offset: int
) -> Response[bytes]:
    last = offset + result.rows - 1
    page = {"Content-Range": f"{offset}-{last}/*" if result.rows else "*/*"}
    if fn.columns is not None and (fn.returns_set or singular):
        # Rows: shaped, paged and rendered (JSON, one object or CSV) as a table's.
        return _respond(result, 200, prefer, singular, page)
    headers = {"Preference-Applied": ", ".join(prefer.applied)} if prefer.applied else {}
    if fn.returns_set:
        headers |= page  # a set of scalars: paged too
    if fn.columns is None:
        if fn.returns == "void":
            return Response(b"", status_code=204, headers=headers)
        return Response((result.body or "null").encode(), media_type=_JSON, headers=headers)
    # One composite value: an object, as PostgREST answers it.
    body = result.body or "[]"
    single = body[1:-1] if result.rows == 1 else "null"
    return Response(single.encode(), media_type=_JSON, headers=headers)


async def _call(
    request: Request[Any, Any, Any], fn_name: str, args: Any, filter_pairs: list[tuple[str, str]]
) -> Response[bytes]:
    is_get = request.method == "GET"

    async def run(entry: TenantEntry) -> Response[bytes]:
        data = DATA_SERVICE.of(request)
        prefer = _prefer(request)
        fn = resolve(data.schema, fn_name, args, single_object=prefer.single_object, is_get=is_get)
        query = parse_query(filter_pairs)
        singular = _wants_singular(request, csv=True)
        # A STABLE or IMMUTABLE function cannot change data (PostgreSQL refuses writes in
        # it): one statement, as a table read; a VOLATILE one: a transaction, as a write.
        single = fn.read_only and not prefer.rollback
        sql, values = build_call(
            data.schema,
            fn,
            args,
            query,
            data.row_limit(entry),
            single_object=prefer.single_object,
            first_param=CONTEXT_PARAMS + 1 if single else 1,
            gated=single,
        )
        if single:
            result = await data.call_read(entry, sql, values)
        else:
            result = await data.call(entry, sql, values, _options(prefer))
        return _answer(fn, result, prefer, singular, query.offset)

    return await _credential_first(request, run)


@post(
    RPC,
    tags=["data"],
    summary="Call a function of the api schema (arguments as a JSON object)",
    status_code=200,
    opt={
        **WITH_CREDENTIALS,
        "request_body": {"type": "object", "description": "The function's arguments by name"},
        "request_body_optional": True,
    },
)
async def call_function(request: Request[Any, Any, Any], fn: FromPath[str]) -> Response[bytes]:
    raw = await request.body()
    if raw.strip():
        _require_json(request)
        args = _body(raw)
    else:
        args = {}
    pairs = parse_qsl(_query_string(request), keep_blank_values=True)
    return await _call(request, fn, args, pairs)


@get(
    RPC,
    tags=["data"],
    summary="Call a STABLE or IMMUTABLE function (arguments in the query string)",
    opt=WITH_CREDENTIALS,
)
async def call_function_get(request: Request[Any, Any, Any], fn: FromPath[str]) -> Response[bytes]:
    data = DATA_SERVICE.of(request)
    names = {a.name for f in data.schema.functions.get(fn, []) for a in f.arguments}
    args: dict[str, str] = {}
    filters: list[tuple[str, str]] = []
    for key, value in parse_qsl(_query_string(request), keep_blank_values=True):
        if key in names and key not in RESERVED:
            if key in args:
                raise Invalid(f"argument {key} given twice", code="PGRST100")
            args[key] = value
        else:
            filters.append((key, value))
    return await _call(request, fn, args, filters)


rpc_handlers: list[ControllerRouterHandler] = [call_function, call_function_get]
