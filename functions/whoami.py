"""Who calls: the caller's user, org and role (supabase-js: functions.invoke("whoami"))."""

from __future__ import annotations

from typing import Any

config = {"access": "members", "methods": ["GET", "POST"]}


async def handler(request: Any, ctx: Any) -> dict[str, Any]:
    del request
    return {"user_id": ctx.user_id, "org_id": ctx.org_id, "role": ctx.role}
