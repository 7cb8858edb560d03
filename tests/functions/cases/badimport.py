"""Raises at import (tests: 503 for it, the others still served)."""

from __future__ import annotations

from typing import Any


def _missing() -> None:
    raise ImportError("a dependency is missing")


_missing()


async def handler(request: Any, ctx: Any) -> Any:  # pragma: no cover
    return {}
