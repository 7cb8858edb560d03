"""Never awaits: a loop that holds its worker until the worker is killed (tests)."""

from __future__ import annotations

import os
from typing import Any

config = {"access": "public", "timeout_seconds": 1}


async def handler(request: Any, ctx: Any) -> Any:
    while True:
        os.getpid()
