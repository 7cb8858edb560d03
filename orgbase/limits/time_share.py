"""Each org's share of the database's time: who is using more than its share right now.

What a neighbour waits for is the database's cores, not its connections: ten expensive
statements of one org on a database with two cores make every other org's statement wait
for a core. So the gate shares time, not connections:

- Each org's statement time (wall: from taking a tenant connection to giving it back) is
  summed with an exponential decay of ``window`` seconds, so ``rate(org)`` is the org's
  average number of statements in flight lately (its database-seconds per second).
  PostgreSQL tells no statement's CPU time cheaply (pg_stat_statements sums wall time per
  query, not per org): wall time is the measure.
- Orgs that used the database within the last window are active. Alone, an org keeps the
  whole pool. When orgs compete, the database's ``statements`` (what it runs at full speed
  at once: about its cores) are shared by weight; an org's entitlement is its weighted
  share, or what the others leave unused when that is more (a quiet neighbour costs a
  busy org little).
- An org whose rate goes over its entitlement is over its share: it may then hold only
  its entitlement (at least one statement) and queues behind itself, until it is alone or
  its rate falls to half of that (the hysteresis keeps it from bursting in and out).
  Orgs under their share are never held back, so a quiet org's short statements never
  wait behind a heavy one's.

Cost: O(1) per statement (two exponentials and dictionary lookups); once per window a
sweep over the active orgs drops those gone quiet. Pure: a clock is injected, no I/O
(tests/unit/test_time_share.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

QUIET = 0.5
"""An org over its share is released once its rate falls below this part of what it may
hold."""


@dataclass(slots=True)
class _Use:
    spent: float
    """Decayed seconds of statement time, as of ``at``."""
    at: float
    seen: float
    """When the org last asked for or gave back a slot."""
    weight: int
    over: bool = False
    unmetered: float = 0.0
    """Milliseconds spent and not yet handed to the meter (it counts whole ones)."""


@dataclass(eq=False)
class TimeShare:
    statements: int
    window: float = 1.0
    clock: Callable[[], float] = time.monotonic
    meter: Callable[[Hashable, int], None] | None = None
    _orgs: dict[Hashable, _Use] = field(init=False, default_factory=dict)
    _weights: int = field(init=False, default=0)
    _total: float = field(init=False, default=0.0)
    _total_at: float = field(init=False)
    _swept_at: float = field(init=False)

    def __post_init__(self) -> None:
        self._total_at = self.clock()
        self._swept_at = self._total_at

    @property
    def active(self) -> int:
        return len(self._orgs)

    def rate(self, org: Hashable) -> float:
        """The org's statements in flight, averaged over the last window or so."""
        use = self._orgs.get(org)
        if use is None:
            return 0.0
        return self._decay(use.spent, use.at, self.clock()) / self.window

    def total_rate(self) -> float:
        return self._decay(self._total, self._total_at, self.clock()) / self.window

    def over(self, org: Hashable) -> bool:
        use = self._orgs.get(org)
        return use is not None and use.over

    def asks(
        self, org: Hashable, weight: int = 1, busy: Callable[[Hashable], bool] | None = None
    ) -> None:
        """``org`` wants a slot: it is active (with this weight) from now on. With
        ``busy`` (orgs holding or waiting for a slot), at most once per window the orgs
        idle for a window stop competing (their decayed time leaves the total)."""
        now = self.clock()
        if busy is not None and now - self._swept_at >= self.window:
            self._sweep(now, busy)
        use = self._orgs.get(org)
        if use is None:
            self._orgs[org] = _Use(spent=0.0, at=now, seen=now, weight=weight)
            self._weights += weight
        else:
            use.seen = now
            if use.weight != weight:
                self._weights += weight - use.weight
                use.weight = weight

    def spent(self, org: Hashable, seconds: float, now: float | None = None) -> None:
        """A statement of ``org`` gave its slot back after ``seconds`` (``now``: the
        caller's reading of the same clock)."""
        if now is None:
            now = self.clock()
        use = self._orgs.get(org)
        if use is None:  # swept while it held a slot (the gate keeps busy orgs): count it
            use = self._orgs[org] = _Use(spent=0.0, at=now, seen=now, weight=1)
            self._weights += 1
        use.spent = self._decay(use.spent, use.at, now) + seconds
        use.at = use.seen = now
        self._total = self._decay(self._total, self._total_at, now) + seconds
        self._total_at = now
        if self.meter is not None:
            use.unmetered += seconds * 1000
            if use.unmetered >= 1:
                whole = int(use.unmetered)
                use.unmetered -= whole
                self.meter(org, whole)

    def entitlement(self, org: Hashable) -> float:
        """Statements ``org`` may have in flight while others compete: its weighted share
        of ``statements``, or what the others leave unused when that is more."""
        use = self._orgs.get(org)
        if use is None:
            return self._entitled(1, self._weights + 1, 0.0, self.total_rate())
        now = self.clock()
        rate = self._decay(use.spent, use.at, now) / self.window
        total = self._decay(self._total, self._total_at, now) / self.window
        return self._entitled(use.weight, self._weights, rate, total)

    def _entitled(self, weight: int, weights: int, rate: float, total: float) -> float:
        return max(self.statements * weight / weights, self.statements - (total - rate))

    def cap(self, org: Hashable, cap: int) -> int:
        """What ``org`` may hold now: ``cap`` alone or under its share; over its share,
        its entitlement (at least one)."""
        use = self._orgs.get(org)
        if use is None or len(self._orgs) < 2:
            if use is not None:
                use.over = False
            return cap
        now = self.clock()
        rate = self._decay(use.spent, use.at, now) / self.window
        total = self._decay(self._total, self._total_at, now) / self.window
        entitled = self._entitled(use.weight, self._weights, rate, total)
        allowed = max(1, int(entitled))
        if use.over:
            use.over = rate >= QUIET * allowed
        else:
            use.over = rate > entitled
        return min(cap, allowed) if use.over else cap

    def sweep(self, busy: Callable[[Hashable], bool]) -> None:
        """The once-a-window sweep of ``asks``, on its own."""
        now = self.clock()
        if now - self._swept_at >= self.window:
            self._sweep(now, busy)

    def _sweep(self, now: float, busy: Callable[[Hashable], bool]) -> None:
        self._swept_at = now
        quiet = [
            org
            for org, use in self._orgs.items()
            if now - use.seen >= self.window and not busy(org)
        ]
        for org in quiet:
            use = self._orgs.pop(org)
            self._weights -= use.weight
            self._total -= self._decay(use.spent, use.at, self._total_at)
            if self.meter is not None and use.unmetered >= 0.5:
                self.meter(org, 1)
        if not self._orgs:
            self._total = 0.0
        self._total = max(self._total, 0.0)

    def _decay(self, value: float, at: float, now: float) -> float:
        return value * math.exp((at - now) / self.window) if now > at else value
