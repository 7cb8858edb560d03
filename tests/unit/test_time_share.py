"""The sharing of database time between orgs: the scheduler's decisions, on a hand-turned
clock (no timing, nothing that can flake)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Hashable

import pytest

from orgbase.limits.fair_gate import FairGate
from orgbase.limits.time_share import TimeShare


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def busy_for(share: TimeShare, clock: Clock, org: str, in_flight: int, seconds: float) -> None:
    """``org`` keeps ``in_flight`` statements running for ``seconds`` (in 10 ms steps)."""
    both_busy(share, clock, {org: in_flight}, seconds)


def both_busy(share: TimeShare, clock: Clock, in_flight: dict[str, int], seconds: float) -> None:
    for _ in range(round(seconds / 0.01)):
        clock.now += 0.01
        for org, count in in_flight.items():
            share.asks(org)
            share.spent(org, 0.01 * count)


def test_the_rate_is_the_orgs_statements_in_flight_lately() -> None:
    clock = Clock()
    share = TimeShare(2, window=1.0, clock=clock)
    busy_for(share, clock, "a", 3, 10.0)
    assert share.rate("a") == pytest.approx(3, rel=0.02)
    clock.now += 1.0  # a window later, idle: decayed by e
    assert share.rate("a") == pytest.approx(3 / math.e, rel=0.02)


def test_an_org_alone_keeps_the_whole_pool() -> None:
    clock = Clock()
    share = TimeShare(2, clock=clock)
    busy_for(share, clock, "a", 10, 3.0)
    assert share.cap("a", 10) == 10
    assert not share.over("a")


def test_competing_the_org_over_its_share_is_held_to_it_and_the_quiet_one_is_not() -> None:
    clock = Clock()
    share = TimeShare(2, clock=clock)
    busy_for(share, clock, "a", 10, 3.0)
    busy_for(share, clock, "b", 1, 0.5)  # B: a few short statements in flight at once
    share.asks("a")
    # B is under its share: nothing holds it back (its statements never queue behind A's).
    assert share.cap("b", 8) == 8
    # A uses far more than its share of 2 statements' worth: it may hold one.
    assert share.cap("a", 8) == 1
    assert share.over("a")


def test_unused_time_goes_to_the_busy_org() -> None:
    """A neighbour asking a little leaves the rest to the busy org (not just half)."""
    clock = Clock()
    share = TimeShare(8, clock=clock)
    busy_for(share, clock, "a", 20, 2.0)
    share.asks("b")
    share.spent("b", 0.001)
    assert share.entitlement("a") == pytest.approx(8, abs=0.01)
    assert share.entitlement("b") == pytest.approx(4)  # at least its half
    assert share.cap("a", 20) == 7  # over its share (20 > 8): held to what is left


def test_weights_divide_the_time() -> None:
    clock = Clock()
    share = TimeShare(8, clock=clock)
    both_busy(share, clock, {"heavy": 8, "b": 8}, 2.0)
    share.asks("heavy", weight=3)
    assert share.entitlement("heavy") == pytest.approx(6)
    assert share.entitlement("b") == pytest.approx(2)
    assert share.cap("heavy", 8) == 6
    assert share.cap("b", 8) == 2


def test_held_until_its_rate_falls_to_half_or_it_is_alone() -> None:
    clock = Clock()
    share = TimeShare(2, clock=clock)
    busy_for(share, clock, "b", 1, 1.0)
    busy_for(share, clock, "a", 10, 1.0)
    assert share.cap("a", 8) == 1
    # Held to one, A runs one at a time: its rate sinks towards 1, under its share (1.x)
    # but not under half of it: still held (no burst back to 8).
    busy_for(share, clock, "a", 1, 4.0)
    share.asks("b")
    assert share.cap("a", 8) == 1
    # A nearly stops: released.
    busy_for(share, clock, "a", 0, 2.0)
    share.asks("b")
    assert share.cap("a", 8) == 8
    # Alone, A is never held.
    busy_for(share, clock, "a", 10, 1.0)
    clock.now += 5
    share.sweep(lambda org: org == "a")
    assert share.active == 1
    assert share.cap("a", 8) == 8


def test_a_sweep_drops_idle_orgs_only_and_at_most_once_a_window() -> None:
    clock = Clock()
    share = TimeShare(2, clock=clock)
    for org in ("a", "b", "c"):
        share.asks(org)
        share.spent(org, 0.5)
    clock.now += 0.5
    share.asks("a")
    share.sweep(lambda org: False)  # less than a window since the last sweep began
    assert share.active == 3
    clock.now += 0.6
    share.sweep(lambda org: org == "c")  # c holds a slot: kept
    assert share.active == 2
    assert share.total_rate() == pytest.approx(share.rate("a") + share.rate("c"))


def test_database_time_is_metered_in_whole_milliseconds_without_loss() -> None:
    metered: dict[Hashable, int] = {}

    def meter(org: Hashable, milliseconds: int) -> None:
        metered[org] = metered.get(org, 0) + milliseconds

    share = TimeShare(2, clock=Clock(), meter=meter)
    for _ in range(10):
        share.spent("a", 0.0004)  # 0.4 ms each
    share.spent("b", 0.0123)
    assert metered == {"a": 4, "b": 12}


async def test_the_gate_holds_the_flooding_org_and_serves_the_quiet_one_next() -> None:
    clock = Clock()
    gate = FairGate(10, clock=clock, share=TimeShare(2, clock=clock))
    # A alone floods with long statements: its whole cap of 8.
    for _ in range(8):
        await gate.acquire("a", 8)
    clock.now += 0.5
    for _ in range(8):
        gate.release("a")
    assert gate.share is not None
    assert gate.share.rate("a") > 2
    # B comes (one short statement): now A (over its share) gets one slot, its next ones
    # wait behind it, and B never waits.
    await gate.acquire("b", 8)
    clock.now += 0.001
    gate.release("b")
    await gate.acquire("a", 8)
    more_a = [asyncio.ensure_future(gate.acquire("a", 8)) for _ in range(5)]
    await asyncio.sleep(0)
    for _ in range(4):
        await asyncio.wait_for(gate.acquire("b", 8), 1)
    assert gate.held("a") == 1
    assert gate.held("b") == 4
    assert not any(waiter.done() for waiter in more_a)
    # A's slot comes back: its next statement goes, still one at a time.
    clock.now += 0.01
    gate.release("a")
    await asyncio.sleep(0)
    assert sum(waiter.done() for waiter in more_a) == 1
    assert gate.held("a") == 1
    for waiter in more_a:
        waiter.cancel()
    await asyncio.gather(*more_a, return_exceptions=True)
    for _ in range(4):
        gate.release("b")
    gate.release("a")
    assert gate.in_use == 0
