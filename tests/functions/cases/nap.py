"""Sleeps as long as it is told, as a member of the caller's org (tests of the limits)."""

from __future__ import annotations

import asyncio
from typing import Any

config = {"access": "members", "timeout_seconds": 5}


async def handler(request: Any, ctx: Any) -> Any:
    await asyncio.sleep(float(request.query.get("seconds", "0")))
    total = 0
    for n in range(int(request.query.get("spin", "0"))):
        total += n * n
    return {"total": total}
