"""The lifecycle starts parts in the order given and stops them in the reverse order,
sync and async steps alike, skipping a missing start or stop."""

from __future__ import annotations

import pytest

from orgbase.core.lifecycle import Lifecycle, Part


def _recording(calls: list[str]) -> Lifecycle:
    def sync(name: str) -> Part:
        return Part(
            name, lambda: calls.append(f"start {name}"), lambda: calls.append(f"stop {name}")
        )

    async def astart() -> None:
        calls.append("start async")

    async def astop() -> None:
        calls.append("stop async")

    return Lifecycle(
        [
            sync("first"),
            Part("async", astart, astop),
            Part("start only", start=lambda: calls.append("start start-only")),
            Part("stop only", stop=lambda: calls.append("stop stop-only")),
            sync("last"),
        ]
    )


async def test_parts_start_in_order_and_stop_in_reverse() -> None:
    calls: list[str] = []
    lifecycle = _recording(calls)
    await lifecycle.start()
    assert calls == ["start first", "start async", "start start-only", "start last"]
    calls.clear()
    await lifecycle.stop()
    assert calls == ["stop last", "stop stop-only", "stop async", "stop first"]


async def test_a_failing_step_ends_the_sequence() -> None:
    calls: list[str] = []

    def fail() -> None:
        raise RuntimeError("down")

    lifecycle = Lifecycle(
        [
            Part("a", stop=lambda: calls.append("a")),
            Part("b", stop=fail),
            Part("c", stop=lambda: calls.append("c")),
        ]
    )
    with pytest.raises(RuntimeError):
        await lifecycle.stop()
    assert calls == ["c"]
