"""A config that is not a function's (tests: 503, the others still served)."""

from __future__ import annotations

from typing import Any

config = {"access": "everyone"}


async def handler(request: Any, ctx: Any) -> Any:
    return {}
