"""``/functions/v1/{name}``: the operator's functions, invoked as Supabase serves Edge
Functions (supabase-js and supabase-py ``functions.invoke`` unchanged), for GET, POST, PUT,
PATCH and DELETE; a path below the name reaches the function as ``request.path``."""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, Request, route
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response.base import ASGIResponse
from litestar.types import ControllerRouterHandler

from orgbase.core.callers import CallerSource
from orgbase.core.errors import NotFound
from orgbase.functions.service import FunctionService

PREFIX = "/functions/v1"
METHODS = [HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]
# Set by the gateway (or the transport), never by a function: a function cannot fake
# Supabase's relay error, reuse orgbase's cookies, or break the framing.
_REFUSED_HEADERS = frozenset(
    {"connection", "content-length", "keep-alive", "transfer-encoding", "upgrade"}
    | {"x-request-id", "x-relay-error", "server", "date"}
)


def _kept(headers: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str | None]:
    kept: list[tuple[str, str]] = []
    media_type = None
    for key, value in headers:
        lower = key.lower()
        if lower in _REFUSED_HEADERS or "\n" in value or "\r" in value:
            continue
        if lower == "set-cookie" and value.lstrip().lower().startswith("orgbase"):
            continue
        if lower == "content-type":
            media_type = value
            continue
        kept.append((lower, value))
    return kept, media_type


async def _invoke(
    request: Request[Any, Any, Any],
    functions: FunctionService | None,
    callers: CallerSource,
    name: str,
    path: str,
) -> ASGIResponse:
    if functions is None:
        raise NotFound("functions are turned off on this server", code="function_not_found")
    done = await functions.call_http(request, callers, name, path)
    headers, media_type = _kept(done.headers)
    # A list of pairs: repeated headers (several set-cookie) stay repeated.
    return ASGIResponse(
        body=done.body, status_code=done.status, headers=headers, media_type=media_type
    )


@route(
    f"{PREFIX}/{{name:str}}", http_method=METHODS, summary="Invoke a function", tags=["functions"]
)
async def invoke_function(
    request: Request[Any, Any, Any],
    functions: NamedDependency[FunctionService | None],
    callers: NamedDependency[CallerSource],
    name: FromPath[str],
) -> ASGIResponse:
    return await _invoke(request, functions, callers, name, "/")


@route(
    f"{PREFIX}/{{name:str}}/{{rest:path}}",
    http_method=METHODS,
    summary="Invoke a function (a path below it)",
    tags=["functions"],
)
async def invoke_function_path(
    request: Request[Any, Any, Any],
    functions: NamedDependency[FunctionService | None],
    callers: NamedDependency[CallerSource],
    name: FromPath[str],
    rest: FromPath[str],
) -> ASGIResponse:
    return await _invoke(request, functions, callers, name, rest)


function_handlers: list[ControllerRouterHandler] = [invoke_function, invoke_function_path]
