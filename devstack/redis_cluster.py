"""A local Redis Cluster: 6 nodes (3 primaries, 3 replicas), passwords on, loopback only.

Started by ``orgbase services up --redis cluster`` (or ``ORGBASE_LOCAL_REDIS=cluster``)
next to the Sentinel set, on the stack's ports ``base+10 .. base+15``. Each node keeps its
``nodes.conf`` (the cluster's view of itself) in its folder, so a restarted node rejoins
with its old identity; the cluster is created once (``redis-cli --cluster create``).
"""

from __future__ import annotations

import functools
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import redis

from devstack.binaries import redis_server
from devstack.layout import StackLayout
from devstack.process import (
    StackError,
    pid_alive,
    read_pid,
    refuse_taken_port,
    run,
    stop_pid,
    wait_until,
)

# A primary unreachable for this long is failed over by its replica (about 2 s here).
NODE_TIMEOUT_MS = 1000

BUS_OFFSET = 30
"""Each node's cluster bus listens on its port + 30 (the stack's base+40..45). Redis's
default, port + 10000, lands in Linux's ephemeral range (32768-60999): an outgoing
connection holding that port number kept a drill's node from starting."""

_CONFIG = """# Written by orgbase's local stack.
bind 127.0.0.1
port {port}
daemonize yes
pidfile {dir}/redis.pid
logfile {dir}/redis.log
dir {dir}
requirepass {password}
masterauth {password}
save ""
appendonly no
cluster-enabled yes
cluster-port {bus_port}
cluster-config-file nodes.conf
cluster-node-timeout {timeout}
cluster-announce-ip 127.0.0.1
cluster-require-full-coverage no
"""


def redis_cli() -> Path:
    """redis-cli comes with redis-server (Debian's redis-tools)."""
    server = redis_server()
    beside = server.parent / "redis-cli"
    found = str(beside) if beside.exists() else shutil.which("redis-cli")
    if not found:
        raise StackError("redis-cli is missing (install redis-tools)")
    return Path(found)


class LocalRedisCluster:
    def __init__(self, layout: StackLayout, password: str) -> None:
        self.layout = layout
        self.password = password
        self.root = layout.state_dir / "redis-cluster"

    @property
    def ports(self) -> tuple[int, ...]:
        return self.layout.redis_cluster_ports

    def node_dir(self, port: int) -> Path:
        return self.root / f"node-{port}"

    def node_pid(self, port: int) -> int | None:
        return read_pid(self.node_dir(port) / "redis.pid")

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, password=self.password, socket_timeout=1)

    def node_running(self, port: int) -> bool:
        if not pid_alive(self.node_pid(port)):
            return False
        client = self.client(port)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _cluster_state(self, port: int) -> dict[str, str]:
        client = self.client(port)
        try:
            info = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        except redis.RedisError:
            return {}
        finally:
            client.close()
        if isinstance(info, dict):  # redis-py parses the answer
            return {str(k): str(v) for k, v in info.items()}
        text = info.decode() if isinstance(info, bytes) else str(info)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def answering(self) -> bool:
        """Every node up and the cluster serving every slot: what ``status`` shows (the
        stricter checks of ``serving`` and ``healthy`` are for waiting at start; a replica
        briefly left out of CLUSTER SLOTS under load is not a stopped service)."""
        for port in self.ports:
            state = self._cluster_state(port) if self.node_running(port) else {}
            if state.get("cluster_state") != "ok" or state.get("cluster_slots_ok") != "16384":
                return False
        return True

    def serving(self) -> bool:
        """Every node up and knowing all six, every slot served, and a replica for each of
        the three primaries (right after a create or a failover the slots can be served
        while the replicas have yet to attach)."""
        for port in self.ports:
            state = self._cluster_state(port) if self.node_running(port) else {}
            if state.get("cluster_state") != "ok" or state.get("cluster_slots_ok") != "16384":
                return False
            if state.get("cluster_known_nodes") != str(len(self.ports)):
                return False
        if len(self.primaries()) != len(self.ports) // 2:
            return False
        # A replica whose link to its primary is down (a restarted node still syncing)
        # would not take over if that primary died next: its data counts as too old.
        if not all(self._replica_synced(port) for port in self.ports):
            return False
        # Clients learn the topology from CLUSTER SLOTS, which leaves out a replica until
        # gossip has told that node the replica has synced: wait until every node lists
        # one replica per range, or a client started now would not know it.
        return all(self._slots_list_replicas(port) for port in self.ports)

    def _replica_synced(self, port: int) -> bool:
        """True for a primary, or a replica whose link to its primary is up."""
        client = self.client(port)
        try:
            info = client.info("replication")
        except redis.RedisError:
            return False
        finally:
            client.close()
        return info.get("role") != "slave" or info.get("master_link_status") == "up"

    def _slots_list_replicas(self, port: int) -> bool:
        client = self.client(port)
        try:
            ranges: Any = client.execute_command("CLUSTER SLOTS")  # type: ignore[no-untyped-call]
        except redis.RedisError:
            return False
        finally:
            client.close()
        if isinstance(ranges, dict):  # parsed: {(start, end): {"primary", "replicas"}}
            return bool(ranges) and all(entry["replicas"] for entry in ranges.values())
        return bool(ranges) and all(len(entry) > 3 for entry in ranges)

    def _cluster_tool(self, action: str, *extra: str) -> bool:
        done = subprocess.run(
            [
                str(redis_cli()),
                "-a",
                self.password,
                "--no-auth-warning",
                "--cluster",
                action,
                f"127.0.0.1:{self.ports[0]}",
                *extra,
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
        return done.returncode == 0

    def healthy(self) -> bool:
        """Serving, and the nodes agreeing on who serves what with no slot half moved
        (``redis-cli --cluster check``): a reshard refuses a cluster that is not."""
        return self.serving() and self._cluster_tool("check")

    def is_running(self) -> bool:
        return self.healthy()

    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports]

    def start(self, timeout: float = 60.0) -> None:
        for port in self.ports:
            self.start_node(port)
        if not (self.root / "created").exists():
            run(
                [
                    str(redis_cli()),
                    "-a",
                    self.password,
                    "--no-auth-warning",
                    "--cluster",
                    "create",
                    *self.addresses(),
                    "--cluster-replicas",
                    "1",
                    "--cluster-yes",
                ],
                timeout=120,
            )
            (self.root / "created").write_text("yes\n")
        wait_until(self.serving, timeout, "the Redis Cluster to serve every slot")
        if not self.healthy():
            # A slot left half moved (a reshard cut short) stays open across restarts:
            # redis-cli settles it (it moves the slot's keys where they belong).
            self._cluster_tool("fix", "--cluster-yes")
        wait_until(self.healthy, timeout, "the Redis Cluster's nodes to agree")

    def start_node(self, port: int) -> None:
        folder = self.node_dir(port)
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "redis.conf"
        if not conf.exists():
            conf.write_text(
                _CONFIG.format(
                    port=port,
                    bus_port=port + BUS_OFFSET,
                    dir=folder,
                    password=self.password,
                    timeout=NODE_TIMEOUT_MS,
                )
            )
            conf.chmod(0o600)
        if self.node_running(port):
            return
        refuse_taken_port(port)
        refuse_taken_port(port + BUS_OFFSET)
        run([str(redis_server()), str(conf)])
        wait_until(functools.partial(self.node_running, port), 15, f"Redis node on port {port}")

    def primaries(self) -> list[int]:
        """Ports of the nodes that are primaries now (by their own account)."""
        out = []
        for port in self.ports:
            if not self.node_running(port):
                continue
            client = self.client(port)
            try:
                role = client.execute_command("ROLE")  # type: ignore[no-untyped-call]
            except redis.RedisError:
                continue
            finally:
                client.close()
            first = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
            if first == "master":
                out.append(port)
        return out

    def kill_node(self, port: int) -> None:
        """SIGKILL one node, for fault drills."""
        stop_pid(self.node_pid(port), signal.SIGKILL)

    def flush(self) -> None:
        for port in self.primaries():
            client = self.client(port)
            try:
                client.flushall()
            finally:
                client.close()

    def stop(self) -> bool:
        stopped = False
        for port in self.ports:
            stopped |= stop_pid(self.node_pid(port))
        return stopped
