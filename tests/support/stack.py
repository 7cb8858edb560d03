"""Where the local test stack lives, and the settings tests run the gateway with."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from devstack import LocalStack
from devstack.layout import DEFAULT_PORT_BASE
from orgbase.core.settings import Settings, settings_from_env

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".orgbase"
TEST_DATABASE = "orgbase_test"
TEST_REDIS_DB = "1"
# The same variable `orgbase services up` reads, so two checkouts on one machine each use
# their own ports; the fault stack sits 1000 ports above the shared one.
PORT_BASE = int(os.environ.get("ORGBASE_LOCAL_PORT_BASE", DEFAULT_PORT_BASE))
FAULT_PORT_BASE = PORT_BASE + 1000

# Cheap hashing and generous limits keep the suite fast; tests of the limits set their own.
TEST_OVERRIDES = {
    "ORGBASE_ENV": "test",
    "ORGBASE_REDIS_DB": TEST_REDIS_DB,
    "ORGBASE_AUTH_ARGON2_TIME_COST": "1",
    "ORGBASE_AUTH_ARGON2_MEMORY_KIB": "8192",
    "ORGBASE_AUTH_SIGNIN_PER_IP_PER_MINUTE": "100000",
    "ORGBASE_AUTH_SIGNUP_PER_IP_PER_HOUR": "100000",
    "ORGBASE_AUTH_REFRESH_PER_IP_PER_MINUTE": "100000",
    "ORGBASE_AUTH_LOCKOUT_FAILURES": "1000",
    # Every gateway of a test run shares one database, so each would deliver every org's
    # webhooks under its own settings: only the webhook tests' gateways deliver.
    "ORGBASE_WEBHOOKS_ENABLED": "false",
    # Likewise mail: only the gateways of the mail tests deliver the outbox (to the stack's
    # mail catcher, or to a test's own SMTP server).
    "ORGBASE_SMTP_HOST": "",
    # Likewise the functions' events and schedules: only the functions tests' gateways run
    # them (each replaces the subscriptions with its own folder's).
    "ORGBASE_FUNCTIONS_EVENTS": "false",
    "ORGBASE_FUNCTIONS_SCHEDULES": "false",
}


# A Redis Cluster has only database 0 (the test session flushes the cluster instead).
CLUSTER_OVERRIDES = {"ORGBASE_REDIS_DB": "0"}


def _mode_env(local: LocalStack, database: str, redis_mode: str) -> dict[str, str]:
    env = {**local.env(database=database, redis_mode=redis_mode), **TEST_OVERRIDES}
    if redis_mode == "cluster":
        env.update(CLUSTER_OVERRIDES)
    return env


def stack_settings(
    local: LocalStack, database: str, redis_mode: str = "sentinel", **overrides: str
) -> Settings:
    return settings_from_env({**_mode_env(local, database, redis_mode), **overrides})


def server_env(
    local: LocalStack, database: str = TEST_DATABASE, redis_mode: str = "sentinel", **overrides: str
) -> dict[str, str]:
    """The environment of a gateway process on ``local``: this one's minus its ORGBASE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGBASE_")}
    env.update(_mode_env(local, database, redis_mode))
    env.update(overrides)
    return env


def with_overrides(settings: Settings, **sections: dict[str, object]) -> Settings:
    """A copy of ``settings`` with some fields of some sections replaced."""
    changes = {
        name: msgspec.structs.replace(getattr(settings, name), **fields)
        for name, fields in sections.items()
    }
    return msgspec.structs.replace(settings, **changes)
