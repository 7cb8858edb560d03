"""Reads a secret and tries to log it (tests: the log masks it)."""

from __future__ import annotations

from typing import Any

config = {"access": "members", "secrets": ["TOKEN"]}


async def handler(request: Any, ctx: Any) -> Any:
    ctx.log.info(f"the token is {ctx.secrets['TOKEN']}", token=ctx.secrets["TOKEN"])
    return {"has_token": "TOKEN" in ctx.secrets, "other": "OTHER" in ctx.secrets}
