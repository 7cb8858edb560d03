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


def pause_to_stay_in_one_window(window_seconds: int, needed: float = 15.0) -> float:
    """The seconds to wait so that at least ``needed`` seconds of the current fixed window
    (windows start at multiples of ``window_seconds`` since the epoch, as the sign-in and
    mail limits count them) are left: requests split across two windows would not reach
    a limit they reach within one."""
    left = window_seconds - time.time() % window_seconds
    return left + 0.1 if left < needed else 0.0
