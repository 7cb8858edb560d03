"""Ends its worker process mid-invocation (tests)."""

from __future__ import annotations

import os
from typing import Any

config = {"access": "public"}


async def handler(request: Any, ctx: Any) -> Any:
    os._exit(3)
