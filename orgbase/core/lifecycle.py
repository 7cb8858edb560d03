"""Starting and stopping the running parts of a process, declared once each.

A part names its start and its stop together (either may be missing: a cache warmed at
start has nothing to stop, a client opened lazily has only a close). Parts start in the
order given and stop in the reverse order, so a part is stopped while everything it was
started after still runs. A start or stop may be a plain function or a coroutine function.
A step that raises ends the sequence there (as a hand-written list of awaits would).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Step = Callable[[], object]
"""A start or a stop: a function, or a coroutine function (its coroutine is awaited)."""


@dataclass(frozen=True)
class Part:
    name: str
    start: Step | None = None
    stop: Step | None = None


class Lifecycle:
    def __init__(self, parts: Iterable[Part]) -> None:
        self.parts = tuple(parts)

    async def start(self) -> None:
        for part in self.parts:
            await _run(part.start)

    async def stop(self) -> None:
        for part in reversed(self.parts):
            await _run(part.stop)


async def _run(step: Step | None) -> None:
    if step is None:
        return
    result = step()
    if inspect.isawaitable(result):
        await result
