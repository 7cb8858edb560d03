"""The gateway's lifespan ends, whatever its background loops are doing: the realtime
hub's pub/sub loop once swallowed its cancellation and left shutdown waiting for ever."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from orgbase.core.settings import Settings
from orgbase.platform.app import create_app


@pytest.mark.timeout(60)  # a hung shutdown fails here instead of stalling the suite
async def test_lifespan_shutdown_completes(settings: Settings) -> None:
    for _ in range(3):
        async with AsyncTestClient(app=create_app(settings, configure_logs=False)) as client:
            assert (await client.get("/health/live")).status_code == 200
