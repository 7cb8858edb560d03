"""An org's webhook endpoints and their delivery log (admins only).

Where an org's data goes is a security setting: creating an endpoint, changing its URL or
its events, enabling it again and rotating its secret (which reveals a key that signs as
the org) need an admin in person at aal2 (``rbac.require_security_admin``), never an API
key. Reading, disabling, deleting, testing and redelivering to the destination already
chosen stay with every admin, keys included (an incident responder with a key can stop
an endpoint).

An endpoint is owned by the admin who last chose where and what it sends (registered it,
changed its URL or events, enabled it again); when the owner loses the org's authority,
PostgreSQL disables it in the same transaction (``sql/rls/0022_webhook_owners.sql``).

Endpoints, secrets and deliveries live in PostgreSQL (``sql/rls/0011_webhooks.sql``). A URL
is checked when it is registered or changed (``destinations``) and again at every
delivery. The secret is shown once, at creation and at each rotation; the previous one
keeps signing alongside for a day.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from orgbase.core import audit, destinations, rbac
from orgbase.core.audit import AuditEvent
from orgbase.core.context import OrgContext, RequestMeta
from orgbase.core.destinations import DestinationPolicy
from orgbase.core.errors import Conflict, NotFound
from orgbase.core.orgs import LiveOrgs
from orgbase.core.postgres import Connection, Database
from orgbase.core.settings import WebhookSettings
from orgbase.webhooks import signing
from orgbase.webhooks.schemas import (
    Delivery,
    DeliveryPage,
    Endpoint,
    EndpointCreate,
    EndpointCreated,
    EndpointUpdate,
    SecretRotated,
    TestQueued,
)

_TABLE = "orgbase.webhook_endpoints"
_COLUMNS = (
    "id, url, events, description, enabled, disabled_reason, owner_user_id, owner_key_id,"
    " created_at, updated_at"
)
_DELIVERY_COLUMNS = """
id, message_id, event_type, status, attempts, created_at,
CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, last_attempt_at,
last_status, last_error, last_latency_ms, last_response, delivered_at, payload::text AS payload
"""
ROTATION_OVERLAP_HOURS = 24
_CLOSE_ORG = """
UPDATE orgbase.webhook_endpoints
SET enabled = false, disabled_reason = 'its org was deleted', updated_at = now()
WHERE org_id = $1 AND enabled
"""


async def org_closing(connection: Connection, org_id: UUID) -> None:
    """An org is being deleted (in the transaction that closes it): its endpoints stop, so
    no delivery of it is claimed any more, and those claimed are released unsent
    (``orgbase_webhook_stopped``). They go with the org's rows."""
    await connection.execute(_CLOSE_ORG, org_id)


"""How long a rotated-out secret keeps signing alongside the new one."""


def _endpoint(row: asyncpg.Record) -> Endpoint:
    return Endpoint(**{name: row[name] for name in Endpoint.__struct_fields__})


def _delivery(row: asyncpg.Record) -> Delivery:
    values = dict(row)
    values["payload"] = msgspec.json.decode(values["payload"])
    return Delivery(**values)


def _require_admin(ctx: OrgContext, doing: str) -> None:
    rbac.require(ctx, "admin", doing)  # an impersonation is a viewer: refused here


def _widens(body: EndpointUpdate) -> bool:
    """Does this change send the org's data somewhere new, or more of it?"""
    return body.url is not msgspec.UNSET or body.events is not msgspec.UNSET or body.enabled is True


class WebhookService:
    def __init__(
        self, db: Database, settings: WebhookSettings, policy: DestinationPolicy, orgs: LiveOrgs
    ):
        self.db = db
        self.settings = settings
        self.policy = policy
        self.orgs = orgs

    @asynccontextmanager
    async def _changing(
        self, ctx: OrgContext, endpoint_id: UUID, lock: bool = False
    ) -> AsyncIterator[Connection]:
        """An admin's change to one of the org's endpoints, in one transaction."""
        _require_admin(ctx, "managing webhooks")
        async with self.db.system_connection() as connection, connection.transaction():
            await self._row(connection, ctx, endpoint_id, lock=lock)
            yield connection

    async def _check_url(self, url: str) -> str:
        await destinations.resolve(url, self.policy)
        return url

    async def _record(
        self, connection: Connection, ctx: OrgContext, meta: RequestMeta, action: str, id_: UUID
    ) -> None:
        event = AuditEvent.in_org(ctx, meta, action, target_table=_TABLE, row_key={"id": str(id_)})
        await audit.record(connection, event)

    async def create(
        self, ctx: OrgContext, body: EndpointCreate, meta: RequestMeta
    ) -> EndpointCreated:
        rbac.require_security_admin(ctx, "registering a webhook endpoint")
        url = await self._check_url(body.url)
        secret = signing.new_secret()
        async with self.db.system_connection() as connection, connection.transaction():
            await self.orgs.hold(connection, ctx.org_id)
            # One registration per org at a time: parallel ones would all count the same
            # endpoints and go past the limit together.
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('webhooks:' || $1::uuid::text, 0))",
                ctx.org_id,
            )
            count = await connection.fetchval(
                "SELECT count(*) FROM orgbase.webhook_endpoints WHERE org_id = $1", ctx.org_id
            )
            if count >= self.settings.max_endpoints_per_org:
                raise Conflict(
                    f"an org has at most {self.settings.max_endpoints_per_org} endpoints",
                    code="too_many_endpoints",
                )
            row = await connection.fetchrow(
                "INSERT INTO orgbase.webhook_endpoints"  # noqa: S608 - constant columns
                " (org_id, url, events, description, secret, created_by, owner_user_id)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {_COLUMNS}",
                ctx.org_id,
                url,
                sorted(set(body.events)),
                body.description,
                secret,
                ctx.user_id,
            )
            assert row is not None
            await self._record(connection, ctx, meta, "webhook.created", row["id"])
        return EndpointCreated(**msgspec.structs.asdict(_endpoint(row)), secret=secret)

    async def list_endpoints(self, ctx: OrgContext) -> list[Endpoint]:
        _require_admin(ctx, "reading webhooks")
        async with self.db.system_connection() as connection:
            rows = await connection.fetch(
                f"SELECT {_COLUMNS} FROM orgbase.webhook_endpoints"  # noqa: S608 - constant
                " WHERE org_id = $1 ORDER BY created_at",
                ctx.org_id,
            )
        return [_endpoint(row) for row in rows]

    async def get(self, ctx: OrgContext, endpoint_id: UUID) -> Endpoint:
        _require_admin(ctx, "reading webhooks")
        async with self.db.system_connection() as connection:
            return _endpoint(await self._row(connection, ctx, endpoint_id))

    @staticmethod
    async def _row(
        connection: Connection, ctx: OrgContext, endpoint_id: UUID, lock: bool = False
    ) -> asyncpg.Record:
        row = await connection.fetchrow(
            f"SELECT {_COLUMNS} FROM orgbase.webhook_endpoints"  # noqa: S608 - constant
            " WHERE id = $1 AND org_id = $2" + (" FOR UPDATE" if lock else ""),
            endpoint_id,
            ctx.org_id,
        )
        if row is None:
            raise NotFound("no such webhook endpoint", code="webhook_not_found")
        return row

    async def update(
        self, ctx: OrgContext, endpoint_id: UUID, body: EndpointUpdate, meta: RequestMeta
    ) -> Endpoint:
        if _widens(body):
            rbac.require_security_admin(ctx, "changing where or what a webhook sends")
        _require_admin(ctx, "managing webhooks")
        changes: dict[str, Any] = {}
        if body.url is not msgspec.UNSET:
            changes["url"] = await self._check_url(body.url)
        if body.events is not msgspec.UNSET:
            changes["events"] = sorted(set(body.events))
        if body.description is not msgspec.UNSET:
            changes["description"] = body.description
        if body.enabled is not msgspec.UNSET:
            changes["enabled"] = body.enabled
            changes["disabled_reason"] = None if body.enabled else "disabled by an admin"
        if _widens(body):  # the admin who chose where and what it sends owns it now
            changes |= {"owner_user_id": ctx.user_id, "owner_key_id": None}
        async with self.db.system_connection() as connection, connection.transaction():
            await self._row(connection, ctx, endpoint_id, lock=True)
            if not changes:
                return _endpoint(await self._row(connection, ctx, endpoint_id))
            assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(changes, 3))
            # Column names come from the fixed set above; values are parameters.
            row = await connection.fetchrow(
                f"UPDATE orgbase.webhook_endpoints SET {assignments}, updated_at = now()"  # noqa: S608
                f" WHERE id = $1 AND org_id = $2 RETURNING {_COLUMNS}",
                endpoint_id,
                ctx.org_id,
                *changes.values(),
            )
            assert row is not None
            await self._record(connection, ctx, meta, "webhook.updated", endpoint_id)
        return _endpoint(row)

    async def delete(self, ctx: OrgContext, endpoint_id: UUID, meta: RequestMeta) -> None:
        _require_admin(ctx, "managing webhooks")
        async with self.db.system_connection() as connection, connection.transaction():
            deleted = await connection.fetchval(
                "DELETE FROM orgbase.webhook_endpoints WHERE id = $1 AND org_id = $2 RETURNING id",
                endpoint_id,
                ctx.org_id,
            )
            if deleted is None:
                raise NotFound("no such webhook endpoint", code="webhook_not_found")
            await self._record(connection, ctx, meta, "webhook.deleted", endpoint_id)

    async def rotate_secret(
        self, ctx: OrgContext, endpoint_id: UUID, meta: RequestMeta
    ) -> SecretRotated:
        rbac.require_security_admin(ctx, "rotating a webhook's signing secret")
        secret = signing.new_secret()
        async with self._changing(ctx, endpoint_id, lock=True) as connection:
            until: datetime = await connection.fetchval(
                """
                UPDATE orgbase.webhook_endpoints
                SET previous_secret = secret, secret = $3,
                    previous_secret_until = now() + make_interval(hours => $4),
                    updated_at = now()
                WHERE id = $1 AND org_id = $2 RETURNING previous_secret_until
                """,
                endpoint_id,
                ctx.org_id,
                secret,
                ROTATION_OVERLAP_HOURS,
            )
            await self._record(connection, ctx, meta, "webhook.secret_rotated", endpoint_id)
        return SecretRotated(secret=secret, previous_valid_until=until)

    async def send_test(self, ctx: OrgContext, endpoint_id: UUID, meta: RequestMeta) -> TestQueued:
        """A ``webhook.test`` event for this endpoint only, through the same outbox."""
        _require_admin(ctx, "managing webhooks")
        async with self.db.system_connection() as connection, connection.transaction():
            endpoint = await self._row(connection, ctx, endpoint_id)
            if not endpoint["enabled"]:
                raise Conflict("the endpoint is disabled", code="webhook_disabled")
            event = AuditEvent.in_org(
                ctx,
                meta,
                "webhook.test",
                target_table=_TABLE,
                row_key={"endpoint_id": str(endpoint_id)},
                details={"message": "a test event from orgbase"},
            )
            await audit.record(connection, event)
            message_id = await connection.fetchval(
                "SELECT message_id FROM orgbase.webhook_deliveries"
                " WHERE endpoint_id = $1 ORDER BY id DESC LIMIT 1",
                endpoint_id,
            )
        return TestQueued(message_id=message_id)

    # -- the delivery log -------------------------------------------------------------

    async def deliveries(
        self,
        ctx: OrgContext,
        endpoint_id: UUID,
        before: int | None,
        limit: int,
        status: str | None,
    ) -> DeliveryPage:
        _require_admin(ctx, "reading webhooks")
        async with self.db.system_connection() as connection:
            await self._row(connection, ctx, endpoint_id)
            rows = await connection.fetch(
                f"SELECT {_DELIVERY_COLUMNS} FROM orgbase.webhook_deliveries"  # noqa: S608
                " WHERE endpoint_id = $1 AND ($2::bigint IS NULL OR id < $2)"
                " AND ($3::text IS NULL OR status = $3) ORDER BY id DESC LIMIT $4",
                endpoint_id,
                before,
                status,
                limit + 1,
            )
        items = [_delivery(row) for row in rows[:limit]]
        return DeliveryPage(items, items[-1].id if len(rows) > limit else None)

    async def retry(
        self, ctx: OrgContext, endpoint_id: UUID, delivery_id: int, meta: RequestMeta
    ) -> Delivery:
        """Deliver again now, whatever its state (a delivered one is sent once more)."""
        async with self._changing(ctx, endpoint_id) as connection:
            row = await connection.fetchrow(
                "UPDATE orgbase.webhook_deliveries"  # noqa: S608 - constant columns
                " SET status = 'pending', attempts = 0, next_attempt_at = now()"
                f" WHERE id = $1 AND endpoint_id = $2 RETURNING {_DELIVERY_COLUMNS}",
                delivery_id,
                endpoint_id,
            )
            if row is None:
                raise NotFound("no such delivery", code="delivery_not_found")
            await self._record(connection, ctx, meta, "webhook.retried", endpoint_id)
        return _delivery(row)

    async def replay(
        self, ctx: OrgContext, endpoint_id: UUID, since: datetime, meta: RequestMeta
    ) -> int:
        """Deliver again everything since ``since`` (after a receiver's outage), in order."""
        async with self._changing(ctx, endpoint_id) as connection:
            requeued = await connection.fetchval(
                """
                WITH again AS (
                    UPDATE orgbase.webhook_deliveries
                    SET status = 'pending', attempts = 0, next_attempt_at = created_at
                    WHERE endpoint_id = $1 AND created_at >= $2 RETURNING 1)
                SELECT count(*) FROM again
                """,
                endpoint_id,
                since,
            )
            await self._record(connection, ctx, meta, "webhook.replayed", endpoint_id)
        return int(requeued)
