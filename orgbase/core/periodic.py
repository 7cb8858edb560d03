"""One background loop: run a coroutine every N seconds until stopped.

A round that raises is logged and the loop carries on (the backing service it needed may
come back by the next round). With ``until_success`` the loop ends after the first round
that did not raise: work that must be done once, retried until it is (a resync, a purge).
``stop`` cancels the round in progress and waits for it, then runs the last round it was
given (a final flush), if any.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass

import structlog

from orgbase.core.background import BackgroundTask

log = structlog.get_logger("orgbase.periodic")


@dataclass(eq=False)
class Periodic(BackgroundTask):
    work: Callable[[], Awaitable[None]]
    every_seconds: float
    _: KW_ONLY
    first_round_at_once: bool = False
    last_round: Callable[[], Awaitable[None]] | None = None
    failure_level: int = logging.DEBUG
    until_success: bool = False

    @classmethod
    def retry_until_done(
        cls,
        name: str,
        work: Callable[[], Awaitable[None]],
        pause_seconds: float,
        *,
        at_once: bool = True,
    ) -> Periodic:
        """Work to be done once, at once (or after a pause: ``at_once=False``), retried
        every ``pause_seconds`` until a round goes through; a failed round is a warning
        (something is still down)."""
        return cls(
            name,
            work,
            pause_seconds,
            first_round_at_once=at_once,
            failure_level=logging.WARNING,
            until_success=True,
        )

    @classmethod
    def queue_worker(
        cls, name: str, work: Callable[[], Awaitable[None]], every_seconds: float
    ) -> Periodic:
        """A loop that drains a queue (mail, webhooks): its first round at once, and a
        failed round is a warning (the queue is waiting), retried the next round."""
        return cls(
            name, work, every_seconds, first_round_at_once=True, failure_level=logging.WARNING
        )

    async def stop(self) -> None:
        await super().stop()
        if self.last_round is not None:
            await self._attempt(self.last_round, f"last {self.name}")

    async def run(self) -> None:
        if not self.first_round_at_once:
            await asyncio.sleep(self.every_seconds)
        while not self.stopping.is_set():
            done = await self._attempt(self.work, self.name)
            if self.stopping.is_set() or (done and self.until_success):
                return
            await asyncio.sleep(self.every_seconds)

    async def _attempt(self, work: Callable[[], Awaitable[None]], what: str) -> bool:
        try:
            await work()
        except Exception as exc:  # the next round tries again
            log.log(self.failure_level, f"{what} failed", error=repr(exc))
            return False
        return True
