"""compose.yaml's load balancer, for real: Debian's nginx runs deploy/nginx/nginx.conf in
front of two gateway processes on the local stack.

Only what only Docker has is replaced (its DNS resolver and the re-resolving replica
line become the two local ports; the listen address becomes loopback); every proxy
setting is the production file's. Through it: requests reach both replicas, request ids
are kept or made, WebSocket upgrades and server-sent events pass unbuffered with messages
crossing replicas, and a replica killed under load costs no idempotent request.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from devstack import LocalStack
from tests.support.http import next_sse_data, org_member
from tests.support.processes import free_port, start_server, wait_until_answering
from tests.support.stack import ROOT, STATE_DIR, server_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = ROOT / "deploy" / "nginx" / "nginx.conf"
LOGS = STATE_DIR / "lb"


def local_config(template: str, listen_port: int, upstream_ports: list[int]) -> str:
    """The production file with Docker's names swapped for local ports (each swap must
    find its line: a changed template fails here instead of being tested half)."""
    swaps = [
        (r"\n\s*resolver [^;]*;[^\n]*", ""),
        (
            r"server gateway:8000 resolve ([^;]*);",
            "\n        ".join(f"server 127.0.0.1:{port} \\1;" for port in upstream_ports),
        ),
        (r"listen 8080;", f"listen 127.0.0.1:{listen_port};"),
    ]
    config = template
    for pattern, replacement in swaps:
        config, found = re.subn(pattern, replacement, config)
        assert found == 1, f"deploy/nginx/nginx.conf no longer has {pattern!r}"
    return config


@dataclass
class Balanced:
    base: str
    replicas: list[subprocess.Popen[bytes]]
    logs: list[Path]


@pytest.fixture(scope="module")
def balanced(stack: LocalStack) -> Iterator[Balanced]:
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (make test installs it as root)")
    LOGS.mkdir(parents=True, exist_ok=True)
    env = server_env(stack, ORGBASE_HTTP_TRUSTED_PROXIES="127.0.0.1/32")
    ports = [free_port(), free_port()]
    logs = [LOGS / f"gateway-{n}.log" for n in range(2)]
    replicas = [
        start_server(env, port, log_file=log) for port, log in zip(ports, logs, strict=True)
    ]
    listen = free_port()
    config = LOGS / "nginx.conf"
    config.write_text(
        f"pid {LOGS}/nginx.pid;\n" + local_config(TEMPLATE.read_text(), listen, ports)
    )
    # In the foreground, so the process started here is nginx's master: stopped by its pid.
    command = [NGINX, "-p", str(LOGS), "-e", str(LOGS / "error.log"), "-c", str(config)]
    nginx = subprocess.Popen(
        [*command, "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{listen}"
    try:
        started = wait_until_answering(f"{base}/lb/health", nginx, 20)
        assert started, (LOGS / "error.log").read_text()[-2000:]
        yield Balanced(base, replicas, logs)
    finally:
        nginx.send_signal(signal.SIGQUIT)  # graceful: finish open requests, then exit
        try:
            nginx.wait(20)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait(5)
        for replica in replicas:
            if replica.poll() is None:
                replica.terminate()
        for replica in replicas:
            replica.wait(30)


def _requests_logged(log: Path, path: str) -> int:
    count = 0
    for line in log.read_text().splitlines():
        if line.startswith("{") and f'"path":"{path}"' in line:
            count += 1
    return count


async def test_requests_reach_both_replicas_with_request_ids(balanced: Balanced) -> None:
    async with httpx.AsyncClient(base_url=balanced.base, timeout=10) as http:
        _, _, headers = await org_member(http, "lb")
        before = [_requests_logged(log, "/v1/auth/session") for log in balanced.logs]
        for _ in range(20):
            assert (await http.get("/v1/auth/session", headers=headers)).status_code == 200
        # The caller's request id goes through; without one, nginx makes one the gateway keeps.
        mine = await http.get("/health/live", headers={"X-Request-ID": "lb-test-1"})
        made = await http.get("/health/live")

    def served() -> list[int]:
        after = [_requests_logged(log, "/v1/auth/session") for log in balanced.logs]
        return [b - a for a, b in zip(before, after, strict=True)]

    # A replica writes its access log line as the answer goes out, maybe after it arrived.
    await eventually(lambda: sum(served()) >= 20, within=5, what="20 access log lines")
    counts = served()
    assert sum(counts) == 20
    assert min(counts) >= 5, f"round robin should use both replicas: {counts}"
    assert mine.headers["x-request-id"] == "lb-test-1"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])


async def test_websocket_and_sse_pass_and_messages_cross_replicas(balanced: Balanced) -> None:
    async with httpx.AsyncClient(base_url=balanced.base, timeout=10) as http:
        _, _, headers = await org_member(http, "lb realtime")
        token = headers["Authorization"].removeprefix("Bearer ")
        url = balanced.base.replace("http", "ws") + f"/v1/realtime?access_token={token}"
        async with (
            websockets.connect(url) as socket,
            http.stream(
                "GET", "/v1/realtime/sse", params={"channels": "news"}, headers=headers
            ) as stream,
        ):
            await socket.send(json.dumps({"type": "subscribe", "channel": "news"}))
            assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "subscribed"
            lines = stream.aiter_lines()
            assert (await next_sse_data(lines))["type"] == "subscribed"
            # Several publishes, so round robin sends some to the other replica.
            for n in range(4):
                published = await http.post(
                    "/v1/realtime/news", headers=headers, json={"event": "n", "payload": n}
                )
                assert published.status_code == 202, published.text
            by_socket = [json.loads(await asyncio.wait_for(socket.recv(), 5)) for _ in range(4)]
            by_sse = [await next_sse_data(lines) for _ in range(4)]
    assert sorted(m["payload"] for m in by_socket) == [0, 1, 2, 3]
    assert sorted(m["payload"] for m in by_sse) == [0, 1, 2, 3]


async def test_a_replica_killed_under_load_costs_no_read(balanced: Balanced) -> None:
    """Reads sent after the replica is dead all succeed (nginx retries an idempotent
    request on the other replica); only answers the dying replica had half-sent may fail."""
    async with httpx.AsyncClient(base_url=balanced.base, timeout=10) as http:
        _, _, headers = await org_member(http, "lb failover")
        reads: list[tuple[float, int]] = []
        stop = asyncio.Event()

        async def reader() -> None:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    status = (await http.get("/v1/db/items?limit=5", headers=headers)).status_code
                except httpx.TransportError:
                    status = 0  # cut while the replica died
                reads.append((started, status))

        readers = [asyncio.create_task(reader()) for _ in range(4)]
        await eventually(lambda: len(reads) >= 40, within=10, what="reads before the kill")
        victim = balanced.replicas[1]
        victim.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.wait, 10)
        dead_at = time.monotonic()
        await eventually(
            lambda: sum(1 for t, _ in reads if t >= dead_at) >= 40,
            within=10,
            what="reads after the kill",
        )
        stop.set()
        await asyncio.gather(*readers)
    after = [s for t, s in reads if t >= dead_at]
    failed_in_flight = sum(1 for t, s in reads if t < dead_at and s != 200)
    print(
        f"\nreplica SIGKILL behind nginx: {len(reads)} reads; {len(after)} sent after it died,"
        f" all {set(after)}; {failed_in_flight} cut in flight"
    )
    assert len(after) > 10, "reads went on after the kill"
    assert set(after) == {200}, sorted(set(after))
    assert failed_in_flight <= len(readers)
