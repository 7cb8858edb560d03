"""Runs on every new item (tests of triggers): tells the receiver named by the item's
title what it saw, and sleeps past its time limit when the receiver says so."""

from __future__ import annotations

import asyncio
from typing import Any

config = {"access": "members", "triggers": ["db.items.insert"], "timeout_seconds": 3}


async def handler(request: Any, ctx: Any) -> Any:
    row = ctx.event["data"]["row"]
    title = str(row["title"])
    if not title.startswith("http://"):
        return {"ignored": True}
    count = await ctx.db.fetchval("SELECT count(*) FROM api.items")
    answer = await ctx.http.fetch(
        title,
        method="POST",
        json={
            "key": ctx.idempotency_key,
            "org": ctx.org_id,
            "kind": ctx.kind,
            "role": ctx.role,
            "event": ctx.event["type"],
            "item": row["id"],
            "count": count,
            "header": request.headers.get("idempotency-key"),
        },
    )
    if answer.text() == "sleep":
        await asyncio.sleep(60)
    return {"told": answer.status}
