"""One HTTP client per endpoint, the least recently used closed beyond a bound.

Each endpoint's connections serve it alone: a receiver that hangs holds only its own
(at most ``max_in_flight``), never the connections another endpoint needs; and httpcore,
which looks at every pooled connection of a client on each request, looks at a handful.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from uuid import UUID

import httpx

from orgbase.core.settings import WebhookSettings
from orgbase.core.tasks import TaskSet

KEPT_ALIVE = 8
MOST_CLIENTS = 256
"""Kept open at once (at least a batch: the endpoints of one round all fit)."""


class EndpointClients:
    def __init__(self, settings: WebhookSettings, tasks: TaskSet) -> None:
        self.settings = settings
        self.tasks = tasks
        """Evicted clients close there (drained at shutdown, before ``close``)."""
        self.most = max(MOST_CLIENTS, settings.batch)
        self._clients: OrderedDict[UUID, httpx.AsyncClient] = OrderedDict()

    def _new(self) -> httpx.AsyncClient:
        slots = self.settings.max_in_flight
        return httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment between us and the receiver
            timeout=self.settings.timeout_seconds,
            # Few idle connections kept: httpcore checks each idle one (a syscall) on
            # every request, which cost a third of the CPU per delivery with 32 kept.
            limits=httpx.Limits(
                max_connections=slots, max_keepalive_connections=min(slots, KEPT_ALIVE)
            ),
        )

    def for_endpoint(self, endpoint_id: UUID) -> httpx.AsyncClient:
        client = self._clients.pop(endpoint_id, None) or self._new()
        self._clients[endpoint_id] = client  # the most recently used last
        while len(self._clients) > self.most:
            _, oldest = self._clients.popitem(last=False)
            self.tasks.spawn(oldest.aclose(), "webhook client close")
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        await asyncio.gather(*(client.aclose() for client in clients))
