"""Fixtures of the functions tests: a folder holding the shipped examples and the test
cases (tests/functions/cases), a gateway app serving it, and people in orgs."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from devstack import LocalStack
from orgbase.core.settings import Settings
from orgbase.platform.app import OrgbaseApp, create_app
from tests.support.data import scratch_database
from tests.support.http import org_person
from tests.support.processes import free_port, start_server, stop_server
from tests.support.stack import ROOT, STATE_DIR, server_env, with_overrides

CASES = Path(__file__).parent / "cases"
EXAMPLES = ROOT / "functions"
SECRET = "s3cr3t-token-value"
Client = AsyncTestClient[OrgbaseApp]
F = "/functions/v1"


def copy_functions(target: Path, *sources: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for source in sources:
        for module in source.glob("*.py"):
            shutil.copy(module, target / module.name)
    return target


@pytest.fixture(scope="session")
def functions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_functions(tmp_path_factory.mktemp("functions"), EXAMPLES, CASES)


@pytest.fixture(scope="session")
def secrets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "functions.env"
    path.write_text(f"TOKEN={SECRET}\nOTHER=not-for-them\n")
    return path


def functions_env(functions_dir: Path, secrets_file: Path) -> dict[str, str]:
    return {
        "ORGBASE_APP_FUNCTIONS_DIR": str(functions_dir),
        "ORGBASE_FUNCTIONS_SECRETS_FILE": str(secrets_file),
        "ORGBASE_FUNCTIONS_WORKERS": "2",
        "ORGBASE_FUNCTIONS_QUEUE_SECONDS": "5",
        "ORGBASE_FUNCTIONS_ALLOWED_HOSTS": "localhost",
    }


@pytest.fixture(scope="session")
def functions_settings(
    base_settings: Settings, functions_dir: Path, secrets_file: Path
) -> Settings:
    return with_overrides(
        base_settings,
        app={"functions_dir": str(functions_dir)},
        # ctx.http's one allowed internal host (the tests' receivers listen on loopback).
        functions={
            "workers": 2,
            "secrets_file": str(secrets_file),
            "allowed_hosts": ("localhost",),
        },
    )


@pytest.fixture(scope="session")
async def fclient(functions_settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(functions_settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def functions_server(
    stack: LocalStack, base_settings: Settings, functions_dir: Path, secrets_file: Path
) -> Iterator[str]:
    """A real gateway process serving the test functions."""
    del base_settings  # the test database, migrated
    port = free_port()
    env = server_env(stack, **functions_env(functions_dir, secrets_file))
    process = start_server(env, port, log_file=STATE_DIR / "functions_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture
async def scratch(stack: LocalStack, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An empty database of the test's own (migration tests start from an old layout)."""
    name = f"orgbase_test_{request.node.name[:40]}"
    async with scratch_database(stack, name) as url:
        yield url


async def person(client: Client, name: str = "fn") -> dict[str, Any]:
    """A fresh owner of a fresh org: its id, the bearer headers and the token."""
    return await org_person(client, name)
