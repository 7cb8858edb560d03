"""What the public readiness answer tells outside dev and test: statuses and latencies.

The finding: a production gateway's ``GET /health/ready`` showed anyone the Redis primary's
address, the pools' sizes and a failing check's error text (addresses of the internal
network). Outside dev and test the public answer now has each check's status and latency
only; the details need the metrics token (``ORGBASE_OBSERVABILITY_METRICS_TOKEN``, sent as
``Authorization: Bearer``, as ``/metrics`` takes it). Dev and test keep them public
(tests/integration/test_observability.py::test_readiness_details).
"""

from __future__ import annotations

import secrets

from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import create_app
from tests.support.stack import TEST_DATABASE, stack_settings

PUBLIC = {"status", "latency_ms"}


async def test_production_readiness_shows_statuses_and_latencies_only(
    stack: LocalStack, settings: Settings
) -> None:
    del settings  # the test database, migrated
    token = secrets.token_urlsafe(16)
    production = stack_settings(
        stack, TEST_DATABASE, ORGBASE_ENV="prod", ORGBASE_OBSERVABILITY_METRICS_TOKEN=token
    )
    async with AsyncTestClient(app=create_app(production)) as client:
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            answer = await client.get("/health/ready", headers=headers)
            body = answer.json()
            assert body["status"] in ("ok", "degraded"), body
            assert {"postgres", "redis", "mongo"} <= set(body["checks"])
            for name, check in body["checks"].items():
                assert set(check) <= PUBLIC, (name, check)
                assert check["status"] in ("ok", "degraded", "down")
            assert "primary" not in answer.text
            assert "pool" not in answer.text
        detailed = await client.get("/health/ready", headers={"Authorization": f"Bearer {token}"})
        checks = detailed.json()["checks"]
        assert "primary" in checks["redis"]
        assert "pool" in checks["redis"]
        assert checks["postgres"]["pools"]["api"]["max"] >= 1
