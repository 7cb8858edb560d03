"""The org services a function's ``ctx`` reaches (``core.org_services.OrgServices``), over
the owning areas' own services, so every rule of theirs holds (roles, quotas, keys and
channels scoped to the org, the Mongo guard):

    ctx.kv.get(key) -> value or None      ctx.kv.set(key, value, ttl=None)
    ctx.kv.delete(key)                    ctx.kv.incr(key, by=1) -> the new value
    ctx.docs.find(collection, filter=None, limit=100) -> documents
    ctx.docs.insert(collection, document) -> the stored document
    ctx.docs.count(collection, filter=None) -> int
    ctx.realtime.publish(channel, event, payload) -> subscribers reached
    ctx.mail.members(subject, body, roles=["owner", "admin"]) (queued in the org's outbox)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from orgbase.core import rbac
from orgbase.core.context import OrgContext
from orgbase.core.errors import Invalid, NotFound
from orgbase.core.mail import Mail, Outbox
from orgbase.core.postgres import Database
from orgbase.core.rbac import ROLES
from orgbase.services.mongo.service import DocumentService
from orgbase.services.redis.kv import KeyValueStore
from orgbase.services.redis.realtime import RealtimeHub

Op = Callable[[OrgContext, list[Any]], Awaitable[Any]]
MOST_FOUND = 1000


def _args(args: list[Any], least: int, most: int) -> list[Any]:
    if not isinstance(args, list) or not least <= len(args) <= most:
        raise Invalid(f"this call takes {least} to {most} arguments", code="function_call_refused")
    return [*args, *([None] * (most - len(args)))]


class FunctionOrgServices:
    def __init__(
        self,
        kv: KeyValueStore,
        docs: DocumentService,
        hub: RealtimeHub,
        outbox: Outbox,
        db: Database,
    ) -> None:
        self.kv, self.docs, self.hub, self.outbox, self.db = kv, docs, hub, outbox, db
        self.ops: dict[str, Op] = {
            "kv.get": self._kv_get,
            "kv.set": self._kv_set,
            "kv.delete": self._kv_delete,
            "kv.incr": self._kv_incr,
            "docs.find": self._docs_find,
            "docs.insert": self._docs_insert,
            "docs.count": self._docs_count,
            "realtime.publish": self._publish,
            "mail.members": self._mail_members,
        }

    async def call(self, ctx: OrgContext, op: str, args: list[Any]) -> Any:
        handler = self.ops.get(op)
        if handler is None:
            raise Invalid(
                f"{op!r} is not a host call this gateway offers", code="function_call_refused"
            )
        return await handler(ctx, args)

    async def _kv_get(self, ctx: OrgContext, args: list[Any]) -> Any:
        (key,) = _args(args, 1, 1)
        try:
            return (await self.kv.get(ctx, str(key))).value
        except NotFound:
            return None

    async def _kv_set(self, ctx: OrgContext, args: list[Any]) -> None:
        key, value, ttl = _args(args, 2, 3)
        await self.kv.set(ctx, str(key), value, ttl)

    async def _kv_delete(self, ctx: OrgContext, args: list[Any]) -> None:
        (key,) = _args(args, 1, 1)
        await self.kv.delete(ctx, str(key))

    async def _kv_incr(self, ctx: OrgContext, args: list[Any]) -> Any:
        key, by = _args(args, 1, 2)
        return (await self.kv.increment(ctx, str(key), 1 if by is None else by)).value

    async def _docs_find(self, ctx: OrgContext, args: list[Any]) -> list[dict[str, Any]]:
        collection, filter_, limit = _args(args, 1, 3)
        most = min(int(limit or 100), MOST_FOUND)
        return await self.docs.find(ctx, str(collection), filter_=filter_, limit=most)

    async def _docs_insert(self, ctx: OrgContext, args: list[Any]) -> Any:
        collection, document = _args(args, 2, 2)
        return (await self.docs.insert(ctx, str(collection), [document]))[0]

    async def _docs_count(self, ctx: OrgContext, args: list[Any]) -> int:
        collection, filter_ = _args(args, 1, 2)
        return await self.docs.count(ctx, str(collection), filter_)

    async def _publish(self, ctx: OrgContext, args: list[Any]) -> int:
        channel, event, payload = _args(args, 2, 3)
        return await self.hub.publish(ctx, str(channel), str(event), payload)

    async def _mail_members(self, ctx: OrgContext, args: list[Any]) -> None:
        subject, body, roles = _args(args, 2, 3)
        rbac.require(ctx, "member", "mailing the org's members")
        wanted = tuple(roles or ("owner", "admin"))
        if not all(role in ROLES for role in wanted):
            raise Invalid("roles are owner, admin, member, viewer", code="function_call_refused")
        mail = Mail("function", "", str(subject)[:200], str(body)[:20000], ctx.org_id)
        async with self.db.system_connection() as connection:
            await self.outbox.to_members(connection, ctx.org_id, wanted, mail)
