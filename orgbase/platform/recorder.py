"""What the request middleware reports every request to: the Prometheus metrics (when on)
and the SLO counters."""

from __future__ import annotations

from dataclasses import dataclass

from orgbase.observability.metrics import Metrics
from orgbase.observability.slo import SloRecorder


@dataclass(frozen=True)
class RequestRecorder:
    metrics: Metrics | None
    slo: SloRecorder

    def started(self) -> None:
        if self.metrics is not None:
            self.metrics.request_started()

    def finished(
        self, route: str, method: str, status: int, seconds: float, org_id: str | None
    ) -> None:
        if self.metrics is not None:
            self.metrics.request_finished(route, method, status, seconds)
        self.slo.record(org_id, status, seconds)
