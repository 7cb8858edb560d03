"""The CPU time of one coroutine, even with others running on the same loop: the thread's
CPU clock is read around each step of the coroutine only."""

from __future__ import annotations

import time
from collections.abc import Coroutine, Generator
from typing import Any


class Metered:
    """``await Metered(coro)`` runs ``coro``; ``seconds`` is the CPU it took."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.seconds = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self.coro.__await__()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            started = time.thread_time()
            try:
                yielded = steps.send(sent) if thrown is None else steps.throw(thrown)
            except StopIteration as done:
                self.seconds += time.thread_time() - started
                return done.value
            except BaseException:
                self.seconds += time.thread_time() - started
                raise
            self.seconds += time.thread_time() - started
            sent, thrown = None, None
            try:
                sent = yield yielded
            except BaseException as exc:  # a cancellation goes into the coroutine
                thrown = exc
