"""Prepared reads: a repeated request skips parsing; whatever changes the statement (the
table, the query string, the Range header, Prefer's count, the schema) builds again."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from orgbase.core.postgres import Database
from orgbase.core.settings import Settings
from orgbase.services.postgres.grammar import Query, parse_query
from orgbase.services.postgres.schema_cache import SchemaCache
from orgbase.services.postgres.service import DataService


async def test_a_repeated_read_skips_parsing(settings: Settings) -> None:
    db = Database(settings.database)
    await db.open()
    try:
        schema = SchemaCache(db)
        await schema.load()
        data = DataService(db, schema, max_rows=1000)
        parsed: list[str] = []

        def parser(query_string: str) -> Callable[[], Query]:
            def parse() -> Query:
                parsed.append(query_string)
                return parse_query(parse_qsl(query_string, keep_blank_values=True))

            return parse

        def prepare(table: str, query_string: str, range_header: str = "") -> str:
            prepared = data.prepare_read(
                table, (query_string, range_header), None, parser(query_string)
            )
            return prepared.sql

        first = prepare("tasks", "select=title&done=is.false")
        assert prepare("tasks", "select=title&done=is.false") == first
        assert parsed == ["select=title&done=is.false"]

        prepare("tasks", "select=title&done=is.true")
        prepare("tasks", "select=title&done=is.false", "items=0-9")
        prepare("comments", "select=body")
        same = "select=title&done=is.false"
        data.prepare_read("tasks", (same, ""), "exact", parser(same))  # Prefer: count=exact
        assert len(parsed) == 5

        await schema.load()  # a new schema version: statements are built again
        assert prepare("tasks", "select=title&done=is.false") == first
        assert len(parsed) == 6
    finally:
        await db.close()
