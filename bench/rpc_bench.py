"""The RPC benchmark: what a function call through /v1/db/rpc costs next to a table read,
through the whole pipeline (JWT, live session, membership, RLS with the verified org
context), with real tokens for many orgs.

- ``GET /v1/db/items?order=id&limit=20``: the table read (one statement);
- ``GET /v1/db/rpc/count_items?status=open``: a STABLE function (one transaction: the
  entry statement, then the call);
- ``POST /v1/db/rpc/count_items`` with ``{"status": "open"}``: the same by POST;
- ``POST /v1/db/rpc/close_items`` with ``{"ids": [-1]}``: a VOLATILE function that
  changes nothing (its UPDATE finds no row).

Run: ``make bench-rpc`` (or ``.venv/bin/python -m bench.rpc_bench [seconds]``).
"""

from __future__ import annotations

import asyncio
import os
import sys

import httpx

from bench.data_bench import ORGS, ROWS_PER_ORG, orgs_and_tokens, seed
from bench.harness import gateway, local_stack, org_of, prepare_database, wrk
from devstack.layout import PG_SUPERUSER

CASES = (
    ("table read (20 rows), GET", "GET", "/v1/db/items?order=id&limit=20", None),
    ("STABLE function, GET", "GET", "/v1/db/rpc/count_items?status=open", None),
    ("STABLE function, POST", "POST", "/v1/db/rpc/count_items", '{"status": "open"}'),
    ("VOLATILE function, POST", "POST", "/v1/db/rpc/close_items", '{"ids": [-1]}'),
)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    stack = local_stack()
    env = asyncio.run(prepare_database(stack))
    env.update(
        {
            "ORGBASE_AUTH_ARGON2_TIME_COST": "1",  # sign-ins are not what is measured here
            "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
            "ORGBASE_LOG_LEVEL": "info",  # the access log is part of the pipeline
            "ORGBASE_DATABASE_API_POOL_MAX": "16",
        }
    )
    with gateway(env) as base:
        tokens = asyncio.run(orgs_and_tokens(base))
    database = env["ORGBASE_DATABASE_API_URL"].rsplit("/", 1)[1]
    migration_url = stack.database_url(PG_SUPERUSER, stack.secrets["pg_superuser"], database)
    asyncio.run(seed(migration_url, [org_of(t) for t in tokens]))
    print(
        f"RPC benchmark: {ORGS} orgs x {ROWS_PER_ORG} items, {len(tokens)} tokens, 1 worker,"
        f" wrk 2 threads 32 connections, {seconds:g}s per run, {os.cpu_count()} cores\n"
    )
    with gateway(env) as base:
        answer = httpx.get(
            f"{base}/v1/db/rpc/count_items?status=open",
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
        # seed() marks every third item done.
        assert answer.json() == sum(1 for n in range(ROWS_PER_ORG) if n % 3), answer.text
        for label, method, path, body in CASES:
            options: dict[str, object] = {"method": method, "tokens": tokens}
            if body is not None:
                options["bodies"] = [body]
            wrk(base + path, seconds=2, **options)  # type: ignore[arg-type]
            result = wrk(base + path, seconds=seconds, **options)  # type: ignore[arg-type]
            print(result.line(label))


if __name__ == "__main__":
    main()
