"""The schema cache: the tenant tables and functions of the `api` schema, read from the
catalogs at start and again on ``NOTIFY orgbase_schema``. Its ``version`` changes with
every load, so what was planned from an older schema is planned again."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from orgbase.core.postgres import Database
from orgbase.core.tasks import TaskSet
from orgbase.services.postgres.functions import Function, introspect_functions
from orgbase.services.postgres.schema import Table, introspect

log = structlog.get_logger("orgbase.schema")

CHANNEL = "orgbase_schema"
"""Notified after migrations and by ``orgbase.enable_tenancy``: the schema may have changed."""


class SchemaCache:
    """The current schema, reloaded when told to (``reload_soon``)."""

    def __init__(self, db: Database, tasks: TaskSet) -> None:
        self.db = db
        self.tasks = tasks
        self.tables: dict[str, Table] = {}
        self.functions: dict[str, list[Function]] = {}
        self.version = 0
        # One load at a time, so a later load never loses to an earlier one.
        self._loading = asyncio.Lock()
        self._reloader: asyncio.Task[None] | None = None
        self._reload_wanted = False
        self._stopped = False

    async def load(self) -> None:
        async with self._loading:
            async with self.db.system_connection() as connection:
                tables = await introspect(connection)
                functions = await introspect_functions(connection)
            self.tables = tables
            self.functions = functions
            self.version += 1
        log.info(
            "schema loaded",
            tables=sorted(tables),
            functions=sorted(functions),
            version=self.version,
        )

    def reload_soon(self) -> None:
        """Reload in the background (a NOTIFY, or a reconnection of the listener after
        which notifications may have been missed). Requests arriving during a reload make
        one more reload, not one each."""
        if self._stopped:
            return
        self._reload_wanted = True
        if self._reloader is None or self._reloader.done():
            self._reloader = self.tasks.spawn(self._reload_while_wanted(), "schema reload")

    async def stop(self) -> None:
        self._stopped = True
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader

    async def _reload_while_wanted(self) -> None:
        while self._reload_wanted:
            self._reload_wanted = False
            await self._reload_quietly()

    async def _reload_quietly(self) -> None:
        try:
            await self.load()
        except Exception as exc:  # the old schema stays until the next try
            log.warning("schema reload failed", error=repr(exc))
