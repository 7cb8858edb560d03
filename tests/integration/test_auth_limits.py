"""Rate limits and lockouts, in Redis, with Retry-After."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from orgbase.platform.middleware import client_ip
from tests.support.data import flush_redis_for
from tests.support.http import PASSWORD, sign_up
from tests.support.redis_modes import both_modes_settings  # noqa: F401 (fixtures)
from tests.support.stack import with_overrides
from tests.support.waiting import pause_to_stay_in_one_window


@pytest.fixture
async def strict_client(
    settings: Settings, stack: LocalStack
) -> AsyncIterator[AsyncTestClient[OrgbaseApp]]:
    strict = with_overrides(
        settings,
        auth={"lockout_failures": 3, "signin_per_ip_per_minute": 8, "signup_per_ip_per_hour": 1000},
        redis={} if settings.redis.cluster_nodes else {"db": 2},
    )
    await flush_redis_for(stack, strict)
    async with AsyncTestClient(app=create_app(strict)) as client:
        yield client


async def _sign_in(
    client: AsyncTestClient[OrgbaseApp], email: str, password: str
) -> tuple[int, dict[str, str], dict[str, object]]:
    response = await client.post(
        "/v1/auth/token", json={"grant_type": "password", "email": email, "password": password}
    )
    return response.status_code, dict(response.headers), response.json()


async def test_repeated_failures_lock_the_account(
    strict_client: AsyncTestClient[OrgbaseApp],
) -> None:
    user = await sign_up(strict_client)
    for _ in range(3):
        status, _, body = await _sign_in(strict_client, user["email"], "wrong password!!")
        assert (status, body["code"]) == (401, "invalid_credentials")
    status, headers, body = await _sign_in(strict_client, user["email"], PASSWORD)
    assert status == 429
    assert body["code"] == "account_locked"
    assert int(headers["retry-after"]) > 0


async def test_sign_in_is_rate_limited_per_ip(strict_client: AsyncTestClient[OrgbaseApp]) -> None:
    user = await sign_up(strict_client)
    await asyncio.sleep(pause_to_stay_in_one_window(60))
    statuses = []
    for _ in range(10):
        status, headers, body = await _sign_in(strict_client, user["email"], PASSWORD)
        statuses.append(status)
    assert statuses[:8] == [200] * 8
    assert statuses[8:] == [429, 429]
    assert body["code"] == "rate_limited"
    assert 0 < int(headers["retry-after"]) <= 61


def _scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"type": "http", "client": (peer, 1234), "headers": headers}


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    spoof = "6.6.6.6"
    assert client_ip(_scope("203.0.113.9", spoof), proxies) == "203.0.113.9"  # type: ignore[arg-type]
    assert client_ip(_scope("10.1.2.3", f"{spoof}, 198.51.100.7"), proxies) == "198.51.100.7"  # type: ignore[arg-type]
    assert client_ip(_scope("10.1.2.3", "198.51.100.7, 10.9.9.9"), proxies) == "198.51.100.7"  # type: ignore[arg-type]
    assert client_ip(_scope("10.1.2.3", "garbage"), proxies) == "10.1.2.3"  # type: ignore[arg-type]
    assert client_ip(_scope("10.1.2.3", spoof), []) == "10.1.2.3"  # type: ignore[arg-type]
    assert client_ip(_scope("testclient"), proxies) is None  # type: ignore[arg-type]
