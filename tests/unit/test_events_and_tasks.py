"""The event bus and the task set: subscribers in declared order, one failing subscriber
not silencing the others; tasks kept until done and drained at shutdown."""

from __future__ import annotations

import asyncio
import uuid

from orgbase.core.events import EventBus, KeysRevoked, OrgDeleted
from orgbase.core.tasks import TaskSet


async def test_subscribers_hear_their_event_in_order_and_survive_a_failing_one() -> None:
    bus = EventBus()
    heard: list[str] = []

    async def first(event: OrgDeleted) -> None:
        heard.append(f"first {event.org_id}")
        raise RuntimeError("this subscriber's service is down")

    async def second(event: OrgDeleted) -> None:
        heard.append(f"second {event.org_id}")

    async def other(event: KeysRevoked) -> None:
        heard.append("keys")

    bus.subscribe(OrgDeleted, first)
    bus.subscribe(OrgDeleted, second)
    bus.subscribe(KeysRevoked, other)
    org = uuid.uuid4()
    await bus.publish(OrgDeleted(org_id=org))
    assert heard == [f"first {org}", f"second {org}"]


async def test_a_task_set_keeps_tasks_until_done_and_cancels_stragglers() -> None:
    tasks = TaskSet()
    finished = asyncio.Event()

    async def quick() -> None:
        finished.set()

    async def forever() -> None:
        await asyncio.sleep(3600)

    tasks.spawn(quick(), "quick")
    straggler = tasks.spawn(forever(), "forever")
    await asyncio.wait_for(finished.wait(), 1)
    await asyncio.sleep(0)
    assert len(tasks) == 1
    await tasks.drain(within_seconds=0.05)
    assert straggler.cancelled()
    assert len(tasks) == 0
