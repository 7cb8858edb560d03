"""Planning calls of functions of the `api` schema (PostgREST's /rpc/{name}).

A call runs on the tenant pool after the org is entered (one statement behind the context
CTE for a STABLE or IMMUTABLE function, a transaction whose first statement enters the org
for a VOLATILE one), so the function runs as ``orgbase_api`` with the caller's verified
context: row-level security applies to everything it reads and writes, and rows it changes
fire the same audit trigger (row events, realtime, webhooks) as writes through the data
API.

Arguments are bound as one JSON parameter and typed by ``json_to_record`` with the types
from the catalogs; the function's name comes from the schema cache, never the request.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from orgbase.core.errors import Invalid, NotFound
from orgbase.core.postgres import CONTEXT_PARAMS
from orgbase.services.postgres import statements
from orgbase.services.postgres.errors import MethodNotAllowed
from orgbase.services.postgres.functions import Function
from orgbase.services.postgres.plan import Bounds, ReadPlan, WritePlan
from orgbase.services.postgres.request import CallRequest
from orgbase.services.postgres.schema import Table
from orgbase.services.postgres.schema_cache import SchemaCache
from orgbase.services.postgres.sql import Builder, Params

_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def function_missing(name: str, given: list[str]) -> NotFound:
    shown = name if _PLAIN_NAME.match(name) else "?"
    return NotFound(
        f"Could not find the function api.{shown}({', '.join(sorted(given))}) in the schema cache",
        code="PGRST202",
        hint="functions of the api schema are called by their plain name, with their"
        " parameters' names",
    )


def resolve(
    schema: SchemaCache,
    name: str,
    args: Any,
    *,
    single_object: bool,
    is_get: bool,
) -> Function:
    """The function ``name`` whose parameters fit the given arguments: by their names, or
    the whole body for a function taking one json/jsonb argument."""
    given = sorted(args) if isinstance(args, dict) and not single_object else []
    if not _PLAIN_NAME.match(name):  # quotes, schema prefixes, anything else: never found
        raise function_missing(name, given)
    candidates = schema.functions.get(name, [])
    keys = set(given)
    chosen: Function | None = None
    whole_body = single_object or not isinstance(args, dict)
    for fn in candidates:
        if whole_body or fn.single_json_argument:
            if len(fn.arguments) == 1 and fn.arguments[0].is_json and not is_get:
                chosen = fn
                break
            continue
        names = {a.name for a in fn.arguments}
        if keys <= names and fn.required <= keys:
            chosen = fn
            break
    if chosen is None:
        if candidates and not isinstance(args, dict):
            raise Invalid(
                "the body must be a JSON object of the function's arguments", code="PGRST102"
            )
        raise function_missing(name, given)
    if is_get and not chosen.read_only:
        raise MethodNotAllowed(
            f"api.{name} is VOLATILE: call it with POST",
            hint="GET calls only STABLE or IMMUTABLE functions",
        )
    return chosen


def plan_call(
    tables: dict[str, Table], fn: Function, request: CallRequest, bounds: Bounds
) -> ReadPlan | WritePlan:
    """The call of ``fn`` (chosen by ``resolve``). A STABLE or IMMUTABLE function cannot
    change data (PostgreSQL refuses writes in it): one statement behind the context CTE,
    as a table read; a VOLATILE one (or any with tx=rollback): a transaction, as a write,
    where max-affected counts the rows it changed in every table. Its rows are capped
    and paged as a read's."""
    single = fn.read_only and not request.options.rollback
    builder = Builder(tables, Params(CONTEXT_PARAMS + 1 if single else 1))
    args = request.args
    whole = fn.single_json_argument or request.single_object or not isinstance(args, dict)
    table = fn.as_table(tables) if fn.columns is not None else None
    limit = request.query.page_size(bounds.rows)
    sql = statements.call(
        builder, fn, table, args, request.query, limit=limit, whole=whole, gated=single
    )
    if single:
        return ReadPlan(sql, tuple(builder.params.values))
    options = msgspec.structs.replace(request.options, count_changes=True)
    return WritePlan(sql, builder.params.values, True, None, bounds.timeout_ms, options)
