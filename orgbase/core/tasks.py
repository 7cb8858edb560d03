"""The gateway's one set of fire-and-forget tasks.

Work that must not hold up the answer (mail after a sign-up, a cache refill, a flush in
the background) is spawned here instead of in a task set of each area's own: the set keeps
a reference to every task until it ends (asyncio keeps only weak ones, so an unreferenced
task can vanish mid-flight), logs what failed, and at shutdown gives the tasks still
running a bounded time to finish before cancelling them. A loop that ends by itself (a
purge retried until it goes through, a sweep after a grace: a ``Periodic``) runs here too,
but is stopped at once at shutdown rather than waited for: it spends its time waiting for
its next round, and what it has not done is resumed elsewhere (the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

from orgbase.core.periodic import Periodic

log = structlog.get_logger("orgbase.tasks")

T = TypeVar("T")


class TaskSet:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: dict[asyncio.Task[Any], Periodic] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def spawn_loop(self, loop: Periodic) -> asyncio.Task[None]:
        """Run a loop that ends by itself (``until_success``); stopped at once at drain."""
        task = self.spawn(loop.run(), loop.name)
        self._loops[task] = loop
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._loops.pop(task, None)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.warning("background task failed", task=task.get_name(), error=repr(error))

    async def drain(self, within_seconds: float) -> None:
        """Stop the loops, wait up to ``within_seconds`` for the running tasks, then cancel
        the rest."""
        for task, loop in list(self._loops.items()):
            loop.stopping.set()
            task.cancel()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=within_seconds)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
