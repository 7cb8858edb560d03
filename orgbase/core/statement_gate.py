"""What the tenant pool asks of the scheduler in front of it.

The limits area's fair-share gate (``limits/fair_gate.py``) implements it and the limits
area hands it to the ``Database`` when it is built; a ``Database`` without one (the
command line, tests that open a pool alone) takes connections straight from the pool.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID


class GateTimeout(Exception):
    """No slot came free within the wait allowed."""


class StatementGate(Protocol):
    """One slot per tenant-pool connection held; ``enter`` and ``leave`` pair up per org."""

    @property
    def waiting(self) -> int:
        """Entries queued now (shown with the pool's figures)."""
        ...

    async def enter(self, org: UUID | None, wait_at_most: float) -> None:
        """A slot for ``org``; GateTimeout after ``wait_at_most`` seconds of waiting."""
        ...

    def leave(self, org: UUID | None) -> None:
        """The slot ``enter`` gave back (the time it was held is the org's database time)."""
        ...
