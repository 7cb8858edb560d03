"""The data API in the OpenAPI document, table by table, as PostgREST describes it: each
tenant table's row schema and its `/v1/db/{name}` operations (select, order, limit,
offset, on_conflict, columns, one filter parameter per column, the Prefer, Range and
Accept headers), and each function of `api` at `/v1/db/rpc/{name}` with its arguments.
Rebuilt whenever the schema cache reloads.
"""

from __future__ import annotations

from typing import Any

from orgbase.core.csv_text import MEDIA_TYPE as CSV_MEDIA_TYPE
from orgbase.services.postgres.functions import Argument, Function
from orgbase.services.postgres.schema import Column, Table
from orgbase.services.postgres.schema_cache import SchemaCache

SINGULAR = "application/vnd.pgrst.object+json"
CSV = CSV_MEDIA_TYPE
ERROR_REF = {"$ref": "#/components/schemas/Error"}
CREDENTIALS: list[dict[str, list[str]]] = [{"bearer": []}, {"apikey": []}]
REPRESENTATION = "x-representation"
"""On a 201 without content: what ``Prefer: return=representation`` answers instead."""
TABLE_MARK = "x-orgbase-table"
"""Set on every generated operation (the API fuzzer covers their handlers through the
templated `/v1/db/{table}` operations)."""

_INTEGER = ("smallint", "integer", "bigint")
_NUMBER = ("numeric", "real", "double precision")
_FORMATS = {
    "uuid": "uuid",
    "date": "date",
    "timestamp with time zone": "date-time",
    "timestamp without time zone": "date-time",
}


def _scalar(type_: str) -> dict[str, Any]:
    base = type_.split("(", maxsplit=1)[0]
    if base in ("json", "jsonb"):
        return {}
    if base in _INTEGER:
        return {"type": "integer"}
    if base in _NUMBER:
        return {"type": "number"}
    if base == "boolean":
        return {"type": "boolean"}
    schema: dict[str, Any] = {"type": "string"}
    if base in _FORMATS:
        schema["format"] = _FORMATS[base]
    return schema


def column_schema(type_: str, nullable: bool = True) -> dict[str, Any]:
    """JSON Schema of a value as PostgreSQL's to_json writes it."""
    if type_.endswith("[]"):
        schema: dict[str, Any] = {"type": "array", "items": _scalar(type_[:-2])}
    else:
        schema = _scalar(type_)
    if nullable and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    schema["description"] = type_
    return schema


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _writable(table: Table) -> list[Column]:
    return [
        c
        for c in table.columns.values()
        if c.name != "org_id" and c.identity != "a" and not c.generated
    ]


def _row_schema(table: Table) -> dict[str, Any]:
    # Rows answered may have fewer or renamed columns (select=): nothing is required.
    return {
        "type": "object",
        "description": f"A row of api.{table.name}",
        "properties": {c.name: column_schema(c.type, c.nullable) for c in table.columns.values()},
    }


def _insert_schema(table: Table) -> dict[str, Any]:
    columns = _writable(table)
    return {
        "type": "object",
        "description": f"A new row of api.{table.name} (org_id is the server's)",
        "properties": {c.name: column_schema(c.type, c.nullable) for c in columns},
        "required": [
            c.name for c in columns if not c.nullable and not c.has_default and not c.identity
        ],
    }


def _patch_schema(table: Table) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"Columns of api.{table.name} to change",
        "properties": {c.name: column_schema(c.type, c.nullable) for c in _writable(table)},
    }


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _header(name: str, description: str, example: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
        "example": example,
    }


PREFER = _header(
    "Prefer",
    "return=representation|minimal, count=exact|planned|estimated, resolution=merge-duplicates|"
    "ignore-duplicates, missing=default, handling=strict|lenient, max-affected=N, tx=rollback,"
    " csv-formulas=escape (text cells starting =, +, -, @, tab or CR get a leading ')",
    "return=representation",
)
RANGE = _header("Range", "Rows to answer, e.g. 0-24 (answered with Content-Range)", "0-24")
ACCEPT = _header(
    "Accept",
    f"application/json (rows), {SINGULAR} (one object, else 406), {CSV} (reads)",
    "application/json",
)
SELECT = _query("select", "Columns, renames, casts, JSON paths and embeddings: id,title,owner(*)")
ORDER = _query("order", "col.asc|desc[.nullsfirst|nullslast],...")
LIMIT = _query("limit", "At most this many rows", {"type": "integer", "minimum": 0})
OFFSET = _query("offset", "Skip this many rows", {"type": "integer", "minimum": 0})
CONTENT_RANGE = {
    "Content-Range": {
        "description": "first-last/total (total is * unless Prefer: count)",
        "schema": {"type": "string"},
    }
}


def _errors() -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": ERROR_REF}}}
    return {
        "401": {"description": "No valid credentials", **error},
        "default": {"description": "An error (PostgREST's codes and SQLSTATEs)", **error},
    }


def _rows_content(ref: dict[str, Any], csv: bool) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": {"type": "array", "items": ref}},
        SINGULAR: {"schema": ref},
    }
    if csv:
        content[CSV] = {"schema": {"type": "string"}}
    return content


def _filters(table: Table) -> list[dict[str, Any]]:
    filters = [
        _query(c.name, f"Filter on {c.name}: [not.]op.value, e.g. eq.5, in.(1,2), is.null")
        for c in table.columns.values()
        if c.name not in ("select", "order", "limit", "offset", "or", "and", "columns")
    ]
    filters.append(_query("or", "Alternatives: (a.eq.1,b.gt.2)"))
    filters.append(_query("and", "All of: (a.eq.1,b.gt.2)"))
    return filters


def _operation(op_id: str, summary: str, **parts: Any) -> dict[str, Any]:
    operation = {
        "operationId": op_id,
        "summary": summary,
        "tags": ["data"],
        "security": CREDENTIALS,
        TABLE_MARK: True,
    }
    operation.update(parts)
    operation["responses"] = {**parts.get("responses", {}), **_errors()}
    return operation


def _read_operations(
    table: Table, row: str, filters: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """GET and HEAD of /v1/db/{name}. One answer per media type, each typed, so a
    generated client narrows a read by the Accept it sends (openapi-fetch:
    ``createClient<paths, "application/json">()`` reads rows as ``Row[]``)."""
    read_params = [SELECT, ORDER, LIMIT, OFFSET, *filters, PREFER, RANGE, ACCEPT]
    content = _rows_content({"$ref": f"#/components/schemas/{row}"}, csv=True)
    variants = (
        f"by the Accept header: a JSON array of {row} (application/json, the default), one"
        f" {row} ({SINGULAR}; 406 unless exactly one row), or CSV text (text/csv)"
    )
    get = _operation(
        f"{table.name}_select",
        f"Read rows of api.{table.name}",
        parameters=read_params,
        responses={
            "200": {
                "description": f"The rows, {variants}",
                "headers": CONTENT_RANGE,
                "content": content,
            },
            "206": {
                "description": f"A partial page of the rows, {variants}",
                "headers": CONTENT_RANGE,
                "content": content,
            },
        },
    )
    head = _operation(
        f"{table.name}_head",
        f"Like GET of api.{table.name}, without a body (counts in Content-Range)",
        parameters=read_params,
        responses={
            "200": {"description": "No body", "headers": CONTENT_RANGE},
            "206": {"description": "No body (a partial page)", "headers": CONTENT_RANGE},
        },
    )
    return get, head


def table_path(table: Table) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the path item of /v1/db/{name}, its component schemas)."""
    name = _camel(table.name)
    row, insert, patch = f"{name}Row", f"{name}Insert", f"{name}Patch"
    ref = {"$ref": f"#/components/schemas/{row}"}
    filters = _filters(table)
    get, head = _read_operations(table, row, filters)
    rows = {"content": _rows_content(ref, csv=False)}
    item = {
        "get": get,
        "head": head,
        "post": _insert_operation(table, row, insert, rows),
        **_change_operations(table, patch, rows, filters),
    }
    components = {
        row: _row_schema(table),
        insert: _insert_schema(table),
        patch: _patch_schema(table),
    }
    return item, components


def _insert_operation(table: Table, row: str, insert: str, rows: dict[str, Any]) -> dict[str, Any]:
    one = {"$ref": f"#/components/schemas/{insert}"}
    return _operation(
        f"{table.name}_insert",
        f"Insert rows into api.{table.name} (upsert with Prefer: resolution=...)",
        parameters=[
            SELECT,
            _query("on_conflict", "Columns of the unique key an upsert uses"),
            _query("columns", "Only these keys of the body are inserted"),
            PREFER,
            ACCEPT,
        ],
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [one, {"type": "array", "items": one}]}}
            },
        },
        responses={
            # As PostgREST's document: no content. The default (return=minimal) answers
            # no body and no Content-Type; a generator that saw a JSON body here would
            # parse the empty answer and fail. The representation is named beside it.
            "201": {
                "description": "Inserted. No body (Prefer: return=minimal, the default); with"
                f" Prefer: return=representation, a JSON array of {row} (see"
                f" {REPRESENTATION})",
                REPRESENTATION: rows["content"],
            },
        },
    )


def _change_operations(
    table: Table, patch: str, rows: dict[str, Any], filters: list[dict[str, Any]]
) -> dict[str, Any]:
    """PATCH and DELETE of /v1/db/{name}."""
    changed = {
        "200": {"description": "The changed rows (Prefer: return=representation)", **rows},
        "204": {"description": "Done (Prefer: return=minimal)"},
    }
    patch_op = _operation(
        f"{table.name}_update",
        f"Update the rows of api.{table.name} the filters match (a filter is required)",
        parameters=[SELECT, *filters, PREFER, ACCEPT],
        requestBody={
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{patch}"}}},
        },
        responses=changed,
    )
    delete = _operation(
        f"{table.name}_delete",
        f"Delete the rows of api.{table.name} the filters match (a filter is required)",
        parameters=[SELECT, *filters, PREFER, ACCEPT],
        responses=changed,
    )
    return {"patch": patch_op, "delete": delete}


def _argument_schema(argument: Argument) -> dict[str, Any]:
    return column_schema(argument.type, nullable=argument.has_default)


def function_path(fn: Function, tables: dict[str, Table]) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"{_camel(fn.name)}Args"
    body: dict[str, Any] = {
        "type": "object",
        "description": f"The arguments of api.{fn.name}",
        "properties": {a.name: _argument_schema(a) for a in fn.arguments if a.name},
        "required": sorted(fn.required - {""}),
    }
    if fn.single_json_argument:
        body = {"description": f"The single JSON argument of api.{fn.name}"}
    answer = _answer(fn, tables)
    filters = []
    if fn.columns is not None and fn.returns_set:
        filters = [SELECT, ORDER, LIMIT, OFFSET, *_filters(fn.as_table(tables))]
    item: dict[str, Any] = {
        "post": _operation(
            f"rpc_{fn.name}",
            f"Call api.{fn.name} ({'read-only' if fn.read_only else 'VOLATILE: POST only'})",
            parameters=[*filters, PREFER],
            requestBody={
                "required": bool(fn.required - {""}),
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                },
            },
            responses=answer,
        )
    }
    if fn.read_only and not fn.single_json_argument:
        arguments = [
            {**_query(a.name, f"Argument {a.name} ({a.type})"), "required": not a.has_default}
            for a in fn.arguments
        ]
        item["get"] = _operation(
            f"rpc_{fn.name}_get",
            f"Call api.{fn.name} with arguments in the query string",
            parameters=[*arguments, *filters],
            responses=answer,
        )
    return item, {name: body}


def _answer(fn: Function, tables: dict[str, Table]) -> dict[str, Any]:
    """The responses of a call: its result's schema (204 for void)."""
    if fn.returns == "void":
        return {"204": {"description": "Done"}}
    if fn.columns is not None:
        row = {
            "type": "object",
            "properties": {
                c.name: column_schema(c.type) for c in fn.as_table(tables).columns.values()
            },
        }
        result: dict[str, Any] = row if not fn.returns_set else {"type": "array", "items": row}
    else:
        scalar = column_schema(fn.returns)
        result = {"type": "array", "items": scalar} if fn.returns_set else scalar
    return {
        "200": {
            "description": f"The result ({fn.returns})",
            "content": {"application/json": {"schema": result}},
        }
    }


def data_paths(schema: SchemaCache) -> tuple[dict[str, Any], dict[str, Any]]:
    """Paths and component schemas for every tenant table and served function."""
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for table in sorted(schema.tables.values(), key=lambda t: t.name):
        item, schemas = table_path(table)
        paths[f"/v1/db/{table.name}"] = item
        components.update(schemas)
    for name in sorted(schema.functions):
        overloads = schema.functions[name]
        # Overloads share one path: the document shows the first (by oid).
        item, schemas = function_path(overloads[0], schema.tables)
        paths[f"/v1/db/rpc/{name}"] = item
        components.update(schemas)
    return paths, components
