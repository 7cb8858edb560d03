"""The Redis dashboard's data: server figures (INFO, replication, Sentinel), the figures
the gateways share (hit rate over time, latency percentiles, hot keys) and recent alerts.
A handful of round trips: cheap enough to poll every 5 s."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from redis.exceptions import RedisError

from orgbase.core import keys
from orgbase.core.redis import REDIS_DOWN_ERRORS, RedisClients, RedisUnavailable
from orgbase.core.settings import ObservabilitySettings
from orgbase.services.redis.stats import RedisStats

MEMORY_ALERT_EVERY = 600.0
_SENTINEL_ERRORS: tuple[type[BaseException], ...] = (RedisError, *REDIS_DOWN_ERRORS)


@dataclass
class RedisDashboard:
    redis: RedisClients
    stats: RedisStats
    settings: ObservabilitySettings
    _last_memory_alert: float = field(default=0.0, init=False)

    async def platform(self) -> dict[str, Any]:
        base: dict[str, Any] = {
            "breaker": self.redis.breaker.state,
            "failovers_seen": self.redis.failovers_seen,
            "pool": self.redis.pool_stats(),
        }
        nodes: list[dict[str, Any]] = []
        try:
            if self.redis.cluster is not None:
                info, nodes = await self._cluster_info()
            else:
                info = await self.redis.run(lambda r: r.info())
        except RedisUnavailable as exc:
            return {
                **base,
                "status": "down",
                "error": exc.message,
                "sentinels": await self._sentinels(),
                "alerts": await self._alerts(),
            }
        self._check_memory(info)
        return {
            **base,
            "status": "ok",
            "memory": {
                k: info.get(k)
                for k in (
                    "used_memory",
                    "used_memory_peak",
                    "maxmemory",
                    "mem_fragmentation_ratio",
                    "maxmemory_policy",
                )
            },
            "clients": {k: info.get(k) for k in ("connected_clients", "blocked_clients")},
            "server": {
                k: info.get(k)
                for k in (
                    "redis_version",
                    "uptime_in_seconds",
                    "instantaneous_ops_per_sec",
                    "expired_keys",
                    "evicted_keys",
                    "keyspace_hits",
                    "keyspace_misses",
                )
            },
            "server_hit_rate": _ratio(info.get("keyspace_hits", 0), info.get("keyspace_misses", 0)),
            "replication": _replication(info),
            "mode": self.redis.mode,
            "nodes": nodes,
            "sentinels": await self._sentinels(),
            "hit_rate": await self.stats.kv_hit_rate(None, 60),
            "latency": await self.stats.latency_percentiles(),
            "hot_keys": await self.stats.hot_keys(None),
            "alerts": await self._alerts(),
        }

    async def org(self, org_id: UUID) -> dict[str, Any]:
        count = await self.redis.run(lambda r: r.zcard(keys.kv_index(org_id)))
        return {
            "keys": int(count),
            "hit_rate": await self.stats.kv_hit_rate(str(org_id), 60),
            "hot_keys": await self.stats.hot_keys(str(org_id)),
            "latency": await self.stats.latency_percentiles(),
        }

    async def _cluster_info(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Per-node figures of a cluster, and their sums over the primaries (the totals
        the single-server view shows)."""
        cluster = self.redis.cluster
        assert cluster is not None
        by_node: Any = await self.redis.run(lambda _: cluster.info(target_nodes=cluster.ALL_NODES))
        nodes: list[dict[str, Any]] = []
        totals: dict[str, Any] = {"role": "cluster"}
        for name, info in sorted(by_node.items()):
            keyspace = info.get(f"db{0}", {})
            view = {
                "address": name,
                "role": info.get("role"),
                "used_memory": info.get("used_memory"),
                "connected_clients": info.get("connected_clients"),
                "instantaneous_ops_per_sec": info.get("instantaneous_ops_per_sec"),
                "keys": keyspace.get("keys", 0) if isinstance(keyspace, dict) else 0,
                "keyspace_hits": info.get("keyspace_hits"),
                "keyspace_misses": info.get("keyspace_misses"),
                "replication_offset": info.get("master_repl_offset"),
            }
            nodes.append(view)
            if info.get("role") != "master":
                continue
            for field_name, value in info.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    totals[field_name] = totals.get(field_name, 0) + value
                else:
                    totals.setdefault(field_name, value)
        totals["role"] = "cluster"
        return totals, nodes

    async def _alerts(self) -> list[dict[str, Any]]:
        try:
            return await self.stats.alerts()
        except RedisUnavailable:
            return []

    async def _sentinels(self) -> list[dict[str, Any]]:
        sentinel = self.redis.sentinel
        if sentinel is None:
            return []
        views = []
        for client in sentinel.sentinels:
            address = client.connection_pool.connection_kwargs
            view: dict[str, Any] = {"sentinel": f"{address.get('host')}:{address.get('port')}"}
            try:
                master: Any = await client.sentinel_master(self.redis.settings.service_name)
            except _SENTINEL_ERRORS as exc:
                view["status"] = f"unreachable: {type(exc).__name__}"
            else:
                view.update(
                    status="ok",
                    primary=f"{master.get('ip')}:{master.get('port')}",
                    flags=master.get("flags"),
                    replicas=master.get("num-slaves"),
                    other_sentinels=master.get("num-other-sentinels"),
                    quorum=master.get("quorum"),
                )
            views.append(view)
        return views

    def _check_memory(self, info: dict[str, Any]) -> None:
        used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
        high = (
            used > limit * self.settings.redis_memory_alert_ratio
            if limit
            else used > self.settings.redis_memory_alert_bytes
        )
        if high and time.monotonic() - self._last_memory_alert > MEMORY_ALERT_EVERY:
            self._last_memory_alert = time.monotonic()
            self.stats.alert(
                "memory_high", f"Redis uses {used} bytes (maxmemory {limit or 'unset'})"
            )


def _ratio(hits: int, misses: int) -> float | None:
    total = hits + misses
    return round(hits / total, 4) if total else None


def _replication(info: dict[str, Any]) -> dict[str, Any]:
    replicas = [
        {
            "address": f"{value.get('ip')}:{value.get('port')}",
            "state": value.get("state"),
            "offset": value.get("offset"),
            "lag": value.get("lag"),
        }
        for key, value in info.items()
        if key.startswith("slave") and key[5:].isdigit() and isinstance(value, dict)
    ]
    return {
        "role": info.get("role"),
        "offset": info.get("master_repl_offset"),
        "replicas": replicas,
    }
