"""Raises with internals in its message: the caller must see none of them (tests)."""

from __future__ import annotations

from typing import Any

config = {"access": "public", "secrets": ["TOKEN"]}


async def handler(request: Any, ctx: Any) -> Any:
    raise RuntimeError(f"internal detail: connection string postgres://x:{ctx.secrets['TOKEN']}@db")
