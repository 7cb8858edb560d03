"""The gateway's lifespan ends, whatever its background loops are doing: the realtime
hub's pub/sub loop once swallowed its cancellation and left shutdown waiting for ever."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import create_app
from orgbase.platform.gateway import build_gateway


@pytest.mark.timeout(60)  # a hung shutdown fails here instead of stalling the suite
async def test_lifespan_shutdown_completes(settings: Settings) -> None:
    for _ in range(3):
        async with AsyncTestClient(app=create_app(settings, configure_logs=False)) as client:
            assert (await client.get("/health/live")).status_code == 200


# The order the gateway's parts have always started in (and stopped in, reversed).
STARTS = [
    "clients",
    "password hasher",
    "session cache",
    "mail outbox",
    "org deletions cut short",
    "schema cache",
    "redis stats",
    "slo",
    "realtime hub",
    "phoenix",
    "webhook dispatcher",
    "limits cache",
    "usage flush",
    "storage",
    "functions",
    "metrics",
    "redis resync",
]
STOPS = [
    "metrics",
    "storage sweep",
    "functions",
    "background tasks",
    "org rate limiter",
    "usage flush",
    "webhook dispatcher",
    "phoenix",
    "realtime hub",
    "slo",
    "redis stats",
    "schema cache",
    "mail outbox",
    "openid client",
    "password hasher",
    "clients",
]


@pytest.mark.timeout(60)
async def test_gateway_parts_start_in_order_and_stop_in_reverse(settings: Settings) -> None:
    gateway = build_gateway(settings)
    parts = gateway.lifecycle.parts
    assert [part.name for part in parts if part.start is not None] == STARTS
    assert [part.name for part in reversed(parts) if part.stop is not None] == STOPS
    loops = (gateway.limits.periodic, gateway.storage.periodic)
    await gateway.start()
    try:
        assert [loop.running for loop in loops] == [True, True]
    finally:
        await gateway.stop()
    assert [loop.running for loop in loops] == [False, False]
