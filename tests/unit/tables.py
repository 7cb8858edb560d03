"""A schema cache by hand, shaped like the data API's test tables (tests/support/data.py):
people <- tasks (owner_id) <- comments (task_id), with JSON, array and typed columns."""

from __future__ import annotations

from typing import Any

from orgbase.services.postgres.grammar import Query
from orgbase.services.postgres.plan import Bounds, plan_read
from orgbase.services.postgres.request import Count, ReadRequest
from orgbase.services.postgres.schema import Column, ForeignKey, Table

MAX_ROWS = 1000


def column(name: str, type_: str = "text", **flags: Any) -> Column:
    return Column(
        name=name,
        type=type_,
        category=flags.get("category", "S"),
        nullable=flags.get("nullable", True),
        has_default=flags.get("has_default", False),
        identity=flags.get("identity", ""),
        generated=False,
        is_array=type_.endswith("[]"),
        is_json=type_ in ("json", "jsonb"),
    )


def _table(name: str, *columns: Column) -> Table:
    return Table(
        name=name,
        columns={c.name: c for c in (column("id", "bigint", identity="d"), *columns)},
        primary_key=("id",),
        unique_keys=[("id",)],
    )


def tables() -> dict[str, Table]:
    """A fresh copy each call: a test may change its tables."""
    people = _table("people", column("name"), column("email"))
    tasks = _table(
        "tasks",
        column("title"),
        column("done", "boolean"),
        column("points", "integer"),
        column("tags", "text[]"),
        column("data", "jsonb"),
        column("due", "date"),
        column("owner_id", "bigint"),
        column("created_at", "timestamp with time zone"),
    )
    comments = _table("comments", column("task_id", "bigint"), column("body"))
    for fk in (
        ForeignKey("tasks_owner_id_fkey", "tasks", ("owner_id",), "people", ("id",)),
        ForeignKey("comments_task_id_fkey", "comments", ("task_id",), "tasks", ("id",)),
    ):
        by_name = {"people": people, "tasks": tasks, "comments": comments}
        by_name[fk.table].outgoing.append(fk)
        by_name[fk.ref_table].incoming.append(fk)
    return {t.name: t for t in (people, tasks, comments)}


def read_statement(table: str, query: Query, count: Count) -> tuple[str, list[Any]]:
    """The data API's read of ``query`` over ``tables()``, as planned (its SQL after the
    context CTE, and its values); nothing here connects."""
    request = ReadRequest(table, query, count, (table, "", "", count))
    plan = plan_read(tables(), request, Bounds(MAX_ROWS))
    return plan.sql, list(plan.values)
