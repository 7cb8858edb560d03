"""Waiting for a state change with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

Check = Callable[[], T | Awaitable[T]]


async def eventually(
    check: Check[T], *, within: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Call ``check`` until it returns something truthy and return that; fail after
    ``within`` seconds with the last value seen. ``check`` may be sync or async; an
    AssertionError it raises counts as "not yet" (so a check can be a plain assert)."""
    deadline = time.monotonic() + within
    while True:
        last: object
        try:
            outcome = check()
            value = await outcome if inspect.isawaitable(outcome) else outcome
        except AssertionError as failed:
            last = failed
        else:
            if value:
                return value
            last = value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:g}s (last: {last!r})")
        await asyncio.sleep(interval)
