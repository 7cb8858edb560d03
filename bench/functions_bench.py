"""Functions benchmark (``make bench-functions``), one gateway worker on the local stack:

1. Invocation overhead: ``POST /functions/v1/whoami`` (auth, the org's allowance, a worker
   round trip, the answer) against the data API's read ``GET /v1/db/items?limit=1`` in the
   same run, with the tokens of many orgs (the goal: at least half the read's rate);
2. Trigger latency: items inserted through the API at a modest pace; a function subscribed
   to ``db.items.insert`` logs the time from the insert's transaction to its handler's
   start (read back from the invocation log): p50, p99;
3. Schedule drift: a function on ``* * * * * *`` (every second) logs how late its handler
   started after its tick.

The machine is shared: each figure is one run's, printed with the load average.
Run: ``make bench-functions`` (or ``.venv/bin/python -m bench.functions_bench [seconds]``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import msgspec

from bench.data_bench import orgs_and_tokens, seed
from bench.harness import ROOT, gateway, local_stack, org_of, prepare_database, wrk
from devstack.layout import PG_SUPERUSER

ORGS = 20
INSERTS = 100
INSERT_PACE_SECONDS = 0.05
SCHEDULE_SECONDS = 12
TRIGGERED = """
import time
from datetime import datetime

config = {"access": "members", "triggers": ["db.items.insert"]}


async def handler(request, ctx):
    stamp = datetime.fromisoformat(ctx.event["timestamp"])
    ctx.log.info("latency", ms=round((time.time() - stamp.timestamp()) * 1000, 2))
"""
SCHEDULED = """
import time
from datetime import datetime

config = {"access": "members", "schedule": "* * * * * *"}


async def handler(request, ctx):
    tick = datetime.fromisoformat(ctx.event["tick"])
    ctx.log.info("drift", ms=round((time.time() - tick.timestamp()) * 1000, 2))
"""


def functions_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="orgbase-bench-functions-"))
    shutil.copy(ROOT / "functions" / "whoami.py", folder / "whoami.py")
    (folder / "triggered.py").write_text(TRIGGERED)
    (folder / "scheduled.py").write_text(SCHEDULED)
    return folder


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def logged(migration_url: str, function: str, field: str) -> list[float]:
    connection = await asyncpg.connect(migration_url)
    try:
        rows = await connection.fetch(
            "SELECT logs::text FROM orgbase.function_invocations"
            " WHERE function = $1 AND logs IS NOT NULL",
            function,
        )
    finally:
        await connection.close()
    return [float(msgspec.json.decode(row["logs"])[0][field]) for row in rows]


async def forget_seeded_events(migration_url: str) -> None:
    """The seed's rows are events too: the triggered function is measured on the API's."""
    connection = await asyncpg.connect(migration_url)
    try:
        await connection.execute("DELETE FROM orgbase.function_deliveries")
    finally:
        await connection.close()


async def insert_items(base: str, tokens: list[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for n in range(INSERTS):
            token = tokens[n % len(tokens)]
            made = await client.post(
                "/v1/db/items",
                headers={"Authorization": f"Bearer {token}"},
                json={"title": f"bench {n}"},
            )
            made.raise_for_status()
            await asyncio.sleep(INSERT_PACE_SECONDS)
        await asyncio.sleep(3)  # the last deliveries


def overhead(base: str, tokens: list[str], seconds: float) -> None:
    read = ("data API read (1 row), GET", "GET", "/v1/db/items?order=id&limit=1", None)
    whoami = ("function whoami, POST", "POST", "/functions/v1/whoami", "{}")
    results = {}
    for label, method, path, body in (read, whoami, read, whoami):
        options: dict[str, object] = {"method": method, "tokens": tokens}
        if body is not None:
            options["bodies"] = [body]
            options["content_type"] = "application/json"
        wrk(base + path, seconds=2, **options)  # type: ignore[arg-type]
        result = wrk(base + path, seconds=seconds, **options)  # type: ignore[arg-type]
        results[label] = result
        print(result.line(label))
    ratio = results[whoami[0]].rps / results[read[0]].rps
    print(f"whoami / data read (the later runs): {ratio:.2f} (goal: at least 0.5)")


def summary(label: str, values: list[float]) -> None:
    if not values:
        print(f"{label}: nothing measured")
        return
    print(
        f"{label}: n={len(values)} p50 {statistics.median(values):.1f} ms"
        f"  p99 {percentile(values, 0.99):.1f} ms  max {max(values):.1f} ms"
    )


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"load average at start: {os.getloadavg()}, {os.cpu_count()} cores")
    stack = local_stack()
    env = asyncio.run(prepare_database(stack))
    env.update(
        {
            "ORGBASE_AUTH_ARGON2_TIME_COST": "1",
            "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
            "ORGBASE_LOG_LEVEL": "info",  # the access log is part of the pipeline
            "ORGBASE_APP_FUNCTIONS_DIR": str(functions_folder()),
            "ORGBASE_FUNCTIONS_EVENTS": "true",
            "ORGBASE_FUNCTIONS_SCHEDULES": "false",
            "ORGBASE_FUNCTIONS_EVENT_POLL_SECONDS": "1",
        }
    )
    database = env["ORGBASE_DATABASE_API_URL"].rsplit("/", 1)[1]
    migration_url = stack.database_url(PG_SUPERUSER, stack.secrets["pg_superuser"], database)
    with gateway(env) as base:
        tokens = asyncio.run(orgs_and_tokens(base, ORGS))
    asyncio.run(seed(migration_url, [org_of(t) for t in tokens]))
    asyncio.run(forget_seeded_events(migration_url))
    print(f"{ORGS} orgs, 1 gateway worker, 2 function workers, wrk 2 threads 32 connections\n")
    with gateway(env) as base:
        overhead(base, tokens, seconds)
        asyncio.run(insert_items(base, tokens))
    summary(
        "trigger latency, insert to handler", asyncio.run(logged(migration_url, "triggered", "ms"))
    )
    with gateway(env, ORGBASE_FUNCTIONS_SCHEDULES="true", ORGBASE_FUNCTIONS_EVENTS="false"):
        time.sleep(SCHEDULE_SECONDS)
    summary(
        "schedule drift, tick to handler", asyncio.run(logged(migration_url, "scheduled", "ms"))
    )
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
