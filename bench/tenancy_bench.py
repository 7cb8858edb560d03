"""Fair multi-tenancy, measured: noisy neighbours and the cost of many orgs.

1. Noisy neighbour (one gateway process, tenant pool of 10): org B reads 20 rows with 8
   connections, flooding (back to back: the machine saturated by B alone) and then steady
   (10 ms between requests); its p99 alone, then while org A sends expensive reads (an
   unindexed filter over 200,000 rows of its own)
   a. at 10x its requests-per-minute limit (paced: A's limit 120/min, A sends 20/s),
   b. within its rate limit but saturating its concurrency (A capped at 2 statements,
      32 connections flooding).
   Printed: B's p99 and its ratio to B alone, A's answers (200 / 429) and A's latency.
2. Cost as orgs grow: 10,000 orgs with 100 rows each (1M rows), 10,000 users with a
   session each; the data API read spread over 10, 1,000 and 10,000 orgs (10,000 tokens
   every time): requests/s, p99, the server's memory, and the bounded caches.

3. What per-org limits and metering cost the data API read: gateways with limits on and
   off alternated in three rounds (CPU per request of the server and PostgreSQL).

4. Noisy neighbour at defaults (bench/noisy_defaults.py): nothing configured for A, A
   flooding expensive reads on 24 connections, B steady and B flooding; and the gate's
   own cost per statement.

Run: ``make bench-tenancy`` (or ``.venv/bin/python -m bench.tenancy_bench [seconds]
[noisy,cost,scale,defaults]``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.cpu import CpuMeter, rss_mib, tree
from bench.harness import (
    PASSWORD,
    SERVER_PIDS,
    WrkResult,
    gateway,
    local_stack,
    make_users,
    org_of,
    prepare_database,
    wrk,
)
from devstack import LocalStack
from devstack.layout import PG_SUPERUSER

DATABASE = "orgbase_bench_tenancy"
READ = "/v1/db/items?order=id&limit=20"
EXPENSIVE = "/v1/db/items?title=like.*zz*&order=id&limit=20"
A_LIMIT_PER_MINUTE = 120
A_STATEMENTS = 2
B_LOADS = {"flooding (8 conns back to back)": 0, "steady (8 conns, 10 ms between requests)": 10}
SCALE_ORGS = 10_000
SCALE_USERS = 10_000
ROWS_PER_ORG = 100


async def owner_of_new_org(client: httpx.AsyncClient, user: dict[str, Any]) -> str:
    """A new org owned by ``user``; a token with it active."""
    headers = {"Authorization": f"Bearer {user['access_token']}"}
    org = (await client.post("/v1/orgs", headers=headers, json={"name": user["email"]})).json()
    switched = await client.post(
        "/v1/auth/token",
        json={
            "grant_type": "refresh_token",
            "refresh_token": user["refresh_token"],
            "org_id": org["id"],
        },
    )
    switched.raise_for_status()
    return str(switched.json()["access_token"])


# -- 1. noisy neighbour -------------------------------------------------------------------


def paced(base: str, token: str, rate: float, seconds: float) -> dict[str, int]:
    """Send GET EXPENSIVE at ``rate`` per second for ``seconds``; count the answers."""

    async def send() -> dict[str, int]:
        counts: dict[str, int] = {}
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

            async def one() -> None:
                try:
                    status = str((await client.get(EXPENSIVE, headers=headers)).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                counts[status] = counts.get(status, 0) + 1

            tasks = []
            started = time.monotonic()
            sent = 0
            while time.monotonic() - started < seconds:
                due = int((time.monotonic() - started) * rate) + 1
                while sent < due:
                    tasks.append(asyncio.ensure_future(one()))
                    sent += 1
                await asyncio.sleep(0.005)
            await asyncio.gather(*tasks)
        return counts

    return asyncio.run(send())


@contextmanager
def logged_gateway(stack: LocalStack, env: dict[str, str], name: str) -> Iterator[tuple[str, Path]]:
    """One gateway process with a tenant pool of 10 and its access log in a file: the log
    gives B's latency inside the gateway (request read to response written), what the
    gate controls, without the time requests wait for a core."""
    log_file = stack.layout.state_dir / "bench" / f"{name}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with gateway(
        env, log_file=log_file, ORGBASE_LOG_LEVEL="info", ORGBASE_DATABASE_API_POOL_MAX="10"
    ) as base:
        yield base, log_file


def noisy_neighbour(stack: LocalStack, env: dict[str, str], seconds: float) -> None:
    print("1. noisy neighbour: one gateway process, tenant pool 10, B reads 20 rows (8 conns)")
    with logged_gateway(stack, env, "noisy-neighbour") as (base, log_file):
        users = asyncio.run(make_users(base, 3, prefix="noisy"))

        async def setup() -> tuple[str, str, dict[str, str]]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                token_a = await owner_of_new_org(client, users[0])
                token_b = await owner_of_new_org(client, users[1])
            return token_a, token_b, {"Authorization": f"Bearer {users[2]['access_token']}"}

        token_a, token_b, admin = asyncio.run(setup())
        org_a, org_b = org_of(token_a), org_of(token_b)
        asyncio.run(seed_noisy(stack, org_a, org_b, users[2]["user"]["id"]))

        def set_a(**limits: int) -> None:
            """A's limits: these, the defaults for the rest (PUT replaces)."""
            response = httpx.put(
                f"{base}/v1/platform/orgs/{org_a}/limits", headers=admin, json=limits
            )
            response.raise_for_status()

        wrk(base + READ, seconds=2, connections=8, tokens=[token_b])
        inside: dict[int, float] = {}
        for b_load, pause_ms in B_LOADS.items():
            print(f"   B {b_load}")

            def b_reads(pause: int = pause_ms) -> WrkResult:
                logged = log_file.stat().st_size
                result = wrk(
                    base + READ, seconds=seconds, connections=8, tokens=[token_b], pause_ms=pause
                )
                inside[id(result)] = gateway_p99(log_file, logged, org_b)
                return result

            set_a()
            alone = b_reads()
            print(alone.line("   B alone"))
            print(f"{'':<44} B p99 inside the gateway {inside[id(alone)]:6.2f} ms")

            # a. A at 10x its rate limit, paced.
            set_a(data_requests_per_minute=A_LIMIT_PER_MINUTE, concurrent_statements=A_STATEMENTS)
            rate = A_LIMIT_PER_MINUTE / 60 * 10
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                flood = pool.submit(paced, base, token_a, rate, seconds + 2)
                time.sleep(1)
                with_a = b_reads()
                counts = flood.result()
            print(with_a.line(f"   B, A at 10x its limit ({rate:.0f}/s)"))
            print(
                f"{'':<44} B p99 ratio {with_a.p99_ms / alone.p99_ms:4.2f}x;"
                f" A's answers {dict(sorted(counts.items()))}"
            )
            print(f"{'':<44} {_inside_line(inside[id(with_a)], inside[id(alone)])}")

            # b. A within its rate limit, saturating its concurrency.
            set_a(data_requests_per_minute=100_000_000, concurrent_statements=A_STATEMENTS)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                flood_b = pool.submit(
                    wrk, base + EXPENSIVE, seconds=seconds + 2, connections=32, tokens=[token_a]
                )
                time.sleep(1)
                with_b = b_reads()
                a_result: WrkResult = flood_b.result()
            print(with_b.line(f"   B, A saturating its {A_STATEMENTS} statements"))
            print(f"{'':<44} B p99 ratio {with_b.p99_ms / alone.p99_ms:4.2f}x")
            print(f"{'':<44} {_inside_line(inside[id(with_b)], inside[id(alone)])}")
            print(a_result.line("   A itself (32 conns, expensive reads)"))
        print()


def gateway_p99(log_file: Any, offset: int, org: str) -> float:
    """p99 of ``org``'s reads in the access log written past ``offset`` (milliseconds)."""
    durations = []
    with open(log_file, "rb") as log:
        log.seek(offset)
        for line in log:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("org_id") == org and entry.get("status") == 200:
                durations.append(float(entry["duration_ms"]))
    durations.sort()
    return durations[int(len(durations) * 0.99)] if durations else float("nan")


def _inside_line(with_neighbour: float, alone: float) -> str:
    return (
        f"B p99 inside the gateway {with_neighbour:6.2f} ms"
        f" ({with_neighbour / alone:4.2f}x its {alone:.2f} ms alone)"
    )


async def seed_noisy(
    stack: LocalStack, org_a: str, org_b: str, admin_id: str, a_rows: int = 200_000
) -> None:
    connection = await asyncpg.connect(_owner_url(stack))
    try:
        await connection.execute(
            "UPDATE orgbase.users SET is_platform_admin = true WHERE id = $1::uuid", admin_id
        )
        # Bulk rows without their audit records, row events and webhook fan-out (triggers).
        await connection.execute("SET session_replication_role = replica")
        await connection.execute(
            "INSERT INTO api.items (org_id, title, status)"
            " SELECT $1::uuid, 'item ' || n, 'open' FROM generate_series(1, $2) AS n",
            org_a,
            a_rows,
        )
        await connection.execute(
            "INSERT INTO api.items (org_id, title, status)"
            " SELECT $1::uuid, 'item ' || n, 'open' FROM generate_series(1, 100) AS n",
            org_b,
        )
        await connection.execute("ANALYZE api.items")
    finally:
        await connection.close()


def _owner_url(stack: LocalStack) -> str:
    return stack.database_url(PG_SUPERUSER, stack.secrets["pg_superuser"], DATABASE)


# -- 2. cost as orgs grow -----------------------------------------------------------------


async def _seed_scale(
    stack: LocalStack, password_hash: str
) -> tuple[list[tuple[str, str]], list[str]]:
    """10,000 users (one password hash for all: a sign-in still verifies it), 10,000 orgs
    with 100 rows each; user n is a member of orgs n % 10, n % 1,000 and n."""
    connection = await asyncpg.connect(_owner_url(stack))
    try:
        # Bulk rows without their audit records, row events and webhook fan-out (triggers).
        await connection.execute("SET session_replication_role = replica")
        users = await connection.fetch(
            "INSERT INTO orgbase.users (email, password_hash)"
            " SELECT 'scale-' || n || '@bench.test', $1 FROM generate_series(0, $2 - 1) AS n"
            " RETURNING id, email",
            password_hash,
            SCALE_USERS,
        )
        orgs = await connection.fetch(
            "INSERT INTO orgbase.orgs (name) SELECT 'scale ' || n"
            " FROM generate_series(0, $1 - 1) AS n RETURNING id",
            SCALE_ORGS,
        )
        org_ids = [row["id"] for row in orgs]
        memberships = set()
        for n, user in enumerate(users):
            for modulo in (10, 1000, SCALE_ORGS):
                memberships.add((org_ids[n % modulo], user["id"]))
        await connection.copy_records_to_table(
            "memberships",
            schema_name="orgbase",
            columns=["org_id", "user_id", "role"],
            records=[(org, user, "owner") for org, user in memberships],
        )
        await connection.execute(
            "INSERT INTO api.items (org_id, title, status)"
            " SELECT o.id, 'item ' || n, 'open' FROM unnest($1::uuid[]) AS o(id),"
            " generate_series(1, $2) AS n",
            org_ids,
            ROWS_PER_ORG,
        )
        await connection.execute("ANALYZE")
        people = [(str(row["email"]), str(row["id"])) for row in users]
        return people, [str(org) for org in org_ids]
    finally:
        await connection.close()


async def _tokens_for_scales(
    base: str, users: list[tuple[str, str]], org_ids: list[str]
) -> dict[int, list[str]]:
    """Each user signs in once (in org n), then switches to orgs n % 1,000 and n % 10 with
    its refresh token: three access tokens per user, one session."""
    out: dict[int, list[str]] = {10: [], 1000: [], SCALE_ORGS: []}
    limits = httpx.Limits(max_connections=16)
    semaphore = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one(n: int, email: str) -> dict[int, str]:
            async with semaphore:
                grant = await client.post(
                    "/v1/auth/token",
                    json={
                        "grant_type": "password",
                        "email": email,
                        "password": PASSWORD,
                        "org_id": org_ids[n],
                    },
                )
                grant.raise_for_status()
                tokens = {SCALE_ORGS: grant.json()["access_token"]}
                refresh = grant.json()["refresh_token"]
                for modulo in (1000, 10):
                    switched = await client.post(
                        "/v1/auth/token",
                        json={
                            "grant_type": "refresh_token",
                            "refresh_token": refresh,
                            "org_id": org_ids[n % modulo],
                        },
                    )
                    switched.raise_for_status()
                    tokens[modulo] = switched.json()["access_token"]
                    refresh = switched.json()["refresh_token"]
                return tokens

        for got in await asyncio.gather(*(one(n, email) for n, (email, _) in enumerate(users))):
            for scale, token in got.items():
                out[scale].append(token)
    return out


def cost_as_orgs_grow(stack: LocalStack, env: dict[str, str], seconds: float) -> None:
    print(
        f"2. cost as orgs grow: {SCALE_ORGS} orgs x {ROWS_PER_ORG} rows, {SCALE_USERS} users"
        " (one session each), reads spread over N orgs, 2 workers, 32 connections"
    )
    with gateway(env) as base:
        probe = asyncio.run(make_users(base, 1, prefix="scale-probe"))[0]
        password_hash = asyncio.run(_password_hash(stack, probe["email"]))
        started = time.monotonic()
        users, org_ids = asyncio.run(_seed_scale(stack, password_hash))
        print(f"   seeded in {time.monotonic() - started:.0f}s", flush=True)
        started = time.monotonic()
        tokens = asyncio.run(_tokens_for_scales(base, users, org_ids))
        print(f"   {3 * len(users)} tokens in {time.monotonic() - started:.0f}s", flush=True)
    results = {}
    with gateway(env, workers=2) as base:
        server = SERVER_PIDS[base]
        print(f"   server memory at start: {rss_mib(tree(server)):.0f} MiB (2 workers)")
        for scale in (10, 1000, SCALE_ORGS):
            wrk(base + READ, seconds=3, tokens=tokens[scale])
            meter = CpuMeter(server, stack.postgres.pid)
            meter.start()
            result = wrk(base + READ, seconds=seconds, tokens=tokens[scale])
            cpu = meter.stop(result.requests)
            results[scale] = result
            print(result.line(f"reads over {scale} orgs"))
            print(f"{'':<44} {cpu.line()}   server memory {rss_mib(tree(server)):.0f} MiB")
    fastest = max(r.rps for r in results.values())
    slowest = min(r.rps for r in results.values())
    p99s = [r.p99_ms for r in results.values()]
    print(
        f"   requests/s spread {fastest / slowest:4.2f}x, p99 spread {max(p99s) / min(p99s):4.2f}x"
    )
    print(
        "   bounded in process: verified tokens (ORGBASE_AUTH_TOKEN_CACHE_SIZE, 8192),"
        " prepared reads (ORGBASE_DATA_STATEMENT_CACHE, 2048), org limits"
        " (ORGBASE_LIMITS_CACHE_SIZE, 100000), session touches (10000), document storage"
        " figures (10000); sessions and memberships are cached in Redis with a TTL"
    )


def limits_cost(stack: LocalStack, env: dict[str, str], seconds: float) -> None:
    """What limits and metering cost the data API read: gateways with per-org limits on
    and off, alternated in rounds (1 worker, 20 orgs), CPU per request and requests/s."""
    print("3. what per-org limits cost the data API read (1 worker, 20 orgs, rounds on/off)")
    with gateway(env) as base:
        users = asyncio.run(make_users(base, 20, prefix="cost"))

        async def orgs() -> list[str]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                return [await owner_of_new_org(client, user) for user in users]

        tokens = asyncio.run(orgs())
    asyncio.run(_seed_rows(stack, [org_of(t) for t in tokens]))
    figures: dict[str, list[tuple[float, float, float]]] = {"on": [], "off": []}
    for _ in range(3):
        for mode in ("on", "off"):
            enabled = "true" if mode == "on" else "false"
            with gateway(env, ORGBASE_LIMITS_ENABLED=enabled) as base:
                wrk(base + READ, seconds=2, tokens=tokens)
                meter = CpuMeter(SERVER_PIDS[base], stack.postgres.pid)
                meter.start()
                result = wrk(base + READ, seconds=seconds, tokens=tokens)
                cpu = meter.stop(result.requests)
                figures[mode].append((result.rps, cpu.server_us, cpu.postgres_us))
                print(f"   limits {mode:<3} {result.line('')[44:]}   {cpu.line()}", flush=True)
    for mode, rounds in figures.items():
        rps, server, postgres = (sorted(values)[1] for values in zip(*rounds, strict=True))
        print(
            f"   medians, limits {mode:<3}: {rps:6.0f} req/s, server {server:5.0f} us,"
            f" postgres {postgres:5.0f} us per request"
        )


async def _seed_rows(stack: LocalStack, org_ids: list[str]) -> None:
    connection = await asyncpg.connect(_owner_url(stack))
    try:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute(
            "INSERT INTO api.items (org_id, title, status)"
            " SELECT o.id, 'item ' || n, 'open' FROM unnest($1::uuid[]) AS o(id),"
            " generate_series(1, $2) AS n",
            org_ids,
            ROWS_PER_ORG,
        )
        await connection.execute("ANALYZE api.items")
    finally:
        await connection.close()


async def _password_hash(stack: LocalStack, email: str) -> str:
    connection = await asyncpg.connect(_owner_url(stack))
    try:
        return str(
            await connection.fetchval(
                "SELECT password_hash FROM orgbase.users WHERE email = $1", email
            )
        )
    finally:
        await connection.close()


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    parts = sys.argv[2].split(",") if len(sys.argv) > 2 else ["noisy", "defaults", "cost", "scale"]
    stack = local_stack()
    env = asyncio.run(prepare_database(stack, DATABASE))
    env.update(
        {
            "ORGBASE_AUTH_ARGON2_TIME_COST": "1",  # sign-ins are not what is measured here
            "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
            "ORGBASE_AUTH_HASH_CONCURRENCY": "2",
            "ORGBASE_LOG_LEVEL": "warning",
        }
    )
    print(
        f"tenancy benchmark: {seconds:g}s per run, {os.cpu_count()} cores"
        " (figures from a shared machine are noisy: compare within one run)\n"
    )
    if "noisy" in parts:
        noisy_neighbour(stack, env, seconds)
    if "defaults" in parts:
        from bench.noisy_defaults import noisy_at_defaults  # it imports this module

        noisy_at_defaults(stack, env, seconds)
    if "cost" in parts:
        limits_cost(stack, env, seconds)
        print()
    if "scale" in parts:
        cost_as_orgs_grow(stack, env, seconds)


if __name__ == "__main__":
    main()
