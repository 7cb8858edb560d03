"""The gateway's one set of fire-and-forget tasks.

Work that must not hold up the answer (mail after a sign-up, a cache refill, a flush in
the background) is spawned here instead of in a task set of each area's own: the set keeps
a reference to every task until it ends (asyncio keeps only weak ones, so an unreferenced
task can vanish mid-flight), logs what failed, and at shutdown gives the tasks still
running a bounded time to finish before cancelling them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger("orgbase.tasks")


class TaskSet:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.warning("background task failed", task=task.get_name(), error=repr(error))

    async def drain(self, within_seconds: float) -> None:
        """Wait up to ``within_seconds`` for the running tasks, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=within_seconds)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
