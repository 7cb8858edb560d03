"""The effective limits each gateway holds: every override read at start (an org without
one has the defaults, with no load per org), a change seen by every gateway at once, and
the per-org cache when overrides are too many to hold."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec

from orgbase.core.pg_listener import PgListener
from orgbase.core.postgres import Database
from orgbase.core.settings import Settings
from orgbase.core.tasks import TaskSet
from orgbase.limits.store import LimitsStore
from orgbase.tenants.directory import LiveOrgRows
from tests.support.data import make_org, owner_connection
from tests.support.waiting import eventually


@asynccontextmanager
async def gateway_store(
    settings: Settings, cache_size: int | None = None
) -> AsyncIterator[LimitsStore]:
    """A store as one gateway runs it: its own pool and LISTEN connection."""
    limits = settings.limits
    if cache_size is not None:
        limits = msgspec.structs.replace(limits, cache_size=cache_size)
    db = Database(settings.database)
    await db.open()
    listener = PgListener(settings.database.listener_url, settings.database.connect_timeout)
    store = LimitsStore(db, limits, LiveOrgRows(), TaskSet())
    store.listen(listener)
    listener.start()
    store.start()
    try:
        yield store
    finally:
        await listener.stop()
        await db.close()


async def an_admin(settings: Settings) -> uuid.UUID:
    async with owner_connection(settings) as connection:
        admin: uuid.UUID = await connection.fetchval(
            "INSERT INTO orgbase.users (email, password_hash, is_platform_admin)"
            " VALUES ($1, 'x', true) RETURNING id",
            f"limits-admin-{uuid.uuid4().hex[:8]}@example.test",
        )
    return admin


def has(store: LimitsStore, org: uuid.UUID, per_minute: int) -> Callable[[], bool]:
    return lambda: store.of(org).data_requests_per_minute == per_minute


async def test_every_gateway_holds_every_override_and_sees_changes_at_once(
    settings: Settings,
) -> None:
    admin = await an_admin(settings)
    overridden = uuid.UUID(await make_org(settings, {}, "limits-held"))
    plain = uuid.UUID(await make_org(settings, {}, "limits-plain"))
    async with gateway_store(settings) as first, gateway_store(settings) as second:
        await first.replace(overridden, {"data_requests_per_minute": 1234}, admin)
        # The other gateway: told by NOTIFY, without loading the org on a request.
        await eventually(has(second, overridden, 1234), what="the override on the other gateway")
        assert second.holds_everyone
        assert (await second.ensure(plain)) == second.defaults
        # A gateway started now reads it with the rest.
        async with gateway_store(settings) as third:
            await eventually(lambda: third.holds_everyone, what="the overrides read at start")
            assert (await third.ensure(overridden)).data_requests_per_minute == 1234
        # Back to the defaults: every gateway drops it.
        await first.replace(overridden, {}, admin)
        default = first.defaults.data_requests_per_minute
        await eventually(has(second, overridden, default), what="the override dropped")


async def test_more_overrides_than_the_cache_holds_are_loaded_org_by_org(
    settings: Settings,
) -> None:
    admin = await an_admin(settings)
    orgs = [uuid.UUID(await make_org(settings, {}, f"limits-many-{n}")) for n in range(3)]
    async with gateway_store(settings) as writer:
        for n, org in enumerate(orgs):
            await writer.replace(org, {"data_requests_per_minute": 2000 + n}, admin)
    async with gateway_store(settings, cache_size=2) as small:
        for n, org in enumerate(orgs):
            assert (await small.ensure(org)).data_requests_per_minute == 2000 + n
        assert not small.holds_everyone
        assert small.cached == 2  # bounded: the least recently used went
        async with gateway_store(settings) as writer:
            await writer.replace(orgs[2], {"data_requests_per_minute": 999}, admin)
        await eventually(has(small, orgs[2], 999), what="the change on the per-org cache")
