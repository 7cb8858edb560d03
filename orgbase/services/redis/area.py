"""Builds the Redis service's objects: the statistics (latency, hot keys, alerts), the
key-value cache and the Redis dashboard. The realtime hub is built by the platform."""

from __future__ import annotations

from dataclasses import dataclass

from orgbase.core.org_usage import OrgUsage
from orgbase.core.resources import Resources
from orgbase.services.redis.dashboard import RedisDashboard
from orgbase.services.redis.kv import KeyValueStore
from orgbase.services.redis.stats import RedisStats


@dataclass(frozen=True)
class RedisArea:
    stats: RedisStats
    kv: KeyValueStore
    dashboard: RedisDashboard


def build_redis(resources: Resources, usage: OrgUsage) -> RedisArea:
    """``usage``: the limits area's."""
    settings = resources.settings
    redis = resources.redis
    stats = RedisStats(redis)
    redis.observers.append(stats.latency)  # every command's latency, for the dashboard
    return RedisArea(
        stats=stats,
        kv=KeyValueStore(redis, settings.kv, stats, usage=usage),
        dashboard=RedisDashboard(redis, stats, settings.observability),
    )
