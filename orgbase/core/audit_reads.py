"""Reading the audit log (``orgbase.audit_events``, written by ``audit.py``): an org's
entries for its admins, and the guesses at an account's secret counted when Redis is down."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from orgbase.core.postgres import Connection


class AuditFilter(msgspec.Struct, frozen=True):
    """The audit log's query (the fields in the order of the route's query parameters)."""

    action: str | None = None
    """An exact action, or a prefix ending in '*' (``member.*``)."""
    actor: UUID | None = None
    table: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    """Cursor: entries with a smaller id (the previous page's next_cursor)."""
    limit: int = 50


def _like_prefix(action: str) -> str:
    return action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def org_page(query: AuditFilter, first_param: int) -> tuple[str, list[Any]]:
    """The statement of one page of the entered org's log (newest first, one entry more
    than ``limit``: is there a next page?) and its values, numbered from ``first_param``.
    It reads ``ctx.role``: the caller joins it to the org's entry."""
    conditions = ["ctx.role IS NOT NULL", "org_id = (SELECT orgbase.current_org_id())"]
    args: list[Any] = []

    def param(value: Any) -> str:
        args.append(value)
        return f"${first_param + len(args)}"

    if query.action:
        if query.action.endswith("*"):
            conditions.append(f"action LIKE {param(_like_prefix(query.action))}")
        else:
            conditions.append(f"action = {param(query.action)}")
    for column, value, compare in (
        ("actor_user_id", query.actor, "="),
        ("target_table", query.table, "="),
        ("occurred_at", query.since, ">="),
        ("occurred_at", query.until, "<"),
        ("id", query.before, "<"),
    ):
        if value:
            conditions.append(f"{column} {compare} {param(value)}")
    # Conditions are fixed fragments with placeholders; every value is a parameter.
    statement = (
        "SELECT id, org_id, occurred_at, action, actor_user_id, actor_kind, actor_key_id,"  # noqa: S608
        " target_table, row_key, old_values, new_values, details, request_id, host(ip) AS ip"
        f" FROM orgbase.audit_events WHERE {' AND '.join(conditions)}"
        f" ORDER BY id DESC LIMIT {param(query.limit + 1)}"
    )
    return statement, args


_ACTION = re.compile(r"[a-z_.]+")


@functools.cache
def _attempts_sql(attempt: str, cleared: tuple[str, ...]) -> str:
    """The actions are constants of the caller, written into the text so that the partial
    indexes on them apply."""
    assert all(_ACTION.fullmatch(action) for action in (attempt, *cleared))
    listed = ", ".join(f"'{action}'" for action in cleared)
    return f"""
SELECT count(*) FROM orgbase.audit_events
WHERE details ->> 'account' = $1 AND action = '{attempt}'
  AND occurred_at > now() - make_interval(secs => $2)
  AND id > coalesce((
      SELECT max(id) FROM orgbase.audit_events
      WHERE details ->> 'account' = $1 AND action IN ({listed})), 0)
"""  # noqa: S608 - checked constants


async def attempts_since_cleared(
    connection: Connection, account: str, attempt: str, cleared: tuple[str, ...], window: float
) -> int:
    """The ``attempt`` records of an account (``details.account``) within the window,
    since its last ``cleared`` record."""
    return int(await connection.fetchval(_attempts_sql(attempt, cleared), account, window))
