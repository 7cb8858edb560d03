"""Delivers the webhook outbox: every gateway process runs one dispatcher.

A round claims due deliveries with ``FOR UPDATE SKIP LOCKED`` and pushes their next
attempt past a lease, so two processes never send the same attempt and a process killed
mid-delivery leaves them to be claimed again when the lease ends (at least once: the
receiver deduplicates by ``webhook-id``). A delivery is done only on a 2xx. Failures are
retried on the settings' schedule (with jitter); one that fails the whole schedule is
given up, and an endpoint that delivered nothing over that schedule is disabled, with an
audit event and a mail to the org's admins. Each endpoint has a circuit breaker (a dead
receiver costs a few attempts, then its deliveries wait without spending attempts) and at
most ``max_in_flight`` deliveries under way from this process.

The destination is resolved and checked at every attempt, and the request goes to the
address that was checked (``destinations``); redirects are not followed and at most
``max_response_bytes`` of an answer are read.

An endpoint sends only while its owner holds the org's authority
(``sql/rls/0022_webhook_owners.sql``): a claim takes a delivery only then, the endpoints are
read again after the claim, and an endpoint disabled or deleted later (NOTIFY
``orgbase_webhook_stopped``) has its claimed, unsent deliveries released, unsent. Only a
request already on its way completes. Every ``owner_check_seconds`` the endpoints whose
owner lost the authority with no event saying so (an admin key that expired) are disabled.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import structlog

from orgbase.core import audit, destinations
from orgbase.core.audit import AuditEvent
from orgbase.core.breaker import CircuitBreaker
from orgbase.core.destinations import DestinationPolicy
from orgbase.core.errors import Invalid
from orgbase.core.mail import Mail, Outbox
from orgbase.core.periodic import Periodic
from orgbase.core.postgres import Connection, Database
from orgbase.core.settings import WebhookSettings
from orgbase.core.tasks import TaskSet
from orgbase.webhooks import signing
from orgbase.webhooks.clients import EndpointClients

log = structlog.get_logger("orgbase.webhooks")

_CLAIM = """
UPDATE orgbase.webhook_deliveries d
SET attempts = d.attempts + 1, last_attempt_at = now(),
    next_attempt_at = now() + make_interval(secs => $2)
FROM (
    SELECT d2.id FROM orgbase.webhook_deliveries d2
    JOIN orgbase.webhook_endpoints e ON e.id = d2.endpoint_id AND e.enabled
        AND orgbase.webhook_owner_in_authority(e.org_id, e.owner_user_id, e.owner_key_id)
    WHERE d2.status = 'pending' AND d2.next_attempt_at <= now()
    ORDER BY d2.next_attempt_at, d2.id
    LIMIT $1
    FOR UPDATE OF d2 SKIP LOCKED) due
WHERE d.id = due.id
RETURNING d.id, d.message_id, d.endpoint_id, d.org_id, d.attempts, d.created_at,
          d.payload::text AS body
"""
_ENDPOINTS = """
SELECT id, url, secret,
       CASE WHEN previous_secret_until > now() THEN previous_secret END AS previous_secret
FROM orgbase.webhook_endpoints e WHERE id = ANY($1::uuid[]) AND enabled
  AND orgbase.webhook_owner_in_authority(e.org_id, e.owner_user_id, e.owner_key_id)
"""
_DISABLE_UNOWNED = "SELECT orgbase.webhook_disable_unowned(NULL, NULL, NULL, $1)"
UNOWNED = "its owner no longer holds the org's authority (an expired API key, or a change"
UNOWNED += " made outside orgbase)"
STOPPED_CHANNEL = "orgbase_webhook_stopped"
_DELIVERED = """
UPDATE orgbase.webhook_deliveries
SET status = 'delivered', delivered_at = now(), last_status = $2, last_latency_ms = $3,
    last_response = $4, last_error = NULL
WHERE id = $1
"""
_RETRY = """
UPDATE orgbase.webhook_deliveries
SET next_attempt_at = now() + make_interval(secs => $5), last_status = $2,
    last_latency_ms = $3, last_response = $4, last_error = $6
WHERE id = $1
"""
_GIVE_UP = """
UPDATE orgbase.webhook_deliveries
SET status = 'failed', last_status = $2, last_latency_ms = $3, last_response = $4,
    last_error = $5
WHERE id = $1
"""
_DEFER = """
UPDATE orgbase.webhook_deliveries
SET attempts = attempts - 1, next_attempt_at = now() + make_interval(secs => $2)
WHERE id = $1
"""
# Disabled only when nothing reached it since the given-up delivery was made: a whole
# retry schedule without one success.
_DISABLE = """
UPDATE orgbase.webhook_endpoints e
SET enabled = false, disabled_reason = 'every delivery failed for a whole retry schedule',
    updated_at = now()
WHERE e.id = $1 AND e.enabled AND NOT EXISTS (
    SELECT 1 FROM orgbase.webhook_deliveries d
    WHERE d.endpoint_id = e.id AND d.status = 'delivered' AND d.delivered_at >= $2)
RETURNING e.org_id, e.url
"""
# What is owed to live endpoints (a disabled one's pending deliveries wait for an admin,
# not for this gateway: they would read as a backlog that never drains).
_QUEUE = """
SELECT count(*) AS due,
       coalesce(extract(epoch FROM now() - min(d.next_attempt_at)), 0)::float8 AS oldest
FROM orgbase.webhook_deliveries d
JOIN orgbase.webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
WHERE d.status = 'pending' AND d.next_attempt_at <= now()
"""
_EXPIRE = """
DELETE FROM orgbase.webhook_deliveries WHERE id IN (
    SELECT id FROM orgbase.webhook_deliveries
    WHERE created_at < now() - make_interval(days => $1) AND status <> 'pending'
    LIMIT 5000)
"""
USER_AGENT = "orgbase-webhooks/1"
RETENTION_EVERY_SECONDS = 600.0
RECORDERS = 2
MAX_ROUNDS_BACK_TO_BACK = 20
"""A round that claimed a full batch starts the next at once, up to this many."""


@dataclass(frozen=True)
class Attempt:
    status: int | None
    latency_ms: int
    response: str | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Queue:
    due: int = 0
    oldest_due_seconds: float = 0.0


class WebhookDispatcher:
    def __init__(
        self,
        db: Database,
        settings: WebhookSettings,
        policy: DestinationPolicy,
        outbox: Outbox,
        *,
        tasks: TaskSet,
        observe_latency: Callable[[float], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.policy = policy
        self.outbox = outbox
        """The tenancy area's mail queue (notices to the org's admins)."""
        self.outcomes: collections.Counter[str] = collections.Counter()
        """delivered, retried, given_up, deferred, released, endpoint_disabled (copied into
        metrics)."""
        self.observe_latency = observe_latency
        """Told each attempt's latency in seconds (the metrics' histogram, when on)."""
        self.queue = Queue()
        self._breakers: dict[UUID, CircuitBreaker] = {}
        self._in_flight: dict[UUID, asyncio.Semaphore] = {}
        # Results are written through the platform pool, which requests need too (sign-in,
        # session fallback): a busy round holds at most this many of its connections.
        self._recorders = asyncio.Semaphore(RECORDERS)
        self._clients = EndpointClients(settings, tasks)
        self._last_expiry = 0.0
        self._last_owner_check = 0.0
        self._stopped: dict[UUID, float] = {}
        """Endpoints disabled or deleted lately (when this process heard of it)."""
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._poller = Periodic.queue_worker(
            "webhook deliveries", self._round, settings.poll_seconds
        )

    @property
    def lease_seconds(self) -> float:
        """How long a claim holds: time for its share of a batch to go out one
        ``max_in_flight`` at a time, plus one more timeout."""
        waves = math.ceil(self.settings.batch / self.settings.max_in_flight)
        return self.settings.timeout_seconds * (waves + 1)

    def start(self) -> None:
        if self.settings.enabled:
            self._poller.start()

    async def stop(self) -> None:
        """Claim nothing more and let the round under way finish (bounded by one delivery
        timeout): cancelling it would leave sent deliveries unrecorded, to be sent again
        when their lease ends."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.settings.timeout_seconds + 2)
        await self._poller.stop()
        await self._clients.close()

    def endpoint_stopped(self, payload: str) -> None:
        """NOTIFY ``orgbase_webhook_stopped``: deliveries claimed before now for this endpoint
        and not sent yet are released unsent."""
        with contextlib.suppress(ValueError):
            self._stopped[UUID(payload)] = time.monotonic()

    def _was_stopped(self, endpoint_id: UUID, claimed_at: float) -> bool:
        stopped_at = self._stopped.get(endpoint_id)
        return stopped_at is not None and stopped_at >= claimed_at

    async def disable_unowned(self) -> int:
        """Disable (audited, mailed) the live endpoints whose owner lost the authority."""
        self._last_owner_check = time.monotonic()
        horizon = self._last_owner_check - self.lease_seconds  # older notices are moot
        self._stopped = {k: at for k, at in self._stopped.items() if at > horizon}
        async with self.db.system_connection() as connection:
            disabled = int(await connection.fetchval(_DISABLE_UNOWNED, UNOWNED))
        self.outcomes["endpoint_disabled"] += disabled
        return disabled

    async def _round(self) -> None:
        if self._stopping:
            return
        if time.monotonic() - self._last_owner_check > self.settings.owner_check_seconds:
            await self.disable_unowned()
        self._idle.clear()
        try:
            for _ in range(MAX_ROUNDS_BACK_TO_BACK):
                if await self.deliver_due() < self.settings.batch or self._stopping:
                    break
        finally:
            self._idle.set()
        await self._measure_queue()
        if time.monotonic() - self._last_expiry > RETENTION_EVERY_SECONDS:
            self._last_expiry = time.monotonic()
            await self.expire_old()

    async def expire_old(self) -> int:
        """Forget deliveries older than the retention (pending ones are kept: still owed)."""
        async with self.db.system_connection() as connection:
            status = await connection.execute(_EXPIRE, self.settings.retention_days)
        return int(status.split()[-1])

    async def _measure_queue(self) -> None:
        async with self.db.system_connection() as connection:
            row = await connection.fetchrow(_QUEUE)
        assert row is not None
        self.queue = Queue(row["due"], row["oldest"])

    async def deliver_due(self) -> int:
        """One claim and its deliveries; returns how many were claimed."""
        async with self.db.system_connection() as connection:
            claimed = await connection.fetch(_CLAIM, self.settings.batch, self.lease_seconds)
            if not claimed:
                return 0
            claimed_at = time.monotonic()
            endpoint_ids = list({row["endpoint_id"] for row in claimed})
            # Read after the claim: an endpoint stopped in between is not among them.
            endpoints = {row["id"]: row for row in await connection.fetch(_ENDPOINTS, endpoint_ids)}
        await asyncio.gather(
            *(self._deliver(row, endpoints.get(row["endpoint_id"]), claimed_at) for row in claimed)
        )
        return len(claimed)

    def _breaker(self, endpoint_id: UUID) -> CircuitBreaker:
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            breaker = self._breakers[endpoint_id] = CircuitBreaker(
                f"webhook {endpoint_id}",
                failure_threshold=self.settings.breaker_failures,
                reset_seconds=self.settings.breaker_reset_seconds,
            )
        return breaker

    async def _deliver(
        self, delivery: asyncpg.Record, endpoint: asyncpg.Record | None, claimed_at: float
    ) -> None:
        if endpoint is None:  # stopped, or its owner lost the authority, since the claim
            await self._defer(delivery["id"], 0, "released")
            return
        breaker = self._breaker(endpoint["id"])
        slots = self._in_flight.setdefault(
            endpoint["id"], asyncio.Semaphore(self.settings.max_in_flight)
        )
        async with slots:
            if self._was_stopped(endpoint["id"], claimed_at):
                await self._defer(delivery["id"], 0, "released")
                return
            if not breaker.allow():
                await self._defer(delivery["id"], self.settings.breaker_reset_seconds)
                return
            attempt = await self._send(delivery, endpoint)
        if attempt.delivered:
            breaker.record_success()
        else:
            breaker.record_failure()
        if self.observe_latency is not None:
            self.observe_latency(attempt.latency_ms / 1000)
        await self._record(delivery, attempt)

    async def _defer(self, delivery_id: int, wait: float, outcome: str = "deferred") -> None:
        """Give a claimed delivery back unsent, without spending an attempt: the endpoint's
        breaker is open (wait for it), or the endpoint stopped (it stays pending)."""
        self.outcomes[outcome] += 1
        async with self._recorders, self.db.system_connection() as connection:
            await connection.execute(_DEFER, delivery_id, wait)

    async def _send(self, delivery: asyncpg.Record, endpoint: asyncpg.Record) -> Attempt:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            target = await destinations.resolve(endpoint["url"], self.policy)
        except Invalid as refused:
            return Attempt(None, took(), None, f"{refused.code}: {refused.message}"[:500])
        body: bytes = delivery["body"].encode()
        in_force = [endpoint["secret"]]
        if endpoint["previous_secret"]:
            in_force.append(endpoint["previous_secret"])
        headers = signing.headers(in_force, delivery["message_id"], int(time.time()), body)
        headers |= {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}",
        }
        # TLS checks the certificate against the name, while the socket goes to the
        # address that was checked (no second lookup for a rebinding DNS to answer).
        extensions: dict[str, Any] = (
            {"sni_hostname": target.host} if target.scheme == "https" else {}
        )
        try:
            async with self._clients.for_endpoint(endpoint["id"]).stream(
                "POST", target.target, content=body, headers=headers, extensions=extensions
            ) as response:
                answer = await _read_prefix(response, self.settings.max_response_bytes)
                return Attempt(response.status_code, took(), answer, None)
        except httpx.TimeoutException:
            return Attempt(None, took(), None, "timeout")
        except httpx.HTTPError as exc:
            return Attempt(None, took(), None, f"{type(exc).__name__}: {exc}"[:500])

    async def _record(self, delivery: asyncpg.Record, attempt: Attempt) -> None:
        status, latency, answer = attempt.status, attempt.latency_ms, attempt.response
        error = attempt.error or (None if attempt.delivered else f"answered {status}")
        schedule = self.settings.retry_schedule
        async with (
            self._recorders,
            self.db.system_connection() as connection,
            connection.transaction(),
        ):
            if attempt.delivered:
                self.outcomes["delivered"] += 1
                await connection.execute(_DELIVERED, delivery["id"], status, latency, answer)
            elif delivery["attempts"] <= len(schedule):
                self.outcomes["retried"] += 1
                wait = schedule[delivery["attempts"] - 1] * random.uniform(0.9, 1.1)  # noqa: S311
                await connection.execute(
                    _RETRY, delivery["id"], status, latency, answer, wait, error
                )
            else:
                self.outcomes["given_up"] += 1
                await connection.execute(_GIVE_UP, delivery["id"], status, latency, answer, error)
                await self._disable_if_dead(
                    connection, delivery["endpoint_id"], delivery["created_at"]
                )

    async def _disable_if_dead(
        self, connection: Connection, endpoint_id: UUID, since: datetime
    ) -> None:
        disabled = await connection.fetchrow(_DISABLE, endpoint_id, since)
        if disabled is None:
            return
        self.outcomes["endpoint_disabled"] += 1
        org_id, url = disabled["org_id"], disabled["url"]
        log.warning("webhook endpoint disabled", endpoint_id=str(endpoint_id), org_id=str(org_id))
        event = AuditEvent.by_system(
            "webhook.disabled", org_id=org_id, details={"endpoint_id": str(endpoint_id)}
        )
        await audit.record(connection, event)
        body = (
            f"Every delivery to {url} failed for a whole retry schedule, so orgbase stopped"
            f" sending to it (endpoint {endpoint_id}). Fix the receiver, enable the endpoint"
            " again, and replay the deliveries it missed."
        )
        notice = Mail("webhook_disabled", "", "A webhook endpoint was disabled", body, org_id)
        await self.outbox.to_members(connection, org_id, ("owner", "admin"), notice)


async def _read_prefix(response: httpx.Response, limit: int) -> str | None:
    """At most ``limit`` bytes of the answer, as text; the rest is never read."""
    if limit == 0:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit].decode("utf-8", "replace")
