"""Document changes, told to whoever listens (the platform records them in the audit log,
which turns them into ``docs.<collection>.<insert|update|delete>`` webhook events).

MongoDB and PostgreSQL share no transaction: a change is told after MongoDB has it, and a
listener that fails (PostgreSQL down) is logged, not the write's failure. This is the one
event source that is at most once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import structlog

from orgbase.core.context import OrgContext

log = structlog.get_logger("orgbase.documents")

Change = Literal["insert", "update", "delete"]
Listener = Callable[[OrgContext, str, Change, dict[str, Any]], Awaitable[None]]
MAX_IDS = 100
"""The most document ids one event lists (a bulk write tells its count too)."""


class DocumentEvents:
    def __init__(self) -> None:
        self.listeners: list[Listener] = []

    async def changed(
        self, ctx: OrgContext, collection: str, change: Change, details: dict[str, Any]
    ) -> None:
        details = {"collection": collection, **details}
        if "ids" in details:
            details["ids"] = [str(i) for i in details["ids"][:MAX_IDS]]
        for listener in self.listeners:
            try:
                await listener(ctx, collection, change, details)
            except Exception as exc:  # the document is written: the event is what is lost
                log.warning("document event lost", collection=collection, error=repr(exc))
