"""Runs every two seconds and tells the receiver which tick it runs (tests of schedules)."""

from __future__ import annotations

from typing import Any

config = {"access": "members", "schedule": "*/2 * * * * *", "secrets": ["RECEIVER"]}


async def handler(request: Any, ctx: Any) -> Any:
    await ctx.http.fetch(
        ctx.secrets["RECEIVER"],
        method="POST",
        json={"tick": ctx.event["tick"], "kind": ctx.kind, "key": ctx.idempotency_key},
    )
    return None
