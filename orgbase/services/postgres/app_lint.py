"""The policy linter's rules for a Supabase app's tables (schema ``public``): what isolates
their rows. A table whose own policies name the caller (``auth.uid()``) but has no org is
per-user on purpose, Supabase's way: a warning says so, since a user's rows then follow the
user into every org. A table with row-level security off is not served; one whose policies
name neither the caller nor the org is shared by every org's users: an error."""

from __future__ import annotations

import asyncpg

from orgbase.core.postgres import Connection
from orgbase.services.postgres.lint_findings import Finding

APP_SCHEMA = "public"

_APP_TABLES = """
SELECT c.relname AS name, c.relrowsecurity AS rls, tt.policy AS preset,
       coalesce(string_agg(coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' '
                || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''), ' '), '') AS exprs,
       coalesce(array_agg(p.polname ORDER BY p.polname) FILTER (WHERE p.polname IS NOT NULL),
                '{}') AS policies
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN orgbase.tenant_tables tt ON tt.schema_name = n.nspname AND tt.table_name = c.relname
LEFT JOIN pg_policy p ON p.polrelid = c.oid
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
GROUP BY c.relname, c.relrowsecurity, tt.policy
ORDER BY c.relname
"""
_CALLER = ("auth.uid()", "auth.jwt()", "auth.email()")


async def app_table_findings(
    connection: Connection | asyncpg.Connection[asyncpg.Record],
) -> list[Finding]:
    """The tables' findings (their policies are checked with api's, by ``lint``)."""
    findings: list[Finding] = []
    for t in await connection.fetch(_APP_TABLES, APP_SCHEMA):
        findings += _table(t)
    return findings


def _table(t: asyncpg.Record) -> list[Finding]:
    name = f"{APP_SCHEMA}.{t['name']}"
    if not t["rls"]:
        return [
            Finding(
                "app_table_without_rls",
                "warning",
                name,
                "row-level security is off: the data API does not serve the table",
                f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY; (then add its policies)",
            )
        ]
    if t["preset"] is not None:
        return []
    if any(call in t["exprs"] for call in _CALLER):
        return [
            Finding(
                "per_user_table",
                "warning",
                name,
                "per-user table without org isolation: its own policies (auth.uid()) keep"
                " users apart, and a user's rows are the same in every org of theirs",
                f"left per-user on purpose, nothing to do; else SELECT"
                f" orgbase.enable_tenancy('{name}');",
            )
        ]
    return [
        Finding(
            "app_table_not_isolated",
            "error",
            name,
            "no policy names the caller (auth.uid()) and the table has no org: every"
            " org's users reach the same rows",
            f"SELECT orgbase.enable_tenancy('{name}'); or policies on auth.uid()",
        )
    ]
