"""The functions' pieces that need no service: the catalog read as syntax, the statement
guard of ctx.db, handlers' answers, the CPU meter, the frames."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orgbase.functions.answers import answer
from orgbase.functions.cpu import Metered
from orgbase.functions.cron import Cron, CronError
from orgbase.functions.database import statement_refusal
from orgbase.functions.loader import load_catalog
from orgbase.functions.protocol import Done, frame, read_from_worker
from orgbase.functions.runtime import Response


def test_the_catalog_is_read_without_running_the_modules(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text(
        'config = {"access": "public", "methods": ["get"]}\nasync def handler(r, c): ...\n'
    )
    (tmp_path / "runs.py").write_text(
        "import os\nos._exit(9)\nasync def handler(r, c): ...\n"  # never imported here
    )
    (tmp_path / "called.py").write_text("config = dict(a=1)\nasync def handler(r, c): ...\n")
    (tmp_path / "sync.py").write_text("def handler(r, c): ...\n")
    (tmp_path / "Bad-Name.py").write_text("async def handler(r, c): ...\n")
    (tmp_path / "_helper.py").write_text("X = 1\n")
    catalog = load_catalog(tmp_path)
    assert sorted(catalog.functions) == ["Bad-Name", "called", "ok", "runs", "sync"]
    assert catalog.functions["ok"].usable
    assert catalog.functions["ok"].config.methods == ("GET",)
    assert catalog.functions["runs"].usable
    assert "literal" in (catalog.functions["called"].error or "")
    assert "async def handler" in (catalog.functions["sync"].error or "")
    assert catalog.functions["Bad-Name"].error is not None


@pytest.mark.parametrize(
    "sql",
    [
        "COMMIT",
        "  -- a comment\n rollback",
        "/* x */ SET ROLE postgres",
        "RESET ALL",
        "select set_config('orgbase.context', 'x', false)",
        "SELECT pg_advisory_lock(1)",
        "LISTEN x",
        "DO $$ BEGIN END $$",
        "CREATE TEMP TABLE t (a int)",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "",
    ],
)
def test_ctx_db_refuses_what_outlives_its_transaction(sql: str) -> None:
    assert statement_refusal(sql) is not None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM api.items",
        "with x as (select 1) select * from x",
        "INSERT INTO api.items (title) VALUES ($1) RETURNING id",
        "UPDATE api.items SET status = 'done' WHERE id = $1",
        "SELECT pg_advisory_xact_lock(1)",
    ],
)
def test_ctx_db_takes_ordinary_statements(sql: str) -> None:
    assert statement_refusal(sql) is None


def test_answers_of_each_kind() -> None:
    assert answer({"a": 1}) == (200, [("content-type", "application/json")], b'{"a":1}')
    assert answer("hi")[2] == b"hi"
    assert answer(b"\x00")[1] == [("content-type", "application/octet-stream")]
    assert answer(None) == (204, [], b"")
    status, headers, _ = answer(Response("x", status=201, headers={"content-type": "text/csv"}))
    assert (status, headers) == (201, [("content-type", "text/csv")])


async def test_the_cpu_meter_counts_one_coroutine_only() -> None:
    async def burn() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass

    async def wait() -> None:
        await asyncio.sleep(0.2)

    busy, idle = Metered(burn()), Metered(wait())
    await asyncio.gather(busy, idle)
    assert busy.seconds >= 0.04
    assert idle.seconds < 0.02


async def test_frames_round_trip_and_refuse_oversize() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(frame(Done(id=1, status=200, headers=[("a", "b")], body=b"xyz")))
    reader.feed_eof()
    message = await read_from_worker(reader, 1000)
    assert message == Done(id=1, status=200, headers=[("a", "b")], body=b"xyz")
    assert await read_from_worker(reader, 1000) is None


@pytest.mark.parametrize(
    ("expression", "after", "ticks"),
    [
        ("*/5 * * * *", "2026-02-27T23:59:30", ["2026-02-28T00:00:00", "2026-02-28T00:05:00"]),
        ("0 0 29 2 *", "2026-02-27T00:00:00", ["2028-02-29T00:00:00", "2032-02-29T00:00:00"]),
        ("*/2 * * * * *", "2026-01-01T00:00:01.5", ["2026-01-01T00:00:02", "2026-01-01T00:00:04"]),
        ("@weekly", "2026-02-27T12:00:00", ["2026-03-01T00:00:00", "2026-03-08T00:00:00"]),
        ("30 8 * * 1-5", "2026-02-27T09:00:00", ["2026-03-02T08:30:00", "2026-03-03T08:30:00"]),
        # Both day fields restricted: either matches (the 1st, or a Monday).
        ("0 12 1 * 1", "2026-02-27T00:00:00", ["2026-03-01T12:00:00", "2026-03-02T12:00:00"]),
    ],
)
def test_cron_ticks(expression: str, after: str, ticks: list[str]) -> None:
    cron = Cron.parse(expression)
    moment = datetime.fromisoformat(after).replace(tzinfo=UTC)
    for expected in ticks:
        moment = cron.next_after(moment)
        assert moment == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "expression", ["* * * *", "60 * * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *"]
)
def test_cron_refuses_nonsense(expression: str) -> None:
    with pytest.raises(CronError):
        Cron.parse(expression)
