"""postgres_changes: committed row changes to the sockets that may see them.

Every gateway process hears every change (``NOTIFY orgbase_rows``) and serves its own
sockets, so nothing crosses Redis. Changes queue per org; one worker per org at a time
takes everything queued (a batch), so a busy org's changes are checked many at a time and
reach each socket in commit order.

For a batch of one table, the channels listening to it are grouped by caller context (the
same user, API key or impersonation with the same role see the same rows), and each group
asks PostgreSQL once (``core.row_changes.ChangeReader``: one statement entered with a
member's credential, its filters as columns). A credential that no longer enters (an
expired token's secret, a session ended a moment ago) is skipped for the next member of
the group, and its sockets are told to send a fresh ``access_token``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import structlog

from orgbase.core.errors import Forbidden, NotFound, OrgbaseError, Unauthorized
from orgbase.core.postgres import TenantEntry
from orgbase.core.row_changes import ChangeReader, RowChange, SeenRow, decode_change
from orgbase.core.tasks import TaskSet
from orgbase.services.redis.phoenix.config import Binding
from orgbase.services.redis.phoenix.subscriber import JoinedChannel

log = structlog.get_logger("orgbase.realtime")

Group = tuple[object, ...]
_DENIED = (Unauthorized, Forbidden, NotFound)


def group_of(channel: JoinedChannel) -> Group:
    """Who the rows are read as: the visibility of two sockets in one group is the same."""
    ctx = channel.subscriber.ctx
    return (ctx.user_id, ctx.key_id, ctx.impersonation_id, ctx.role)


def _record(shape_keys: Sequence[str], change: RowChange, seen: SeenRow) -> dict[str, Any]:
    """The change's data as Supabase Realtime sends it (``record``/``old_record``)."""
    key = change.key or {k: seen.row.get(k) for k in shape_keys}
    data: dict[str, Any] = {}
    if change.op == "delete":
        data["old_record"] = seen.row if change.full and not change.trimmed else key
    else:
        data["record"] = seen.row
    if change.op == "update":
        data["old_record"] = change.old if change.full and change.old else key
    return data


class ChangeFeed:
    def __init__(self, reader: ChangeReader, tasks: TaskSet) -> None:
        self.reader = reader
        self.tasks = tasks
        self._channels: dict[UUID, set[JoinedChannel]] = defaultdict(set)
        self._pending: dict[UUID, list[RowChange]] = {}
        self._working: set[UUID] = set()
        self.checked = 0
        """Statements run to decide visibility (for the figures)."""
        self.delivered = 0

    # -- subscriptions ------------------------------------------------------------------

    def add(self, channel: JoinedChannel) -> None:
        if channel.bindings:
            self._channels[channel.subscriber.ctx.org_id].add(channel)

    def remove(self, channel: JoinedChannel) -> None:
        org = channel.subscriber.ctx.org_id
        listening = self._channels.get(org)
        if listening is not None:
            listening.discard(channel)
            if not listening:
                del self._channels[org]

    # -- changes ------------------------------------------------------------------------

    def notified(self, payload: str) -> None:
        """A NOTIFY: queued for its org's worker (nothing at all when nobody listens)."""
        try:
            change = decode_change(payload)
        except Exception:  # not a change this release announces
            return
        if change.schema != "api" or change.org not in self._channels:
            return
        self._pending.setdefault(change.org, []).append(change)
        if change.org not in self._working:
            self._working.add(change.org)
            self.tasks.spawn(self._drain(change.org), name="realtime changes")

    async def _drain(self, org: UUID) -> None:
        try:
            while batch := self._pending.pop(org, None):
                by_table: dict[str, list[RowChange]] = {}
                for change in batch:
                    by_table.setdefault(change.table, []).append(change)
                for table, changes in by_table.items():
                    try:
                        await self._deliver(org, table, changes)
                    except Exception as exc:  # the next batch is another chance
                        log.warning("postgres_changes delivery failed", error=repr(exc))
        finally:
            self._working.discard(org)

    async def _deliver(self, org: UUID, table: str, changes: list[RowChange]) -> None:
        groups: dict[Group, list[JoinedChannel]] = defaultdict(list)
        ops = {c.op for c in changes}
        for channel in self._channels.get(org, ()):
            if any(b.wants(op, table) for b in channel.bindings for op in ops):
                groups[group_of(channel)].append(channel)
        if not groups:
            return
        shape = await self.reader.shape(table)
        keys = shape.primary_key if shape is not None else ()
        columns = [{"name": c.name, "type": c.type} for c in shape.columns] if shape else []
        await asyncio.gather(
            *(self._group(table, changes, members, keys, columns) for members in groups.values())
        )

    async def _group(
        self,
        table: str,
        changes: list[RowChange],
        members: list[JoinedChannel],
        keys: Sequence[str],
        columns: list[dict[str, str]],
    ) -> None:
        filters = sorted({b.filter for c in members for b in c.bindings if b.filter})
        seen = await self._visible(table, changes, members, filters)
        if seen is None:
            return
        at = {f: i for i, f in enumerate(filters)}
        for row in seen:
            change = changes[row.index]
            data = {
                "schema": "public",
                "table": table,
                "commit_timestamp": change.at,
                "type": change.op.upper(),
                "columns": columns,
                "errors": None,
                **_record(keys, change, row),
            }
            for channel in members:
                ids = [b.id for b in channel.bindings if _passes(b, change, table, row, at)]
                if ids:
                    schema = next(b.schema for b in channel.bindings if b.id == ids[0])
                    payload = {"ids": ids, "data": {**data, "schema": schema}}
                    channel.subscriber.enqueue(channel.frame("postgres_changes", payload))
                    self.delivered += 1

    async def _visible(
        self, table: str, changes: list[RowChange], members: list[JoinedChannel], filters: list[str]
    ) -> list[SeenRow] | None:
        """The group's answer, read with the first member's credential that still enters."""
        for entry, holders in _credentials(members):
            self.checked += 1
            try:
                return await self.reader.visible(entry, table, changes, filters)
            except _DENIED as exc:
                for channel in holders:
                    _tell_token_refused(channel, exc)
            except OrgbaseError as exc:  # the database is away: these changes are lost
                log.warning("postgres_changes check failed", code=exc.code)
                return None
        return None


def _passes(
    binding: Binding, change: RowChange, table: str, row: SeenRow, at: dict[str, int]
) -> bool:
    if not binding.wants(change.op, table):
        return False
    return binding.filter is None or row.matched[at[binding.filter]]


def _credentials(
    members: Iterable[JoinedChannel],
) -> list[tuple[TenantEntry, list[JoinedChannel]]]:
    """The group's distinct credentials, each with the channels that hold it."""
    found: dict[tuple[Any, ...], tuple[TenantEntry, list[JoinedChannel]]] = {}
    for channel in members:
        try:
            entry = TenantEntry.for_context(channel.subscriber.ctx)
        except ValueError:
            continue
        key = (entry.call, entry.args)
        found.setdefault(key, (entry, []))[1].append(channel)
    return list(found.values())


def _tell_token_refused(channel: JoinedChannel, error: OrgbaseError) -> None:
    message = f"{error.message}: send a fresh access_token to receive changes"
    payload = {
        "status": "error",
        "message": message,
        "extension": "postgres_changes",
        "channel": channel.name,
    }
    channel.subscriber.enqueue(channel.frame("system", payload))
