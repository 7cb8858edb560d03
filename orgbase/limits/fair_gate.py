"""The fair gate in front of the tenant pool: database time shared between orgs.

One FIFO queue for everybody lets one org's burst take every connection while the other
orgs wait behind it. Here each org waits in a queue of its own and holds at most its
concurrency limit; when a slot frees up it goes to the next org in turn (deficit round
robin with every statement costing one slot), so an org that floods queues behind itself.
Within an org waiters are served in arrival order and a newcomer never overtakes them.

Slots are connections, but what a neighbour waits for is the database's CPU. So the gate
also shares time (``TimeShare``, on by default): while orgs compete, an org that uses more
than its share of the database's time is held to its share and queues behind itself; an
org alone keeps the whole pool. On top, an org whose statements run long (their average
hold above ``heavy_seconds``) is held to one statement while another org holds or waits
for a slot. Pure asyncio: no I/O, so it is tested on its own
(tests/unit/test_fair_gate.py, tests/unit/test_time_share.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable

from orgbase.core.statement_gate import GateTimeout
from orgbase.limits.time_share import TimeShare

COST_WEIGHT = 0.2
"""Weight of the latest hold in an org's moving average (about the last ten count)."""
MAX_COSTS = 100_000
"""Orgs whose average is kept; past it the averages start again (memory stays bounded)."""


class FairGate:
    def __init__(
        self,
        capacity: int,
        heavy_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        share: TimeShare | None = None,
    ) -> None:
        self.capacity = capacity
        self.share = share
        """None: connections are shared, not time."""
        self.heavy_seconds = heavy_seconds
        """0: no org is ever held to one statement for its cost."""
        self.in_use = 0
        self._clock = clock
        self._cost: dict[Hashable, float] = {}
        """Each org's moving average of how long it holds a slot (seconds)."""
        self._taken_at: dict[Hashable, deque[float]] = {}
        self._held: dict[Hashable, int] = {}
        self._queues: dict[Hashable, deque[tuple[asyncio.Future[None], int]]] = {}
        self._turns: deque[Hashable] = deque()
        """Orgs with waiters that may take a slot now (below their cap), in turn order."""
        self._in_turns: set[Hashable] = set()

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def held(self, org: Hashable) -> int:
        return self._held.get(org, 0)

    def cost(self, org: Hashable) -> float:
        """The org's moving average of seconds per slot held."""
        return self._cost.get(org, 0.0)

    def cap_now(self, org: Hashable, cap: int) -> int:
        """``cap``; an org over its share of time holds its share; a heavy org holds one
        while another org holds or waits for a slot."""
        if self.share is not None and org in self._held:
            # Holding nothing, an org may always take one: no need to weigh its share.
            cap = self.share.cap(org, cap)
        if cap <= 1 or not self.heavy_seconds or self._cost.get(org, 0.0) < self.heavy_seconds:
            return cap
        others_hold = self.in_use > self._held.get(org, 0)
        others_wait = len(self._queues) > (1 if org in self._queues else 0)
        return 1 if others_hold or others_wait else cap

    async def acquire(
        self, org: Hashable, cap: int, wait_at_most: float | None = None, weight: int = 1
    ) -> None:
        """Take one slot for ``org`` (holding at most ``cap`` at once; ``weight``: its
        share of time against the others'); GateTimeout after ``wait_at_most`` seconds of
        waiting. Pair with ``release(org)``."""
        if self.share is not None:
            self.share.asks(org, weight, self._busy)
        held = self._held.get(org, 0)
        free = self.in_use < self.capacity and org not in self._queues
        if free and held < self.cap_now(org, cap):
            self._take(org)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues.setdefault(org, deque())
        queue.append((future, cap))
        if held < self.cap_now(org, cap):
            self._schedule(org)
        self._dispatch()
        try:
            if wait_at_most is None:
                await future
            else:
                async with asyncio.timeout(wait_at_most):
                    await future
        except BaseException as exc:
            if future.done() and not future.cancelled():
                # The slot was granted as the wait ended: give it back to the next in turn.
                self.release(org)
            else:
                future.cancel()
                self._forget(org, future)
            if isinstance(exc, TimeoutError):
                raise GateTimeout from None
            raise

    def release(self, org: Hashable) -> None:
        self.in_use -= 1
        held = self._held[org] - 1
        if held:
            self._held[org] = held
        else:
            del self._held[org]
        self._note_cost(org)
        queue = self._queues.get(org)
        if queue and held < self.cap_now(org, queue[0][1]):
            self._schedule(org)
        self._dispatch()

    # -- internals -------------------------------------------------------------------

    def _busy(self, org: Hashable) -> bool:
        return org in self._held or org in self._queues

    def _take(self, org: Hashable) -> None:
        self.in_use += 1
        self._held[org] = self._held.get(org, 0) + 1
        if self.heavy_seconds or self.share is not None:
            self._taken_at.setdefault(org, deque()).append(self._clock())

    def _note_cost(self, org: Hashable) -> None:
        """The oldest of the org's holds ended (its slots are alike: the sum is exact):
        its time to the share, and into its average for the heavy rule."""
        started = self._taken_at.get(org)
        if not started:
            return
        now = self._clock()
        held_for = now - started.popleft()
        if not started:
            del self._taken_at[org]
        if self.share is not None:
            self.share.spent(org, held_for, now)
        if not self.heavy_seconds:
            return
        previous = self._cost.get(org)
        if previous is None and len(self._cost) >= MAX_COSTS:
            self._cost.clear()
        self._cost[org] = (
            held_for if previous is None else previous + COST_WEIGHT * (held_for - previous)
        )

    def _schedule(self, org: Hashable) -> None:
        if org not in self._in_turns:
            self._in_turns.add(org)
            self._turns.append(org)

    def _dispatch(self) -> None:
        """Hand free slots to the orgs in turn, one slot per org per turn."""
        while self.in_use < self.capacity and self._turns:
            org = self._turns.popleft()
            self._in_turns.discard(org)
            queue = self._queues.get(org)
            while queue and queue[0][0].done():  # cancelled waiters
                queue.popleft()
            if not queue:
                self._queues.pop(org, None)
                continue
            future, cap = queue[0]
            if self._held.get(org, 0) >= self.cap_now(org, cap):
                continue  # back in turn when one of its slots is released
            queue.popleft()
            self._take(org)
            future.set_result(None)
            if queue:
                if self._held[org] < self.cap_now(org, queue[0][1]):
                    self._schedule(org)  # to the back: the other orgs go first
            else:
                del self._queues[org]

    def _forget(self, org: Hashable, future: asyncio.Future[None]) -> None:
        queue = self._queues.get(org)
        if queue is None:
            return
        for index, (waiter, _) in enumerate(queue):
            if waiter is future:
                del queue[index]
                break
        if not queue:
            del self._queues[org]
