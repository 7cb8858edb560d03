"""Auth benchmark: the per-request cost of JWT verify + live-session check (Redis cached,
and with the PostgreSQL fallback), sign-in throughput, and the p99 of unrelated requests
during a sign-in burst. Run: `make bench-auth` (or .venv/bin/python -m bench.auth_bench)."""

from __future__ import annotations

import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor

from bench.harness import PASSWORD, gateway, local_stack, make_users, prepare_database, wrk

SECONDS = 10


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else SECONDS
    stack = local_stack()
    env = asyncio.run(prepare_database(stack))
    print(f"auth benchmark: 1 gateway worker, wrk 2 threads, {seconds:g}s per run\n")
    with gateway(env) as base:
        users = asyncio.run(make_users(base, 64))
        tokens = [u["access_token"] for u in users]
        wrk(f"{base}/v1/auth/session", seconds=2, tokens=tokens)  # warm up
        live = wrk(f"{base}/health/live", seconds=seconds)
        cached = wrk(f"{base}/v1/auth/session", seconds=seconds, tokens=tokens)
        print(live.line("GET /health/live (no auth)"))
        print(cached.line("GET /v1/auth/session (JWT + Redis session)"))
        sign_in_bodies = [
            json.dumps({"grant_type": "password", "email": u["email"], "password": PASSWORD})
            for u in users
        ]
        quiet = wrk(f"{base}/health/live", seconds=seconds, connections=4, threads=1)
        with ThreadPoolExecutor(2) as pool:
            burst_future = pool.submit(
                wrk,
                f"{base}/v1/auth/token",
                seconds=seconds,
                connections=8,
                threads=1,
                method="POST",
                bodies=sign_in_bodies,
            )
            during_future = pool.submit(
                wrk, f"{base}/health/live", seconds=seconds, connections=4, threads=1
            )
            burst, during = burst_future.result(), during_future.result()
        print(burst.line("POST /v1/auth/token (sign-in, argon2id t=3 64MiB)"))
        print(quiet.line("GET /health/live, 4 conns, alone"))
        print(during.line("GET /health/live, 4 conns, during sign-ins"))

    fallback_env = {
        **env,
        "ORGBASE_REDIS_SENTINELS": "",
        "ORGBASE_REDIS_URL": "redis://127.0.0.1:1",
    }
    with gateway(fallback_env) as base:
        wrk(f"{base}/v1/auth/session", seconds=2, tokens=tokens)
        fallback = wrk(f"{base}/v1/auth/session", seconds=seconds, tokens=tokens)
        print(fallback.line("GET /v1/auth/session (Redis down: PostgreSQL)"))

    def per_request_us(rps: float) -> float:
        return 1e6 / rps

    print()
    print(
        "auth overhead per request (CPU time at saturation, vs. no auth): "
        f"Redis cached {per_request_us(cached.rps) - per_request_us(live.rps):.0f} us, "
        f"PostgreSQL fallback {per_request_us(fallback.rps) - per_request_us(live.rps):.0f} us"
    )
    print(
        f"p50 latency added at 32 connections: Redis cached {cached.p50_ms - live.p50_ms:.2f} ms, "
        f"PostgreSQL fallback {fallback.p50_ms - live.p50_ms:.2f} ms"
    )
    print(
        f"sign-in throughput {burst.rps:.1f}/s; unrelated p99 {quiet.p99_ms:.2f} ms alone, "
        f"{during.p99_ms:.2f} ms during the sign-in burst"
    )


if __name__ == "__main__":
    main()
