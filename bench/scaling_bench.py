"""The engines beyond one machine, measured on this one (docs/scaling.md).

- Data API read (GET /v1/db/items?limit=20, tokens of many orgs) through one gateway
  process with 2 workers, against the primary only and against primary + a local
  streaming replica (reads go to the replica; read-your-writes costs one Redis GET).
- Realtime fan-out (N WebSocket subscribers of one org channel, messages published over
  HTTP): deliveries/s on Sentinel Redis and on the local 6-node Redis Cluster.
- Cache operations (GET and PUT /v1/kv/k) on both.

Everything runs on one 2-core machine shared with other work: the figures show the
overhead of the routing and whether it works, not the gain more machines would give (a
replica on the same cores adds no CPU).

Run: ``make bench-scaling`` (or ``.venv/bin/python -m bench.scaling_bench [seconds]``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys

import httpx

from bench.data_bench import ORGS, orgs_and_tokens, seed
from bench.harness import gateway, local_stack, org_of, prepare_database, wrk
from bench.services_bench import MESSAGES, SUBSCRIBERS, fan_out, org_tokens
from devstack import LocalStack
from devstack.layout import PG_SUPERUSER

BENCH_DATABASE = "orgbase_bench"
BASE_ENV = {
    "ORGBASE_AUTH_ARGON2_TIME_COST": "1",
    "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
    "ORGBASE_LOG_LEVEL": "warning",
    "ORGBASE_OBSERVABILITY_ACCESS_LOG": "false",
}


def cluster_env(stack: LocalStack, env: dict[str, str]) -> dict[str, str]:
    """``env`` with Redis on the local cluster instead of Sentinel."""
    out = {k: v for k, v in env.items() if not k.startswith("ORGBASE_REDIS_SENTINEL")}
    out["ORGBASE_REDIS_CLUSTER_NODES"] = ",".join(stack.redis_cluster.addresses())
    out["ORGBASE_REDIS_DB"] = "0"
    return out


def replica_reads(base: str) -> str:
    check = httpx.get(f"{base}/health/ready", timeout=10).json()["checks"]["postgres_replicas"]
    replica = check["replicas"][0]
    return f"replica {replica['status']}, reads on it {replica['reads']}"


def data_reads(stack: LocalStack, env: dict[str, str], seconds: float) -> None:
    replica_url = stack.database_replica_url(stack.secrets["pg_api"], BENCH_DATABASE)
    url_path = "/v1/db/items?limit=20"
    tokens: list[str] = []
    for label, extra in (
        ("primary only", {}),
        ("primary + replica", {"ORGBASE_DATABASE_REPLICA_URLS": replica_url}),
    ):
        with gateway({**env, **extra}, workers=2) as base:
            if not tokens:  # the same orgs, rows and sessions for both runs
                tokens = asyncio.run(orgs_and_tokens(base, ORGS))
                migration = stack.database_url(
                    PG_SUPERUSER, stack.secrets["pg_superuser"], BENCH_DATABASE
                )
                asyncio.run(seed(migration, [org_of(t) for t in tokens]))
            wrk(f"{base}{url_path}", seconds=2, tokens=tokens)
            result = wrk(f"{base}{url_path}", seconds=seconds, tokens=tokens)
            print(result.line(f"GET {url_path}, {label}"))
            if extra:
                print(f"    ({replica_reads(base)})")


def redis_modes(stack: LocalStack, env: dict[str, str], seconds: float) -> None:
    tokens: list[str] = []
    for label, mode_env in (("Sentinel", env), ("6-node cluster", cluster_env(stack, env))):
        if label != "Sentinel":
            stack.redis_cluster.flush()
        with gateway(mode_env) as base:
            if not tokens:  # the same orgs and sessions for both runs
                tokens = asyncio.run(org_tokens(base))
            else:
                asyncio.run(put_key(base, tokens))
            kv_body = [json.dumps({"value": {"n": n}, "ttl": 300}) for n in range(50)]
            for what, options in (
                ("GET /v1/kv/k", {}),
                ("PUT /v1/kv/k", {"method": "PUT", "bodies": kv_body}),
            ):
                wrk(f"{base}/v1/kv/k", seconds=2, tokens=tokens, **options)  # type: ignore[arg-type]
                result = wrk(f"{base}/v1/kv/k", seconds=seconds, tokens=tokens, **options)  # type: ignore[arg-type]
                print(result.line(f"{what}, {label}"))
            rate, latencies = asyncio.run(fan_out(base, tokens[0]))
            latencies.sort()
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99)] * 1000
            print(
                f"realtime fan-out, {label}: {SUBSCRIBERS} subscribers x {MESSAGES} messages:"
                f" {rate:.0f} deliveries/s, latency p50 {p50:.1f} ms p99 {p99:.1f} ms"
            )


async def put_key(base: str, tokens: list[str]) -> None:
    """The key the cache reads hit, in every org (the cluster starts empty)."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}"}
            answer = await client.put("/v1/kv/k", headers=headers, json={"value": {"n": 1}})
            answer.raise_for_status()


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    stack = local_stack()
    # The database first: its environment is the default one (Sentinel, no replica).
    env = asyncio.run(prepare_database(stack, BENCH_DATABASE))
    stack.start_redis_cluster()
    stack.start_pg_replica()
    env.update(BASE_ENV)
    print(
        "scaling benchmark on ONE 2-core machine shared by four engineers: the replica and"
        " the cluster share the cores with everything else, so these figures show overhead"
        f" and correctness, not gain. wrk 2 threads 32 connections, {seconds:g}s each.\n"
    )
    print("data API read, one gateway process with 2 workers, 50 orgs:")
    data_reads(stack, env, seconds)
    print("\ncache and realtime, one gateway worker, 20 orgs:")
    redis_modes(stack, env, seconds)


if __name__ == "__main__":
    main()
