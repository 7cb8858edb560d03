"""Waiting for a state change with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    within: float = ...,
    interval: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T | None], *, within: float = ..., interval: float = ..., what: str = ...
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    within: float = 10.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> Any:
    """Call ``check`` (sync or async) until it returns something truthy, and return that
    (a check that returns None until it finds something gives what it found).
    Fails after ``within`` seconds, showing the last value. An exception from ``check``
    propagates at once: a check may assert what must hold while it waits."""
    deadline = time.monotonic() + within
    while True:
        outcome = check()
        value = await outcome if inspect.isawaitable(outcome) else outcome
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {within:g}s (last: {value!r})"
        await asyncio.sleep(interval)
