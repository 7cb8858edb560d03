"""The policy linter (``orgbase lint``, and the studio's schema page): checks the `api`
schema for the mistakes that break tenant isolation or make it slow.

Each rule is one catalog query; a finding names its rule, level (``error`` fails the
command), the object and a remedy. Supabase's splinter lints the same catalogs; the rules
here are orgbase's (its context functions, its org column, its tenant role).
"""

from __future__ import annotations

import re

import asyncpg
import msgspec

from orgbase.core.postgres import Connection
from orgbase.services.postgres.app_lint import APP_SCHEMA, app_table_findings
from orgbase.services.postgres.lint_findings import Finding, Level

__all__ = ["Finding", "Level", "lint", "render", "unwrapped_context_calls"]

SCHEMA = "api"


_TABLES = """
SELECT c.oid, c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id'
               AND NOT a.attisdropped) AS has_org,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
               ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
               WHERE i.indrelid = c.oid AND a.attname = 'org_id') AS org_index,
       EXISTS (SELECT 1 FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) x
               WHERE x.grantee = 0) AS public_grant,
       tt.policy AS preset
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN orgbase.tenant_tables tt ON tt.schema_name = n.nspname AND tt.table_name = c.relname
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""
_POLICIES = """
SELECT n.nspname AS schema_name, c.relname AS table_name, p.polname AS name,
       coalesce(pg_get_expr(p.polqual, p.polrelid), '') AS using_expr,
       coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '') AS check_expr
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[])
ORDER BY n.nspname, c.relname, p.polname
"""
_FOREIGN_KEYS = """
SELECT con.conname AS name, c.relname AS table_name, rc.relname AS ref_table,
       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = con.confrelid
               AND a.attname = 'org_id' AND NOT a.attisdropped) AS ref_has_org,
       EXISTS (SELECT 1 FROM unnest(con.conkey, con.confkey) AS k(col, ref)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col
               JOIN pg_attribute r ON r.attrelid = con.confrelid AND r.attnum = k.ref
               WHERE a.attname = 'org_id' AND r.attname = 'org_id') AS pairs_org
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class rc ON rc.oid = con.confrelid
WHERE con.contype = 'f' AND n.nspname = $1
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = con.conrelid
              AND a.attname = 'org_id' AND NOT a.attisdropped)
ORDER BY c.relname, con.conname
"""
_FUNCTIONS = """
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
       p.prosecdef AS definer,
       EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) s
               WHERE s LIKE 'search_path=%') AS fixed_path,
       EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
               WHERE x.grantee = 0) AS public_grant
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1 AND p.prokind IN ('f', 'p')
ORDER BY 1
"""
# Context read per row instead of once per statement: a context function (or the raw
# setting) not wrapped in (SELECT ...).
_CONTEXT_CALL = re.compile(
    r"(orgbase\.(current_org_id|current_user_id|current_member_role|current_role_rank|"
    r"current_key_id|claimed_org_id|claimed_user_id)\(\)|auth\.(uid|jwt|email|role)\(\)|"
    r"current_setting\()"
)
_WRAPPED = re.compile(r"\(\s*SELECT\s+$", re.IGNORECASE)


def unwrapped_context_calls(expression: str) -> list[str]:
    return [
        match.group(0)
        for match in _CONTEXT_CALL.finditer(expression)
        if not _WRAPPED.search(expression[: match.start()])
    ]


async def lint(connection: Connection | asyncpg.Connection[asyncpg.Record]) -> list[Finding]:
    findings: list[Finding] = []
    for t in await connection.fetch(_TABLES, SCHEMA):
        findings += _table_findings(t)
    findings += await app_table_findings(connection)
    for p in await connection.fetch(_POLICIES, [SCHEMA, APP_SCHEMA]):
        findings += _policy_findings(p)
    for fk in await connection.fetch(_FOREIGN_KEYS, SCHEMA):
        findings += _foreign_key_findings(fk)
    for f in await connection.fetch(_FUNCTIONS, SCHEMA):
        findings += _function_findings(f)
    return findings


def _table_findings(t: asyncpg.Record) -> list[Finding]:
    name = f"{SCHEMA}.{t['name']}"
    found = []
    if not t["rls"] or not t["forced"]:
        missing = " and ".join(
            w for w, ok in (("ENABLE", t["rls"]), ("FORCE", t["forced"])) if not ok
        )
        found.append(
            Finding(
                "rls_not_forced",
                "error",
                name,
                f"row-level security is not on ({missing} missing): the table's owner, or"
                " every role, reads all orgs' rows",
                f"SELECT orgbase.enable_tenancy('{name}');",
            )
        )
    if t["public_grant"]:
        found.append(
            Finding(
                "public_grant",
                "error",
                name,
                "PUBLIC has privileges on the table",
                f"REVOKE ALL ON {name} FROM PUBLIC;",
            )
        )
    if not t["has_pk"]:
        found.append(
            Finding(
                "no_primary_key",
                "warning",
                name,
                "the table has no primary key: rows cannot be addressed, upserts and"
                " row events have no key",
                f"ALTER TABLE {name} ADD PRIMARY KEY (...);",
            )
        )
    return found + _tenancy_findings(t, name)


def _tenancy_findings(t: asyncpg.Record, name: str) -> list[Finding]:
    found = []
    if t["has_org"] and not t["org_index"]:
        found.append(
            Finding(
                "no_org_index",
                "error",
                name,
                "no index starts with org_id: every request scans the whole table",
                f"CREATE INDEX ON {name} (org_id, ...);",
            )
        )
    if t["preset"] is None:
        found.append(
            Finding(
                "not_a_tenant_table",
                "warning",
                name,
                "the table is not a tenant table: the data API does not serve it",
                f"SELECT orgbase.enable_tenancy('{name}');",
            )
        )
    return found


def _policy_findings(p: asyncpg.Record) -> list[Finding]:
    calls = unwrapped_context_calls(p["using_expr"]) + unwrapped_context_calls(p["check_expr"])
    if not calls:
        return []
    example = calls[0] if calls[0].startswith("auth.") else "orgbase.current_org_id()"
    return [
        Finding(
            "context_not_wrapped",
            "warning",
            f"{p['schema_name']}.{p['table_name']} policy {p['name']}",
            f"{', '.join(sorted(set(calls)))} is evaluated once per row",
            f"write (SELECT {example}) so it runs once per statement",
        )
    ]


def _foreign_key_findings(fk: asyncpg.Record) -> list[Finding]:
    if not fk["ref_has_org"] or fk["pairs_org"]:
        return []
    return [
        Finding(
            "cross_org_foreign_key",
            "error",
            f"{SCHEMA}.{fk['table_name']} constraint {fk['name']}",
            f"a row may point at another org's row of {SCHEMA}.{fk['ref_table']}",
            f"make the key (org_id, ...) REFERENCES {SCHEMA}.{fk['ref_table']}"
            " (org_id, ...) with a unique key on the parent's (org_id, id)",
        )
    ]


def _function_findings(f: asyncpg.Record) -> list[Finding]:
    name = f"{SCHEMA}.{f['name']}"
    found = []
    if f["definer"]:
        found.append(
            Finding(
                "security_definer_function",
                "error",
                name,
                "SECURITY DEFINER: the function runs as its owner, row-level security does"
                " not apply inside it",
                f"ALTER FUNCTION {name} SECURITY INVOKER;",
            )
        )
    if not f["fixed_path"]:
        found.append(
            Finding(
                "function_search_path_mutable",
                "warning",
                name,
                "no fixed search_path: a caller's search_path can change what it calls",
                f"ALTER FUNCTION {name} SET search_path = pg_catalog, api;",
            )
        )
    if f["public_grant"]:
        found.append(
            Finding(
                "public_grant",
                "error",
                name,
                "PUBLIC may execute the function",
                f"REVOKE EXECUTE ON FUNCTION {name} FROM PUBLIC;",
            )
        )
    return found


def render(findings: list[Finding], output: str) -> str:
    if output == "json":
        return msgspec.json.encode(
            {
                "findings": [f.as_dict() for f in findings],
                "errors": sum(1 for f in findings if f.level == "error"),
                "warnings": sum(1 for f in findings if f.level == "warning"),
            }
        ).decode()
    if not findings:
        return "no findings"
    lines = [
        f"{f.level:7} {f.rule:30} {f.object}: {f.message}\n        fix: {f.remedy}"
        for f in findings
    ]
    errors = sum(1 for f in findings if f.level == "error")
    lines.append(f"{errors} error(s), {len(findings) - errors} warning(s)")
    return "\n".join(lines)
