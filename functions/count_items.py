"""How many rows of api.items the caller may see: ctx.db runs as the caller, under the
org's row-level security (another org's rows are never counted)."""

from __future__ import annotations

from typing import Any

config = {"access": "members", "methods": ["GET", "POST"]}


async def handler(request: Any, ctx: Any) -> dict[str, Any]:
    del request
    count = await ctx.db.fetchval("SELECT count(*) FROM api.items")
    ctx.log.info("items counted", count=count)
    return {"org_id": ctx.org_id, "count": count}
