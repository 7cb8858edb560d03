"""Which Redis keys this process already gave their time to live.

Counters flushed every few seconds to per-minute and per-hour hashes sent ``EXPIRE`` with
every ``HINCRBY``: with 10,000 orgs that was half of each flush's commands. A key's TTL
is set once per process; a failed flush forgets everything, so a key whose ``EXPIRE``
never arrived gets one with the next write.
"""

from __future__ import annotations

KEPT = 200_000
"""Key names remembered (then the memo starts again: a few repeated EXPIREs)."""


class ExpiryMemo:
    def __init__(self, kept: int = KEPT) -> None:
        self._given: set[str] = set()
        self._kept = kept

    def first(self, key: str) -> bool:
        """True the first time ``key`` is seen (send its EXPIRE now)."""
        if key in self._given:
            return False
        if len(self._given) >= self._kept:
            self._given.clear()
        self._given.add(key)
        return True

    def forget_all(self) -> None:
        """A flush failed: its EXPIREs may not have arrived."""
        self._given.clear()
