"""The worker's process id (tests: functions run outside the gateway's process)."""

from __future__ import annotations

import os
from typing import Any

config = {"access": "public"}


async def handler(request: Any, ctx: Any) -> Any:
    return {"pid": os.getpid(), "env": sorted(k for k in os.environ if k.startswith("ORGBASE"))}
