"""The operator's own job: counts every org through ctx.system_db (tests)."""

from __future__ import annotations

from typing import Any

config = {"access": "members", "min_role": "owner", "privileged": True}


async def handler(request: Any, ctx: Any) -> Any:
    return {"orgs": await ctx.system_db.fetchval("SELECT count(*) FROM orgbase.orgs")}
