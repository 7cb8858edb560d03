"""The one LISTEN connection: every subscriber's channel on it, and a reconnection that
tells the reconnect hooks (notifications sent meanwhile were lost)."""

from __future__ import annotations

import asyncio

import asyncpg

from orgbase.core.pg_listener import PgListener
from orgbase.core.settings import Settings


async def notify(settings: Settings, channel: str, payload: str) -> None:
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        await connection.execute("SELECT pg_notify($1, $2)", channel, payload)
    finally:
        await connection.close()


async def listener_backends(settings: Settings) -> list[int]:
    connection = await asyncpg.connect(settings.database.migration_url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %test_listener_%'"
        )
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


async def test_two_channels_share_one_connection_that_comes_back(settings: Settings) -> None:
    listener = PgListener(settings.database.listener_url, settings.database.connect_timeout)
    received: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    connected_events: asyncio.Queue[None] = asyncio.Queue()

    def connected() -> None:
        connected_events.put_nowait(None)

    listener.subscribe("test_listener_a", lambda payload: received.put_nowait(("a", payload)))
    listener.subscribe("test_listener_b", lambda payload: received.put_nowait(("b", payload)))
    listener.on_connected(connected)
    listener.start()
    try:
        async with asyncio.timeout(10):
            await connected_events.get()
            await notify(settings, "test_listener_a", "one")
            await notify(settings, "test_listener_b", "two")
            assert {await received.get(), await received.get()} == {("a", "one"), ("b", "two")}
            [backend] = await listener_backends(settings)

            admin = await asyncpg.connect(settings.database.migration_url)
            try:
                await admin.execute("SELECT pg_terminate_backend($1)", backend)
            finally:
                await admin.close()
            await connected_events.get()  # the reconnect hook ran
            await notify(settings, "test_listener_b", "three")
            assert await received.get() == ("b", "three")
    finally:
        await listener.stop()
