"""Shared pieces of the benchmarks: a bench database on the local stack, gateway
processes, users with tokens, and wrk runs that report requests/s and percentiles."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from devstack import LocalStack, StackLayout
from devstack.layout import DEFAULT_PORT_BASE, PG_SUPERUSER
from orgbase.platform.migrations import migrate, sync_role_passwords

EXAMPLE_APP_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

ROOT = Path(__file__).resolve().parents[1]
ORGBASE = str(Path(sys.executable).parent / "orgbase")
BENCH_DATABASE = "orgbase_bench"
PASSWORD = "bench password 2026!"
SERVER_PIDS: dict[str, int] = {}
"""The process id of each running gateway (and peer), by base URL (for bench/cpu.py)."""

WRK_SCRIPT = r"""
local tokens = {}
local bodies = {}
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local tokens_file = os.getenv("BENCH_TOKENS")
local bodies_file = os.getenv("BENCH_BODIES")
if tokens_file then for line in io.lines(tokens_file) do tokens[#tokens + 1] = line end end
if bodies_file then for line in io.lines(bodies_file) do bodies[#bodies + 1] = line end end
local pause = tonumber(os.getenv("BENCH_PAUSE_MS") or "0")
if pause > 0 then
  -- each connection waits this long between its requests: a steady load, not a flood
  function delay() return pause end
end
local content_type = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
local unique = os.getenv("BENCH_UNIQUE_PATHS")
local counter = 0
local made = 0
-- each thread its own number (its Lua state is its own: math.random repeats across them)
function setup(thread) made = made + 1; thread:set("tid", made) end
function init(args) counter = math.random(1, 100000) end
function request()
  counter = counter + 1
  local headers = {}
  local body = nil
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1] end
  if #bodies > 0 then
    body = bodies[(counter % #bodies) + 1]
    headers["Content-Type"] = content_type
  end
  -- a path of its own per request (object uploads: each a new object)
  local target = path
  if unique then target = path .. "-" .. tostring(tid) .. "-" .. counter end
  return wrk.format(method, target, headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"socket_errors":%d,"non2xx":%d,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


# The load generator shares the machine's two cores with the server and PostgreSQL; when
# it waits for a core, responses sit unread and their latency counts against the server.
# Running wrk at a higher priority keeps the figures about the server (root only).
NICE: list[str] = []


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int

    def line(self, label: str) -> str:
        return (
            f"{label:<44} {self.rps:>9.0f} req/s   p50 {self.p50_ms:6.2f} ms   "
            f"p90 {self.p90_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms   errors {self.errors}"
        )


def wrk(
    url: str,
    *,
    seconds: float = 10,
    connections: int = 32,
    threads: int = 2,
    method: str = "GET",
    tokens: list[str] | None = None,
    bodies: list[str] | None = None,
    pause_ms: int = 0,
    content_type: str | None = None,
    unique_paths: bool = False,
) -> WrkResult:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bench.lua"
        script.write_text(WRK_SCRIPT)
        env = {**os.environ, "BENCH_METHOD": method, "BENCH_PAUSE_MS": str(pause_ms)}
        if content_type:
            env["BENCH_CONTENT_TYPE"] = content_type
        if unique_paths:
            env["BENCH_UNIQUE_PATHS"] = "1"
        base, _, path = url.partition("://")[2].partition("/")
        env["BENCH_PATH"] = "/" + path
        if tokens:
            (Path(folder) / "tokens").write_text("\n".join(tokens) + "\n")
            env["BENCH_TOKENS"] = str(Path(folder) / "tokens")
        if bodies:
            (Path(folder) / "bodies").write_text("\n".join(bodies) + "\n")
            env["BENCH_BODIES"] = str(Path(folder) / "bodies")
        output = subprocess.run(
            [
                *NICE,
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                str(script),
                f"http://{base}/",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    return WrkResult(
        requests=data["requests"],
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_ms"],
        p90_ms=data["p90_ms"],
        p99_ms=data["p99_ms"],
        max_ms=data["max_ms"],
        errors=data["socket_errors"] + data["non2xx"],
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def local_stack() -> LocalStack:
    port_base = int(os.environ.get("ORGBASE_LOCAL_PORT_BASE", DEFAULT_PORT_BASE))
    stack = LocalStack(StackLayout(ROOT / ".orgbase", port_base))
    stack.up()
    return stack


async def prepare_database(stack: LocalStack, name: str = BENCH_DATABASE) -> dict[str, str]:
    """A fresh, migrated database; returns the gateway environment for it."""
    admin = await asyncpg.connect(
        stack.database_url(PG_SUPERUSER, stack.secrets["pg_superuser"], "postgres")
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGBASE_")}
    env.update(stack.env(database=name))
    env.update(
        {
            "ORGBASE_REDIS_DB": "3",
            "ORGBASE_LOG_LEVEL": "warning",
            "ORGBASE_AUTH_SIGNIN_PER_IP_PER_MINUTE": "100000000",
            "ORGBASE_AUTH_SIGNUP_PER_IP_PER_HOUR": "100000000",
            "ORGBASE_AUTH_REFRESH_PER_IP_PER_MINUTE": "100000000",
            "ORGBASE_AUTH_LOCKOUT_FAILURES": "100000000",
        }
    )
    migration_url = stack.database_url(PG_SUPERUSER, stack.secrets["pg_superuser"], name)
    # orgbase's migrations and the example app migrations (api.items).
    await migrate(migration_url, app_directory=EXAMPLE_APP_MIGRATIONS)
    from orgbase.core.settings import settings_from_env

    await sync_role_passwords(settings_from_env(env).database)
    from redis.asyncio import Redis

    redis = Redis(
        host="127.0.0.1",
        port=stack.redis.primary_port() or stack.layout.redis_ports[0],
        password=stack.secrets["redis"],
        db=3,
    )
    await redis.flushdb()
    await redis.aclose()
    return env


def listeners(port: int) -> int:
    """Sockets listening on ``port`` (one per worker: SO_REUSEPORT)."""
    found = subprocess.run(
        ["ss", "-tlnH", f"( sport = :{port} )"], capture_output=True, text=True, check=False
    )
    return len(found.stdout.splitlines())


def org_of(token: str) -> str:
    """The org an access token is scoped to (its ``org`` claim; not verified: the
    benchmark made the token)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["org"])


@contextmanager
def gateway(
    env: dict[str, str], workers: int = 1, log_file: Path | None = None, **overrides: str
) -> Iterator[str]:
    """Run `orgbase serve` in the background; yields its base URL.

    Logs (stdout) go to ``log_file`` when given, else nowhere.
    """
    port = free_port()
    log = log_file.open("w") if log_file else None
    process = subprocess.Popen(
        [ORGBASE, "serve", "--port", str(port), "--workers", str(workers)],
        env={**env, **overrides},
        cwd=ROOT,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = process.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                live = httpx.get(f"{base}/health/live", timeout=1).status_code == 200
            except httpx.TransportError:
                live = False
            # The first worker up answers; connections opened before the others listen
            # would all stay on it (measured: all 32 of wrk's on one of two workers).
            if live and listeners(port) >= workers:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise SystemExit(f"the gateway did not start:\n{stderr[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        SERVER_PIDS.pop(base, None)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        if log:
            log.close()


async def make_users(
    base: str, count: int, *, org_ids: list[str] | None = None, prefix: str = "bench"
) -> list[dict[str, Any]]:
    """Sign up and sign in ``count`` users (concurrently); returns the token responses."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(n: int) -> dict[str, Any]:
            email = f"{prefix}-{n}-{os.getpid()}@bench.test"
            signup = await client.post(
                "/v1/auth/signup", json={"email": email, "password": PASSWORD}
            )
            signup.raise_for_status()
            body: dict[str, Any] = {"grant_type": "password", "email": email, "password": PASSWORD}
            if org_ids:
                body["org_id"] = org_ids[n % len(org_ids)]
            response = await client.post("/v1/auth/token", json=body)
            response.raise_for_status()
            tokens: dict[str, Any] = response.json()
            tokens["email"] = email
            return tokens

        return list(await asyncio.gather(*(one(n) for n in range(count))))
