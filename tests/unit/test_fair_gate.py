"""The fair gate in front of the tenant pool: round robin across orgs, FIFO within an org,
each org capped, a flooding org queueing behind itself. Pure asyncio, no services."""

from __future__ import annotations

import asyncio
import random

import pytest

from orgbase.core.statement_gate import GateTimeout
from orgbase.limits.fair_gate import FairGate


class Recorder:
    """Waiters that take a slot, note the order they got it in, and hold it until told."""

    def __init__(self, gate: FairGate) -> None:
        self.gate = gate
        self.order: list[tuple[str, int]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.release_events: dict[tuple[str, int], asyncio.Event] = {}

    def wait(self, org: str, n: int, cap: int) -> None:
        done = asyncio.Event()
        self.release_events[(org, n)] = done

        async def run() -> None:
            await self.gate.acquire(org, cap)
            self.order.append((org, n))
            await done.wait()
            self.gate.release(org)

        self.tasks.append(asyncio.ensure_future(run()))

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    async def release(self, org: str, n: int) -> None:
        self.release_events[(org, n)].set()
        await self.settle()

    async def release_all(self) -> None:
        for event in self.release_events.values():
            event.set()
        await asyncio.gather(*self.tasks)


async def test_a_flooding_org_queues_behind_itself() -> None:
    gate = FairGate(2)
    rec = Recorder(gate)
    # Org A floods: 20 waiters, and holds both slots.
    for n in range(20):
        rec.wait("a", n, cap=2)
    await rec.settle()
    assert rec.order == [("a", 0), ("a", 1)]
    # B arrives after all of A's waiters: it gets the very next slot, not the 21st.
    rec.wait("b", 0, cap=2)
    await rec.settle()
    await rec.release("a", 0)
    assert rec.order[-1] == ("b", 0)
    await rec.release_all()
    assert len(rec.order) == 21


async def test_round_robin_across_orgs_and_fifo_within_each() -> None:
    gate = FairGate(1)
    rec = Recorder(gate)
    rec.wait("hold", 0, cap=1)
    await rec.settle()
    for n in range(3):
        rec.wait("a", n, cap=5)
    for n in range(3):
        rec.wait("b", n, cap=5)
    rec.wait("c", 0, cap=5)
    await rec.settle()
    await rec.release("hold", 0)
    for org, n in [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("a", 2)]:
        await rec.release(org, n)
    await rec.release_all()
    assert rec.order[1:] == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


async def test_an_org_never_holds_more_than_its_cap() -> None:
    gate = FairGate(10)
    rec = Recorder(gate)
    for n in range(6):
        rec.wait("a", n, cap=3)
    await rec.settle()
    assert gate.held("a") == 3
    assert gate.in_use == 3
    # Slots beyond A's cap stay free for others, at once.
    await gate.acquire("b", 3)
    assert gate.held("b") == 1
    gate.release("b")
    await rec.release("a", 0)
    assert gate.held("a") == 3
    assert rec.order == [("a", n) for n in range(4)]
    await rec.release_all()
    assert gate.in_use == 0
    assert gate.waiting == 0


async def test_a_newcomer_does_not_overtake_its_own_orgs_waiters() -> None:
    gate = FairGate(1)
    rec = Recorder(gate)
    rec.wait("a", 0, cap=1)
    rec.wait("a", 1, cap=1)
    await rec.settle()
    rec.wait("a", 2, cap=1)
    await rec.release("a", 0)
    await rec.release("a", 1)
    await rec.release_all()
    assert rec.order == [("a", 0), ("a", 1), ("a", 2)]


async def test_a_timed_out_waiter_leaves_no_trace() -> None:
    gate = FairGate(1)
    await gate.acquire("a", 1)
    with pytest.raises(GateTimeout):
        await gate.acquire("b", 1, wait_at_most=0.01)
    assert gate.waiting == 0
    gate.release("a")
    assert gate.in_use == 0
    await gate.acquire("b", 1, wait_at_most=0.01)
    gate.release("b")


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    gate = FairGate(1)
    await gate.acquire("a", 1)
    cancelled = asyncio.ensure_future(gate.acquire("b", 1))
    waiting = asyncio.ensure_future(gate.acquire("c", 1))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    gate.release("a")
    await waiting
    assert gate.held("c") == 1
    assert gate.held("b") == 0
    gate.release("c")
    assert gate.in_use == 0


async def test_random_load_keeps_every_invariant() -> None:
    """Many orgs with random caps and hold times: the capacity and each cap hold at every
    moment, each org is served in its arrival order, and everyone is served."""
    rng = random.Random(18)
    gate = FairGate(4)
    caps = {f"org{i}": rng.randint(1, 3) for i in range(6)}
    arrivals: dict[str, list[int]] = {org: [] for org in caps}
    served: dict[str, list[int]] = {org: [] for org in caps}
    violations: list[str] = []

    async def one(org: str, n: int) -> None:
        arrivals[org].append(n)
        await gate.acquire(org, caps[org])
        served[org].append(n)
        if gate.in_use > gate.capacity or gate.held(org) > caps[org]:
            violations.append(f"{org}: {gate.held(org)} held, {gate.in_use} in use")
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
        gate.release(org)

    tasks = []
    for n in range(300):
        org = rng.choice(list(caps))
        tasks.append(asyncio.ensure_future(one(org, n)))
        if rng.random() < 0.3:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert violations == []
    assert served == arrivals
    assert gate.in_use == 0
    assert gate.waiting == 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_an_org_whose_statements_run_long_is_held_to_one_while_others_use_the_pool() -> None:
    clock = Clock()
    gate = FairGate(4, heavy_seconds=0.02, clock=clock)
    # A's statements hold their slot 100 ms each: A counts as heavy.
    await gate.acquire("a", 4)
    clock.now += 0.1
    gate.release("a")
    assert gate.cost("a") == pytest.approx(0.1)
    # Alone, A has its whole cap: no core would be left for anybody anyway.
    for _ in range(4):
        await gate.acquire("a", 4)
    assert gate.held("a") == 4
    for _ in range(4):
        gate.release("a")
    # With B holding a slot, A gets one at a time; its second waits behind its first.
    await gate.acquire("b", 4)
    await gate.acquire("a", 4)
    second = asyncio.ensure_future(gate.acquire("a", 4))
    await asyncio.sleep(0)
    assert not second.done()
    assert gate.held("a") == 1
    assert gate.in_use == 2
    # B's statement ends (B is idle): A's next slot comes with its own release.
    gate.release("b")
    await asyncio.sleep(0)
    assert not second.done()
    gate.release("a")
    await second
    assert gate.held("a") == 1
    gate.release("a")


async def test_a_cheap_org_is_never_held_back_and_heavy_off_means_off() -> None:
    clock = Clock()
    gate = FairGate(4, heavy_seconds=0.02, clock=clock)
    for org in ("b", "c"):
        await gate.acquire(org, 4)
        clock.now += 0.001
        gate.release(org)
    await gate.acquire("c", 4)
    for _ in range(3):
        await gate.acquire("b", 3)  # B's 1 ms statements: its whole cap beside C
    assert gate.held("b") == 3
    off = FairGate(4, heavy_seconds=0, clock=clock)
    await off.acquire("a", 4)
    clock.now += 5
    off.release("a")
    await off.acquire("b", 4)
    for _ in range(3):
        await off.acquire("a", 4)
    assert off.held("a") == 3
    assert off.cost("a") == 0.0


async def test_the_average_follows_the_org_as_its_statements_get_cheap() -> None:
    clock = Clock()
    gate = FairGate(4, heavy_seconds=0.02, clock=clock)
    await gate.acquire("a", 4)
    clock.now += 0.2
    gate.release("a")
    for _ in range(20):
        await gate.acquire("a", 4)
        clock.now += 0.001
        gate.release("a")
    assert gate.cost("a") < 0.02
    await gate.acquire("b", 4)
    await gate.acquire("a", 4)
    await gate.acquire("a", 4)  # cheap again: not held to one
    assert gate.held("a") == 2
