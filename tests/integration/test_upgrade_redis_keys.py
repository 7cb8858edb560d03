"""Upgrading from the release before the Redis hash tags loses nothing: the keys that
release wrote (by hand here, with its names and value formats) are moved by ``orgbase
migrate`` and read back through today's API: cache values with their TTLs, counted in the
org's key listing and storage quota; a lock in force stays in force; SLO and hit-rate
counters are added to today's. Caches of PostgreSQL and figures of a few minutes are
deleted. A second run changes nothing; a run cut short is finished by the next one without
losing a value or counting one twice. Run on Sentinel and on the Redis Cluster."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from devstack import LocalStack
from orgbase.core import keys
from orgbase.core.redis import RedisClients
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp
from orgbase.services.redis.layout import STEP, upgrade_key_names
from tests.support.data import make_platform_admin
from tests.support.http import bearer, member_tokens, new_user, password_grant
from tests.support.redis_modes import both_modes_client, both_modes_settings  # noqa: F401 (fixtures)
from tests.support.stack import server_env

Client = AsyncTestClient[OrgbaseApp]
ORGBASE = str(Path(sys.executable).parent / "orgbase")
OldValues = Mapping[str, tuple[bytes, int | None]]
"""Cache key -> (the value as that release stored it: JSON, or the digits of a counter;
its TTL in ms or None)."""


async def write_old_cache(r: Redis, org: str, values: OldValues) -> None:
    """An org's cache as the release before hash tags wrote it: ``t:<org>:kv:<key>`` and
    the index ``t:<org>:kvindex`` (names scored by expiry in ms), nothing else."""
    now_ms = int(time.time() * 1000)
    for name, (raw, ttl_ms) in values.items():
        await r.set(f"t:{org}:kv:{name}", raw, px=ttl_ms)
        await r.zadd(f"t:{org}:kvindex", {name: now_ms + ttl_ms if ttl_ms else float("inf")})


def size(values: Mapping[str, bytes]) -> int:
    """The bytes today's cache counts for these values (value plus name)."""
    return sum(len(raw) + len(name) for name, raw in values.items())


async def held_bytes(r: Redis, org: str) -> int:
    return int(await r.get(keys.cache_bytes(org)) or 0)


async def none_exist(r: Redis, names: list[str]) -> bool:
    return all([await r.exists(name) == 0 for name in names])


def account_of(email: str) -> str:
    """How that release named an account in its lockout keys."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


@pytest.fixture(scope="module")
async def platform_admin(client: Client, settings: Settings) -> dict[str, str]:
    user, tokens = await new_user(client)
    await make_platform_admin(settings, user["id"])
    return bearer(tokens["access_token"])


async def test_cache_values_read_back_through_the_api(
    client: Client, redis_clients: RedisClients, platform_admin: dict[str, str]
) -> None:
    r = redis_clients.primary
    org_a, a = await member_tokens(client, ("member",))
    org_b, b = await member_tokens(client, ())
    old_a: OldValues = {
        "greeting": (b'"hello"', None),
        "session:temp": (b'{"n":[1,2]}', 600_000),
        "counter": (b"41", None),
    }
    await write_old_cache(r, org_a, old_a)
    await write_old_cache(r, org_b, {"greeting": (b'"bonjour"', None)})

    result = await upgrade_key_names(redis_clients, rescan=True)

    assert result.complete
    assert result.counts == {"cache value: moved": 4, "cache index: dropped": 2}
    member, owner = bearer(a["member"]), bearer(a["owner"])
    greeting = (await client.get("/v1/kv/greeting", headers=member)).json()
    assert (greeting["value"], greeting["ttl"]) == ("hello", None)
    temp = (await client.get("/v1/kv/session:temp", headers=member)).json()
    assert temp["value"] == {"n": [1, 2]}
    assert 590 <= temp["ttl"] <= 600
    bumped = await client.post("/v1/kv/counter/increment", headers=member, json={"by": 1})
    assert bumped.json()["value"] == 42
    other = (await client.get("/v1/kv/greeting", headers=bearer(b["owner"]))).json()
    assert other["value"] == "bonjour"
    # The org's listing and storage count the moved values, as if written today.
    listing = (await client.get(f"/v1/orgs/{org_a}/redis", headers=owner)).json()
    assert listing["keys"] == 3
    held = size({name: raw for name, (raw, _) in old_a.items()} | {"counter": b"42"})
    assert await held_bytes(r, org_a) == held
    limits = f"/v1/platform/orgs/{org_a}/limits"
    await client.put(limits, headers=platform_admin, json={"cache_storage_bytes": held})
    over = await client.put("/v1/kv/one-more", headers=member, json={"value": 1})
    assert (over.status_code, over.json()["code"]) == (409, "cache_storage_exceeded")
    assert over.json()["details"]["used_bytes"] == held
    # Nothing is left under the old names.
    old_names = [f"t:{org_a}:kv:{name}" for name in old_a] + [
        f"t:{org_a}:kvindex",
        f"t:{org_b}:kv:greeting",
        f"t:{org_b}:kvindex",
    ]
    assert await none_exist(r, old_names)

    again = await upgrade_key_names(redis_clients, rescan=True)
    assert (again.counts, again.complete) == ({}, True)
    assert await held_bytes(r, org_a) == held
    assert (await client.get(f"/v1/orgs/{org_a}/redis", headers=owner)).json()["keys"] == 3


async def test_caches_are_dropped_and_counters_carry_over(
    client: Client, redis_clients: RedisClients
) -> None:
    r = redis_clients.primary
    org, tokens = await member_tokens(client, ())
    owner = bearer(tokens["owner"])
    locked_user, _ = await new_user(client)
    minute, hour = int(time.time() // 60), int(time.time() // 3600)
    window = int(time.time() // 60)
    # Caches of PostgreSQL, and figures of the last few minutes.
    session, user = str(uuid.uuid4()), str(uuid.uuid4())
    dropped = [f"sess:{session}", f"mem:{org}:{user}", f"hot:{org}:{minute}", "hot:tmp:all:7"]
    await r.set(f"sess:{session}", b"\x00revoked", ex=300)
    await r.set(f"mem:{org}:{user}", b"member", ex=300)
    await r.zadd(f"hot:{org}:{minute}", {"greeting": 3})
    await r.zadd("hot:tmp:all:7", {f"{org}:greeting": 3})
    # Counters: a lock in force, failures, a rate-limit window, SLO and hit-rate figures.
    await r.set(f"lock:{account_of(locked_user['email'])}", b"1", px=120_000)
    await r.set(f"fail:{account_of('someone@example.test')}", b"2", ex=600)
    await r.set(f"rl:signin:ip:203.0.113.9:{window}", b"3", ex=61)
    await r.hset(f"slo:h:{org}:{hour - 2}", mapping={"total": 7, "errors": 2})
    await r.expire(f"slo:h:{org}:{hour - 2}", 31 * 86400)
    await r.hset(f"slo:m:{org}:{minute - 3}", mapping={"total": 3, "errors": 1})
    await r.expire(f"slo:m:{org}:{minute - 3}", 7200)
    # Today's gateway already counted in that hour: the old counts are added to its.
    await r.hset(keys.slo_hour(org, hour - 2), mapping={"total": 5, "slow": 1})
    await r.expire(keys.slo_hour(org, hour - 2), 31 * 86400)
    await r.hset(f"stats:kv:{org}:{minute}", mapping={"hits": 4, "misses": 1})
    await r.expire(f"stats:kv:{org}:{minute}", 7200)

    result = await upgrade_key_names(redis_clients, rescan=True)

    assert result.counts == {
        "session cache: dropped": 1,
        "membership cache: dropped": 1,
        "hot keys: dropped": 2,
        "account lock: moved": 1,
        "sign-in failures: moved": 1,
        "rate limit: moved": 1,
        "slo hour: merged": 1,
        "slo minute: merged": 1,
        "cache hit rate: merged": 1,
    }
    assert await none_exist(r, dropped)
    locked = await client.post("/v1/auth/token", json=password_grant(locked_user["email"]))
    assert (locked.status_code, locked.json()["code"]) == (429, "account_locked")
    assert 0 < int(locked.headers["retry-after"]) <= 120
    failures = keys.lockout(account_of("someone@example.test"))[1]
    assert await r.get(failures) == b"2"
    assert 0 < await r.ttl(failures) <= 600
    limited = keys.rate_limit("signin:ip:203.0.113.9", window)
    assert await r.get(limited) == b"3"
    assert 0 < await r.ttl(limited) <= 61
    hour_counts = await r.hgetall(keys.slo_hour(org, hour - 2))
    assert {k: hour_counts[k] for k in (b"total", b"errors", b"slow")} == {
        b"total": b"12",
        b"errors": b"2",
        b"slow": b"1",
    }
    slo = (await client.get(f"/v1/orgs/{org}/slo", headers=owner)).json()["windows"]
    assert (slo["30d"]["errors"], slo["1h"]["errors"]) == (2, 1)
    assert slo["30d"]["requests"] >= 12
    assert 7000 < await r.ttl(keys.slo_minute(org, minute - 3)) <= 7200
    hit_rate = await r.hgetall(keys.kv_stats(org, minute))
    assert (hit_rate[b"hits"], hit_rate[b"misses"]) == (b"4", b"1")

    # Cut short after adding the hour but before deleting it: the next run does not add
    # it twice.
    await r.hset(f"slo:h:{org}:{hour - 2}", mapping={"total": 7, "errors": 2})
    again = await upgrade_key_names(redis_clients, rescan=True)
    assert again.counts == {"slo hour: merged before": 1}
    assert int(await r.hget(keys.slo_hour(org, hour - 2), "total") or 0) == 12
    assert (await upgrade_key_names(redis_clients, rescan=True)).counts == {}


async def test_an_interrupted_run_is_finished_by_the_next(
    client: Client, redis_clients: RedisClients
) -> None:
    r = redis_clients.primary
    org, tokens = await member_tokens(client, ("member",))
    member = bearer(tokens["member"])
    old = {f"k{n}": (f'"value {n}"'.encode(), None if n % 2 else 3_600_000) for n in range(12)}
    await write_old_cache(r, org, old)
    await r.delete(keys.DATA_LAYOUT)

    first = await upgrade_key_names(redis_clients, limit=5)

    assert not first.complete
    assert sum(first.counts.values()) == 5
    assert await r.hget(keys.DATA_LAYOUT, STEP) is None
    left = [name for name in old if await r.exists(f"t:{org}:kv:{name}")]
    moved = [name for name in old if name not in left]
    assert moved
    assert left
    # Since the upgrade, the application wrote one key that was not moved yet (its value
    # wins), and one moved key is back under its old name, as when a run stops between
    # the copy and the delete.
    newer = left[0]
    put = await client.put(f"/v1/kv/{newer}", headers=member, json={"value": "newer"})
    assert put.status_code == 200
    await r.set(f"t:{org}:kv:{moved[0]}", old[moved[0]][0])

    second = await upgrade_key_names(redis_clients)

    assert second.complete
    assert second.counts["cache value: kept newer"] == 2
    assert await r.hget(keys.DATA_LAYOUT, STEP) is not None
    final = {name: raw for name, (raw, _) in old.items()} | {newer: b'"newer"'}
    for name, raw in final.items():
        got = (await client.get(f"/v1/kv/{name}", headers=member)).json()
        assert got["value"] == raw.decode().strip('"'), name
        assert (got["ttl"] is None) == (old[name][1] is None or name == newer), name
    assert await held_bytes(r, org) == size(final)
    owner = bearer(tokens["owner"])
    assert (await client.get(f"/v1/orgs/{org}/redis", headers=owner)).json()["keys"] == 12
    assert await none_exist(r, [f"t:{org}:kv:{name}" for name in old])

    # Recorded: the next run does not scan (a key of the old layout written now stays)...
    await write_old_cache(r, org, {"late": (b'"late"', None)})
    skipped = await upgrade_key_names(redis_clients)
    assert skipped.recorded is not None
    assert skipped.counts == {}
    assert await r.exists(f"t:{org}:kv:late") == 1
    # ... unless asked to look again.
    rescanned = await upgrade_key_names(redis_clients, rescan=True)
    assert rescanned.counts["cache value: moved"] == 1
    assert (await client.get("/v1/kv/late", headers=member)).json()["value"] == "late"


async def test_a_key_of_another_shape_is_left_alone(redis_clients: RedisClients) -> None:
    """An old name holding what that release never wrote there is neither moved nor
    deleted (and a hash with a count that is not a number adds nothing at all)."""
    r = redis_clients.primary
    org, hour = str(uuid.uuid4()), int(time.time() // 3600)
    odd_value, odd_hour = f"t:{org}:kv:odd", f"slo:h:{org}:{hour}"
    await r.hset(odd_value, mapping={"not": "a string"})
    await r.hset(odd_hour, mapping={"total": 4, "errors": "many"})
    try:
        result = await upgrade_key_names(redis_clients, rescan=True)
        assert result.counts == {
            "cache value: left (unreadable)": 1,
            "slo hour: left (unreadable)": 1,
        }
        assert await r.exists(odd_value, odd_hour) == 2
        assert await r.exists(keys.kv_value(org, "odd"), keys.slo_hour(org, hour)) == 0
    finally:
        await r.delete(odd_value, odd_hour)


async def test_orgbase_migrate_runs_the_step(
    client: Client, redis_clients: RedisClients, stack: LocalStack, redis_mode: str
) -> None:
    r = redis_clients.primary
    org, tokens = await member_tokens(client, ())
    await write_old_cache(r, org, {"greeting": (b'"hello"', None)})
    await r.delete(keys.DATA_LAYOUT)
    env = server_env(stack, redis_mode=redis_mode)

    async def migrate(*args: str) -> str:
        done = await asyncio.to_thread(
            subprocess.run,
            [ORGBASE, "migrate", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = await migrate()
    assert "redis keys of earlier releases, cache value: moved: 1" in first
    got = (await client.get("/v1/kv/greeting", headers=bearer(tokens["owner"]))).json()
    assert got["value"] == "hello"
    assert "redis keys: up to date" in await migrate()
    assert "redis keys: nothing of earlier releases found" in await migrate("--rescan")
