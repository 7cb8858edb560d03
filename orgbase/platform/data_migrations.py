"""The data steps of ``orgbase migrate``: after the SQL migrations, data that an earlier
release stored in another layout is moved into today's.

Every step is idempotent (a second run changes nothing), resumable (a run cut short loses
nothing and the next one finishes) and cheap when there is nothing left to do. A change of
a stored layout (document collections, Redis key names) adds a step here, in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orgbase.core.mongo import MongoClients
from orgbase.core.redis import RedisClients
from orgbase.core.settings import Settings
from orgbase.services.mongo.layout import split_shared_collections
from orgbase.services.redis.layout import STEP as REDIS_STEP
from orgbase.services.redis.layout import upgrade_key_names


@dataclass(frozen=True)
class DataStep:
    name: str
    run: Callable[[Settings, bool], Awaitable[list[str]]]
    """(settings, rescan) -> lines for the operator."""


async def _documents(settings: Settings, rescan: bool) -> list[str]:
    """Shared collections (``d_<name>``) split into each org's own. Its own check is
    cheap (the collection names), so ``rescan`` changes nothing."""
    mongo = MongoClients(settings.mongo)
    try:
        moved = await split_shared_collections(mongo.database)
    finally:
        await mongo.close()
    return [
        f"documents of the shared collection {name!r} moved to their orgs: {count}"
        for name, count in moved.items()
    ]


async def _redis_keys(settings: Settings, rescan: bool) -> list[str]:
    """Keys named before the hash tags moved to today's names, orphans deleted."""
    redis = RedisClients(settings.redis)
    try:
        result = await upgrade_key_names(redis, rescan=rescan)
    finally:
        await redis.close()
    if result.recorded is not None:
        return [f"redis keys: up to date (upgraded {result.recorded}; --rescan to look again)"]
    counts = sorted(result.counts.items())
    lines = [f"redis keys of earlier releases, {what}: {n}" for what, n in counts]
    return lines or ["redis keys: nothing of earlier releases found"]


STEPS = (
    DataStep("documents-per-org", _documents),
    DataStep(REDIS_STEP, _redis_keys),
)


async def run_data_steps(settings: Settings, *, rescan: bool = False) -> list[str]:
    lines: list[str] = []
    for step in STEPS:
        lines += await step.run(settings, rescan)
    return lines
