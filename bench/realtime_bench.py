"""Supabase Realtime on orgbase, printed (``make bench-realtime``):

1. Broadcast fan-out: SUBSCRIBERS sockets on one topic, one sender stepping through RATES
   messages/s (STAGE_SECONDS each, DRAIN_SECONDS between), the same client processes
   against a bare ``websockets`` broadcast server (bench/peers/bare_broadcast.py, one
   process, no protocol) and against orgbase's /realtime/v1 (2 gateway workers, Redis
   between them). End-to-end latency (sent to received, one clock), p50/p99 per rate, and
   the first rate whose p99 passes 1 s.
2. postgres_changes: CHANGE_ORGS orgs of CHANGE_USERS members, each member one socket
   subscribed to INSERTs on ``items``; rows inserted at INSERTS_PER_SECOND (in
   PostgreSQL, round robin over the orgs), each decided per subscriber by PostgreSQL.
   Insert-to-client p50/p99, and the CPU of the gateway and of PostgreSQL per delivered
   change (the cost of an authorised subscriber).

The clients share the 2 cores with the servers: they are the limit at high rates, for
both servers alike. The load average is printed beside the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets

from bench.cpu import CpuMeter
from bench.harness import (
    PASSWORD,
    ROOT,
    SERVER_PIDS,
    free_port,
    gateway,
    local_stack,
    org_of,
    prepare_database,
)
from devstack.layout import PG_SUPERUSER

SUBSCRIBERS = 1000
CLIENT_PROCESSES = 2
RATES = [20, 25, 30, 40]
STAGE_SECONDS = 5.0
DRAIN_SECONDS = 3.0
CHANGE_ORGS = 10
CHANGE_USERS = 10
INSERTS_PER_SECOND = 200
CHANGE_SECONDS = 10.0
SERVER_ENV = {
    "ORGBASE_AUTH_ARGON2_TIME_COST": "1",
    "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
    "ORGBASE_LIMITS_REALTIME_CONNECTIONS": "100000",
    "ORGBASE_LIMITS_REALTIME_JOINS_PER_SECOND": "100000",
    "ORGBASE_REALTIME_QUEUE_SIZE": "4096",
}


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@contextmanager
def clients(mode: str, url: str, credentials: list[str], counts: list[int]) -> Any:
    """Client processes (bench/realtime_clients.py), ready; yields a function that stops
    them and returns every stage's latencies and how many sockets ended early."""
    with tempfile.NamedTemporaryFile("w", suffix=".tokens", delete=False) as handle:
        handle.write("\n".join(credentials))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.realtime_clients", mode, url, handle.name, str(n)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in counts
    ]

    def stop() -> tuple[dict[str, list[float]], int]:
        stages: dict[str, list[float]] = {}
        closed = 0
        for proc in procs:
            out, _ = proc.communicate("STOP\n", timeout=120)
            result = json.loads(out.strip().splitlines()[-1])
            closed += result["closed"]
            for stage, values in result["stages"].items():
                stages.setdefault(stage, []).extend(values)
        return stages, closed

    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "READY":
                raise SystemExit(f"{mode} clients did not start")
        yield stop
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        Path(handle.name).unlink(missing_ok=True)


async def send_stages(publish: Any) -> None:
    """RATES messages/s, STAGE_SECONDS each, stamped with when and which stage."""
    for stage, rate in enumerate(RATES):
        started = time.perf_counter()
        for n in range(int(rate * STAGE_SECONDS)):
            due = started + n / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            await publish(json.dumps({"t": time.time(), "s": stage, "n": n}))
        await asyncio.sleep(DRAIN_SECONDS)


async def bare_sender(url: str) -> None:
    async with websockets.connect(url) as socket:
        await send_stages(socket.send)


async def phoenix_sender(url: str, token: str) -> None:
    async with websockets.connect(url) as socket:
        join = {"config": {"broadcast": {"self": False}}, "access_token": token}
        await socket.send(json.dumps(["1", "1", "realtime:bench", "phx_join", join]))
        await socket.recv()

        async def publish(body: str) -> None:
            message = {"type": "broadcast", "event": "tick", "payload": json.loads(body)}
            await socket.send(json.dumps([None, None, "realtime:bench", "broadcast", message]))

        await send_stages(publish)


def fan_out_report(
    label: str, measured: tuple[dict[str, list[float]], int], cpu_seconds: float
) -> None:
    stages, closed = measured
    delivered = sum(len(v) for v in stages.values())
    print(f"  {label}: server CPU {cpu_seconds * 1e6 / max(1, delivered):.1f} us per delivery")
    passed = None
    for stage, rate in enumerate(RATES):
        values = stages.get(str(stage), [])
        p50, p99 = percentiles(values)
        expected = rate * STAGE_SECONDS * SUBSCRIBERS
        print(
            f"  {label:8} {rate:3d} msg/s = {rate * SUBSCRIBERS:6d} deliveries/s:"
            f" p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  received {len(values) / expected:6.1%}"
        )
        if passed is None and (p99 > 1000 or len(values) < expected * 0.99):
            passed = rate * SUBSCRIBERS
    beyond = f"{passed} deliveries/s" if passed else f"none up to {RATES[-1] * SUBSCRIBERS}/s"
    print(f"  {label}: p99 past 1 s (or deliveries lost) at {beyond}; sockets ended early {closed}")


def fan_out_bare() -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.peers.bare_broadcast", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its complaints about sockets the clients closed
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        url = f"ws://127.0.0.1:{port}"
        per = [SUBSCRIBERS // CLIENT_PROCESSES] * CLIENT_PROCESSES
        with clients("bare", url, ["-", "-"], per) as stop:
            meter = CpuMeter(server.pid, None)
            meter.start()
            asyncio.run(bare_sender(url))
            fan_out_report("bare", stop(), meter.stop(1).server_us / 1e6)
    finally:
        server.terminate()
        server.wait(10)


async def member_tokens(base: str, orgs: int, per_org: int) -> list[list[str]]:
    """``orgs`` orgs of ``per_org`` members (the first its owner): each member's token."""
    stamp = f"{os.getpid()}-{int(time.time())}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def token(email: str, org_id: str | None = None) -> str:
            body: dict[str, Any] = {"grant_type": "password", "email": email, "password": PASSWORD}
            if org_id is not None:
                body["org_id"] = org_id
            answer = await http.post("/v1/auth/token", json=body)
            answer.raise_for_status()
            return str(answer.json()["access_token"])

        async def one_org(o: int) -> list[str]:
            emails = [f"rt-{stamp}-{o}-{m}@bench.test" for m in range(per_org)]
            for email in emails:
                made = await http.post(
                    "/v1/auth/signup", json={"email": email, "password": PASSWORD}
                )
                made.raise_for_status()
            owner = {"Authorization": f"Bearer {await token(emails[0])}"}
            org = await http.post("/v1/orgs", headers=owner, json={"name": f"rt {o}"})
            org_id = org.raise_for_status().json()["id"]
            for email in emails[1:]:
                added = await http.post(
                    f"/v1/orgs/{org_id}/members",
                    headers=owner,
                    json={"email": email, "role": "member"},
                )
                added.raise_for_status()
            return [await token(email, org_id) for email in emails]

        return list(await asyncio.gather(*(one_org(o) for o in range(orgs))))


def fan_out_orgbase(env: dict[str, str], anon: str) -> None:
    with gateway(env, workers=2) as base:
        ((token,),) = asyncio.run(member_tokens(base, 1, 1))
        per = [SUBSCRIBERS // CLIENT_PROCESSES] * CLIENT_PROCESSES
        with clients("phoenix", base, [anon, token], per) as stop:
            url = base.replace("http", "ws", 1) + f"/realtime/v1/websocket?vsn=2.0.0&apikey={anon}"
            meter = CpuMeter(SERVER_PIDS.get(base), None)
            meter.start()
            asyncio.run(phoenix_sender(url, token))
            fan_out_report("orgbase", stop(), meter.stop(1).server_us / 1e6)


async def insert_rows(url: str, orgs: list[str], seconds: float, stage: str) -> int:
    """Rows into api.items at INSERTS_PER_SECOND, round robin over ``orgs``, each titled
    with when it was inserted; how many."""
    connection = await asyncpg.connect(url)
    try:
        count, started = int(INSERTS_PER_SECOND * seconds), time.perf_counter()
        for n in range(count):
            due = started + n / INSERTS_PER_SECOND
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            await connection.execute(
                "INSERT INTO api.items (org_id, title, status) VALUES ($1, $2, $3)",
                orgs[n % len(orgs)],
                repr(time.time()),
                stage,
            )
        return count
    finally:
        await connection.close()


def postgres_changes(env: dict[str, str], anon: str, stack: Any, database_url: str) -> None:
    with gateway(env, workers=2) as base:
        tokens = asyncio.run(member_tokens(base, CHANGE_ORGS, CHANGE_USERS))
        orgs = [org_of(t[0]) for t in tokens]
        meter = CpuMeter(SERVER_PIDS.get(base), stack.postgres.pid)
        meter.start()  # the inserts alone, nobody subscribed: PostgreSQL's own share
        alone = asyncio.run(insert_rows(database_url, orgs, 3.0, "-"))
        baseline = meter.stop(alone)
        flat = [t for org_tokens in tokens for t in org_tokens]
        with clients("changes", base, [anon, *flat], [len(flat)]) as stop:
            meter.start()
            inserted = asyncio.run(insert_rows(database_url, orgs, CHANGE_SECONDS, "0"))
            time.sleep(DRAIN_SECONDS)
            stages, closed = stop()
        delivered = stages.get("0", [])
        cost = meter.stop(max(1, len(delivered)))
        p50, p99 = percentiles(delivered)
        expected = inserted * CHANGE_USERS
        pg_extra = cost.postgres_us - baseline.postgres_us * inserted / max(1, len(delivered))
        print(
            f"  {CHANGE_ORGS} orgs x {CHANGE_USERS} subscribers, {INSERTS_PER_SECOND} inserts/s"
            f" for {CHANGE_SECONDS:g}s: insert-to-client p50 {p50:.1f} ms  p99 {p99:.1f} ms,"
            f" received {len(delivered) / expected:.1%} of {expected}, sockets ended early"
            f" {closed}\n  per delivered change (an authorised subscriber): gateway"
            f" {cost.server_us:.0f} us, PostgreSQL {pg_extra:.0f} us beyond the insert's own"
            f" ({baseline.postgres_us:.0f} us per insert, nobody subscribed)"
        )


def main() -> None:
    """``python -m bench.realtime_bench [RATES [fan-out]]``: RATES as ``20,25,30``;
    ``fan-out`` skips postgres_changes."""
    if len(sys.argv) > 1:
        RATES[:] = [int(r) for r in sys.argv[1].split(",")]
    stack = local_stack()
    env = asyncio.run(prepare_database(stack))
    env.update(SERVER_ENV)
    anon = env["ORGBASE_AUTH_PUBLISHABLE_KEY"]
    database_url = stack.database_url(
        PG_SUPERUSER,
        stack.secrets["pg_superuser"],
        env["ORGBASE_DATABASE_API_URL"].rsplit("/", 1)[1],
    )
    print(f"realtime benchmark ({load()} at start)")
    print(
        f"\nbroadcast fan-out: {SUBSCRIBERS} subscribers on one topic in {CLIENT_PROCESSES}"
        f" client processes, {STAGE_SECONDS:g}s per rate"
    )
    fan_out_bare()
    print(f"  ({load()})")
    fan_out_orgbase(env, anon)
    print(f"  ({load()})")
    if sys.argv[2:] == ["fan-out"]:
        return
    print("\npostgres_changes (2 gateway workers):")
    postgres_changes(env, anon, stack, database_url)
    print(f"  ({load()})")


if __name__ == "__main__":
    main()
