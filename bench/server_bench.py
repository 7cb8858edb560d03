"""Which ASGI server runs the gateway: uvicorn (what ``orgbase serve`` starts, one
SO_REUSEPORT socket per worker) against granian (Rust HTTP, its own workers), the same
app factory, database and tokens, 1 and 2 workers.

Two paths: ``GET /health/live`` (the server and the middleware, almost no app work) and
``GET /v1/db/items?order=id&limit=20`` (the whole pipeline: JWT, session, RLS read).
Runs alternate between the servers over several rounds, so a slow moment of the machine
does not land on one of them only; the median of the rounds is reported.

Run: ``make bench-server`` (or ``.venv/bin/python -m bench.server_bench [seconds] [rounds]``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from bench.data_bench import PATH, orgs_and_tokens, process, seed, wait_http
from bench.harness import (
    ROOT,
    WrkResult,
    free_port,
    gateway,
    local_stack,
    org_of,
    prepare_database,
    wrk,
)
from devstack.layout import PG_SUPERUSER

GRANIAN = str(ROOT / ".venv" / "bin" / "granian")
APP = "orgbase.platform.asgi:app_from_environment"
Server = Callable[[dict[str, str], int], AbstractContextManager[str]]


@contextmanager
def granian(env: dict[str, str], workers: int) -> Iterator[str]:
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="orgbase-metrics-")
    # Like `orgbase serve`: with several workers, metrics live in shared files.
    child_env = {**env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir} if workers > 1 else env
    command = [
        GRANIAN,
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--no-ws",
        "--log-level",
        "warning",
        APP,
    ]
    try:
        with process(command, child_env):
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/health/live")
            yield base
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def uvicorn(env: dict[str, str], workers: int) -> AbstractContextManager[str]:
    return gateway(env, workers=workers)


SERVERS: dict[str, Server] = {"uvicorn (orgbase serve)": uvicorn, "granian": granian}


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    stack = local_stack()
    env = asyncio.run(prepare_database(stack))
    env.update(
        {
            "ORGBASE_AUTH_ARGON2_TIME_COST": "1",
            "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
            "ORGBASE_LOG_LEVEL": "info",  # the access log is part of every request
            "ORGBASE_DATABASE_API_POOL_MAX": "16",
        }
    )
    with gateway(env) as base:
        tokens = asyncio.run(orgs_and_tokens(base))
    database = env["ORGBASE_DATABASE_API_URL"].rsplit("/", 1)[1]
    migration_url = stack.database_url(PG_SUPERUSER, stack.secrets["pg_superuser"], database)
    org_ids = [org_of(t) for t in tokens]
    asyncio.run(seed(migration_url, org_ids))
    print(
        f"ASGI servers for the gateway: wrk 2 threads 32 connections, {seconds:g}s per run,"
        f" {rounds} rounds alternating, {os.cpu_count()} cores\n"
    )
    results: dict[tuple[str, str, int], list[WrkResult]] = {}
    for workers in (1, 2):
        for _ in range(rounds):
            for name, server in SERVERS.items():
                with server(env, workers) as base:
                    for path_name, path in (("health/live", "/health/live"), ("data", PATH)):
                        url = base + path
                        wrk(url, seconds=1, tokens=tokens)  # warm up
                        result = wrk(url, seconds=seconds, tokens=tokens)
                        results.setdefault((name, path_name, workers), []).append(result)
    for (name, path_name, workers), runs in results.items():
        median = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
        spread = f"(rounds: {', '.join(f'{r.rps:.0f}' for r in runs)})"
        label = f"{name}, {path_name}, {workers} worker{'s' if workers > 1 else ''}"
        print(median.line(label), spread)
    print()
    for path_name in ("health/live", "data"):
        for workers in (1, 2):
            ours = statistics.median(
                r.rps for r in results[("uvicorn (orgbase serve)", path_name, workers)]
            )
            theirs = statistics.median(r.rps for r in results[("granian", path_name, workers)])
            print(f"granian / uvicorn, {path_name}, {workers} workers: {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
