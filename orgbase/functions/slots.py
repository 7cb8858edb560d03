"""Invocations of one org running at once in this process, capped per org (its
``concurrent_functions``): an org that fills its slots waits for none of them, it is told
(429), so one org's slow functions never hold the workers others need."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from orgbase.core.errors import RateLimited


class OrgSlots:
    def __init__(self) -> None:
        self._running: dict[UUID, int] = {}
        self.refused = 0

    @contextmanager
    def hold(self, org: UUID | None, cap: int) -> Iterator[None]:
        if org is None:
            yield
            return
        running = self._running.get(org, 0)
        if running >= cap:
            self.refused += 1
            raise RateLimited(
                f"the org already runs {cap} function invocations at once on this server",
                code="function_concurrency_exceeded",
                retry_after=1,
            )
        self._running[org] = running + 1
        try:
            yield
        finally:
            left = self._running[org] - 1
            if left:
                self._running[org] = left
            else:
                del self._running[org]

    @property
    def running(self) -> int:
        return sum(self._running.values())
