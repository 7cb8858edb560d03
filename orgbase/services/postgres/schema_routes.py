"""`GET /v1/db-schema`: the operator's schema for the studio's schema page (org admins):
every table of `api` with its columns, policies and indexes, the served functions, and
the policy linter's findings. Read from the catalogs on the platform pool."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.types import ControllerRouterHandler

from orgbase.core.context import OrgContext
from orgbase.core.rbac import require
from orgbase.services.postgres.lint import SCHEMA, lint
from orgbase.services.postgres.service import DATA_SERVICE

_TABLES = """
SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       tt.policy AS preset,
       (SELECT coalesce(json_agg(json_build_object(
            'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
            'nullable', NOT a.attnotnull,
            'default', pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]')
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::text AS columns,
       (SELECT coalesce(json_agg(json_build_object(
            'name', p.polname,
            'command', CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
            'roles', (SELECT coalesce(array_agg(CASE WHEN r = 0 THEN 'public'
                ELSE pg_get_userbyid(r)::text END), '{}') FROM unnest(p.polroles) r),
            'using', pg_get_expr(p.polqual, p.polrelid),
            'check', pg_get_expr(p.polwithcheck, p.polrelid)) ORDER BY p.polname), '[]')
        FROM pg_policy p WHERE p.polrelid = c.oid)::text AS policies,
       (SELECT coalesce(json_agg(json_build_object(
            'name', i.relname, 'definition', pg_get_indexdef(x.indexrelid)) ORDER BY i.relname),
            '[]')
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = c.oid)::text AS indexes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN orgbase.tenant_tables tt ON tt.schema_name = n.nspname AND tt.table_name = c.relname
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


@get(
    "/v1/db-schema",
    tags=["data"],
    summary="Org admins: the api schema's tables, columns, policies, indexes, functions and"
    " the policy linter's findings",
)
async def read_schema(
    request: Request[Any, Any, Any], active_ctx: NamedDependency[OrgContext]
) -> dict[str, Any]:
    require(active_ctx, "admin", "reading the schema")
    data = DATA_SERVICE.of(request)
    async with data.db.system_connection() as connection:
        rows = await connection.fetch(_TABLES, SCHEMA)
        findings = await lint(connection)
    tables = [
        {
            "name": r["name"],
            "preset": r["preset"],
            "rls": r["rls"],
            "forced": r["forced"],
            "served": r["name"] in data.schema.tables,
            "columns": msgspec.json.decode(r["columns"]),
            "policies": msgspec.json.decode(r["policies"]),
            "indexes": msgspec.json.decode(r["indexes"]),
        }
        for r in rows
    ]
    functions = [
        {
            "name": fn.name,
            "arguments": [
                {"name": a.name, "type": a.type, "required": not a.has_default}
                for a in fn.arguments
            ],
            "returns": ("SETOF " if fn.returns_set else "") + fn.returns,
            "volatility": {"i": "IMMUTABLE", "s": "STABLE"}.get(fn.volatility, "VOLATILE"),
            "get": fn.read_only,
        }
        for name in sorted(data.schema.functions)
        for fn in data.schema.functions[name]
    ]
    return {"tables": tables, "functions": functions, "lint": [f.as_dict() for f in findings]}


schema_handlers: list[ControllerRouterHandler] = [read_schema]
