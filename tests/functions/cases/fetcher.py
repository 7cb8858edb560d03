"""Fetches the URL it is given through ctx.http (tests: private addresses refused)."""

from __future__ import annotations

from typing import Any

from orgbase.functions.runtime import HostError

config = {"access": "members"}


async def handler(request: Any, ctx: Any) -> Any:
    try:
        answer = await ctx.http.fetch(request.json()["url"])
    except HostError as refused:
        return {"refused": refused.code, "message": refused.message}
    return {"status": answer.status, "body": answer.text()}
