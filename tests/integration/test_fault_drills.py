"""Fault drills under steady load, done for real against gateway processes: PostgreSQL
restarted, Redis fully down, MongoDB stopped, SIGTERM to a two-worker server.

Each drill prints its figures (failed requests, seconds to recover; `pytest -s` or `make
drills` shows them). The assertions are what must hold whatever the timing: every failure
is a clear 503 (never a 500, a hang or a cut answer), nothing acknowledged is lost, and
everything comes back without restarting the gateway.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.data import owner_connection
from tests.support.http import org_member, password_grant, wait_for_cache
from tests.support.processes import free_port, serving, start_server
from tests.support.stack import server_env
from tests.support.traffic import FIGURES_DIR, Traffic, outage, report
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@asynccontextmanager
async def drill_gateway(
    stack: LocalStack, drill: str
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any], str, dict[str, str]]]:
    """A gateway process on the fault stack, its log kept with the drill's figures, and a
    client with a fresh org's owner: (client, user, org_id, auth headers)."""
    env = server_env(stack, stack.layout.database)
    with serving(env, log_file=FIGURES_DIR / f"{drill}.log") as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            user, org_id, headers = await org_member(http, drill)
            yield http, user, org_id, headers


def _start_postgres_load(traffic: Traffic, headers: dict[str, str]) -> None:
    """Reads of tenant data and session checks: what runs on PostgreSQL alone."""
    traffic.start("read", lambda h: h.get("/v1/db/items?limit=5", headers=headers))
    traffic.start("session", lambda h: h.get("/v1/auth/session", headers=headers))


def _ids(rows: object) -> list[int]:
    assert isinstance(rows, list)
    return [int(row["id"]) for row in rows]


def _only_clear_failures(traffic: Traffic, label: str, allowed: set[tuple[int, str]]) -> None:
    unexpected = Counter(
        (a.status, a.code) for a in traffic.failed(label) if (a.status, a.code) not in allowed
    )
    assert not unexpected, f"{label}: {unexpected}"


async def test_postgres_restart_under_load(
    fault_stack: LocalStack, fault_settings: Settings
) -> None:
    async with drill_gateway(fault_stack, "postgres_restart") as (http, _, org_id, headers):
        write_headers = {**headers, "Prefer": "return=representation"}
        traffic = Traffic(http)
        traffic.start(
            "write",
            lambda h: h.post("/v1/db/items", headers=write_headers, json={"title": "drill"}),
            loops=4,
        )
        _start_postgres_load(traffic, headers)
        await traffic.flowing()
        down = await outage(fault_stack.postgres.stop, fault_stack.postgres.start, 2.0)
        back_at = down.back_at
        await traffic.succeeds_after("write", back_at)
        await traffic.succeeds_after("read", back_at)
        await traffic.flowing(since=back_at)
        await traffic.stop()

    async with owner_connection(fault_settings) as connection:
        stored = {
            row["id"]
            for row in await connection.fetch(
                "SELECT id FROM api.items WHERE org_id = $1", uuid.UUID(org_id)
            )
        }
    acked = [i for a in traffic.of("write") if a.status == 201 for i in _ids(a.body)]
    in_doubt = len(traffic.failed("write"))
    write_back = traffic.recovered_at("write", back_at)
    read_back = traffic.recovered_at("read", back_at)
    assert write_back is not None
    assert read_back is not None
    report(
        "postgres_restart",
        {
            "postgres_down_s": round(down.seconds, 2),
            "writes_acknowledged": len(acked),
            "writes_failed": in_doubt,
            "reads_failed": len(traffic.failed("read")),
            "session_checks_failed": len(traffic.failed("session")),
            "writes_back_after_restart_s": round(write_back - back_at, 2),
            "reads_back_after_restart_s": round(read_back - back_at, 2),
            "slowest_request_s": traffic.slowest(),
            "outcomes": {k: dict(traffic.outcomes(k)) for k in ("write", "read", "session")},
        },
    )
    # Every acknowledged write is stored, once; a write that failed may have committed
    # just before its connection broke (in doubt), but no more rows than that exist.
    assert len(acked) == len(set(acked))
    assert set(acked) <= stored
    assert len(stored) - len(acked) <= in_doubt
    assert acked, "the writers never got through"
    unavailable = {(503, "database_unavailable")}
    for label in ("write", "read", "session"):
        _only_clear_failures(traffic, label, unavailable)


async def test_redis_fully_down_under_load(
    fault_stack: LocalStack, fault_settings: Settings
) -> None:
    """Primary, replicas and Sentinels all stopped: sign-in, sessions and tenant data run
    on PostgreSQL; only the cache answers 503."""
    async with drill_gateway(fault_stack, "redis_fully_down") as (http, user, org_id, headers):
        assert (
            await http.put("/v1/kv/beat", headers=headers, json={"value": 1})
        ).status_code == 200
        grant = password_grant(user["email"], org_id)
        traffic = Traffic(http)
        traffic.start("sign-in", lambda h: h.post("/v1/auth/token", json=grant), pause=0.1)
        _start_postgres_load(traffic, headers)
        traffic.start(
            "write",
            lambda h: h.post("/v1/db/items", headers=headers, json={"title": "no redis"}),
        )
        traffic.start("cache", lambda h: h.get("/v1/kv/beat", headers=headers))
        await traffic.flowing()
        down = await outage(fault_stack.redis.stop, fault_stack.redis.start, 3.0)
        back_at = down.back_at

        cache_back = await wait_for_cache(http, headers, "the cache after Redis restarted")
        await traffic.flowing(since=cache_back)
        await traffic.stop()
        health = (await http.get("/health/ready")).json()

    in_outage = [a for a in traffic.answers if down.covers(a)]
    report(
        "redis_fully_down",
        {
            "redis_down_s": round(down.seconds, 2),
            "requests_during_outage": Counter(a.label for a in in_outage),
            "failed": {k: len(traffic.failed(k)) for k in ("sign-in", "session", "read", "write")},
            "cache_failed": len(traffic.failed("cache")),
            "cache_back_after_restart_s": round(cache_back - back_at, 2),
            "slowest_request_s": traffic.slowest(),
            "cache_outcomes": dict(traffic.outcomes("cache")),
        },
    )
    assert {a.label for a in in_outage} >= {"sign-in", "session", "read", "write"}
    for label in ("sign-in", "session", "read", "write"):
        assert not traffic.failed(label), (label, traffic.outcomes(label))
    # The cache says it is unavailable, clearly; a 404 would be a miss after a failover.
    _only_clear_failures(traffic, "cache", {(503, "redis_unavailable"), (404, "key_not_found")})
    assert any(a.status == 503 for a in traffic.of("cache"))
    assert health["checks"]["redis"]["status"] == "ok"


async def test_mongo_stopped_under_load(fault_stack: LocalStack, fault_settings: Settings) -> None:
    async with drill_gateway(fault_stack, "mongo_stopped") as (http, _, _, headers):
        assert (
            await http.post("/v1/docs/notes", headers=headers, json={"n": 1})
        ).status_code == 201
        traffic = Traffic(http)
        traffic.start("docs", lambda h: h.get("/v1/docs/notes", headers=headers))
        _start_postgres_load(traffic, headers)
        traffic.start("orgs", lambda h: h.get("/v1/orgs", headers=headers))
        await traffic.flowing()
        down = await outage(fault_stack.mongo.stop, fault_stack.mongo.start, 2.0)
        back_at = down.back_at
        await traffic.succeeds_after("docs", back_at)
        await traffic.flowing(since=back_at)
        await traffic.stop()

    docs_back = traffic.recovered_at("docs", back_at)
    assert docs_back is not None
    report(
        "mongo_stopped",
        {
            "mongo_down_s": round(down.seconds, 2),
            "docs_failed": len(traffic.failed("docs")),
            "docs_back_after_restart_s": round(docs_back - back_at, 2),
            "other_routes_failed": sum(len(traffic.failed(k)) for k in ("read", "session", "orgs")),
            "slowest_request_s": traffic.slowest(),
            "docs_outcomes": dict(traffic.outcomes("docs")),
        },
    )
    assert traffic.failed("docs"), "the drill never saw MongoDB down"
    _only_clear_failures(traffic, "docs", {(503, "mongo_unavailable")})
    for label in ("read", "session", "orgs"):
        assert not traffic.failed(label), (label, traffic.outcomes(label))


async def test_sigterm_under_load_two_workers(stack: LocalStack) -> None:
    """In-flight requests finish with whole answers; new connections are refused; the
    server exits by itself."""
    port = free_port()
    server = start_server(
        server_env(stack), port, workers=2, log_file=FIGURES_DIR / "sigterm_two_workers.log"
    )
    base = f"http://127.0.0.1:{port}"
    outcomes: Counter[str] = Counter()
    answered_after_signal = 0
    signalled_at: float | None = None
    stop = asyncio.Event()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as setup:
            _, _, headers = await org_member(setup, "sigterm drill")

        async def caller() -> None:
            nonlocal answered_after_signal
            while not stop.is_set():
                # A new connection per request: refusals are then about new connections.
                async with httpx.AsyncClient(base_url=base, timeout=15) as http:
                    try:
                        response = await http.get("/v1/db/items?limit=20", headers=headers)
                        response.json()  # a cut answer fails here
                        outcomes[str(response.status_code)] += 1
                        if signalled_at is not None:
                            answered_after_signal += 1
                    except httpx.ConnectError:
                        outcomes["refused"] += 1
                        await asyncio.sleep(0.02)
                    except (httpx.RemoteProtocolError, httpx.ReadError):
                        # Queued in the kernel when the socket closed: reset, never read.
                        outcomes["reset before read"] += 1

        callers = [asyncio.create_task(caller()) for _ in range(8)]
        await eventually(lambda: outcomes["200"] >= 40, within=30, what="load before the signal")
        answered_before = outcomes["200"]
        signalled_at = time.monotonic()
        server.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(server.wait, 30)
        exited_after = time.monotonic() - signalled_at
        await eventually(lambda: outcomes["refused"], what="a refused connection after the exit")
        stop.set()
        await asyncio.gather(*callers)
    finally:
        if server.poll() is None:
            server.kill()
    report(
        "sigterm_two_workers",
        {
            "answered_before_signal": answered_before,
            "answered_after_signal": answered_after_signal,
            "exited_after_s": round(exited_after, 2),
            "outcomes": dict(outcomes),
        },
    )
    assert exit_code == 0
    assert answered_before > 0
    assert outcomes["refused"] > 0, "new connections are refused once it stops"
    # Everything it answered was whole and successful: nothing was cut or failed.
    assert set(outcomes) <= {"200", "refused", "reset before read"}, outcomes
