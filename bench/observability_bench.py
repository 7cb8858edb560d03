"""What the observability layer costs per request.

Two measures:

1. In-process, per request: the metrics update (prometheus-client, in the multiprocess
   mode that several workers use), the SLO counter and the access-log line written to a
   file, each timed over many calls. Exact, free of network noise.
2. End to end: the data API request of bench/data_bench.py (GET /v1/db/items, 20 rows,
   RLS) under wrk with metrics and the access log on, and with both off, alternated over
   three rounds (medians). The access log goes to a file, as it would to a container's
   log pipe. On a 2-core machine shared by wrk, PostgreSQL and the gateway, runs of the
   same configuration differ by 10-15%, more than the layer costs: the in-process figure
   is the exact one, the end-to-end one checks that nothing unexpected hides elsewhere.

The target (issue 7): under 10% of the request time at the data API's figures.

Run: make bench-observability   (or python -m bench.observability_bench [seconds])
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.data_bench import PATH, orgs_and_tokens, seed
from bench.harness import ROOT, WrkResult, gateway, local_stack, org_of, prepare_database, wrk
from devstack.layout import PG_SUPERUSER

CALLS = 200_000
ROUNDS = 3


def per_call_micros() -> dict[str, float]:
    """Run in a fresh interpreter: prometheus-client picks its value class at import."""
    from orgbase.core.settings import ObservabilitySettings
    from orgbase.observability.logging import _AccessLog
    from orgbase.observability.metrics import Metrics, multiprocess
    from orgbase.observability.slo import SloRecorder

    assert multiprocess(), "PROMETHEUS_MULTIPROC_DIR must be set before the import"
    metrics = Metrics()
    slo = SloRecorder(None, ObservabilitySettings())  # type: ignore[arg-type]  # no Redis needed to count
    routes = [f"/v1/db/table{n}" for n in range(20)]

    def timed(action: object) -> float:
        start = time.perf_counter()
        for n in range(CALLS):
            action(n)  # type: ignore[operator]
        return (time.perf_counter() - start) / CALLS * 1e6

    def record_metrics(n: int) -> None:
        metrics.request_started()
        metrics.request_finished(routes[n % 20], "GET", 200, 0.004)

    figures = {
        "metrics (in-flight, counter, histogram)": timed(record_metrics),
        "SLO counters": timed(lambda n: slo.record("5b3c6a8e-org", 200, 0.004)),
    }
    with tempfile.TemporaryDirectory() as folder, open(Path(folder) / "access.log", "w") as file:
        writer = _AccessLog(file, level=20, json_lines=True)

        def log_line(n: int) -> None:
            writer.write(
                {
                    "request_id": "0f3c1d2e9a8b4c7d",
                    "method": "GET",
                    "path": "/v1/db/items",
                    "route": "/v1/db/{table}",
                    "status": 200,
                    "duration_ms": 4.21,
                    "org_id": "5b3c6a8e-7d1f-4e2a-9c3b-1a2b3c4d5e6f",
                    "user_id": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
                },
                warning=False,
            )

        figures["access log line (JSON, flushed to a file)"] = timed(log_line)
    return figures


def micro_in_subprocess() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="orgbase-bench-metrics-") as folder:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        output = subprocess.run(
            [sys.executable, "-m", "bench.observability_bench", "--micro"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    figures: dict[str, float] = {}
    for line in output.splitlines():
        name, _, value = line.rpartition("\t")
        figures[name] = float(value)
    return figures


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    micro = micro_in_subprocess()
    print(f"observability cost per request, in process ({CALLS} calls each):")
    for name, micros in micro.items():
        print(f"  {name:<44} {micros:6.2f} us")
    total = sum(micro.values())
    print(f"  {'total':<44} {total:6.2f} us")

    stack = local_stack()
    env = asyncio.run(prepare_database(stack))
    env.update(
        {
            "ORGBASE_AUTH_ARGON2_TIME_COST": "1",
            "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
            "ORGBASE_LOG_LEVEL": "info",
            "ORGBASE_DATABASE_API_POOL_MAX": "16",
        }
    )
    with gateway(env) as base:
        tokens = asyncio.run(orgs_and_tokens(base))
    org_ids = [org_of(t) for t in tokens]
    database = env["ORGBASE_DATABASE_API_URL"].rsplit("/", 1)[1]
    asyncio.run(
        seed(stack.database_url(PG_SUPERUSER, stack.secrets["pg_superuser"], database), org_ids)
    )
    log_dir = ROOT / ".orgbase" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)

    print(f"\nend to end: GET {PATH} under wrk, 32 connections, {seconds:g}s per run")
    on_off = {
        "metrics + access log on": {},
        "metrics + access log off": {
            "ORGBASE_OBSERVABILITY_METRICS_ENABLED": "false",
            "ORGBASE_OBSERVABILITY_ACCESS_LOG": "false",
        },
    }
    worker_time_per_request: dict[int, float] = {}
    for workers in (1, 2):
        runs: dict[str, list[WrkResult]] = {label: [] for label in on_off}
        # Alternate so drift on a shared machine hits both sides; report medians.
        for round_ in range(ROUNDS):
            for label, overrides in on_off.items():
                log_file = log_dir / f"observability-{workers}.log"
                with gateway(env, workers=workers, log_file=log_file, **overrides) as base:
                    url = base + PATH
                    wrk(url, seconds=2, tokens=tokens)
                    result = wrk(url, seconds=seconds, tokens=tokens)
                runs[label].append(result)
                print(result.line(f"{label}, {workers} worker(s), round {round_ + 1}"))
        on = statistics.median(r.rps for r in runs["metrics + access log on"])
        off = statistics.median(r.rps for r in runs["metrics + access log off"])
        spread = [r.rps for rs in runs.values() for r in rs]
        worker_time_per_request[workers] = workers * 1e6 / off
        print(
            f"  {workers} worker(s), medians: on {on:.0f} vs off {off:.0f} req/s "
            f"({(off - on) / off * 100:+.1f}% of throughput); runs spread "
            f"{min(spread):.0f}-{max(spread):.0f} req/s, so the end-to-end difference is "
            "within run-to-run noise unless it exceeds that spread"
        )
    # The exact in-process figure against the worker time one request takes.
    for workers, request_micros in worker_time_per_request.items():
        print(
            f"in-process cost {total:.1f} us = {total / request_micros * 100:.1f}% of the "
            f"{request_micros:.0f} us of worker time a request takes with {workers} worker(s)"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--micro"]:
        for name, value in per_call_micros().items():
            print(f"{name}\t{value}")
    else:
        main()
