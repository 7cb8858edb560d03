"""The data API benchmark: ``GET /v1/db/items?order=id&limit=20`` with real sign-in tokens
for many orgs, through the whole pipeline (JWT, live session, membership, RLS with the
verified org context, logging), against peers started here on the same database and data:
a bare Litestar + asyncpg endpoint, FastAPI + SQLAlchemy async ORM, and PostGraphile v4.

The peers set the org with plain settings (``set_config``), the way PostgREST and
PostGraphile do; orgbase's own tables refuse such a context (it cannot be forged), so the
peers read ``peer.items``: the same rows, index and shape, under a policy that trusts the
setting, as orgbase's did before its context became verified.

Run: ``make bench-data`` (or ``.venv/bin/python -m bench.data_bench [seconds]``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx

from bench.cpu import CpuMeter, CpuPerRequest
from bench.harness import (
    ROOT,
    SERVER_PIDS,
    WrkResult,
    free_port,
    gateway,
    local_stack,
    make_users,
    org_of,
    prepare_database,
    wrk,
)
from devstack.layout import PG_SUPERUSER

ORGS = 50
ROWS_PER_ORG = 100
PATH = "/v1/db/items?order=id&limit=20"
GRAPHQL = json.dumps(
    {"query": "{ allItems(first: 20, orderBy: ID_ASC) { nodes { id title status createdAt } } }"}
)
POSTGRAPHILE_DIR = ROOT / ".orgbase" / "bench" / "postgraphile"


def wait_http(url: str, within: float = 60.0, method: str = "GET", **kwargs: object) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            httpx.request(method, url, timeout=2, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        else:
            return  # any answer means it listens
    raise SystemExit(f"{url} did not answer")


@contextmanager
def process(
    command: list[str], env: dict[str, str], cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()


@contextmanager
def uvicorn_peer(app: str, env: dict[str, str], workers: int) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with process(command, env) as child:
        base = f"http://127.0.0.1:{port}"
        SERVER_PIDS[base] = child.pid
        wait_http(f"{base}/items", headers={"Authorization": "Bearer x"})
        yield base


@contextmanager
def postgraphile_peer(env: dict[str, str], workers: int) -> Iterator[str | None]:
    if shutil.which("npm") is None:
        yield None
        return
    POSTGRAPHILE_DIR.mkdir(parents=True, exist_ok=True)
    source = ROOT / "bench" / "peers" / "postgraphile"
    for name in ("package.json", "server.js"):
        shutil.copy(source / name, POSTGRAPHILE_DIR / name)
    if not (POSTGRAPHILE_DIR / "node_modules" / "postgraphile").exists():
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund"],
            cwd=POSTGRAPHILE_DIR,
            check=True,
        )
    port = free_port()
    peer_env = {**env, "BENCH_PORT": str(port), "BENCH_WORKERS": str(workers)}
    with process(["node", "server.js"], peer_env, cwd=POSTGRAPHILE_DIR) as child:
        base = f"http://127.0.0.1:{port}"
        SERVER_PIDS[base] = child.pid
        wait_http(f"{base}/graphql", method="POST", json={"query": "{__typename}"})
        yield base


# The peers' table: api.items' rows, index and shape, with the classic settings policy.
PEER_TABLE = """
CREATE SCHEMA IF NOT EXISTS peer;
GRANT USAGE ON SCHEMA peer TO orgbase_api;
DROP TABLE IF EXISTS peer.items;
CREATE TABLE peer.items (
    id bigint PRIMARY KEY,
    title text NOT NULL,
    status text,
    created_at timestamptz NOT NULL DEFAULT now(),
    org_id uuid NOT NULL,
    created_by uuid
);
INSERT INTO peer.items SELECT id, title, status, created_at, org_id, created_by FROM api.items;
CREATE INDEX ON peer.items (org_id, id);
ALTER TABLE peer.items ENABLE ROW LEVEL SECURITY;
ALTER TABLE peer.items FORCE ROW LEVEL SECURITY;
CREATE POLICY by_setting ON peer.items FOR SELECT TO orgbase_api
    USING (org_id = (SELECT NULLIF(current_setting('orgbase.org_id', true), '')::uuid));
GRANT SELECT ON peer.items TO orgbase_api;
ANALYZE api.items;
ANALYZE peer.items;
"""


async def seed(migration_url: str, org_ids: list[str]) -> None:
    connection = await asyncpg.connect(migration_url)
    try:
        await connection.executemany(
            "INSERT INTO api.items (org_id, title, status) VALUES ($1::uuid, $2, $3)",
            [
                (org, f"item {n} of {org[:8]}", "open" if n % 3 else "done")
                for org in org_ids
                for n in range(ROWS_PER_ORG)
            ],
        )
        await connection.execute(PEER_TABLE)
    finally:
        await connection.close()


async def orgs_and_tokens(base: str, count: int = ORGS) -> list[str]:
    """``count`` users, each the owner of a new org; their tokens scoped to it."""
    users = await make_users(base, count, prefix="data")
    tokens = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for user in users:
            headers = {"Authorization": f"Bearer {user['access_token']}"}
            org = (
                await client.post("/v1/orgs", headers=headers, json={"name": user["email"]})
            ).json()
            switched = await client.post(
                "/v1/auth/token",
                json={
                    "grant_type": "refresh_token",
                    "refresh_token": user["refresh_token"],
                    "org_id": org["id"],
                },
            )
            tokens.append(switched.json()["access_token"])
    return tokens


def check_same_answer(base: str, token: str, path: str) -> int:
    response = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    response.raise_for_status()
    return len(response.json())


def summary(
    results: dict[tuple[str, int], WrkResult], cpu: dict[tuple[str, int], CpuPerRequest]
) -> None:
    ours = results[("orgbase (whole pipeline)", 2)]
    print("\nratios with 2 workers (orgbase whole pipeline / peer, requests/s):")
    for label in (
        "bare Litestar + asyncpg",
        "FastAPI + SQLAlchemy async",
        "PostGraphile v4",
        "orgbase, token cache off",
        "orgbase, per-org limits off",
    ):
        peer = results.get((label, 2))
        if peer:
            print(f"  vs {label:<28} {ours.rps / peer.rps:5.2f}x")
    bare = results.get(("bare Litestar + asyncpg", 2))
    print(
        f"orgbase p99 with 2 workers: {ours.p99_ms:.2f} ms"
        + (f" (bare Litestar's: {bare.p99_ms:.2f} ms)" if bare else "")
    )
    print("\nCPU microseconds per request with 2 workers (server / PostgreSQL):")
    for (label, workers), figures in cpu.items():
        if workers == 2:
            print(f"  {label:<30} {figures.server_us:6.0f} / {figures.postgres_us:6.0f}")
    print("(per-org limits and usage metering are on: their defaults, as deployed)")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    stack = local_stack()
    env = asyncio.run(prepare_database(stack))
    env.update(
        {
            "ORGBASE_AUTH_ARGON2_TIME_COST": "1",  # sign-ins are not what is measured here
            "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
            "ORGBASE_LOG_LEVEL": "info",  # the access log is part of the pipeline
            # The bare peer's pool: 8 connections per worker. More backends than cores only
            # queue in PostgreSQL, where they take CPU from the workers (a longer tail).
            "ORGBASE_DATABASE_API_POOL_MAX": "8",
        }
    )
    with gateway(env) as base:
        tokens = asyncio.run(orgs_and_tokens(base))
        jwks = httpx.get(f"{base}/.well-known/jwks.json").json()
    database = env["ORGBASE_DATABASE_API_URL"].rsplit("/", 1)[1]
    migration_url = stack.database_url(PG_SUPERUSER, stack.secrets["pg_superuser"], database)
    org_ids = [org_of(t) for t in tokens]
    asyncio.run(seed(migration_url, org_ids))
    jwks_file = ROOT / ".orgbase" / "bench" / "jwks.public.json"
    jwks_file.parent.mkdir(parents=True, exist_ok=True)
    jwks_file.write_text(json.dumps(jwks))
    peer_env = {**env, "BENCH_DSN": env["ORGBASE_DATABASE_API_URL"], "BENCH_JWKS": str(jwks_file)}

    print(
        f"data API benchmark: {ORGS} orgs x {ROWS_PER_ORG} rows, {len(tokens)} tokens, "
        f"wrk 2 threads 32 connections, {seconds:g}s per run, {os.cpu_count()} cores\n"
    )
    results: dict[tuple[str, int], WrkResult] = {}
    cpu: dict[tuple[str, int], CpuPerRequest] = {}

    def run(label: str, workers: int, url: str, **options: object) -> None:
        wrk(url, seconds=2, tokens=tokens, **options)  # type: ignore[arg-type]
        base = "/".join(url.split("/", 3)[:3])
        meter = CpuMeter(SERVER_PIDS.get(base), stack.postgres.pid)
        meter.start()
        result = wrk(url, seconds=seconds, tokens=tokens, **options)  # type: ignore[arg-type]
        cpu[(label, workers)] = meter.stop(result.requests)
        results[(label, workers)] = result
        print(result.line(f"{label}, {workers} worker{'s' if workers > 1 else ''}"))
        print(f"{'':<44} {cpu[(label, workers)].line()}")

    for workers in (1, 2):
        with gateway(env, workers=workers) as base:
            assert check_same_answer(base, tokens[0], PATH) == 20
            run("orgbase (whole pipeline)", workers, base + PATH)
        with gateway(env, workers=workers, ORGBASE_AUTH_TOKEN_CACHE_SIZE="0") as base:
            run("orgbase, token cache off", workers, base + PATH)
        with gateway(env, workers=workers, ORGBASE_LIMITS_ENABLED="false") as base:
            run("orgbase, per-org limits off", workers, base + PATH)
        with uvicorn_peer("bench.peers.bare_litestar:app", peer_env, workers) as base:
            assert check_same_answer(base, tokens[0], "/items?limit=20") == 20
            run("bare Litestar + asyncpg", workers, base + "/items?limit=20")
        with uvicorn_peer("bench.peers.fastapi_sqlalchemy:app", peer_env, workers) as base:
            assert check_same_answer(base, tokens[0], "/items?limit=20") == 20
            run("FastAPI + SQLAlchemy async", workers, base + "/items?limit=20")
        with postgraphile_peer(peer_env, workers) as graphql:
            if graphql is None:
                print("PostGraphile skipped: npm is not installed")
            else:
                run(
                    "PostGraphile v4",
                    workers,
                    graphql + "/graphql",
                    method="POST",
                    bodies=[GRAPHQL],
                )

    summary(results, cpu)


if __name__ == "__main__":
    main()
