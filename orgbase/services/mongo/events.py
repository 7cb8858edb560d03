"""Document changes, published as ``DocumentChanged`` on the gateway's event bus (the
platform records them in the audit log, which turns them into
``docs.<collection>.<insert|update|delete>`` webhook events).

MongoDB and PostgreSQL share no transaction: a change is told after MongoDB has it, and a
subscriber that fails (PostgreSQL down) is logged by the bus, not the write's failure.
This is the one event source that is at most once.
"""

from __future__ import annotations

from typing import Any, Literal

from orgbase.core.context import OrgContext
from orgbase.core.events import DocumentChanged, EventBus

Change = Literal["insert", "update", "delete"]
MAX_IDS = 100
"""The most document ids one event lists (a bulk write tells its count too)."""


class DocumentEvents:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def changed(
        self, ctx: OrgContext, collection: str, change: Change, details: dict[str, Any]
    ) -> None:
        details = {"collection": collection, **details}
        if "ids" in details:
            details["ids"] = [str(i) for i in details["ids"][:MAX_IDS]]
        event = DocumentChanged(ctx=ctx, collection=collection, change=change, details=details)
        await self.bus.publish(event)
