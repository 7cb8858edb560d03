"""A task of a gateway process that runs until stopped (a loop of some kind)."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(eq=False)
class BackgroundTask(ABC):
    """``start`` runs ``run`` in a task; ``stop`` sets ``stopping``, cancels the task and
    waits for it. ``run`` checks ``stopping`` between steps as well: on Python 3.11 a
    cancellation that lands in a read under asyncio.timeout (redis-py) can come out as a
    TimeoutError, which a loop's failure handling would swallow."""

    name: str
    stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    @abstractmethod
    async def run(self) -> None: ...

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self.stopping.clear()
        self._task = asyncio.get_running_loop().create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        self.stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
