"""The one background loop: rounds on time, failures survived, a clean stop."""

from __future__ import annotations

import asyncio

from orgbase.core.periodic import Periodic


async def run_for(loop: Periodic, seconds: float) -> None:
    """Start the loop, let it run, stop it; it must not be running after."""
    loop.start()
    await asyncio.sleep(seconds)
    await loop.stop()
    assert not loop.running


class Rounds:
    """A loop's work that counts its rounds; the second one fails when told to."""

    def __init__(self, second_fails: bool = False) -> None:
        self.count = 0
        self.second_fails = second_fails

    async def __call__(self) -> None:
        self.count += 1
        if self.second_fails and self.count == 2:
            raise RuntimeError("a backing service is down")


async def test_rounds_run_and_failures_do_not_stop_the_loop() -> None:
    rounds = Rounds(second_fails=True)
    await run_for(Periodic("test loop", rounds, 0.01, first_round_at_once=True), 0.15)
    assert rounds.count >= 4


async def test_the_first_round_waits_unless_told_otherwise() -> None:
    rounds = Rounds()
    await run_for(Periodic("test loop", rounds, 60.0), 0.05)
    assert rounds.count == 0


async def test_stop_cancels_the_round_in_progress_and_waits_for_it() -> None:
    started, cleaned_up = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            cleaned_up.set()

    loop = Periodic.queue_worker("test loop", work, 0.01)  # the first round at once
    loop.start()
    await started.wait()
    await loop.stop()
    assert cleaned_up.is_set(), "the round in progress was awaited"
    assert not loop.running


async def test_a_swallowed_cancellation_still_stops_the_loop() -> None:
    rounds = 0

    async def work() -> None:
        nonlocal rounds
        rounds += 1
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise TimeoutError from None  # what a read under asyncio.timeout may turn it into

    loop = Periodic("test loop", work, 0.01, first_round_at_once=True)
    loop.start()
    await asyncio.sleep(0.02)
    await asyncio.wait_for(loop.stop(), 1.0)
    assert rounds == 1


async def test_stop_before_start_and_twice_is_harmless() -> None:
    async def work() -> None:
        return None

    loop = Periodic("test loop", work, 0.01)
    await loop.stop()
    loop.start()
    await loop.stop()
    await loop.stop()


async def test_stop_runs_the_last_round_and_survives_its_failure() -> None:
    calls: list[str] = []

    async def work() -> None:
        calls.append("round")

    async def last() -> None:
        calls.append("last")
        raise RuntimeError("Redis is down at shutdown")

    loop = Periodic("test loop", work, 60.0, last_round=last)
    loop.start()
    await loop.stop()
    assert calls == ["last"]
