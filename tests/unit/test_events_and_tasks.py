"""The event bus and the task set: subscribers in declared order, one failing subscriber
not silencing the others; tasks kept until done and drained at shutdown."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, cast

import pytest

from orgbase.core.events import (
    AfterCommit,
    EventBus,
    KeysRevoked,
    OrgClosing,
    OrgDeleted,
    after_commit,
)

if TYPE_CHECKING:
    from orgbase.core.postgres import Connection
from orgbase.core.periodic import Periodic
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


async def test_must_succeed_stops_at_the_first_failing_subscriber_and_raises_its_error() -> None:
    bus = EventBus()
    heard: list[str] = []

    async def failing(event: OrgDeleted) -> None:
        heard.append("failing")
        raise ConnectionError("this store is down")

    async def after(event: OrgDeleted) -> None:
        heard.append("after")

    bus.subscribe(OrgDeleted, failing)
    bus.subscribe(OrgDeleted, after)
    with pytest.raises(ConnectionError):
        await bus.publish(OrgDeleted(org_id=uuid.uuid4()), must_succeed=True)
    assert heard == ["failing"]


async def test_in_transaction_subscribers_get_the_connection_and_return_work_for_later() -> None:
    bus = EventBus()
    done: list[str] = []
    connection = cast("Connection", object())  # never used: the subscribers only pass it on

    async def closing(event: OrgClosing, given: Connection) -> AfterCommit:
        assert given is connection
        done.append("in transaction")

        async def later() -> None:
            done.append(f"after commit {event.org_id}")

        return later

    bus.subscribe_in_transaction(OrgClosing, closing)
    org = uuid.uuid4()
    actions = await bus.publish_in_transaction(OrgClosing(org_id=org), connection)
    assert done == ["in transaction"]
    await after_commit(actions)
    assert done == ["in transaction", f"after commit {org}"]


async def test_a_loop_in_the_task_set_is_stopped_at_once_at_drain() -> None:
    tasks = TaskSet()
    rounds: list[int] = []

    async def failing_round() -> None:
        rounds.append(1)
        raise ConnectionError("still down")

    loop = Periodic.retry_until_done("retry", failing_round, 3600, at_once=True)
    task = tasks.spawn_loop(loop)
    await asyncio.sleep(0.01)
    assert rounds == [1]
    started = asyncio.get_running_loop().time()
    await tasks.drain(within_seconds=30)
    assert asyncio.get_running_loop().time() - started < 1  # not waited for
    assert task.done()
    assert len(tasks) == 0
