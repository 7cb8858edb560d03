"""Prometheus metrics (prometheus-client), correct with several worker processes.

`orgbase serve --workers N` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before it
starts the workers; prometheus-client then keeps every value in files there and
``/metrics`` adds them up across processes (gauges of live processes only). With one
process the values live in this process's registry.

Hot-path figures (requests) are recorded where they happen; the rest are copied every
second from counters the areas keep (so the areas never import prometheus-client).
Route templates, never raw paths, are labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from orgbase.core.periodic import Periodic

# Histogram buckets (seconds), by what is timed.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WEBHOOK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
FUNCTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
EVENT_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)
DRIFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def multiprocess() -> bool:
    """Did prometheus-client start in multiprocess mode (PROMETHEUS_MULTIPROC_DIR)?"""
    return values.ValueClass is not values.MutexValue


def _counter(registry: CollectorRegistry, name: str, doc: str, *labels: str) -> Counter:
    return Counter(name, doc, labels, registry=registry)


# How the values of several worker processes add up ("live": of live processes only).
GaugeMode = Literal["livesum", "livemax", "max"]


def _gauge(
    registry: CollectorRegistry, name: str, doc: str, mode: GaugeMode, *labels: str
) -> Gauge:
    return Gauge(name, doc, labels, registry=registry, multiprocess_mode=mode)


def _histogram(
    registry: CollectorRegistry, name: str, doc: str, buckets: Sequence[float], *labels: str
) -> Histogram:
    return Histogram(name, doc, labels, registry=registry, buckets=buckets)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = _counter(
            r, "orgbase_http_requests_total", "HTTP requests", "route", "method", "status"
        )
        self.duration = _histogram(
            r,
            "orgbase_http_request_duration_seconds",
            "HTTP request duration",
            LATENCY_BUCKETS,
            "route",
            "method",
        )
        self.in_flight = _gauge(
            r, "orgbase_http_requests_in_flight", "Requests being served", "livesum"
        )
        self.auth = _counter(r, "orgbase_auth_outcomes_total", "Authentication outcomes", "outcome")
        self.cache = _counter(
            r,
            "orgbase_cache_lookups_total",
            "Revocable cache lookups (sessions, API keys, memberships)",
            "cache",
            "result",
        )
        self.rate_limited = _counter(
            r, "orgbase_rate_limit_rejections_total", "Requests refused by rate limits"
        )
        self.dependency_errors = _counter(
            r,
            "orgbase_dependency_errors_total",
            "Requests failed because a backing service was down",
            "dependency",
        )
        self.breaker = _gauge(
            r,
            "orgbase_circuit_breaker_state",
            "0 closed, 1 half-open, 2 open",
            "livemax",
            "dependency",
        )
        self.pool = _gauge(
            r, "orgbase_pool_connections", "Connection pools", "livesum", "pool", "state"
        )
        self.realtime = _gauge(
            r, "orgbase_realtime_connections", "Open realtime connections", "livesum"
        )
        self.realtime_deliveries = _counter(
            r, "orgbase_realtime_deliveries_total", "Realtime messages handed to subscribers"
        )
        self._limits_and_usage(r)
        self._webhooks(r)
        self.functions = FunctionMetrics(r)
        self._sources: list[Callable[[], Mapping[tuple[str, ...], float]]] = []
        self._last: dict[tuple[str, ...], float] = {}
        self._gauges: list[Callable[[], None]] = []
        # A figure that fails to copy is logged; the next round copies it again.
        self._copier = Periodic("metrics sync", self._sync_round, 1.0)

    def _limits_and_usage(self, r: CollectorRegistry) -> None:
        # Totals over every org: no per-org labels.
        self.org_limits_failed_open = _counter(
            r,
            "orgbase_org_limits_failed_open_total",
            "Requests let through unchecked by per-org rate limits because Redis was down",
        )
        self.usage_flush_failures = _counter(
            r,
            "orgbase_usage_flush_failures_total",
            "Usage flushes to Redis or PostgreSQL that failed (the counts wait in process)",
        )
        self.org_limits_cached = _gauge(
            r,
            "orgbase_org_limits_cached",
            "Orgs whose effective limits a process holds",
            "livesum",
        )
        self.usage_pending = _gauge(
            r,
            "orgbase_usage_pending",
            "Org-hours of usage counted in process and not flushed yet",
            "livesum",
        )

    def _webhooks(self, r: CollectorRegistry) -> None:
        # Outcomes, latency and the queue; no per-org or per-endpoint labels.
        self.webhook_deliveries = _counter(
            r,
            "orgbase_webhook_deliveries_total",
            "Webhook delivery attempts by outcome (delivered, retried, given_up, deferred,"
            " endpoint_disabled)",
            "outcome",
        )
        self.webhook_latency = _histogram(
            r,
            "orgbase_webhook_delivery_seconds",
            "Time from sending a webhook to its answer (or failure)",
            WEBHOOK_BUCKETS,
        )
        self.webhook_queue = _gauge(
            r,
            "orgbase_webhook_queue",
            "Deliveries due now, and the age in seconds of the oldest one",
            "max",
            "figure",
        )

    # -- the hot path -----------------------------------------------------------------

    def request_started(self) -> None:
        self.in_flight.inc()

    def request_finished(self, route: str, method: str, status: int, seconds: float) -> None:
        self.in_flight.dec()
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route, method).observe(seconds)

    # -- copied from the areas --------------------------------------------------------

    def counts_from(self, source: Callable[[], Mapping[tuple[str, ...], float]]) -> None:
        """``source`` returns running totals keyed by (metric, *labels)."""
        self._sources.append(source)

    def gauges_from(self, update: Callable[[], None]) -> None:
        self._gauges.append(update)

    def sync(self) -> None:
        for source in self._sources:
            for key, total in source().items():
                delta = total - self._last.get(key, 0)
                if delta > 0:
                    self._counter(key).inc(delta)
                self._last[key] = total
        for update in self._gauges:
            update()

    def _counter(self, key: tuple[str, ...]) -> Any:
        name, *labels = key
        metric = {
            "auth": self.auth,
            "cache": self.cache,
            "rate_limited": self.rate_limited,
            "dependency_errors": self.dependency_errors,
            "realtime_deliveries": self.realtime_deliveries,
            "org_limits_failed_open": self.org_limits_failed_open,
            "usage_flush_failures": self.usage_flush_failures,
            "webhook_deliveries": self.webhook_deliveries,
            "function_invocations": self.functions.invocations,
            "function_workers": self.functions.workers,
            "function_events": self.functions.events,
            "function_ticks": self.functions.ticks,
        }[name]
        return metric.labels(*labels) if labels else metric

    async def _sync_round(self) -> None:
        self.sync()

    def start(self) -> None:
        self._copier.start()

    async def stop(self) -> None:
        await self._copier.stop()

    # -- exposition -------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        self.sync()
        if multiprocess():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class FunctionMetrics:
    """The operator's functions: outcomes, durations, workers; no per-org or per-function
    labels."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.invocations = _counter(
            registry,
            "orgbase_function_invocations_total",
            "Function invocations by how they were started (http, event, schedule) and ended",
            "kind",
            "outcome",
        )
        self.duration = _histogram(
            registry,
            "orgbase_function_duration_seconds",
            "Time from handing an invocation to a worker to its answer",
            FUNCTION_BUCKETS,
        )
        self.events = _counter(
            registry,
            "orgbase_function_events_total",
            "Events run by functions, by outcome (delivered, retried, dead)",
            "outcome",
        )
        self.event_latency = _histogram(
            registry,
            "orgbase_function_event_latency_seconds",
            "Time from an event's commit to its function's answer (delivered ones)",
            EVENT_LATENCY_BUCKETS,
        )
        self.ticks = _counter(
            registry,
            "orgbase_function_schedule_ticks_total",
            "Scheduled ticks by outcome (done, failed, missed; taken: run by another gateway)",
            "outcome",
        )
        self.drift = _histogram(
            registry,
            "orgbase_function_schedule_drift_seconds",
            "Time from a tick to the start of its run",
            DRIFT_BUCKETS,
        )
        self.workers = _counter(
            registry,
            "orgbase_function_worker_events_total",
            "Function worker processes started, lost (ended unasked) and killed (stuck)",
            "event",
        )
