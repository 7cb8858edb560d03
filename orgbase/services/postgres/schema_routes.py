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
from orgbase.services.postgres.lint import lint
from orgbase.services.postgres.schema import describe_tables
from orgbase.services.postgres.service import DATA_SERVICE


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
        rows = await describe_tables(connection)
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
