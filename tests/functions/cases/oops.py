"""A member's function that logs, then raises (tests of the invocation log)."""

from __future__ import annotations

from typing import Any

config = {"access": "members"}


async def handler(request: Any, ctx: Any) -> Any:
    ctx.log.info("about to fail", step=1)
    raise ValueError("the operator's bug: division by zero in the invoice total")
