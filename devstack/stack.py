"""Bring the whole local stack up or down, and describe it as ``ORGBASE_*`` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from devstack.layout import PG_SUPERUSER, REDIS_SERVICE_NAME, StackLayout
from devstack.mail import LocalMail
from devstack.mongo import LocalMongo
from devstack.pg_replica import LocalPgReplica
from devstack.postgres import LocalPostgres
from devstack.redis import LocalRedis
from devstack.redis_cluster import LocalRedisCluster
from orgbase.auth.keys import ensure_signing_key


@dataclass(frozen=True)
class ServiceState:
    name: str
    running: bool
    detail: str


class LocalStack:
    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout
        secrets = layout.load_secrets()
        self.secrets = secrets
        self.postgres = LocalPostgres(layout, secrets["pg_superuser"])
        self.redis = LocalRedis(layout, secrets["redis"], secrets["sentinel"])
        self.mongo = LocalMongo(layout)
        self.mail = LocalMail(layout)
        self.redis_cluster = LocalRedisCluster(layout, secrets["redis"])
        self.pg_replica = LocalPgReplica(self.postgres)
        self.redis_mode = "sentinel"
        """What services.env points gateways at: "sentinel" or "cluster"."""
        self.use_pg_replica = False

    @property
    def signing_keys_file(self) -> Path:
        return self.layout.state_dir / "jwks.json"

    def up(self, *, redis_mode: str = "sentinel", pg_replica: bool = False) -> None:
        """Start what is not running (running services are reused), then write services.env.

        ``redis_mode="cluster"`` also starts the 6-node Redis Cluster and points
        services.env at it (the Sentinel set still runs: the default and the fallback of
        the tests); ``pg_replica`` starts a streaming replica and lists it for reads."""
        # An older stack's EdDSA keys stay in the set (they verify what they signed).
        ensure_signing_key(self.signing_keys_file)
        self.postgres.start()
        self.postgres.ensure_database(self.layout.database)
        self.redis.start()
        if redis_mode == "cluster":
            self.start_redis_cluster()
        if pg_replica:
            self.start_pg_replica()
        self.mongo.start()
        self.mail.start()
        self.write_env_file()

    def start_redis_cluster(self) -> None:
        self.redis_cluster.start()
        self.redis_mode = "cluster"

    def start_pg_replica(self) -> None:
        self.pg_replica.start()
        self.use_pg_replica = True

    def down(self) -> list[str]:
        stopped = []
        for name, service in (
            ("redis-cluster", self.redis_cluster),
            ("pg-replica", self.pg_replica),
            ("mail", self.mail),
            ("mongo", self.mongo),
            ("redis", self.redis),
            ("postgres", self.postgres),
        ):
            if service.stop():
                stopped.append(name)
        return stopped

    def status(self) -> list[ServiceState]:
        layout = self.layout
        redis_nodes = [p for p in layout.redis_ports if self.redis.node_running(p)]
        sentinels = [p for p in layout.sentinel_ports if self.redis.sentinel_running(p)]
        return [
            ServiceState(
                "postgres",
                self.postgres.is_running(),
                f"127.0.0.1:{layout.pg_port} data={self.postgres.data_dir}",
            ),
            ServiceState(
                "redis",
                len(redis_nodes) == 3,
                f"nodes up {redis_nodes} of {list(layout.redis_ports)}",
            ),
            ServiceState(
                "sentinel",
                len(sentinels) == 3,
                f"sentinels up {sentinels} of {list(layout.sentinel_ports)}",
            ),
            ServiceState("mongo", self.mongo.is_running(), self.mongo.url),
            ServiceState(
                "mail",
                self.mail.is_running(),
                f"smtp 127.0.0.1:{layout.smtp_port} messages={self.mail.messages}",
            ),
            *self._optional_status(),
        ]

    def _optional_status(self) -> list[ServiceState]:
        """The cluster and the replica, once they have been made."""
        states = []
        if (self.redis_cluster.root / "created").exists():
            up = [p for p in self.layout.redis_cluster_ports if self.redis_cluster.node_running(p)]
            states.append(
                ServiceState(
                    "redis-cluster",
                    self.redis_cluster.answering(),
                    f"nodes up {up} of {list(self.layout.redis_cluster_ports)}",
                )
            )
        if self.pg_replica.exists():
            states.append(
                ServiceState(
                    "pg-replica",
                    self.pg_replica.is_running(),
                    f"127.0.0.1:{self.pg_replica.port} data={self.pg_replica.data_dir}",
                )
            )
        return states

    def database_url(self, user: str, password: str, database: str | None = None) -> str:
        db = database or self.layout.database
        return f"postgresql://{user}:{password}@127.0.0.1:{self.layout.pg_port}/{db}"

    def database_replica_url(self, password: str, database: str | None = None) -> str:
        db = database or self.layout.database
        return f"postgresql://orgbase_api:{password}@127.0.0.1:{self.pg_replica.port}/{db}"

    def env(
        self,
        database: str | None = None,
        *,
        redis_mode: str | None = None,
        pg_replica: bool | None = None,
    ) -> dict[str, str]:
        """The settings that point a gateway at this stack (by default at what ``up``
        started: Sentinel or the cluster, with or without the replica)."""
        s = self.secrets
        env = self._base_env(database)
        if (redis_mode or self.redis_mode) == "cluster":
            for name in ("ORGBASE_REDIS_SENTINELS", "ORGBASE_REDIS_SENTINEL_PASSWORD"):
                del env[name]
            env["ORGBASE_REDIS_CLUSTER_NODES"] = ",".join(self.redis_cluster.addresses())
        if self.use_pg_replica if pg_replica is None else pg_replica:
            env["ORGBASE_DATABASE_REPLICA_URLS"] = self.database_replica_url(s["pg_api"], database)
        return env

    def _base_env(self, database: str | None) -> dict[str, str]:
        s = self.secrets
        return {
            "ORGBASE_ENV": "dev",
            "ORGBASE_DATABASE_API_URL": self.database_url("orgbase_api", s["pg_api"], database),
            "ORGBASE_DATABASE_SYSTEM_URL": self.database_url(
                "orgbase_system", s["pg_system"], database
            ),
            "ORGBASE_DATABASE_MIGRATION_URL": self.database_url(
                PG_SUPERUSER, s["pg_superuser"], database
            ),
            "ORGBASE_REDIS_SENTINELS": ",".join(
                f"127.0.0.1:{p}" for p in self.layout.sentinel_ports
            ),
            "ORGBASE_REDIS_SERVICE_NAME": REDIS_SERVICE_NAME,
            "ORGBASE_REDIS_PASSWORD": s["redis"],
            "ORGBASE_REDIS_SENTINEL_PASSWORD": s["sentinel"],
            "ORGBASE_MONGO_URL": self.mongo.url,
            "ORGBASE_MONGO_DATABASE": database or self.layout.database,
            "ORGBASE_AUTH_SIGNING_KEYS_FILE": str(self.signing_keys_file),
            "ORGBASE_AUTH_PUBLISHABLE_KEY": s["publishable"],
            # Files of each database in their own folder (the sweeper removes blobs its
            # database does not name).
            "ORGBASE_STORAGE_ROOT": str(
                self.layout.state_dir / "storage" / (database or self.layout.database)
            ),
            "ORGBASE_STORAGE_SIGNING_KEY": s["storage_signing"],
            # Mail goes to the local catcher; GET /v1/dev/mail reads it (dev mode only).
            "ORGBASE_SMTP_HOST": "127.0.0.1",
            "ORGBASE_SMTP_PORT": str(self.layout.smtp_port),
            "ORGBASE_SMTP_STARTTLS": "false",
            "ORGBASE_SMTP_POLL_SECONDS": "0.5",
            "ORGBASE_DEV_MAIL_FILE": str(self.mail.messages),
        }

    def write_env_file(self) -> None:
        lines = ["# Written by `orgbase services up`: the local stack's URLs and passwords."]
        lines += [f"{key}={value}" for key, value in self.env().items()]
        fd = os.open(self.layout.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
