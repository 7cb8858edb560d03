"""Prepared reads: a repeated request skips parsing and planning; whatever changes the
statement (the table, the query string, the Range header, Prefer's count, the org's
limits, the schema) plans again."""

from __future__ import annotations

from typing import TypeVar

from orgbase.core.postgres import Database
from orgbase.core.settings import Settings
from orgbase.core.tasks import TaskSet
from orgbase.services.postgres.plan import Bounds, ReadPlan, ReadPlans
from orgbase.services.postgres.request import Count, ReadRequest, read_parser
from orgbase.services.postgres.schema_cache import SchemaCache

DEFAULT = Bounds(1000)
T = TypeVar("T")


def note(seen: list[T], item: T) -> None:
    if all(item is not other for other in seen):
        seen.append(item)


async def test_a_repeated_read_skips_parsing(settings: Settings) -> None:
    db = Database(settings.database)
    await db.open()
    try:
        schema = SchemaCache(db, TaskSet())
        await schema.load()
        parse = read_parser(2048)
        plans = ReadPlans(schema, 2048)
        parsed: list[ReadRequest] = []
        built: list[ReadPlan] = []

        def prepare(
            table: str,
            query_string: str,
            range_header: str = "",
            count: Count = None,
            bounds: Bounds = DEFAULT,
        ) -> str:
            request = parse(table, query_string, range_header, count)
            plan = plans.plan(request, bounds)
            note(parsed, request)
            note(built, plan)
            return plan.sql

        first = prepare("tasks", "select=title&done=is.false")
        assert prepare("tasks", "select=title&done=is.false") == first
        assert (len(parsed), len(built)) == (1, 1)

        prepare("tasks", "select=title&done=is.true")
        prepare("tasks", "select=title&done=is.false", "items=0-9")
        prepare("comments", "select=body")
        prepare("tasks", "select=title&done=is.false", count="exact")  # Prefer: count=exact
        assert len(built) == 5
        # An org's own rows_per_response is an input of its plans, not a value patched in.
        prepare("tasks", "select=title&done=is.false", bounds=Bounds(10))
        assert len(built) == 6
        assert built[-1].values != built[0].values

        await schema.load()  # a new schema version: statements are built again
        assert prepare("tasks", "select=title&done=is.false") == first
        assert len(built) == 7
        assert len(parsed) == 5  # parsing depends on the text alone
    finally:
        await db.close()
