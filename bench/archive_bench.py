"""An org's export and import rates (``python -m bench.archive_bench [ROWS] [DOCUMENTS]``):
an org with ROWS rows of api.items (default 100,000), DOCUMENTS documents (default 10,000)
and 1,000 cache keys, exported (``orgbase.platform.org_transfer.export_org``: one
PostgreSQL snapshot, then MongoDB and Redis) and imported into a fresh database of the same
local stack. Prints rows per second each way, the archive's size and the load average (the
machine is shared: the figures say what one run saw)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

import asyncpg
from pymongo import AsyncMongoClient

from bench.harness import local_stack, prepare_database
from devstack.layout import PG_SUPERUSER
from orgbase.core.settings import Settings, settings_from_env
from orgbase.platform.org_transfer import export_org, import_org
from orgbase.services.mongo.store import physical
from orgbase.tenants.orgs import found_org


async def _fill(settings: Settings, migration_url: str, rows: int, documents: int) -> UUID:
    connection = await asyncpg.connect(migration_url)
    try:
        user = await connection.fetchval(
            "INSERT INTO orgbase.users (email) VALUES ('bench@archive.test') RETURNING id"
        )
        org: UUID = (await found_org(connection, "bench archive", user))["id"]
        # Filled as the owner without the row triggers: the audit trail of a million
        # inserts is not what is measured.
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(
                "INSERT INTO api.items (org_id, created_by, title, status)"
                " SELECT $1, $2, 'item ' || g, CASE WHEN g % 3 = 0 THEN 'done' END"
                " FROM generate_series(1, $3) g",
                org,
                user,
                rows,
            )
    finally:
        await connection.close()
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo.url)
    collection = mongo[settings.mongo.database][physical(org, "notes")]
    for start in range(0, documents, 1000):
        await collection.insert_many(
            [
                {"_org": str(org), "_owner": str(user), "n": n, "title": f"note {n}"}
                for n in range(start, min(start + 1000, documents))
            ]
        )
    await mongo.close()
    return org


async def _cache(settings: Settings, org: UUID) -> None:
    from redis.asyncio import Redis

    from orgbase.core import keys
    from orgbase.core.redis import RedisClients

    async def put(r: Redis) -> None:
        for n in range(1000):
            await r.set(keys.kv_value(org, f"k{n}"), f"value {n}", ex=3600)

    redis = RedisClients(settings.redis)
    try:
        await redis.run(put)
    finally:
        await redis.close()


async def main(rows: int, documents: int) -> None:
    stack = local_stack()
    env = await prepare_database(stack, "orgbase_bench_archive")
    fresh_env = await prepare_database(stack, "orgbase_bench_archive_fresh")
    fresh_env["ORGBASE_REDIS_DB"] = "4"
    settings, fresh = settings_from_env(env), settings_from_env(fresh_env)
    migration_url = stack.database_url(
        PG_SUPERUSER, stack.secrets["pg_superuser"], "orgbase_bench_archive"
    )
    org = await _fill(settings, migration_url, rows, documents)
    await _cache(settings, org)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "org.tar.gz"
        started = time.perf_counter()
        await export_org(settings, org, path)
        exported = time.perf_counter() - started
        size = path.stat().st_size
        started = time.perf_counter()
        summary = await import_org(fresh, path)
        imported = time.perf_counter() - started
    load = os.getloadavg()
    print(
        f"org: {rows:,} rows, {documents:,} documents, 1,000 cache keys;",
        f"archive {size / 1e6:.1f} MB",
    )
    print(f"export: {exported:.2f} s ({rows / exported:,.0f} rows/s, documents included)")
    print(f"import: {imported:.2f} s ({rows / imported:,.0f} rows/s), {summary}")
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores, shared)")


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [100_000, 10_000][len(arguments) :])))
