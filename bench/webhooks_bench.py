"""Webhook delivery from the transactional outbox, through the real path: rows inserted
with ``POST /v1/db/items`` by an org whose endpoint is subscribed to ``db.items.*``, the
audit trigger writing one delivery per row, the gateway's dispatcher signing and sending
them to a receiver on loopback.

1. Deliveries/s, with a gateway of 1, then 2 worker processes: N rows inserted in one
   transaction (in SQL: the triggers are the same, and N API calls would take longer than
   the deliveries), then the time from its commit until the receiver has them all. Then
   rows inserted through the API at a modest pace: the time from each row's
   ``created_at`` (its transaction's start, a hair before the commit) to the receiver.
2. What the outbox costs a write: ``POST /v1/db/items`` under wrk for an org with no
   endpoint, one with an endpoint on ``db.items.*`` (delivered while wrk runs, by the same
   process) and one with an endpoint on ``member.*`` (the trigger's fan-out query without
   deliveries). Rounds alternate and rotate the order; each run starts with the outbox
   drained.

On a shared machine wall-clock rates move with whatever else runs, so the CPU time the
gateway's and PostgreSQL's processes spent (from /proc, exited ones included) is printed
too, per delivery and per write: that figure carries over to other machines.

The receiver is this module run with ``--receiver PORT`` in its own process (not sharing
an interpreter with the bench's clients): keep-alive HTTP/1.1 answering 204, with
``GET /stats`` and ``GET /latencies`` for the bench and ``DELETE /stats`` to start over.

Run: ``make bench-webhooks`` (or ``.venv/bin/python -m bench.webhooks_bench [seconds]``).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import pyotp

from bench.data_bench import orgs_and_tokens, process, wait_http
from bench.harness import WrkResult, free_port, gateway, local_stack, org_of, prepare_database, wrk
from devstack.layout import PG_SUPERUSER

QUEUED = 3000
LIVE = 500
LIVE_CONCURRENCY = 4
ROUNDS = 3
WEBHOOK_SETTINGS = {
    "ORGBASE_WEBHOOKS_ENABLED": "true",
    "ORGBASE_WEBHOOKS_ALLOWED_HOSTS": "127.0.0.1",
    "ORGBASE_WEBHOOKS_POLL_SECONDS": "0.05",
    "ORGBASE_WEBHOOKS_MAX_IN_FLIGHT": "32",
    "ORGBASE_WEBHOOKS_BATCH": "200",
}
SHOWN_SETTINGS = ("ORGBASE_WEBHOOKS_", "ORGBASE_DATABASE_API_POOL", "ORGBASE_LOG_LEVEL")
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


# --- the receiver (its own process) ------------------------------------------------------


class Receipts:
    def __init__(self) -> None:
        self.total = 0
        """every delivery since the receiver started (never reset)"""
        self.seen: set[str] = set()
        self.duplicates = 0
        """deliveries whose webhook-id came before (at least once: a redelivery)"""
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.latencies: list[float] = []

    def record(self, message_id: str, body: bytes) -> None:
        now = time.time()
        self.total += 1
        self.duplicates += message_id in self.seen
        self.seen.add(message_id)
        self.count += 1
        self.first = self.first or now
        self.last = now
        row = json.loads(body)["data"].get("row") or {}
        if "created_at" in row:
            self.latencies.append(now - datetime.fromisoformat(row["created_at"]).timestamp())

    def answer(self, method: str, path: str) -> bytes:
        if method == "POST":
            return NO_CONTENT
        if method == "DELETE":
            self.reset()
            return NO_CONTENT
        if path == "/latencies":
            return _json_answer(self.latencies)
        return _json_answer(
            {
                "count": self.count,
                "first": self.first,
                "last": self.last,
                "total": self.total,
                "duplicates": self.duplicates,
            }
        )


def _json_answer(value: object) -> bytes:
    body = json.dumps(value).encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


async def _serve_connection(
    receipts: Receipts, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Requests on one keep-alive connection until the client leaves."""
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", 0))
            body = await reader.readexactly(length) if length else b""
            if method == "POST":
                receipts.record(headers.get("webhook-id", ""), body)
            writer.write(receipts.answer(method, path))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _receive(port: int) -> None:
    receipts = Receipts()
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(receipts, r, w), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


def run_receiver(port: int) -> None:
    import uvloop  # the fastest loop at hand: the receiver must not be what is measured

    uvloop.run(_receive(port))


# --- the bench's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Org:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Stats:
    count: int
    first: float
    last: float
    total: int
    duplicates: int


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of the gateway's processes and of PostgreSQL's."""

    gateway: float
    postgres: float

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.gateway - other.gateway, self.postgres - other.postgres)

    def per(self, count: int, what: str) -> str:
        return (
            f"CPU per {what}: gateway {self.gateway / count * 1000:.2f} ms + "
            f"PostgreSQL {self.postgres / count * 1000:.2f} ms"
        )


@dataclass(frozen=True)
class Setup:
    env: dict[str, str]
    receiver_url: str
    db_url: str
    """superuser, on the bench database"""
    postgres_pid: int

    def cpu(self, gateway_pid: int) -> Cpu:
        return Cpu(tree_cpu(gateway_pid), tree_cpu(self.postgres_pid))


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants, the exited ones too (a parent's
    cutime and cstime hold the children it has reaped: PostgreSQL's closed backends)."""
    ticks = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            children = [
                int(child)
                for task in Path(f"/proc/{current}/task").iterdir()
                for child in (task / "children").read_text().split()
            ]
        except (FileNotFoundError, ProcessLookupError):
            continue  # it exited meanwhile (a backend whose client left)
        ticks += sum(int(field) for field in fields[11:15])  # utime stime cutime cstime
        pending += children
    return ticks / os.sysconf("SC_CLK_TCK")


def gateway_pid(base: str) -> int:
    """The ``orgbase serve`` process listening on ``base``'s port (its workers are its
    children)."""
    wanted = b"\0--port\0" + base.rsplit(":", 1)[1].encode() + b"\0"
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if b"\0serve\0" in command and wanted in command:
            return int(entry.name)
    raise SystemExit(f"no gateway process for {base}")


@contextmanager
def receiver() -> Iterator[str]:
    """The receiver process; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "bench.webhooks_bench", "--receiver", str(port)]
    with process(command, dict(os.environ)):
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/stats")
        yield base


def stats(receiver_url: str) -> Stats:
    return Stats(**httpx.get(f"{receiver_url}/stats", timeout=10).json())


def reset(receiver_url: str) -> None:
    httpx.delete(f"{receiver_url}/stats", timeout=10).raise_for_status()


def latencies_ms(receiver_url: str) -> list[float]:
    values: list[float] = httpx.get(f"{receiver_url}/latencies", timeout=10).json()
    return sorted(v * 1000 for v in values)


def wait_received(receiver_url: str, count: int, within: float = 120) -> Stats:
    deadline = time.monotonic() + within
    while (current := stats(receiver_url)).count < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the receiver has {current.count} of {count} deliveries")
        time.sleep(0.05)
    return current


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def latency_line(values: list[float]) -> str:
    return (
        f"row created -> received p50 {percentile(values, 0.5):.1f} ms, "
        f"p99 {percentile(values, 0.99):.1f} ms, max {values[-1]:.1f} ms"
    )


def org_for(token: str) -> Org:
    return Org(org_of(token), token)


def at_aal2(base: str, org: Org) -> dict[str, str]:
    """The org owner's session raised to aal2 (a TOTP factor enrolled and verified):
    registering an endpoint is a security setting."""
    apikey = httpx.get(f"{base}/v1/auth/client-config", timeout=10).json()["publishable_key"]
    headers = org.headers | {"apikey": apikey}
    factor = httpx.post(
        f"{base}/auth/v1/factors", headers=headers, json={"factor_type": "totp"}, timeout=10
    ).json()
    path = f"{base}/auth/v1/factors/{factor['id']}"
    challenge = httpx.post(f"{path}/challenge", headers=headers, json={}, timeout=10).json()
    code = pyotp.TOTP(factor["totp"]["secret"]).now()
    verified = httpx.post(
        f"{path}/verify",
        headers=headers,
        json={"challenge_id": challenge["id"], "code": code},
        timeout=10,
    )
    verified.raise_for_status()
    return {"Authorization": f"Bearer {verified.json()['access_token']}"}


def register(base: str, org: Org, url: str, events: list[str]) -> None:
    response = httpx.post(
        f"{base}/v1/orgs/{org.id}/webhooks",
        headers=at_aal2(base, org),
        json={"url": url, "events": events},
        timeout=10,
    )
    response.raise_for_status()


async def insert_rows(base: str, org: Org, count: int, concurrency: int) -> None:
    """``count`` rows through the data API, ``concurrency`` requests at a time."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers=org.headers, limits=limits, timeout=30
    ) as client:

        async def inserter(start: int) -> None:
            for n in range(start, count, concurrency):
                response = await client.post("/v1/db/items", json={"title": f"live {n}"})
                response.raise_for_status()

        await asyncio.gather(*(inserter(k) for k in range(concurrency)))


async def queue_rows(db_url: str, org: Org, count: int) -> None:
    """``count`` rows in one transaction, straight into the table: its triggers write
    the audit events and the deliveries as the API's inserts do."""
    connection = await asyncpg.connect(db_url)
    try:
        await connection.executemany(
            "INSERT INTO api.items (org_id, title) VALUES ($1::uuid, $2)",
            [(org.id, f"queued {n}") for n in range(count)],
        )
    finally:
        await connection.close()


async def outbox_counts(db_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(db_url)
    try:
        rows = await connection.fetch(
            "SELECT status, count(*) AS n FROM orgbase.webhook_deliveries GROUP BY status"
        )
    finally:
        await connection.close()
    return {row["status"]: row["n"] for row in rows}


async def wait_drained(db_url: str, within: float = 120) -> tuple[int, float]:
    """Deliveries pending now, and the seconds until none is (one connection: a new one
    per look would add a backend's start to PostgreSQL's CPU time)."""
    query = "SELECT count(*) FROM orgbase.webhook_deliveries WHERE status = 'pending'"
    connection = await asyncpg.connect(db_url)
    try:
        started = time.monotonic()
        backlog: int = await connection.fetchval(query)
        while await connection.fetchval(query):
            if time.monotonic() - started > within:
                raise SystemExit(f"the outbox did not drain in {within:g}s")
            await asyncio.sleep(0.1)
        return backlog, time.monotonic() - started
    finally:
        await connection.close()


# --- 1. deliveries per second ---------------------------------------------------------------


def delivery_rate(setup: Setup, org: Org, workers: int) -> None:
    label = f"{workers} gateway process{'es' if workers > 1 else ''}"
    with gateway(setup.env, workers=workers) as base:
        pid = gateway_pid(base)
        reset(setup.receiver_url)
        asyncio.run(queue_rows(setup.db_url, org, QUEUED))
        committed, before = time.time(), setup.cpu(pid)
        done = wait_received(setup.receiver_url, QUEUED)
        asyncio.run(wait_drained(setup.db_url))  # each delivery's outcome recorded too
        used = setup.cpu(pid) - before
        print(
            f"{label}: {QUEUED} deliveries queued, all received {done.last - committed:.2f}s"
            f" after the commit: {QUEUED / (done.last - committed):.0f} deliveries/s\n    "
            + used.per(QUEUED, "delivery")
        )
        reset(setup.receiver_url)
        started = time.time()
        asyncio.run(insert_rows(base, org, LIVE, LIVE_CONCURRENCY))
        inserted = time.time()
        done = wait_received(setup.receiver_url, LIVE)
    print(
        f"{label}: {LIVE} rows inserted through the API ({LIVE_CONCURRENCY} at a time, "
        f"{LIVE / (inserted - started):.0f} rows/s), the last received "
        f"{(done.last - inserted) * 1000:.0f} ms after the last insert\n    "
        + latency_line(latencies_ms(setup.receiver_url))
    )


# --- 2. the outbox's cost on a write ---------------------------------------------------------


@dataclass(frozen=True)
class WriteCase:
    label: str
    org: Org
    delivered: bool


@dataclass(frozen=True)
class WriteRun:
    result: WrkResult
    cpu: Cpu
    """from wrk's start until the outbox is drained: a write's delivery counts"""
    note: str = ""


BODIES = [json.dumps({"title": f"wrk {n}"}) for n in range(100)]


def write_run(setup: Setup, base: str, case: WriteCase, seconds: float) -> WriteRun:
    pid = gateway_pid(base)
    reset(setup.receiver_url)
    before = setup.cpu(pid)
    url = f"{base}/v1/db/items"
    result = wrk(url, seconds=seconds, method="POST", tokens=[case.org.token], bodies=BODIES)
    backlog, drain = asyncio.run(wait_drained(setup.db_url))
    cpu = setup.cpu(pid) - before
    if not case.delivered:
        return WriteRun(result, cpu)
    note = (
        f"\n    {stats(setup.receiver_url).count} delivered, {backlog} still queued when wrk"
        f" stopped, drained {drain:.1f}s later; " + latency_line(latencies_ms(setup.receiver_url))
    )
    return WriteRun(result, cpu, note)


def write_cost(setup: Setup, cases: list[WriteCase], seconds: float) -> None:
    runs: dict[str, list[WriteRun]] = {case.label: [] for case in cases}
    with gateway(setup.env) as base:
        for case in cases:
            write_run(setup, base, case, 1)  # warm-up
        for round_ in range(ROUNDS):
            # Each round starts with the next case, so none always runs first.
            for case in cases[round_:] + cases[:round_]:
                run = write_run(setup, base, case, seconds)
                runs[case.label].append(run)
                print(run.result.line(f"{case.label}, round {round_ + 1}") + run.note)
    print_write_summary(runs)


def print_write_summary(runs: dict[str, list[WriteRun]]) -> None:
    print(f"\nmedians of {ROUNDS} rounds (change against the first line):")
    first: tuple[float, float, float] | None = None
    for label, label_runs in runs.items():
        rps = statistics.median(r.result.rps for r in label_runs)
        p99 = statistics.median(r.result.p99_ms for r in label_runs)
        gateway_ms = statistics.median(r.cpu.gateway / r.result.requests * 1000 for r in label_runs)
        pg_ms = statistics.median(r.cpu.postgres / r.result.requests * 1000 for r in label_runs)
        first = first or (rps, p99, gateway_ms + pg_ms)
        print(
            f"  {label:<42} {rps:5.0f} req/s {(rps / first[0] - 1) * 100:+6.1f}%"
            f"   p99 {p99:6.1f} ms {(p99 / first[1] - 1) * 100:+6.1f}%"
            f"   CPU/write {gateway_ms:.2f} + {pg_ms:.2f} ms"
            f" {((gateway_ms + pg_ms) / first[2] - 1) * 100:+6.1f}%"
        )
    spread = [r.result.rps for label_runs in runs.values() for r in label_runs]
    print(
        f"  (all runs spread {min(spread):.0f}-{max(spread):.0f} req/s; CPU/write: gateway +"
        " PostgreSQL,\n   from wrk's start until the outbox is drained, so deliveries included)"
    )


# --- main ----------------------------------------------------------------------------------


def bench_env(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "ORGBASE_AUTH_ARGON2_TIME_COST": "1",  # sign-ins are not what is measured here
        "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
        "ORGBASE_LOG_LEVEL": "info",  # the access log is part of the pipeline
        "ORGBASE_DATABASE_API_POOL_MAX": "16",
        **WEBHOOK_SETTINGS,
    }


def print_settings(env: dict[str, str]) -> None:
    settings = {k: v for k, v in env.items() if k.startswith(SHOWN_SETTINGS)}
    print(f"webhooks benchmark, {os.cpu_count()} cores; gateway settings (others default):")
    print("".join(f"  {name}={value}\n" for name, value in sorted(settings.items())))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5
    stack = local_stack()
    env = bench_env(asyncio.run(prepare_database(stack)))
    database = env["ORGBASE_DATABASE_API_URL"].rsplit("/", 1)[1]
    db_url = stack.database_url(PG_SUPERUSER, stack.secrets["pg_superuser"], database)
    assert stack.postgres.pid is not None
    print_settings(env)
    with receiver() as receiver_url:
        setup = Setup(env, receiver_url, db_url, stack.postgres.pid)
        with gateway(env, ORGBASE_WEBHOOKS_ENABLED="false") as base:
            quiet, hooked, other = (org_for(t) for t in asyncio.run(orgs_and_tokens(base, 3)))
            register(base, hooked, f"{receiver_url}/hook", ["db.items.*"])
            register(base, other, f"{receiver_url}/hook", ["member.*"])
        print("1. deliveries per second: one endpoint, a receiver answering 204 on loopback")
        for workers in (1, 2):
            delivery_rate(setup, hooked, workers)
        print(
            f"\n2. POST /v1/db/items under wrk (2 threads, 32 connections, {seconds:g}s per run),"
            " 1 gateway process, delivery on"
        )
        cases = [
            WriteCase("org without endpoint", quiet, delivered=False),
            WriteCase("org with db.items.* endpoint (delivered)", hooked, delivered=True),
            WriteCase("org with member.* endpoint (not matched)", other, delivered=False),
        ]
        write_cost(setup, cases, seconds)
        counts = asyncio.run(outbox_counts(db_url))
        received = stats(receiver_url)
        print(
            f"\noutbox at the end: {counts}; the receiver got {received.total} deliveries, "
            f"{received.duplicates} of them a webhook-id it had already had"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--receiver"]:
        run_receiver(int(sys.argv[2]))
    else:
        main()
