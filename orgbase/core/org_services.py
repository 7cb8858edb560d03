"""What a function's ``ctx`` reaches besides SQL: an org's cache, documents, realtime
channels and mail, used as an org context (``OrgContext``) may use them. The owning areas
implement them; the gateway hands this protocol to the functions area, which imports none
of them."""

from __future__ import annotations

from typing import Any, Protocol

from orgbase.core.context import OrgContext


class OrgServices(Protocol):
    async def call(self, ctx: OrgContext, op: str, args: list[Any]) -> Any:
        """Run ``op`` (``kv.get``, ``docs.find``, ``realtime.publish``, ``mail.members``...)
        as ``ctx``; raises the API's errors (Invalid for an unknown op or bad arguments)."""
        ...
