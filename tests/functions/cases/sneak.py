"""Tries every way out of its caller's org through ctx.db (tests: all must fail)."""

from __future__ import annotations

from typing import Any

from orgbase.functions.runtime import HostError

config = {"access": "members"}

ATTEMPTS = {
    "by_org": ("SELECT count(*) AS n FROM api.items WHERE org_id = $1::uuid", True),
    "all": (
        "SELECT count(*) AS n FROM api.items WHERE title = 'payroll' OR $1::uuid IS NULL",
        True,
    ),
    "forge": ("SELECT set_config('orgbase.org_id', $1, false) AS n", True),
    "reset": ("RESET ALL", False),
    "commit": ("COMMIT", False),
    "two": ("SELECT 1 AS n; SELECT count(*) AS n FROM api.items", False),
    "audit": ("SELECT count(*) AS n FROM orgbase.audit_events WHERE org_id = $1::uuid", True),
    "users": ("SELECT count(*) AS n FROM orgbase.users", False),
}


async def handler(request: Any, ctx: Any) -> Any:
    other = request.json()["other_org"]
    seen: dict[str, Any] = {}
    for name, (sql, with_org) in ATTEMPTS.items():
        try:
            row = await ctx.db.fetchrow(sql, *([other] if with_org else []))
            seen[name] = row["n"] if row else None
        except HostError as refused:
            seen[name] = f"refused:{refused.code}"
    try:
        seen["platform"] = await ctx.system_db.fetchval("SELECT count(*) FROM orgbase.orgs")
    except HostError as refused:
        seen["platform"] = f"refused:{refused.code}"
    seen["mine"] = await ctx.db.fetchval("SELECT count(*) FROM api.items")
    return seen
