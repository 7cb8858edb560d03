"""Noisy neighbour at defaults, and what the gate's sharing of database time costs.

Nothing configured for org A (the default limits): A floods expensive reads (an
unindexed ``like`` over its 30,000 rows, ~10 ms each on an idle machine: under the
heavy-statement rule's 20 ms) on 24 connections, while org B reads 20 rows on 8
connections, steady (10 ms between requests) and then flooding. One gateway process,
tenant pool of 10. Printed: B's p99 alone and beside A (wrk's, and inside the gateway from
the access log), their ratio, and A's own figures.

The gate's own cost: CPU of acquire + release of one slot, uncontended, with 1, 100 and
10,000 orgs active in the window, with the time share and without it (round robin only),
in this process (pure asyncio).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any

import httpx

from bench.harness import WrkResult, make_users, org_of, wrk
from bench.tenancy_bench import gateway_p99, logged_gateway, owner_of_new_org, seed_noisy
from devstack import LocalStack
from orgbase.limits.fair_gate import FairGate
from orgbase.limits.time_share import TimeShare

READ = "/v1/db/items?order=id&limit=20"
EXPENSIVE = "/v1/db/items?title=like.*zz*&order=id&limit=20"
A_ROWS = 30_000
A_CONNECTIONS = 24
B_LOADS = {"steady (8 conns, 10 ms between requests)": 10, "flooding (8 conns)": 0}


async def _two_orgs(base: str, users: list[dict[str, Any]]) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return await owner_of_new_org(client, users[0]), await owner_of_new_org(client, users[1])


def noisy_at_defaults(stack: LocalStack, env: dict[str, str], seconds: float) -> None:
    print(
        "4. noisy neighbour at defaults: nothing configured for A; A floods expensive reads"
        f" on {A_CONNECTIONS} connections; one gateway process, tenant pool 10"
    )
    with logged_gateway(stack, env, "noisy-defaults") as (base, log_file):
        users = asyncio.run(make_users(base, 3, prefix="defaults"))
        token_a, token_b = asyncio.run(_two_orgs(base, users))
        org_b = org_of(token_b)
        asyncio.run(seed_noisy(stack, org_of(token_a), org_b, users[2]["user"]["id"], A_ROWS))
        wrk(base + READ, seconds=2, connections=8, tokens=[token_b])
        for b_load, pause_ms in B_LOADS.items():

            def b_reads(pause: int = pause_ms) -> tuple[WrkResult, float]:
                logged = log_file.stat().st_size
                result = wrk(
                    base + READ, seconds=seconds, connections=8, tokens=[token_b], pause_ms=pause
                )
                return result, gateway_p99(log_file, logged, org_b)

            alone, alone_inside = b_reads()
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                flood = pool.submit(
                    wrk,
                    base + EXPENSIVE,
                    seconds=seconds + 3,
                    connections=A_CONNECTIONS,
                    tokens=[token_a],
                )
                time.sleep(1.5)
                beside, beside_inside = b_reads()
                a_result = flood.result()
            print(f"   B {b_load}")
            print(alone.line("   B alone"))
            print(beside.line("   B beside A's flood"))
            print(
                f"{'':<44} B p99 {beside.p99_ms / alone.p99_ms:4.2f}x of alone;"
                f" inside the gateway {beside_inside:.2f} ms vs {alone_inside:.2f} ms"
                f" ({beside_inside / alone_inside:4.2f}x)"
            )
            print(a_result.line(f"   A itself ({A_CONNECTIONS} conns, expensive reads)"))
    gate_cost()
    print()


def gate_cost(rounds: int = 200_000) -> None:
    """CPU microseconds per acquire + release, uncontended, by active orgs, with and
    without the time share (process time: a shared machine's waits do not count)."""
    print("   the gate's own CPU per statement (acquire + release, in process):")
    for active in (1, 100, 10_000):
        with_share = _per_pair(active, rounds, shared=True)
        without = _per_pair(active, rounds, shared=False)
        print(
            f"     {active:>6} orgs active: {with_share:5.2f} us with the time share,"
            f" {without:5.2f} us round robin only"
        )


def _per_pair(active: int, rounds: int, *, shared: bool) -> float:
    async def run() -> float:
        share = TimeShare(2) if shared else None
        gate = FairGate(10, share=share)
        orgs = [f"org{n}" for n in range(active)]
        for org in orgs:  # every org active in the window
            await gate.acquire(org, 8)
            gate.release(org)
        started = time.process_time()
        for n in range(rounds):
            org = orgs[n % active]
            await gate.acquire(org, 8)
            gate.release(org)
        return (time.process_time() - started) / rounds * 1e6

    return asyncio.run(run())
