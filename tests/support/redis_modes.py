"""Fixtures that run a test module against both Redis modes (Sentinel and the cluster).

A module imports the ones it needs; each serves under the usual fixture name::

    from tests.support.redis_modes import both_modes_client  # noqa: F401  (is `client`)

They depend on ``redis_mode``, which tests/conftest.py parametrises, so every test of the
module runs twice, unchanged; the session-wide gateways are reused (pytest groups the
tests by mode, so each mode's gateway starts once).
"""

from __future__ import annotations

from typing import Any

import pytest

from orgbase.core.settings import Settings


def _pick(request: pytest.FixtureRequest, redis_mode: str, sentinel: str, cluster: str) -> Any:
    return request.getfixturevalue(cluster if redis_mode == "cluster" else sentinel)


@pytest.fixture(name="settings", scope="session")
def both_modes_settings(request: pytest.FixtureRequest, redis_mode: str) -> Settings:
    settings: Settings = _pick(request, redis_mode, "base_settings", "cluster_settings")
    return settings


@pytest.fixture(name="client", scope="session")
def both_modes_client(request: pytest.FixtureRequest, redis_mode: str) -> Any:
    return _pick(request, redis_mode, "base_client", "cluster_client")


@pytest.fixture(name="live_server", scope="session")
def both_modes_live_server(request: pytest.FixtureRequest, redis_mode: str) -> str:
    url: str = _pick(request, redis_mode, "base_live_server", "cluster_live_server")
    return url
