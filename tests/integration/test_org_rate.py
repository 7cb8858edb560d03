"""The per-org rate limiter against the real Redis: exact at small limits, shared by two
limiters (two replicas), and at high rates most requests cost no round trip."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from orgbase.core.org_rate import OrgRateLimiter
from orgbase.core.redis import RedisClients
from orgbase.core.settings import Settings


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[RedisClients]:
    clients = RedisClients(settings.redis)
    try:
        yield clients
    finally:
        await clients.close()


async def test_a_small_limit_is_exact_across_two_replicas(redis: RedisClients) -> None:
    first, second = OrgRateLimiter(redis), OrgRateLimiter(redis)
    org = uuid.uuid4()
    # 60 a minute: a bucket of 10, refilled one a second.
    decisions = [await (first if n % 2 else second).admit(org, "kv", 60) for n in range(12)]
    admitted = [d for d in decisions if not d.retry_after]
    assert len(admitted) == 10
    assert [d.remaining for d in admitted] == list(range(9, -1, -1))
    assert all(d.retry_after >= 1 for d in decisions[10:])
    assert first.round_trips + second.round_trips == 12


async def test_a_fast_org_takes_tokens_ahead(redis: RedisClients) -> None:
    limiter = OrgRateLimiter(redis)
    org = uuid.uuid4()
    decisions = [await limiter.admit(org, "data", 600_000) for _ in range(2000)]
    assert not any(d.retry_after for d in decisions)
    assert limiter.round_trips < 200
    # Another family of the same org has a bucket of its own.
    assert not (await limiter.admit(org, "docs", 6)).retry_after
    assert (await limiter.admit(org, "docs", 6)).retry_after


async def test_concurrent_requests_far_below_the_limit_are_never_refused(
    redis: RedisClients,
) -> None:
    """Requests that find the reserve empty while a refill is in flight wait for it: each
    taking a chunk of its own would throw most of them away and drain the bucket (an org
    at a fraction of its limit was refused)."""
    limiter = OrgRateLimiter(redis)
    org = uuid.uuid4()
    # 6,000 a minute: a bucket of 1,000, chunks of up to 50.
    for _ in range(5):
        decisions = await asyncio.gather(*(limiter.admit(org, "data", 6000) for _ in range(100)))
        assert not [d for d in decisions if d.retry_after]
    assert limiter.rejected == 0
    assert limiter.round_trips < 100


async def test_waiters_on_a_refused_refill_are_refused_with_it(redis: RedisClients) -> None:
    limiter = OrgRateLimiter(redis)
    org = uuid.uuid4()
    # 60 a minute: a bucket of 10; 30 at once: 10 admitted, 20 told when to retry.
    decisions = await asyncio.gather(*(limiter.admit(org, "kv", 60) for _ in range(30)))
    refused = [d for d in decisions if d.retry_after]
    assert len(refused) == 20
    assert all(d.retry_after >= 1 for d in refused)
    assert limiter.rejected == 20
