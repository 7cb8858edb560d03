"""Runs the functions' cron schedules: each tick once across every gateway process that
runs schedules, because a tick runs only where its row in
``orgbase.function_schedule_runs`` was inserted (the primary key (function, tick) is the
lease: the others' inserts find it and do nothing).

Ticks are never run late: a tick found more than ``schedule_grace_seconds`` after its time
(every gateway was down, or busy) is recorded as ``missed``. At start, the ticks between a
function's last recorded run and now are recorded as missed, so a downtime shows in the
runs' list instead of a burst of replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from orgbase.core.errors import OrgbaseError
from orgbase.functions.background import FunctionsLoop
from orgbase.functions.cron import Cron
from orgbase.functions.host import Invocation
from orgbase.functions.protocol import Caller, HttpRequest
from orgbase.functions.spec import FunctionSpec

log = structlog.get_logger("orgbase.functions")

MOST_MISSED_ROWS = 100
"""Missed ticks recorded one by one at most; more are one row that counts them."""
MAX_TICKS_WALKED = 100_000
LONGEST_SLEEP = 1.0
_CLAIM = """
INSERT INTO orgbase.function_schedule_runs (function, tick, status, gateway)
VALUES ($1, $2, 'running', $3) ON CONFLICT DO NOTHING RETURNING started_at
"""
_MISSED = """
INSERT INTO orgbase.function_schedule_runs (function, tick, status, gateway, finished_at, detail)
SELECT $1, tick, 'missed', $3, now(), $4 FROM unnest($2::timestamptz[]) AS tick
ON CONFLICT DO NOTHING
"""
_FINISHED = """
UPDATE orgbase.function_schedule_runs SET status = $3, finished_at = now(), detail = $4
WHERE function = $1 AND tick = $2
"""
_LAST = "SELECT max(tick) FROM orgbase.function_schedule_runs WHERE function = $1"
_EXPIRE = """
DELETE FROM orgbase.function_schedule_runs
WHERE started_at < now() - make_interval(days => $1)
"""
_ABANDONED = """
UPDATE orgbase.function_schedule_runs
SET status = 'failed', finished_at = now(), detail = 'the gateway running it ended first'
WHERE status = 'running' AND started_at < now() - make_interval(secs => $1)
"""
SWEEP_EVERY_SECONDS = 60.0
_RECENT = """
SELECT function, tick, status, gateway, started_at, finished_at, detail
FROM orgbase.function_schedule_runs ORDER BY started_at DESC, tick DESC LIMIT $1
"""


def _now() -> datetime:
    return datetime.now(UTC)


def _this_gateway() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(eq=False)
class Scheduler(FunctionsLoop):
    """Outcomes: done, failed, missed, taken (run by another gateway)."""

    name: str = field(default="function schedules", init=False)
    gateway: str = field(default_factory=_this_gateway, init=False)
    drift_observers: list[Callable[[float], None]] = field(default_factory=list, init=False)
    _next: dict[str, tuple[str, datetime]] = field(default_factory=dict, init=False)
    """function -> (its expression, its next tick)."""
    _runs: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _last_sweep: float = field(default=0.0, init=False)

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.schedule_grace_seconds)

    def _scheduled(self) -> dict[str, FunctionSpec]:
        return {s.name: s for s in self.registry.catalog.usable if s.config.schedule}

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.round()
            except (OrgbaseError, OSError, asyncpg.PostgresError) as exc:
                log.warning("function schedules round failed", error=repr(exc))
            await asyncio.sleep(self._pause())

    def _pause(self) -> float:
        if not self._next:
            return LONGEST_SLEEP
        soonest = min(tick for _, tick in self._next.values())
        return min(max((soonest - _now()).total_seconds(), 0.0), LONGEST_SLEEP)

    async def round(self) -> None:
        if time.monotonic() - self._last_sweep > SWEEP_EVERY_SECONDS:
            self._last_sweep = time.monotonic()
            await self.sweep()
        scheduled = self._scheduled()
        for name in [n for n in self._next if n not in scheduled]:
            del self._next[name]
        for name, spec in scheduled.items():
            expression = spec.config.schedule
            assert expression is not None
            known = self._next.get(name)
            if known is None or known[0] != expression:
                await self._begin(name, Cron.parse(expression))
            await self._due(spec, Cron.parse(expression))

    async def _begin(self, name: str, cron: Cron) -> None:
        """Where the function's ticks resume: after its last recorded run (the ticks since
        are then missed, or the newest run if still in grace), or from now."""
        async with self.db.system_connection() as connection:
            last = await connection.fetchval(_LAST, name)
        self._next[name] = (cron.expression, cron.next_after(last or _now()))

    async def _record_missed(self, name: str, ticks: list[datetime], more: int = 0) -> None:
        if not ticks:
            return
        detail = "the gateways were down or busy at this tick: not run late"
        if more:
            detail = f"{len(ticks) + more} ticks missed up to this one: not run late"
            ticks = ticks[-1:]
        self.outcomes["missed"] += len(ticks) + more
        async with self.db.system_connection() as connection:
            await connection.execute(_MISSED, name, ticks, self.gateway, detail)
        log.warning("function schedule ticks missed", function=name, ticks=len(ticks) + more)

    async def _due(self, spec: FunctionSpec, cron: Cron) -> None:
        """Of the ticks due, the newest runs if it is within the grace; the others are
        missed (a late gateway runs one tick, never a burst of them)."""
        expression, tick = self._next[spec.name]
        now = _now()
        due: list[datetime] = []
        more = 0
        while tick <= now:
            if len(due) < MOST_MISSED_ROWS:
                due.append(tick)
            else:
                due[-1] = tick
                more += 1
            tick = cron.next_after(tick)
            if more > MAX_TICKS_WALKED:  # a long downtime of a frequent schedule
                tick = cron.next_after(now)
                break
        self._next[spec.name] = (expression, tick)
        if not due:
            return
        newest = due[-1]
        missed = due[:-1] if now - newest <= self.grace else due
        await self._record_missed(spec.name, missed, more)
        if missed is not due:
            await self._claim(spec, newest)

    async def _claim(self, spec: FunctionSpec, tick: datetime) -> None:
        async with self.db.system_connection() as connection:
            started = await connection.fetchval(_CLAIM, spec.name, tick, self.gateway)
        if started is None:
            self.outcomes["taken"] += 1  # another gateway runs this tick
            return
        for observe in self.drift_observers:
            observe(max((started - tick).total_seconds(), 0.0))
        task = asyncio.get_running_loop().create_task(self._run(spec, tick))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _run(self, spec: FunctionSpec, tick: datetime) -> None:
        stamp = int(tick.timestamp())
        request_id = f"fn.{spec.name}.t{stamp}"
        event: dict[str, Any] = {
            "type": "schedule",
            "tick": tick.isoformat(),
            "schedule": spec.config.schedule,
        }
        invocation = Invocation(
            id=next(self.service.pool.ids),
            spec=spec,
            kind="schedule",
            request_id=request_id,
            event=event,
            idempotency_key=f"tick_{spec.name}_{stamp}",
        )
        request = HttpRequest(
            method="POST",
            path="/",
            query="",
            headers=[("x-orgbase-schedule", str(spec.config.schedule))],
            body=b"",
        )
        status, detail = "done", None
        try:
            done = await self.service.run(invocation, request, Caller(kind="schedule"))
            if done.status >= 400:
                status, detail = "failed", f"answered {done.status}"
        except OrgbaseError as failed:
            status, detail = "failed", f"{failed.code}: {failed.message}"
        self.outcomes[status] += 1
        with contextlib.suppress(OrgbaseError, OSError, asyncpg.PostgresError):
            async with self.db.system_connection() as connection:
                await connection.execute(_FINISHED, spec.name, tick, status, detail)

    async def stop(self) -> None:
        await super().stop()
        if self._runs:
            await asyncio.wait(set(self._runs), timeout=self.settings.timeout_seconds)

    def upcoming(self) -> dict[str, dict[str, str]]:
        """Each scheduled function's expression and next tick (as this gateway sees it)."""
        return {
            name: {"schedule": expression, "next_tick": tick.isoformat()}
            for name, (expression, tick) in sorted(self._next.items())
        }

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(_RECENT, limit)
        return [
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dict(row).items()}
            for row in rows
        ]

    async def sweep(self) -> None:
        """Runs whose gateway ended mid-run are failed; old runs are forgotten."""
        async with self.db.system_connection() as connection:
            await connection.execute(_ABANDONED, self.longest_timeout() + SWEEP_EVERY_SECONDS)
            await connection.execute(_EXPIRE, self.settings.log_retention_days)
