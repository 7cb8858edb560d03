"""Only admins and owners, never an API key, at aal1 (tests)."""

from __future__ import annotations

from typing import Any

config = {"min_role": "admin", "api_keys": False, "methods": ["POST"]}


async def handler(request: Any, ctx: Any) -> Any:
    return {"role": ctx.role}
