"""The local Redis: a primary, two replicas and three Sentinels, passwords on, loopback only.

Configuration files are written once: Sentinel rewrites its own file and the nodes' files
(``replicaof``) after a failover, and those rewrites must survive a restart.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from devstack.binaries import redis_server
from devstack.layout import REDIS_SERVICE_NAME, StackLayout
from devstack.process import (
    pid_alive,
    read_pid,
    refuse_taken_port,
    run,
    stop_pid,
    wait_until,
)


def _daemon_config(name: str) -> str:
    """What a node and a Sentinel share: loopback, daemonized, files in their folder."""
    return f"""# Written by orgbase's local stack.
bind 127.0.0.1
port {{port}}
daemonize yes
pidfile {{dir}}/{name}.pid
logfile {{dir}}/{name}.log
dir {{dir}}
"""


_NODE_CONFIG = (
    _daemon_config("redis")
    + """requirepass {password}
masterauth {password}
save ""
appendonly no
replica-announce-ip 127.0.0.1
"""
)

_SENTINEL_CONFIG = (
    _daemon_config("sentinel")
    + """requirepass {sentinel_password}
sentinel announce-ip 127.0.0.1
sentinel sentinel-pass {sentinel_password}
sentinel monitor {service} 127.0.0.1 {primary_port} 2
sentinel auth-pass {service} {password}
sentinel down-after-milliseconds {service} 1000
sentinel failover-timeout {service} 3000
sentinel parallel-syncs {service} 1
"""
)


class LocalRedis:
    def __init__(self, layout: StackLayout, password: str, sentinel_password: str) -> None:
        self.layout = layout
        self.password = password
        self.sentinel_password = sentinel_password
        self.root = layout.state_dir / "redis"

    # -- paths ------------------------------------------------------------------------

    def node_dir(self, port: int) -> Path:
        return self.root / f"node-{port}"

    def sentinel_dir(self, port: int) -> Path:
        return self.root / f"sentinel-{port}"

    def node_pid(self, port: int) -> int | None:
        return read_pid(self.node_dir(port) / "redis.pid")

    def sentinel_pid(self, port: int) -> int | None:
        return read_pid(self.sentinel_dir(port) / "sentinel.pid")

    # -- state ------------------------------------------------------------------------

    def _ping(self, port: int, password: str) -> bool:
        client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def node_running(self, port: int) -> bool:
        return pid_alive(self.node_pid(port)) and self._ping(port, self.password)

    def sentinel_running(self, port: int) -> bool:
        return pid_alive(self.sentinel_pid(port)) and self._ping(port, self.sentinel_password)

    def is_running(self) -> bool:
        return all(self.node_running(p) for p in self.layout.redis_ports) and all(
            self.sentinel_running(p) for p in self.layout.sentinel_ports
        )

    def _ask_sentinel(self, port: int, question: Callable[[redis.Redis], Any]) -> Any:
        """``question`` asked of the Sentinel on ``port``; None when it does not answer."""
        client = redis.Redis(
            host="127.0.0.1", port=port, password=self.sentinel_password, socket_timeout=0.5
        )
        try:
            return question(client)
        except redis.RedisError:
            return None
        finally:
            client.close()

    def primary_port(self) -> int | None:
        """The primary's port as the Sentinels see it."""
        for port in self.layout.sentinel_ports:
            address = self._ask_sentinel(
                port, lambda client: client.sentinel_get_master_addr_by_name(REDIS_SERVICE_NAME)
            )
            if isinstance(address, tuple | list) and address:
                return int(address[1])
        return None

    def _topology_settled(self) -> bool:
        """Every Sentinel sees the primary, both replicas and the two other Sentinels."""
        for port in self.layout.sentinel_ports:
            state = self._ask_sentinel(
                port, lambda client: client.sentinel_master(REDIS_SERVICE_NAME)
            )
            if not isinstance(state, dict):
                return False
            if int(state.get("num-slaves", 0)) < 2 or int(state.get("num-other-sentinels", 0)) < 2:
                return False
            if "s_down" in str(state.get("flags", "")) or "o_down" in str(state.get("flags", "")):
                return False
        return True

    # -- lifecycle --------------------------------------------------------------------

    def _write_configs(self) -> None:
        primary = self.layout.redis_ports[0]
        for port in self.layout.redis_ports:
            folder = self.node_dir(port)
            text = _NODE_CONFIG.format(port=port, dir=folder, password=self.password)
            if port != primary:
                text += f"replicaof 127.0.0.1 {primary}\n"
            _write_once(folder / "redis.conf", text)
        for port in self.layout.sentinel_ports:
            folder = self.sentinel_dir(port)
            text = _SENTINEL_CONFIG.format(
                port=port,
                dir=folder,
                service=REDIS_SERVICE_NAME,
                primary_port=primary,
                password=self.password,
                sentinel_password=self.sentinel_password,
            )
            _write_once(folder / "sentinel.conf", text)

    def start(self, settle_timeout: float = 30.0) -> None:
        self.start_nodes()
        self.start_sentinels()
        wait_until(self._topology_settled, settle_timeout, "Redis Sentinel to see every node")

    def start_nodes(self, ports: tuple[int, ...] | None = None) -> None:
        for port in ports or self.layout.redis_ports:
            self._start(port, self.node_running, [str(self.node_dir(port) / "redis.conf")], "Redis")

    def start_sentinels(self) -> None:
        for port in self.layout.sentinel_ports:
            config = str(self.sentinel_dir(port) / "sentinel.conf")
            self._start(port, self.sentinel_running, [config, "--sentinel"], "Sentinel")

    def _start(
        self, port: int, running: Callable[[int], bool], arguments: list[str], what: str
    ) -> None:
        """Start redis-server on ``port`` unless it runs there already."""
        self._write_configs()
        if running(port):
            return
        refuse_taken_port(port)
        run([str(redis_server()), *arguments])
        wait_until(functools.partial(running, port), 15, f"{what} on port {port}")

    def stop_nodes(self, ports: tuple[int, ...] | None = None) -> None:
        for port in ports or self.layout.redis_ports:
            stop_pid(self.node_pid(port))

    def kill_node(self, port: int) -> None:
        """SIGKILL one data node, for fault drills."""
        stop_pid(self.node_pid(port), signal.SIGKILL)

    def stop(self) -> bool:
        stopped = False
        for port in self.layout.sentinel_ports:
            stopped |= stop_pid(self.sentinel_pid(port))
        for port in self.layout.redis_ports:
            stopped |= stop_pid(self.node_pid(port))
        return stopped


def _write_once(conf: Path, text: str) -> None:
    """Sentinel rewrites these files after a failover: an existing one is kept."""
    conf.parent.mkdir(parents=True, exist_ok=True)
    if conf.exists():
        return
    conf.write_text(text)
    conf.chmod(0o600)
