"""Usage counters per org and hour, kept in process: counting is a dict update.

The limits area flushes them (to Redis, then PostgreSQL) every few seconds; what a flush
could not write is merged back and written by a later one. ``stored`` figures (bytes an
org holds) are levels, not counts: the latest one seen wins.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Literal
from uuid import UUID

Counter = Literal[
    "requests_data",
    "requests_docs",
    "requests_kv",
    "requests_realtime",
    "rows_read",
    "rows_written",
    "response_bytes",
    "realtime_messages",
    "requests_storage",
    "storage_bytes_in",
    "storage_bytes_out",
    "db_time_ms",
    "docs_time_ms",
]
Level = Literal["documents_bytes", "cache_bytes", "storage_bytes"]
COUNTERS: tuple[str, ...] = Counter.__args__  # type: ignore[attr-defined]
LEVELS: tuple[str, ...] = Level.__args__  # type: ignore[attr-defined]

Counts = dict[tuple[UUID, int], dict[str, int]]


def hour_of(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 3600)


class Meter:
    def __init__(self) -> None:
        self._counts: Counts = defaultdict(dict)
        self._levels: Counts = defaultdict(dict)

    def add(self, org: UUID, counter: Counter, amount: int = 1) -> None:
        counts = self._counts[(org, int(time.time() // 3600))]
        counts[counter] = counts.get(counter, 0) + amount

    def level(self, org: UUID, level: Level, value: int) -> None:
        self._levels[(org, int(time.time() // 3600))][level] = value

    def take(self) -> tuple[Counts, Counts]:
        """Everything counted since the last take (the caller writes it, or gives it back)."""
        counts, levels = self._counts, self._levels
        self._counts, self._levels = defaultdict(dict), defaultdict(dict)
        return counts, levels

    def give_back(self, counts: Counts, levels: Counts) -> None:
        """A flush failed: merge its figures into what was counted meanwhile."""
        for key, figures in counts.items():
            mine = self._counts[key]
            for name, value in figures.items():
                mine[name] = mine.get(name, 0) + value
        for key, figures in levels.items():
            current = self._levels[key]
            for name, value in figures.items():
                current.setdefault(name, value)

    def forget(self, org: UUID) -> None:
        """A deleted org: drop what was not flushed."""
        for store in (self._counts, self._levels):
            for key in [k for k in store if k[0] == org]:
                del store[key]

    @property
    def pending(self) -> int:
        return len(self._counts) + len(self._levels)
