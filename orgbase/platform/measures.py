"""The areas' own counters and states, copied into the gateway's metrics every second."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orgbase.observability.metrics import BREAKER_VALUES, Metrics

if TYPE_CHECKING:
    from orgbase.platform.gateway import Gateway


def measure(gateway: Gateway, metrics: Metrics) -> None:
    """The areas' own counters and states, copied into the metrics every second."""
    auth, tenancy = gateway.auth, gateway.tenancy

    def totals() -> dict[tuple[str, ...], float]:
        counts: dict[tuple[str, ...], float] = {}
        for outcome, count in auth.grants.outcomes.items():
            counts[("auth", outcome)] = count
        for name, cache in (
            ("sessions", auth.sessions.cache),
            ("api_keys", auth.api_keys.cache),
            ("memberships", tenancy.memberships.cache),
        ):
            counts[("cache", name, "hit")] = cache.stats.hits
            counts[("cache", name, "miss")] = cache.stats.misses
            counts[("cache", name, "fallback")] = cache.stats.fallbacks
        counts[("rate_limited",)] = auth.limiter.rejections + gateway.limits.limiter.rejected
        counts[("org_limits_failed_open",)] = gateway.limits.limiter.failed_open
        counts[("usage_flush_failures",)] = gateway.limits.flusher.failures
        counts[("realtime_deliveries",)] = gateway.hub.delivered
        for outcome, count in gateway.webhooks.dispatcher.outcomes.items():
            counts[("webhook_deliveries", outcome)] = count
        for dependency, count in gateway.redis.stats.dependency_errors_total.items():
            counts[("dependency_errors", dependency)] = count
        if gateway.functions is not None:
            counts.update(gateway.functions.counts())
        return counts

    def gauges() -> None:
        resources = gateway.resources
        metrics.breaker.labels("redis").set(BREAKER_VALUES[resources.redis.breaker.state])
        metrics.breaker.labels("mongo").set(BREAKER_VALUES[gateway.documents.store.breaker.state])
        for pool, figures in resources.db.pool_stats().items():
            for state in ("size", "in_use", "idle", "waiting"):
                if state in figures:
                    metrics.pool.labels(f"postgres_{pool}", state).set(figures[state])
        for state, value in resources.redis.pool_stats().items():
            metrics.pool.labels("redis", state).set(value)
        metrics.pool.labels("mongo", "open").set(resources.mongo.pool.open)
        metrics.pool.labels("mongo", "in_use").set(resources.mongo.pool.checked_out)
        metrics.realtime.set(gateway.hub.connections)
        metrics.org_limits_cached.set(gateway.limits.store.cached)
        metrics.usage_pending.set(gateway.limits.meter.pending)
        queue = gateway.webhooks.dispatcher.queue
        metrics.webhook_queue.labels("due").set(queue.due)
        metrics.webhook_queue.labels("oldest_due_seconds").set(queue.oldest_due_seconds)

    _measure_functions(gateway, metrics)
    metrics.counts_from(totals)
    metrics.gauges_from(gauges)


def _measure_functions(gateway: Gateway, metrics: Metrics) -> None:
    functions = gateway.functions
    if functions is None:
        return
    functions.service.durations.append(metrics.functions.duration.observe)
    if functions.events is not None:
        functions.events.latency_observers.append(metrics.functions.event_latency.observe)
    if functions.schedules is not None:
        functions.schedules.drift_observers.append(metrics.functions.drift.observe)
