"""What every Phoenix socket of a process shares: the hub, presence, the change feed, the
identity source and the per-org join rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from orgbase.core.context import LiveIdentitySource
from orgbase.core.errors import RateLimited
from orgbase.core.row_changes import ChangeReader
from orgbase.services.redis.phoenix.changes import ChangeFeed
from orgbase.services.redis.phoenix.presence import PresenceStore
from orgbase.services.redis.phoenix.subscriber import Translator
from orgbase.services.redis.realtime import RealtimeHub

_MAX_BUCKETS = 10_000


class JoinRate:
    """Channel joins per second per org, counted in this process (as connections are): a
    token bucket holding one second of the org's ``realtime_joins_per_second``."""

    def __init__(self, per_second: Callable[[UUID], int] | None) -> None:
        self.per_second = per_second
        self._buckets: dict[UUID, tuple[float, float]] = {}

    def take(self, org: UUID) -> None:
        if self.per_second is None:
            return
        rate = float(self.per_second(org))
        now = time.monotonic()
        tokens, last = self._buckets.get(org, (rate, now))
        tokens = min(rate, tokens + (now - last) * rate)
        if tokens < 1:
            raise RateLimited(
                f"this org joins at most {rate:.0f} channels per second",
                retry_after=1,
                code="realtime_joins_exceeded",
                details={"limit": int(rate)},
            )
        self._buckets[org] = (tokens - 1, now)
        if len(self._buckets) > _MAX_BUCKETS:  # full buckets are the default: forget them
            self._buckets = {o: b for o, b in self._buckets.items() if now - b[1] < 1.0}


@dataclass
class PhoenixRealtime:
    hub: RealtimeHub
    identities: LiveIdentitySource
    presence: PresenceStore
    feed: ChangeFeed
    reader: ChangeReader
    joins: JoinRate
    translator: Translator = field(default_factory=Translator)

    def start(self) -> None:
        self.presence.start()

    async def stop(self) -> None:
        await self.presence.stop()
