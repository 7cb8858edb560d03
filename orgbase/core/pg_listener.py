"""One PostgreSQL connection that LISTENs for every subscriber of a gateway process.

Areas subscribe to a channel with a handler of the notification's payload. The connection
is made again after any loss; notifications sent while it was down are lost, so whoever
cares registers a hook that runs after every (re)connection (the schema cache reloads).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

from orgbase.core.background import BackgroundTask

log = structlog.get_logger("orgbase.pg_listener")

NotificationHandler = Callable[[str], None]
"""Called with the payload, in the event loop: it must not block (start a task instead)."""

RETRY_CONNECT_SECONDS = 2.0
PAUSE_AFTER_LOSS_SECONDS = 0.5


class PgListener(BackgroundTask):
    def __init__(self, url: str, connect_timeout: float) -> None:
        super().__init__("pg listener")
        self.url = url
        self.connect_timeout = connect_timeout
        self._handlers: dict[str, list[NotificationHandler]] = {}
        self._connected_hooks: list[Callable[[], None]] = []

    def subscribe(self, channel: str, handler: NotificationHandler) -> None:
        """Before start(): the channels are listened to as the connection is made."""
        if self.running:
            raise RuntimeError("subscribe before the listener starts")
        self._handlers.setdefault(channel, []).append(handler)

    def on_connected(self, hook: Callable[[], None]) -> None:
        """``hook()`` runs after every connection, the first included: anything notified
        before it may have been missed."""
        self._connected_hooks.append(hook)

    def start(self) -> None:
        if self._handlers:
            super().start()

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                connection = await asyncpg.connect(self.url, timeout=self.connect_timeout)
            except Exception as exc:  # PostgreSQL is down or restarting: try again
                log.warning("listener cannot connect", error=repr(exc))
                await asyncio.sleep(RETRY_CONNECT_SECONDS)
                continue
            try:
                await self._listen(connection)
            except Exception as exc:  # the connection broke while subscribing
                log.warning("listener lost its connection", error=repr(exc))
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()
            await asyncio.sleep(PAUSE_AFTER_LOSS_SECONDS)

    async def _listen(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        for channel in self._handlers:
            await connection.add_listener(channel, self._dispatch)
        for hook in self._connected_hooks:
            self._call(hook)
        await lost.wait()

    def _dispatch(self, _: object, __: int, channel: str, payload: object) -> None:
        for handler in self._handlers.get(channel, ()):
            self._call(handler, str(payload))

    @staticmethod
    def _call(handler: Callable[..., None], *args: str) -> None:
        try:
            handler(*args)
        except Exception as exc:  # one subscriber's bug must not silence the others
            log.exception("notification handler failed", error=repr(exc))
