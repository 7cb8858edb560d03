"""Calling functions of the `api` schema (PostgREST's /rpc/{name}).

The call runs on the tenant pool in a transaction whose first statement enters the org, so
the function runs as ``orgbase_api`` with the caller's verified context: row-level
security applies to everything it reads and writes, and rows it changes fire the same
audit trigger (row events, realtime, webhooks) as writes through the data API.

Arguments are bound as one JSON parameter and typed by ``json_to_record`` with the types
from the catalogs; the function's name comes from the schema cache, never the request.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from orgbase.core.errors import Invalid, NotFound
from orgbase.services.postgres.errors import MethodNotAllowed
from orgbase.services.postgres.functions import Function
from orgbase.services.postgres.grammar import Query
from orgbase.services.postgres.schema import quote_ident
from orgbase.services.postgres.schema_cache import SchemaCache
from orgbase.services.postgres.sql import Builder, Params, json_result

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


def build_call(
    schema: SchemaCache,
    fn: Function,
    args: Any,
    query: Query,
    max_rows: int,
    *,
    single_object: bool = False,
    first_param: int = 1,
    gated: bool = False,
) -> tuple[str, list[Any]]:
    """A statement answering (body, n): the result as JSON text and its row count.

    ``gated``: the statement follows the context CTE of a single-statement read (its
    parameters then start after the entry's): the arguments' row exists only once the
    context is entered, in a subquery the planner cannot flatten, and the function is
    called lateral to it, so it never runs before the org is entered.
    """
    builder = Builder(schema.tables, Params(first_param))
    payload = builder.params.add(msgspec.json.encode(args).decode())
    gate = " WHERE ctx.role IS NOT NULL OFFSET 0" if gated else ""
    if fn.single_json_argument or single_object or not isinstance(args, dict):
        cast = fn.arguments[0].type
        source = f"(SELECT 1{gate}) _a CROSS JOIN LATERAL {fn.qualified}({payload}::{cast})"
    else:
        given = [a for a in fn.arguments if a.name in args]
        if given:
            record = ", ".join(f"{quote_ident(a.name)} {a.type}" for a in given)
            call = ", ".join(f"{quote_ident(a.name)} => _a.{quote_ident(a.name)}" for a in given)
            source = (  # names and types from the catalogs, values bound
                f"(SELECT * FROM json_to_record({payload}::json) AS _r({record}){gate}) _a"  # noqa: S608
                f" CROSS JOIN LATERAL {fn.qualified}({call})"
            )
        else:
            source = f"(SELECT {payload}::text{gate}) _a CROSS JOIN LATERAL {fn.qualified}()"
    if fn.columns is None:
        if fn.returns == "void":
            sql = f"SELECT NULL::text AS body, 0 AS n FROM {source} AS t"  # noqa: S608
            return sql, builder.params.values
        if fn.returns_set:
            # A set of scalars is capped and paged as rows are (the org's rows per
            # response), though it has no columns to filter.
            limit = builder.params.add(query.page_size(max_rows))
            offset = builder.params.add(query.offset)
            sql = (
                "SELECT coalesce(json_agg(t.v), '[]')::text AS body, count(*) AS n"  # noqa: S608
                f" FROM (SELECT t.v FROM {source} AS t(v) LIMIT {limit} OFFSET {offset}) AS t"
            )
            return sql, builder.params.values
        sql = f"SELECT to_json(t.v)::text AS body, 1 AS n FROM {source} AS t(v)"  # noqa: S608
        return sql, builder.params.values
    table = fn.as_table(schema.tables)
    select = builder.select_list(table, "t", query.select)
    conditions = ["true", *builder.filters(table, "t", query.filters)]
    conditions += builder.inner_joins(table, "t", query.select)
    order = builder.order(table, "t", query.order)
    limit = builder.params.add(query.page_size(max_rows))
    offset = builder.params.add(query.offset)
    page = (
        f"{source} AS t WHERE {' AND '.join(conditions)}"
        f"{' ORDER BY ' + order if order else ''} LIMIT {limit} OFFSET {offset}"
    )
    return json_result(page, select), builder.params.values
