"""The per-org rate limiter against the real Redis (Sentinel and cluster): exact at small
limits, shared by two limiters (two replicas), at high rates most requests cost no round
trip, and many orgs far below generous limits are counted in batches."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from orgbase.core import keys
from orgbase.core.redis import RedisClients
from orgbase.core.tasks import TaskSet
from orgbase.limits.org_rate import OrgRateLimiter
from tests.support.redis_modes import both_modes_settings  # noqa: F401 (fixtures)


async def test_a_small_limit_is_exact_across_two_replicas(redis_clients: RedisClients) -> None:
    tasks = TaskSet()
    first, second = OrgRateLimiter(redis_clients, tasks), OrgRateLimiter(redis_clients, tasks)
    org = uuid.uuid4()
    # 60 a minute: a bucket of 10, refilled one a second.
    decisions = [await (first if n % 2 else second).admit(org, "kv", 60) for n in range(12)]
    admitted = [d for d in decisions if not d.retry_after]
    assert len(admitted) == 10
    assert [d.remaining for d in admitted] == list(range(9, -1, -1))
    assert all(d.retry_after >= 1 for d in decisions[10:])
    assert first.round_trips + second.round_trips == 12


async def test_a_fast_org_takes_tokens_ahead(redis_clients: RedisClients) -> None:
    limiter = OrgRateLimiter(redis_clients, TaskSet())
    org = uuid.uuid4()
    decisions = [await limiter.admit(org, "data", 600_000) for _ in range(2000)]
    assert not any(d.retry_after for d in decisions)
    assert limiter.round_trips < 200
    # Another family of the same org has a bucket of its own.
    assert not (await limiter.admit(org, "docs", 6)).retry_after
    assert (await limiter.admit(org, "docs", 6)).retry_after


async def test_concurrent_requests_far_below_the_limit_are_never_refused(
    redis_clients: RedisClients,
) -> None:
    """Requests that find the reserve empty while a refill is in flight wait for it: each
    taking a chunk of its own would throw most of them away and drain the bucket (an org
    at a fraction of its limit was refused)."""
    limiter = OrgRateLimiter(redis_clients, TaskSet())
    org = uuid.uuid4()
    # 6,000 a minute: a bucket of 1,000, chunks of up to 50.
    for _ in range(5):
        decisions = await asyncio.gather(*(limiter.admit(org, "data", 6000) for _ in range(100)))
        assert not [d for d in decisions if d.retry_after]
    assert limiter.rejected == 0
    assert limiter.round_trips < 100


async def test_waiters_on_a_refused_refill_are_refused_with_it(redis_clients: RedisClients) -> None:
    limiter = OrgRateLimiter(redis_clients, TaskSet())
    org = uuid.uuid4()
    # 60 a minute: a bucket of 10; 30 at once: 10 admitted, 20 told when to retry.
    decisions = await asyncio.gather(*(limiter.admit(org, "kv", 60) for _ in range(30)))
    refused = [d for d in decisions if d.retry_after]
    assert len(refused) == 20
    assert all(d.retry_after >= 1 for d in refused)
    assert limiter.rejected == 20


async def consumed(
    redis_clients: RedisClients, org: uuid.UUID, family: str, per_minute: int
) -> float:
    """Requests the org's bucket has counted: the key lives as long as the GCRA time is
    ahead of now (plus 1 ms), so its PTTL in intervals."""

    async def ttl(r: Any) -> int:
        return int(await r.pttl(keys.org_rate(org, family)))

    return max(0, await redis_clients.run(ttl) - 1) / (60_000 / per_minute)


async def test_many_orgs_far_below_a_generous_limit_are_counted_in_one_batch(
    redis_clients: RedisClients,
) -> None:
    limiter = OrgRateLimiter(redis_clients, TaskSet())
    orgs = [uuid.uuid4() for _ in range(300)]
    for org in orgs:
        for _ in range(20):
            assert not (await limiter.admit(org, "data", 6000)).retry_after
    assert limiter.round_trips == 0  # let in at once, not counted yet
    await limiter.flush()
    # 300 orgs: one script call (one per org on a cluster, whose keys are in many slots).
    assert limiter.round_trips == (300 if redis_clients.cluster is not None else 1)
    # 6,000 a minute refills one every 10 ms: the last orgs counted hold their twenty.
    held = [await consumed(redis_clients, org, "data", 6000) for org in orgs[-3:]]
    assert all(15 < n <= 20 for n in held), held


async def test_a_generous_limit_is_still_a_limit_across_two_replicas(
    redis_clients: RedisClients,
) -> None:
    """6,000 a minute: a bucket of 1,000. Two processes hammering it without ever pausing
    (no batch goes out meanwhile) let in about the bucket, not twice it."""
    tasks = TaskSet()
    first, second = OrgRateLimiter(redis_clients, tasks), OrgRateLimiter(redis_clients, tasks)
    org = uuid.uuid4()
    started = time.monotonic()
    decisions = [await (first, second)[n % 2].admit(org, "kv", 6000) for n in range(3000)]
    refill = (time.monotonic() - started) * 100 + 2
    admitted = [d for d in decisions if not d.retry_after]
    assert 1000 <= len(admitted) <= 1000 + refill
    # Still refusing at the end (a token refilled meanwhile may let one of the last in).
    assert any(d.retry_after >= 1 for d in decisions[-10:])
    await first.close()
    await second.close()
    await tasks.drain(5)  # batches still on their way count too
    assert await consumed(redis_clients, org, "kv", 6000) >= 999 - refill
