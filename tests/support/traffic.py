"""Steady HTTP traffic against a real gateway process, every answer kept with its time: what
the fault drills count failures and recovery times from."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.stack import STATE_DIR
from tests.support.waiting import eventually

FIGURES_DIR = STATE_DIR / "drills"

Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Answer:
    at: float
    """time.monotonic() when the answer (or the transport error) arrived"""
    label: str
    status: int
    """the HTTP status; 0 when no answer came (refused, reset, timed out)"""
    code: str | None
    """the error's machine-readable code, the transport error's name, or None"""
    seconds: float = 0.0
    """how long the request took"""
    body: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _answer(label: str, response: httpx.Response, started: float) -> Answer:
    now = time.monotonic()
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            # A cut or garbled body: the drills treat it as a failure of its own kind.
            return Answer(now, label, response.status_code, "unparseable body", now - started)
    code = body.get("code") if isinstance(body, dict) and response.status_code >= 400 else None
    return Answer(now, label, response.status_code, code, now - started, body)


@dataclass
class Traffic:
    """Loops that each send one kind of request until stopped."""

    http: httpx.AsyncClient
    answers: list[Answer] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _labels: set[str] = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self, label: str, send: Send, *, loops: int = 1, pause: float = 0.01) -> None:
        self._labels.add(label)
        for _ in range(loops):
            self._tasks.append(asyncio.create_task(self._loop(label, send, pause)))

    async def _loop(self, label: str, send: Send, pause: float) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                answer = _answer(label, await send(self.http), started)
            except httpx.TransportError as exc:
                now = time.monotonic()
                answer = Answer(now, label, 0, type(exc).__name__, now - started)
            self.answers.append(answer)
            await asyncio.sleep(pause if answer.ok else max(pause, 0.05))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def of(self, label: str) -> list[Answer]:
        return [a for a in self.answers if a.label == label]

    def failed(self, label: str) -> list[Answer]:
        return [a for a in self.of(label) if not a.ok]

    def outcomes(self, label: str) -> Counter[str]:
        return Counter(f"{a.status} {a.code}" if a.code else str(a.status) for a in self.of(label))

    async def succeeds_after(self, label: str, since: float, within: float = 30) -> float:
        """Wait for an answer of ``label`` that came after ``since`` and succeeded; its time."""

        def succeeded() -> float | None:
            return next((a.at for a in self.of(label) if a.ok and a.at > since), None)

        return await eventually(succeeded, within=within, what=f"{label} to succeed again")

    async def flowing(self, since: float = 0.0, answers: int = 10, within: float = 30) -> None:
        """Wait until every kind of request has had ``answers`` answers after ``since``: the
        load is running (before a fault), or has run on for a while (after recovery)."""

        def enough() -> bool:
            counts = Counter(a.label for a in self.answers if a.at > since)
            return all(counts[label] >= answers for label in self._labels)

        await eventually(enough, within=within, what=f"{answers} answers of each kind")

    def slowest(self) -> dict[str, float]:
        """The longest request of each kind, in seconds (how long a failure kept a caller)."""
        labels = sorted({a.label for a in self.answers})
        return {label: round(max(a.seconds for a in self.of(label)), 3) for label in labels}

    def recovered_at(self, label: str, since: float) -> float | None:
        """When the first answer of ``label`` after ``since`` succeeded, after which none failed."""
        last_failure = max((a.at for a in self.failed(label) if a.at >= since), default=since)
        return next((a.at for a in self.of(label) if a.ok and a.at > last_failure), None)


@dataclass(frozen=True)
class Outage:
    stopped_at: float
    restarting_at: float
    back_at: float
    """when the service's start returned (it answers again)"""

    @property
    def seconds(self) -> float:
        return self.back_at - self.stopped_at

    def covers(self, answer: Answer) -> bool:
        return self.stopped_at <= answer.at <= self.restarting_at


async def outage(stop: Callable[[], object], start: Callable[[], object], seconds: float) -> Outage:
    """Stop a service for real, keep it down for ``seconds``, start it again."""
    stopped_at = time.monotonic()
    await asyncio.to_thread(stop)
    await asyncio.sleep(seconds)
    restarting_at = time.monotonic()
    await asyncio.to_thread(start)
    return Outage(stopped_at, restarting_at, time.monotonic())


def report(drill: str, figures: dict[str, Any]) -> None:
    """Print a drill's figures (pytest -s shows them) and keep them for `make drills`."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    (FIGURES_DIR / f"{drill}.json").write_text(json.dumps(figures, indent=2, default=str))
    print(f"\n[{drill}] {json.dumps(figures, default=str)}")
