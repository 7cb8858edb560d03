"""Builds the data API's objects: the schema cache (reloaded on NOTIFY) and the service."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from orgbase.core.org_usage import OrgUsage
from orgbase.core.postgres import DataAccessSource
from orgbase.core.resources import Resources
from orgbase.core.tasks import TaskSet
from orgbase.services.postgres.schema_cache import CHANNEL, SchemaCache
from orgbase.services.postgres.service import DataService

log = structlog.get_logger("orgbase.data")


@dataclass
class DataArea:
    schema: SchemaCache
    service: DataService

    async def load_schema(self) -> None:
        try:
            await self.schema.load()
        except Exception as exc:  # the listener loads it as soon as PostgreSQL answers
            log.warning("schema not loaded at start", error=repr(exc))


def build_data(
    resources: Resources, access: DataAccessSource, tasks: TaskSet, usage: OrgUsage
) -> DataArea:
    """``access``: gives each request its entry into the org (the request-auth component,
    wired by the platform); ``usage``: the limits area's."""
    settings = resources.settings
    schema = SchemaCache(resources.db, tasks)
    resources.notifications.subscribe(CHANNEL, lambda _payload: schema.reload_soon())
    # Schema changes notified while the listener was away would be missed: reload.
    resources.notifications.on_connected(schema.reload_soon)
    return DataArea(
        schema=schema,
        service=DataService(
            resources.db,
            schema,
            access,
            max_rows=settings.data.max_rows,
            statement_cache=settings.data.statement_cache,
            replicas=resources.replicas,
            allow_tx_rollback=settings.data.allow_tx_rollback,
            usage=usage,
        ),
    )
