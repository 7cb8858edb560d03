"""The org's cache, documents and realtime through ctx (tests)."""

from __future__ import annotations

from typing import Any

config = {"access": "members", "methods": ["POST"]}


async def handler(request: Any, ctx: Any) -> Any:
    body = request.json()
    before = await ctx.kv.get("fn-note")
    await ctx.kv.set("fn-note", body["note"])
    hits = await ctx.kv.incr("fn-hits")
    stored = await ctx.docs.insert("fn_notes", {"note": body["note"]})
    found = await ctx.docs.find("fn_notes", {"note": body["note"]})
    count = await ctx.docs.count("fn_notes")
    reached = await ctx.realtime.publish("fn-room", "noted", {"note": body["note"]})
    await ctx.mail.members("A note", f"noted: {body['note']}")
    return {
        "before": before,
        "after": await ctx.kv.get("fn-note"),
        "hits": hits,
        "stored": "_id" in stored,
        "found": [d["note"] for d in found],
        "count": count,
        "reached": reached,
    }
