"""Redis Cluster drills under load, for real, on the fault stack's 6-node cluster: the
primary serving an org's slot SIGKILLed (its replica takes over, the gateway follows), and
the org's slot migrated to another primary with `redis-cli --cluster reshard` while the
org writes (nothing acknowledged is lost, nothing counted twice).

Each prints its figures (`pytest -s` or `make drills`). The assertions are what must hold
whatever the timing: sessions and tenant data never fail, the cache fails only with a
clear 503 (or a 404 for a write the failover lost), and the counter equals the
acknowledged increments give or take the ones in doubt.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from devstack import LocalStack
from devstack.process import run
from devstack.redis_cluster import redis_cli
from orgbase.core import keys
from orgbase.core.settings import Settings
from tests.support.http import bearer, create_org, new_user, sign_in, wait_for_cache
from tests.support.processes import serving
from tests.support.stack import server_env
from tests.support.traffic import FIGURES_DIR, Traffic, report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster_stack(fault_stack: LocalStack, fault_settings: Settings) -> Iterator[LocalStack]:
    """The fault stack (its database migrated by ``fault_settings``) with its cluster."""
    fault_stack.start_redis_cluster()
    yield fault_stack
    # Leave every node running and the cluster whole (agreed, replicas attached) for
    # whatever runs next: a reshard refuses a cluster whose nodes still disagree.
    fault_stack.redis_cluster.start()


def _topology(stack: LocalStack) -> RedisCluster:
    nodes = [
        ClusterNode("127.0.0.1", p)  # type: ignore[no-untyped-call]
        for p in stack.layout.redis_cluster_ports
    ]
    return RedisCluster(startup_nodes=nodes, password=stack.secrets["redis"])


def _owner_of(stack: LocalStack, key: str) -> tuple[int, int, str]:
    """(slot, port of the primary serving it, that primary's node id)."""
    client = _topology(stack)
    try:
        slot = int(client.keyslot(key))  # type: ignore[no-untyped-call]
        node = client.nodes_manager.get_node_from_slot(slot)
    finally:
        client.close()
    return slot, int(node.port), _node_ranges(stack)[int(node.port)][0]


def _node_ranges(stack: LocalStack) -> dict[int, tuple[str, list[tuple[int, int]]]]:
    """Primary port -> (node id, slot ranges), as CLUSTER NODES says (parsed by redis-py)."""
    client = redis.Redis(
        host="127.0.0.1",
        port=stack.redis_cluster.primaries()[0],
        password=stack.secrets["redis"],
        decode_responses=True,
    )
    try:
        nodes: dict[str, dict[str, Any]] = client.execute_command("CLUSTER NODES")  # type: ignore[no-untyped-call]
    finally:
        client.close()
    out: dict[int, tuple[str, list[tuple[int, int]]]] = {}
    for address, node in nodes.items():
        flags = str(node["flags"])
        if "master" not in flags or "fail" in flags or not node["slots"]:
            continue
        port = int(address.split("@")[0].rsplit(":", 1)[1])
        ranges = [(int(r[0]), int(r[-1])) for r in node["slots"]]
        out[port] = (str(node["node_id"]), ranges)
    return out


async def _get(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
    return await http.get(path, headers=headers)


async def _gateway_org(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    user, tokens = await new_user(http)
    org_id = await create_org(http, tokens, "cluster drill")
    scoped = await sign_in(http, user["email"], org_id)
    return org_id, bearer(scoped["access_token"])


async def test_cluster_primary_killed_under_load(cluster_stack: LocalStack) -> None:
    stack = cluster_stack
    env = server_env(stack, stack.layout.database, redis_mode="cluster")
    with serving(env, log_file=FIGURES_DIR / "cluster_failover.log") as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            org_id, headers = await _gateway_org(http)
            assert (
                await http.put("/v1/kv/beat", headers=headers, json={"value": 0})
            ).status_code == 200
            _, killed_port, _ = _owner_of(stack, keys.kv_value(org_id, "beat"))
            traffic = Traffic(http)
            for path in ("/v1/auth/session", "/v1/kv/beat", "/v1/db/items"):
                traffic.start(path, functools.partial(_get, path=path, headers=headers))
            await traffic.flowing()
            killed_at = time.monotonic()
            await asyncio.to_thread(stack.redis_cluster.kill_node, killed_port)
            recovered_at = await wait_for_cache(
                http, headers, "the gateway following the cluster failover"
            )
            await traffic.flowing(since=recovered_at)
            await traffic.stop()
            _, new_port, _ = _owner_of(stack, keys.kv_value(org_id, "beat"))
    await asyncio.to_thread(stack.redis_cluster.start_node, killed_port)
    await asyncio.to_thread(stack.redis_cluster.start)
    paths = ("/v1/auth/session", "/v1/kv/beat", "/v1/db/items")
    failed = {p: len(traffic.failed(p)) for p in paths}
    report(
        "cluster_primary_killed",
        {
            "killed_primary": killed_port,
            "new_primary": new_port,
            "cache_back_after_s": round(recovered_at - killed_at, 2),
            "failed_requests": failed,
            "outcomes": {p: dict(traffic.outcomes(p)) for p in failed},
            "slowest_request_s": traffic.slowest(),
        },
    )
    assert new_port != killed_port, "the replica was not promoted"
    # Sessions and tenant data do not depend on the cache being up.
    assert failed["/v1/auth/session"] == 0
    assert failed["/v1/db/items"] == 0
    odd = [
        (round(a.at - killed_at, 2), a.status, a.code)
        for a in traffic.of("/v1/kv/beat")
        if a.status not in (200, 404, 503)
    ]
    assert not odd, odd[:20]


async def _org_near_a_range_start(
    http: httpx.AsyncClient, stack: LocalStack, tries: int = 40
) -> tuple[str, dict[str, str], int]:
    """An org whose slot sits near the start of its primary's first range, so a reshard
    of a few slots from that primary moves it (redis-cli takes a node's lowest slots
    first). Returns (org, headers, how many slots to move)."""
    ranges = _node_ranges(stack)
    best: tuple[str, dict[str, str], int] | None = None
    for _ in range(tries):
        org_id, headers = await _gateway_org(http)
        slot = _topology_slot(keys.kv_index(org_id))
        for _, node_ranges in ranges.values():
            # Its position among the node's slots in ascending order (earlier drills
            # leave a node's slots in several ranges).
            count = 0
            for low, high in sorted(node_ranges):
                if low <= slot <= high:
                    count += slot - low + 1
                    if best is None or count < best[2]:
                        best = (org_id, headers, count)
                    break
                count += high - low + 1
        if best is not None and best[2] <= 150:
            break
    assert best is not None
    return best


def _topology_slot(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


async def test_reshard_under_load_loses_nothing(cluster_stack: LocalStack) -> None:
    stack = cluster_stack
    await asyncio.to_thread(stack.redis_cluster.start)
    env = server_env(stack, stack.layout.database, redis_mode="cluster")
    with serving(env, log_file=FIGURES_DIR / "cluster_reshard.log") as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            org_id, headers, slots = await _org_near_a_range_start(http, stack)
            slot, source_port, source_id = _owner_of(stack, keys.kv_index(org_id))
            target_port, (target_id, _) = next(
                (p, v) for p, v in _node_ranges(stack).items() if p != source_port
            )
            counter = 0

            async def increment(h: httpx.AsyncClient) -> httpx.Response:
                return await h.post("/v1/kv/counter/increment", headers=headers, json={"by": 1})

            async def write(h: httpx.AsyncClient) -> httpx.Response:
                nonlocal counter
                counter += 1
                name = f"k{counter}"
                return await h.put(f"/v1/kv/{name}", headers=headers, json={"value": name})

            # The counter exists before the reads start: a read racing the first
            # increment would rightly find no key.
            assert (await increment(http)).status_code == 201
            traffic = Traffic(http)
            traffic.start("increment", increment, loops=2)
            traffic.start("write", write, loops=2)
            traffic.start("read", functools.partial(_get, path="/v1/kv/counter", headers=headers))
            await traffic.flowing()
            started = time.monotonic()
            await asyncio.to_thread(
                run,
                [
                    str(redis_cli()),
                    "-a",
                    stack.secrets["redis"],
                    "--no-auth-warning",
                    "--cluster",
                    "reshard",
                    f"127.0.0.1:{source_port}",
                    "--cluster-from",
                    source_id,
                    "--cluster-to",
                    target_id,
                    "--cluster-slots",
                    str(slots),
                    "--cluster-yes",
                ],
                timeout=300,
            )
            moved_s = time.monotonic() - started
            await traffic.flowing(since=time.monotonic())
            await traffic.stop()
            _, owner_after, _ = _owner_of(stack, keys.kv_index(org_id))
            final = (await http.get("/v1/kv/counter", headers=headers)).json()["value"]
            written = [a.body["key"] for a in traffic.of("write") if a.status == 200 and a.body]
            missing = []
            for name in written:
                answer = await http.get(f"/v1/kv/{name}", headers=headers)
                if answer.status_code != 200 or answer.json()["value"] != name:
                    missing.append(name)
    acked = 1 + sum(1 for a in traffic.of("increment") if a.ok)
    in_doubt = len(traffic.failed("increment"))
    report(
        "cluster_reshard",
        {
            "slots_moved": slots,
            "org_slot": slot,
            "from": source_port,
            "to": owner_after,
            "reshard_s": round(moved_s, 2),
            "increments_acknowledged": acked,
            "increments_failed": in_doubt,
            "counter": final,
            "writes_acknowledged": len(written),
            "writes_missing": len(missing),
            "outcomes": {k: dict(traffic.outcomes(k)) for k in ("increment", "write", "read")},
        },
    )
    assert owner_after == target_port, "the org's slot did not move"
    assert not missing, missing[:20]
    assert acked <= final <= acked + in_doubt
    for label in ("increment", "write", "read"):
        odd = [(a.status, a.code) for a in traffic.failed(label) if a.status != 503]
        assert not odd, (label, odd[:20])
    assert uuid.UUID(org_id)
