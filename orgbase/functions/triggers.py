"""Runs the functions subscribed to events: every gateway process that runs events claims
due deliveries of the outbox (``orgbase.function_deliveries``) with ``FOR UPDATE SKIP
LOCKED``, pushing their next attempt past a lease, so two processes never run the same
attempt and a process killed mid-delivery leaves them to be claimed again when the lease
ends (at least once: a function deduplicates by ``ctx.idempotency_key``).

A delivery is done when its function answers 2xx; otherwise it is retried on the settings'
schedule, and dead after the last attempt (kept for the dead-letter view). Each claim
carries a secret of its own, whose hash the row keeps while the claim holds: the run's
``ctx.db`` enters the event's org with it (``TenantEntry.function_delivery``), as the
function's ``trigger_role`` and no user.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import structlog

from orgbase.core.context import OrgContext
from orgbase.core.error_render import status_of
from orgbase.core.errors import OrgbaseError
from orgbase.core.postgres import TenantEntry
from orgbase.functions.background import FunctionsLoop
from orgbase.functions.host import InOrg, Invocation
from orgbase.functions.protocol import Caller, HttpRequest

log = structlog.get_logger("orgbase.functions")

CHANNEL = "orgbase_function_deliveries"
LEASE_MARGIN = 5.0
_CLAIM = """
UPDATE orgbase.function_deliveries d
SET attempts = d.attempts + 1, claimed_until = now() + make_interval(secs => $2),
    next_attempt_at = now() + make_interval(secs => $2),
    claim_hash = sha256(convert_to($3 || '.' || d.id::text, 'UTF8'))
FROM (SELECT id FROM orgbase.function_deliveries
      WHERE status = 'pending' AND next_attempt_at <= now() AND function = ANY($4::text[])
      ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) due
WHERE d.id = due.id
RETURNING d.id, d.function, d.org_id, d.role, d.event_id, d.event_type, d.attempts,
          d.payload::text AS payload
"""
_DELIVERED = """
UPDATE orgbase.function_deliveries
SET status = 'delivered', delivered_at = now(), last_status = $2, last_error = NULL,
    claim_hash = NULL, claimed_until = NULL
WHERE id = $1 AND claim_hash = sha256(convert_to($3, 'UTF8'))
"""
_RETRY = """
UPDATE orgbase.function_deliveries
SET next_attempt_at = now() + make_interval(secs => $4), last_status = $2, last_error = $3,
    claim_hash = NULL, claimed_until = NULL
WHERE id = $1 AND claim_hash = sha256(convert_to($5, 'UTF8'))
"""
_DEAD = """
UPDATE orgbase.function_deliveries
SET status = 'dead', last_status = $2, last_error = $3, claim_hash = NULL, claimed_until = NULL
WHERE id = $1 AND claim_hash = sha256(convert_to($4, 'UTF8'))
"""
_EXPIRE = """
DELETE FROM orgbase.function_deliveries WHERE id IN (
    SELECT id FROM orgbase.function_deliveries
    WHERE status = 'delivered' AND created_at < now() - make_interval(days => $1) LIMIT 5000)
"""
EXPIRE_EVERY_SECONDS = 600.0


@dataclass(eq=False)
class EventDispatcher(FunctionsLoop):
    """Outcomes: delivered, retried, dead."""

    name: str = field(default="function events", init=False)
    latency_observers: list[Callable[[float], None]] = field(default_factory=list, init=False)
    """Seconds from the event's commit to its function's answer (delivered ones)."""
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _last_expiry: float = field(default=0.0, init=False)

    def announced(self, _payload: str) -> None:
        """NOTIFY orgbase_function_deliveries: new events are due."""
        self._wake.set()

    @property
    def lease_seconds(self) -> float:
        return self.longest_timeout() + LEASE_MARGIN

    async def run(self) -> None:
        while not self.stopping.is_set():
            self._wake.clear()
            try:
                claimed = await self.round()
            except (OrgbaseError, OSError, asyncpg.PostgresError) as exc:
                log.warning("function events round failed", error=repr(exc))
                claimed = 0
            if claimed >= self.settings.event_batch:
                continue  # more are due: no pause
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.event_poll_seconds)

    async def round(self) -> int:
        """One claim and its runs; how many were claimed."""
        names = [spec.name for spec in self.registry.catalog.usable if spec.config.triggers]
        if not names:
            return 0
        round_secret = secrets.token_urlsafe(24)
        async with self.db.system_connection() as connection:
            claimed = await connection.fetch(
                _CLAIM, self.settings.event_batch, self.lease_seconds, round_secret, names
            )
        await asyncio.gather(
            *(self._deliver(row, f"{round_secret}.{row['id']}") for row in claimed)
        )
        await self._expire()
        return len(claimed)

    async def _deliver(self, row: asyncpg.Record, secret: str) -> None:
        spec = self.registry.catalog.get(row["function"])
        if spec is None:
            await self._record(row, secret, None, "the function is no longer served")
            return
        org: UUID = row["org_id"]
        request_id = f"fn.{spec.name}.{row['id']}"
        key = f"evt_{row['event_id']}_{spec.name}"
        body: bytes = row["payload"].encode()
        event = msgspec.json.decode(body)
        invocation = Invocation(
            id=next(self.service.pool.ids),
            spec=spec,
            kind="event",
            request_id=request_id,
            # The cache, documents and realtime act in the event's org with the function's
            # trigger role (the database checks the claim itself, through the entry).
            in_org=InOrg(
                OrgContext(org_id=org, user_id=None, role=row["role"], request_id=request_id),
                TenantEntry.function_delivery(row["id"], secret, org, request_id),
            ),
            event=event,
            idempotency_key=key,
        )
        request = HttpRequest(
            method="POST",
            path="/",
            query="",
            headers=[
                ("content-type", "application/json"),
                ("x-orgbase-event", row["event_type"]),
                ("idempotency-key", key),
            ],
            body=body,
        )
        caller = Caller(kind="event", org_id=str(org), role=row["role"])
        try:
            done = await self.service.run(invocation, request, caller)
        except OrgbaseError as failed:
            await self._record(row, secret, status_of(failed), f"{failed.code}: {failed.message}")
            return
        error = None if 200 <= done.status < 300 else f"answered {done.status}"
        await self._record(row, secret, done.status, error, event)

    async def _record(
        self,
        row: asyncpg.Record,
        secret: str,
        status: int | None,
        error: str | None,
        event: Any = None,
    ) -> None:
        schedule = self.settings.event_retry_schedule
        async with self.db.system_connection() as connection:
            if error is None:
                self.outcomes["delivered"] += 1
                await connection.execute(_DELIVERED, row["id"], status, secret)
                self._observe(event)
            elif row["attempts"] <= len(schedule):
                self.outcomes["retried"] += 1
                wait = schedule[row["attempts"] - 1]
                await connection.execute(_RETRY, row["id"], status, error[:2000], wait, secret)
            else:
                self.outcomes["dead"] += 1
                await connection.execute(_DEAD, row["id"], status, error[:2000], secret)
                log.warning("function event dead", function=row["function"], delivery=row["id"])

    def _observe(self, event: Any) -> None:
        stamp = event.get("timestamp") if isinstance(event, dict) else None
        if not stamp or not self.latency_observers:
            return
        with contextlib.suppress(ValueError):
            seconds = time.time() - datetime.fromisoformat(stamp).timestamp()
            for observe in self.latency_observers:
                observe(max(seconds, 0.0))

    async def _expire(self) -> None:
        if time.monotonic() - self._last_expiry < EXPIRE_EVERY_SECONDS:
            return
        self._last_expiry = time.monotonic()
        async with self.db.system_connection() as connection:
            await connection.execute(_EXPIRE, self.settings.log_retention_days)
