"""Where each local service keeps its files and which loopback ports it listens on."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# Below the kernel's ephemeral range (32768-60999): otherwise an outgoing connection (a
# replica dialing its primary) can take a port a service has yet to bind.
DEFAULT_PORT_BASE = 25430
REDIS_SERVICE_NAME = "orgbase"
PG_SUPERUSER = "orgbase_admin"


@dataclass(frozen=True)
class StackLayout:
    """Ports are consecutive from ``port_base``: PostgreSQL, 3 Redis nodes, 3 Sentinels,
    Mongo, the mail catcher (+8); the optional Redis Cluster at +10..+15 (its bus at
    +40..+45) and PostgreSQL replica at +20; the tests' OpenID providers take +30 and +31."""

    state_dir: Path
    port_base: int = DEFAULT_PORT_BASE
    database: str = "orgbase"

    @property
    def pg_port(self) -> int:
        return self.port_base

    @property
    def redis_ports(self) -> tuple[int, int, int]:
        return (self.port_base + 1, self.port_base + 2, self.port_base + 3)

    @property
    def sentinel_ports(self) -> tuple[int, int, int]:
        return (self.port_base + 4, self.port_base + 5, self.port_base + 6)

    @property
    def mongo_port(self) -> int:
        return self.port_base + 7

    @property
    def redis_cluster_ports(self) -> tuple[int, ...]:
        """The optional 6-node Redis Cluster (3 primaries, 3 replicas)."""
        return tuple(self.port_base + 10 + i for i in range(6))

    @property
    def pg_replica_port(self) -> int:
        """The optional PostgreSQL streaming replica."""
        return self.port_base + 20

    @property
    def smtp_port(self) -> int:
        """The mail catcher's SMTP."""
        return self.port_base + 8

    @property
    def env_file(self) -> Path:
        return self.state_dir / "services.env"

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.json"

    def ensure_dirs(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)

    def load_secrets(self) -> dict[str, str]:
        """Passwords of the local services, made once and kept (mode 600) in the state folder."""
        self.ensure_dirs()
        wanted = (
            "pg_superuser",
            "pg_api",
            "pg_system",
            "redis",
            "sentinel",
            "publishable",
            "storage_signing",
        )
        existing: dict[str, str] = {}
        if self.secrets_file.exists():
            existing = json.loads(self.secrets_file.read_text())
        if all(k in existing for k in wanted):
            return existing
        for key in wanted:
            # The publishable key is sent by clients in every request: recognisable.
            prefix = "obpk_" if key == "publishable" else ""
            existing.setdefault(key, prefix + secrets.token_urlsafe(24))
        fd = os.open(self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(existing, handle, indent=2)
        return existing
