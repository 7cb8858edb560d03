"""The circuit breaker's states, on a clock the test moves."""

from __future__ import annotations

import pytest

from orgbase.core.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state(b: CircuitBreaker) -> str:
    # A function, so mypy does not narrow the property across the calls that change it.
    return b.state


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("test", failure_threshold=3, reset_seconds=2.0, clock=clock)


def test_failures_in_a_row_open_it_and_a_trial_closes_it() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        assert b.allow()
        b.record_failure()
    assert state(b) == "open"
    assert not b.allow()
    clock.now += 2.0
    assert b.allow()  # the one trial
    assert state(b) == "half_open"
    assert not b.allow()  # no second trial while the first is out
    b.record_success()
    assert state(b) == "closed"
    assert b.allow()


def test_lost_writes_while_open_do_not_postpone_the_trial() -> None:
    """A steady flow of refused cache writes (each trips the breaker) must not keep it
    open after the dependency is back."""
    clock = Clock()
    b = breaker(clock)
    b.trip()
    assert state(b) == "open"
    for _ in range(40):
        clock.now += 0.1
        b.trip()
    assert state(b) == "open"
    assert b.allow(), "2 s after opening, a trial goes through"
    assert state(b) == "half_open"
    b.trip()  # a write refused during the trial
    assert state(b) == "half_open"
    b.record_success()
    assert state(b) == "closed"
    assert b.times_opened == 1


def test_a_failed_trial_opens_it_again() -> None:
    clock = Clock()
    b = breaker(clock)
    b.trip()
    clock.now += 2.0
    assert b.allow()
    b.record_failure()
    assert state(b) == "open"
    assert not b.allow()


async def test_only_errors_raised_inside_redis_py_count_as_a_broken_connection() -> None:
    """redis-py's asyncio client can raise RuntimeError or AttributeError from a connection
    another task is closing (seen while a cluster node died): Redis down, not our bug."""
    from redis.asyncio.connection import Connection

    from orgbase.core.redis import broken_connection

    closing = Connection()
    closing._writer = None  # what a concurrent disconnect leaves behind
    with pytest.raises(AttributeError) as raised:
        await closing._send_packed_command([b"PING"])
    assert broken_connection(raised.value)

    def ours() -> None:
        raise RuntimeError("a bug of ours")

    with pytest.raises(RuntimeError) as ours_raised:
        ours()
    assert not broken_connection(ours_raised.value)
