"""Counters flushed to Redis hashes (usage per org and hour, SLO per minute and hour) get
their time to live once per key and process, and again after a flush that failed: a key
is never left to live forever."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from orgbase.core import keys
from orgbase.core.metering import Meter, hour_of
from orgbase.core.postgres import Database
from orgbase.core.redis import RedisClients
from orgbase.core.settings import Settings
from orgbase.limits.usage import UsageFlusher
from orgbase.observability.slo import SloRecorder
from tests.support.data import make_org


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def requests_data(redis_clients: RedisClients, key: str) -> int:
    value = await redis_clients.run(lambda r: r.hget(key, "requests_data"))
    assert value is not None, key
    return int(value)


async def ttl(redis_clients: RedisClients, key: str) -> int:
    return int(await redis_clients.run(lambda r: r.ttl(key)))


async def test_usage_keys_get_their_ttl_again_after_a_failed_flush(
    settings: Settings, redis_clients: RedisClients, db: Database
) -> None:
    org = uuid.UUID(await make_org(settings, {}, "ttl-usage"))
    meter = Meter()
    flusher = UsageFlusher(meter, redis_clients, db)
    key = keys.org_usage(org, hour_of())
    meter.add(org, "requests_data")
    await flusher.flush()
    assert await ttl(redis_clients, key) > 0
    # Its EXPIRE never arrived (as if lost with a failed flush): the memo must not trust it.
    await redis_clients.run(lambda r: r.persist(key))
    meter.add(org, "requests_data")
    redis_clients.breaker.trip()  # Redis "down": the flush fails and keeps the counts
    await flusher.flush()
    assert flusher.failures == 1
    redis_clients.breaker.record_success()
    await flusher.flush()
    assert await ttl(redis_clients, key) > 0
    totals = await redis_clients.run(lambda r: r.hgetall(key))
    assert int(totals[b"requests_data"]) == 2


async def test_slo_keys_get_a_ttl_and_later_flushes_keep_it(
    settings: Settings, redis_clients: RedisClients
) -> None:
    recorder = SloRecorder(redis_clients, settings.observability)
    org = str(uuid.uuid4())
    for _ in range(2):
        recorder.record(org, 200, 0.01)
        await recorder.flush()
    minute_keys = await redis_clients.run(lambda r: r.keys(keys.slo_pattern(org)))
    assert len(minute_keys) >= 2  # a minute and an hour
    for key in minute_keys:
        assert await ttl(redis_clients, key.decode() if isinstance(key, bytes) else key) > 0


async def test_a_flush_of_more_orgs_than_one_pipeline_counts_every_one(
    redis_clients: RedisClients, db: Database
) -> None:
    """1,200 orgs: three pipelines (the event loop free between them), every count kept."""
    meter = Meter()
    flusher = UsageFlusher(meter, redis_clients, db)
    orgs = [uuid.uuid4() for _ in range(1200)]
    for n, org in enumerate(orgs):
        meter.add(org, "requests_data", n + 1)
    await flusher.flush()
    assert flusher.failures == 0
    hour = hour_of()
    for n in (0, 499, 500, 1199):
        key = keys.org_usage(orgs[n], hour)
        assert await requests_data(redis_clients, key) == n + 1
        assert await ttl(redis_clients, key) > 0
