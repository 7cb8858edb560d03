"""A circuit breaker: stop calling a failing dependency for a while, then try again.

closed     calls go through; ``failure_threshold`` failures in a row open it.
open       calls are refused at once (callers use their fallback) for ``reset_seconds``.
half_open  one trial call goes through; success closes, failure opens again.

Listeners hear every state change (metrics, logs, and cache resync after an outage).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import structlog

BreakerState = Literal["closed", "open", "half_open"]
log = structlog.get_logger("orgbase.breaker")


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        reset_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.opened_wall_time: float | None = None
        """Wall-clock time the breaker last opened (for resyncing caches on recovery)."""
        self.listeners: list[Callable[[BreakerState, BreakerState], None]] = []
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """May a call go through now? In half-open state only one trial at a time."""
        if self._state == "closed":
            return True
        if self._state == "open":
            if self._clock() - self._opened_at < self.reset_seconds:
                return False
            self._set("half_open")
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        if self._state != "closed":
            self._set("closed")

    def trip(self) -> None:
        """Open now, whatever the count (a write we depend on was lost).

        When it is already open or half-open, nothing changes: the resync that runs on
        closing covers this write too, and reopening would let a steady flow of refused
        writes keep the breaker open long after the dependency came back.
        """
        if self._state != "closed":
            return
        self._failures = self.failure_threshold
        self.record_failure()

    def release_trial(self) -> None:
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            if self._state != "open":
                if self._state == "closed":
                    self.opened_wall_time = time.time()
                    self.times_opened += 1
                self._set("open")

    def _set(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        log.warning("circuit breaker state changed", breaker=self.name, old=old, new=new)
        for listener in self.listeners:
            listener(old, new)
