"""Fails on items titled "fail-me" (tests: retried, then dead)."""

from __future__ import annotations

from typing import Any

config = {"access": "members", "triggers": ["db.items.*"]}


async def handler(request: Any, ctx: Any) -> Any:
    if ctx.event["data"]["row"]["title"] == "fail-me":
        raise RuntimeError("this event cannot be handled")
    return None
