"""Awaits past its time limit: cancelled, and its worker lives on (tests)."""

from __future__ import annotations

import asyncio
from typing import Any

config = {"access": "public", "timeout_seconds": 1}


async def handler(request: Any, ctx: Any) -> Any:
    await asyncio.sleep(float(request.query.get("seconds", "30")))
    return {"slept": True}
