"""The local stack is reused rather than doubled; the CLI reports bad settings clearly;
`orgbase serve` drains in-flight requests on SIGTERM."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import parse_env_file
from tests.support.processes import free_port, start_server
from tests.support.waiting import eventually

ORGBASE = str(Path(sys.executable).parent / "orgbase")


def test_up_again_reuses_running_services(stack: LocalStack) -> None:
    """A second `up` keeps the running services as they are and leaves every one running.
    Optional services made by an earlier run (the replica, the cluster) are started by the
    tests that need them: one stopped before `up` may stay stopped."""
    running_before = {state.name for state in stack.status() if state.running}
    before = (
        stack.postgres.pid,
        [stack.redis.node_pid(p) for p in stack.layout.redis_ports],
        [stack.redis.sentinel_pid(p) for p in stack.layout.sentinel_ports],
        stack.mongo.pid,
    )
    stack.up()
    after = (
        stack.postgres.pid,
        [stack.redis.node_pid(p) for p in stack.layout.redis_ports],
        [stack.redis.sentinel_pid(p) for p in stack.layout.sentinel_ports],
        stack.mongo.pid,
    )
    assert before == after
    core = {"postgres", "redis", "sentinel", "mongo", "mail"}
    down = [
        state
        for state in stack.status()
        if not state.running and (state.name in core or state.name in running_before)
    ]
    assert not down, down


def test_services_env_is_private_and_complete(stack: LocalStack) -> None:
    env_file = stack.layout.env_file
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = parse_env_file(env_file.read_text())
    for key in (
        "ORGBASE_DATABASE_API_URL",
        "ORGBASE_DATABASE_SYSTEM_URL",
        "ORGBASE_DATABASE_MIGRATION_URL",
        "ORGBASE_REDIS_SENTINELS",
        "ORGBASE_REDIS_PASSWORD",
        "ORGBASE_MONGO_URL",
    ):
        assert values[key], key
    assert len(values["ORGBASE_REDIS_SENTINELS"].split(",")) == 3


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ORGBASE_")}


def test_cli_names_the_bad_variable(stack: LocalStack) -> None:
    env = {**_clean_env(), **stack.env(), "ORGBASE_HTTP_PORT": "not-a-port"}
    result = subprocess.run(
        [ORGBASE, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "ORGBASE_HTTP_PORT" in result.stderr
    assert "Traceback" not in result.stderr


async def _refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


@pytest.mark.slow
async def test_sigterm_drains_in_flight_requests(stack: LocalStack) -> None:
    """Requests in flight when SIGTERM arrives complete; new connections are refused.

    To hold requests in flight for a known time, the Mongo-wire server is frozen
    (SIGSTOP): each readiness check then waits for its 1 s Mongo probe limit.
    """
    port = free_port()
    env = {**_clean_env(), **stack.env(database="orgbase_test"), "ORGBASE_ENV": "dev"}
    server = start_server(env, port)
    url = f"http://127.0.0.1:{port}/health/ready"
    mongo_pid = stack.mongo.pid
    assert mongo_pid is not None
    sent = 0

    async def request_sent(event: str, _: object) -> None:
        nonlocal sent
        if event == "http11.send_request_body.complete":
            sent += 1

    async def one_request() -> tuple[int, str]:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url, extensions={"trace": request_sent})
            return response.status_code, response.json()["status"]

    try:
        os.kill(mongo_pid, signal.SIGSTOP)
        try:
            in_flight = [asyncio.create_task(one_request()) for _ in range(8)]
            # Whole requests on their connections before the signal: they are in flight.
            await eventually(lambda: sent == 8, within=5, what="8 requests sent")
            server.send_signal(signal.SIGTERM)
            await eventually(
                functools.partial(_refuses_connections, port), within=5, what="the listener closed"
            )
            results = await asyncio.gather(*in_flight)
        finally:
            os.kill(mongo_pid, signal.SIGCONT)
        exit_code = await asyncio.to_thread(server.wait, 30)
    finally:
        if server.poll() is None:
            server.kill()
    assert results == [(200, "degraded")] * 8
    # uvicorn re-raises the signal once it has shut down cleanly.
    assert exit_code in (0, -signal.SIGTERM)
