"""Finding 4: the lockout could be raced. Twelve wrong passwords sent in parallel were all
checked (401), then the right one got 200: the lock was checked before queueing for the
hash and counted after it. At most ``lockout_failures`` guesses may be checked per lock
period, however they are timed; with Redis down too (the PostgreSQL fallback)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import create_app
from orgbase.platform.localstack import LocalStack
from tests.conftest import PASSWORD, flush_redis_db, sign_up, with_overrides

pytestmark = pytest.mark.slow

FAILURES = 5
GUESSES = 12
LOCKOUT: dict[str, object] = {"lockout_failures": FAILURES, "signin_per_ip_per_minute": 10_000}


async def race(client: AsyncTestClient[Litestar], email: str) -> tuple[Counter[int], int]:
    """Twelve wrong guesses at once, then the right password: (their statuses, its status)."""

    async def guess(password: str) -> int:
        response = await client.post(
            "/v1/auth/token",
            json={"grant_type": "password", "email": email, "password": password},
        )
        return response.status_code

    statuses = await asyncio.gather(*(guess(f"wrong guess {n:03}") for n in range(GUESSES)))
    return Counter(statuses), await guess(PASSWORD)


@pytest.fixture
async def strict_client(
    settings: Settings, stack: LocalStack
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    strict = with_overrides(settings, auth=LOCKOUT, redis={"db": 3})
    await flush_redis_db(stack, 3)
    async with AsyncTestClient(app=create_app(strict)) as client:
        yield client


async def test_parallel_guesses_cannot_outrun_the_lockout(
    strict_client: AsyncTestClient[Litestar],
) -> None:
    user = await sign_up(strict_client)
    guessed, right = await race(strict_client, user["email"])
    assert guessed[401] <= FAILURES, guessed
    assert guessed[429] == GUESSES - guessed[401], guessed
    assert right == 429


async def test_unknown_emails_are_locked_the_same_way(
    strict_client: AsyncTestClient[Litestar],
) -> None:
    guessed, _ = await race(strict_client, "nobody-here@example.test")
    assert guessed[401] <= FAILURES, guessed


@pytest.fixture
async def strict_fault_client(
    fault_settings: Settings,
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(with_overrides(fault_settings, auth=LOCKOUT))) as c:
        yield c


async def test_without_redis_postgresql_keeps_the_count(
    fault_stack: LocalStack, strict_fault_client: AsyncTestClient[Litestar]
) -> None:
    user = await sign_up(strict_fault_client)
    await asyncio.to_thread(fault_stack.redis.stop_nodes)
    try:
        guessed, right = await race(strict_fault_client, user["email"])
    finally:
        await asyncio.to_thread(fault_stack.redis.start)
    assert guessed[401] <= FAILURES, guessed
    assert right == 429
