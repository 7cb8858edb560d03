"""The fair gate in front of the tenant pool: round robin across orgs, FIFO within an org.

One FIFO queue for everybody lets one org's burst take every connection while the other
orgs wait behind it. Here each org waits in a queue of its own and holds at most its
concurrency limit; when a slot frees up it goes to the next org in turn (deficit round
robin with every statement costing one slot), so an org that floods queues behind itself.
Within an org waiters are served in arrival order and a newcomer never overtakes them.
Pure asyncio: no I/O, so it is tested on its own (tests/unit/test_fair_gate.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable


class GateTimeout(Exception):
    """No slot came free within the wait allowed."""


class FairGate:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
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

    async def acquire(self, org: Hashable, cap: int, wait_at_most: float | None = None) -> None:
        """Take one slot for ``org`` (holding at most ``cap`` at once); GateTimeout after
        ``wait_at_most`` seconds of waiting. Pair with ``release(org)``."""
        held = self._held.get(org, 0)
        if self.in_use < self.capacity and held < cap and org not in self._queues:
            self._take(org)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues.setdefault(org, deque())
        queue.append((future, cap))
        if held < cap:
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
        queue = self._queues.get(org)
        if queue and held < queue[0][1]:
            self._schedule(org)
        self._dispatch()

    # -- internals -------------------------------------------------------------------

    def _take(self, org: Hashable) -> None:
        self.in_use += 1
        self._held[org] = self._held.get(org, 0) + 1

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
            if self._held.get(org, 0) >= cap:
                continue  # back in turn when one of its slots is released
            queue.popleft()
            self._take(org)
            future.set_result(None)
            if queue:
                if self._held[org] < queue[0][1]:
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
