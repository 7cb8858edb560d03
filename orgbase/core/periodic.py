"""One background loop: run a coroutine every N seconds until stopped.

A round that raises is logged and the loop carries on (the backing service it needed may
come back by the next round). ``stop`` cancels the round in progress and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("orgbase.periodic")


class Periodic:
    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[None]],
        every_seconds: float,
        *,
        first_round_at_once: bool = False,
        failure_level: int = logging.DEBUG,
    ) -> None:
        self.name = name
        self.work = work
        self.every_seconds = every_seconds
        self.first_round_at_once = first_round_at_once
        self.failure_level = failure_level
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        # The flag as well as the cancellation: on Python 3.11 a cancellation that lands in
        # a read under asyncio.timeout (redis-py) can come out as a TimeoutError, which a
        # round's failure handling would swallow.
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        if not self.first_round_at_once:
            await asyncio.sleep(self.every_seconds)
        while not self._stopping.is_set():
            try:
                await self.work()
            except Exception as exc:  # the next round tries again
                log.log(self.failure_level, f"{self.name} failed", error=repr(exc))
            if self._stopping.is_set():
                return
            await asyncio.sleep(self.every_seconds)
