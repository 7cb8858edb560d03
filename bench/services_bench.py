"""Document and cache throughput through the gateway, and realtime fan-out.

- GET /v1/docs/items?limit=20 and POST /v1/docs/items (one document) with tokens of many
  orgs; GET and PUT /v1/kv/{key}.
- Realtime: N WebSocket subscribers of one org channel, messages published over HTTP as
  fast as they are accepted; messages delivered per second and delivery latency p50/p99.

Run: ``make bench-services`` (or ``.venv/bin/python -m bench.services_bench [seconds]``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

import httpx
import websockets

from bench.harness import gateway, local_stack, make_users, prepare_database, wrk

ORGS = 20
SUBSCRIBERS = 50
MESSAGES = 400


async def org_tokens(base: str) -> list[str]:
    users = await make_users(base, ORGS, prefix="svc")
    tokens = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for user in users:
            auth = {"Authorization": f"Bearer {user['access_token']}"}
            org = (await client.post("/v1/orgs", headers=auth, json={"name": user["email"]})).json()
            scoped = await client.post(
                "/v1/auth/token",
                json={
                    "grant_type": "refresh_token",
                    "refresh_token": user["refresh_token"],
                    "org_id": org["id"],
                },
            )
            token = scoped.json()["access_token"]
            tokens.append(token)
            headers = {"Authorization": f"Bearer {token}"}
            docs = [{"kind": "bench", "n": n, "title": f"doc {n}"} for n in range(50)]
            (await client.post("/v1/docs/items", headers=headers, json=docs)).raise_for_status()
            (
                await client.put("/v1/kv/k", headers=headers, json={"value": {"n": 1}})
            ).raise_for_status()
    return tokens


async def fan_out(base: str, token: str) -> tuple[float, list[float]]:
    url = base.replace("http", "ws") + f"/v1/realtime?access_token={token}"
    sockets = [await websockets.connect(url) for _ in range(SUBSCRIBERS)]
    for socket in sockets:
        await socket.send(json.dumps({"type": "subscribe", "channel": "bench"}))
        await socket.recv()
    latencies: list[float] = []

    async def receive(socket: websockets.ClientConnection) -> None:
        for _ in range(MESSAGES):
            message = json.loads(await asyncio.wait_for(socket.recv(), 60))
            latencies.append(time.time() - message["payload"]["sent"])

    receivers = [asyncio.ensure_future(receive(s)) for s in sockets]
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for n in range(MESSAGES):
            (
                await client.post(
                    "/v1/realtime/bench",
                    headers=headers,
                    json={"event": "tick", "payload": {"n": n, "sent": time.time()}},
                )
            ).raise_for_status()
    await asyncio.gather(*receivers)
    elapsed = time.perf_counter() - started
    for socket in sockets:
        await socket.close()
    return len(latencies) / elapsed, latencies


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8
    stack = local_stack()
    env = asyncio.run(prepare_database(stack))
    env.update(
        {
            "ORGBASE_AUTH_ARGON2_TIME_COST": "1",
            "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
            "ORGBASE_LOG_LEVEL": "info",
        }
    )
    print(
        f"services benchmark: 1 gateway worker, {ORGS} orgs, wrk 2 threads 32 connections,"
        f" {seconds:g}s\n"
    )
    with gateway(env) as base:
        tokens = asyncio.run(org_tokens(base))
        body = [json.dumps({"kind": "bench", "title": f"new {n}"}) for n in range(50)]
        kv_body = [json.dumps({"value": {"n": n}, "ttl": 300}) for n in range(50)]
        for label, url, options in (
            ("GET /v1/docs/items?limit=20", f"{base}/v1/docs/items?limit=20", {}),
            (
                "POST /v1/docs/items (1 document)",
                f"{base}/v1/docs/items",
                {"method": "POST", "bodies": body},
            ),
            ("GET /v1/kv/k", f"{base}/v1/kv/k", {}),
            ("PUT /v1/kv/k", f"{base}/v1/kv/k", {"method": "PUT", "bodies": kv_body}),
        ):
            wrk(url, seconds=2, tokens=tokens, **options)  # type: ignore[arg-type]
            print(wrk(url, seconds=seconds, tokens=tokens, **options).line(label))  # type: ignore[arg-type]
        rate, latencies = asyncio.run(fan_out(base, tokens[0]))
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        print(
            f"\nrealtime fan-out: {SUBSCRIBERS} subscribers x {MESSAGES} messages: "
            f"{rate:.0f} deliveries/s, latency p50 {p50:.1f} ms p99 {p99:.1f} ms"
        )


if __name__ == "__main__":
    main()
