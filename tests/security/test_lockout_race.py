"""Finding 4: the lockout could be raced. Twelve wrong passwords sent in parallel were all
checked (401), then the right one got 200: the lock was checked before queueing for the
hash and counted after it. At most ``lockout_failures`` guesses may be checked per lock
period, however they are timed; with Redis down too (the PostgreSQL fallback).

The guesses go to a real gateway process over real connections, so they are in flight
together (an in-process test client would hand them to the app one by one)."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from devstack import LocalStack
from orgbase.core.settings import Settings
from tests.support.data import flush_redis_db
from tests.support.http import PASSWORD, unique_email
from tests.support.processes import serving
from tests.support.stack import server_env

pytestmark = pytest.mark.slow

FAILURES = 5
GUESSES = 12
STRICT = {
    "ORGBASE_AUTH_LOCKOUT_FAILURES": str(FAILURES),
    "ORGBASE_AUTH_SIGNIN_PER_IP_PER_MINUTE": "10000",
    # Real hashing cost, so that the guesses queue for the hashing thread together.
    "ORGBASE_AUTH_ARGON2_TIME_COST": "2",
    "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "19456",
}


async def race(base: str, email: str, *, sign_up: bool = True) -> tuple[Counter[int], int]:
    """Twelve wrong guesses at once, then the right password: (their statuses, its status)."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        if sign_up:
            made = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
            assert made.status_code == 201, made.text

        async def guess(password: str) -> int:
            response = await http.post(
                "/v1/auth/token",
                json={"grant_type": "password", "email": email, "password": password},
            )
            return response.status_code

        statuses = await asyncio.gather(*(guess(f"wrong guess {n:03}") for n in range(GUESSES)))
        return Counter(statuses), await guess(PASSWORD)


async def test_parallel_guesses_cannot_outrun_the_lockout(
    stack: LocalStack, settings: Settings
) -> None:
    await flush_redis_db(stack, 3)
    with serving(server_env(stack, ORGBASE_REDIS_DB="3", **STRICT)) as base:
        guessed, right = await race(base, unique_email("race"))
        unknown, _ = await race(base, unique_email("nobody"), sign_up=False)
    assert guessed[401] <= FAILURES, guessed
    assert guessed[429] == GUESSES - guessed[401], guessed
    assert right == 429
    assert unknown[401] <= FAILURES, unknown  # unknown emails are counted the same way


async def test_without_redis_postgresql_keeps_the_count(
    fault_stack: LocalStack, fault_settings: Settings
) -> None:
    with serving(server_env(fault_stack, fault_stack.layout.database, **STRICT)) as base:
        email = unique_email("race-pg")
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            made = await http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
            assert made.status_code == 201
        await asyncio.to_thread(fault_stack.redis.stop_nodes)
        try:
            guessed, right = await race(base, email, sign_up=False)
        finally:
            await asyncio.to_thread(fault_stack.redis.start)
    assert guessed[401] <= FAILURES, guessed
    assert right == 429
