"""HTTP routes of the webhooks area: ``/v1/orgs/{org_id}/webhooks`` (org admins)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from litestar.types import ControllerRouterHandler

from orgbase.core.context import OrgContext, RequestMeta
from orgbase.webhooks import schemas
from orgbase.webhooks.service import WebhookService

Webhooks = NamedDependency[WebhookService]
Ctx = NamedDependency[OrgContext]
Meta = NamedDependency[RequestMeta]


class WebhookController(Controller):
    """An org's endpoints and their delivery log: every route needs an org admin."""

    path = "/v1/orgs/{org_id:uuid}/webhooks"
    tags = ["webhooks"]  # noqa: RUF012 - Litestar's declaration style

    @get("/", summary="The org's endpoints (admins)")
    async def list_endpoints(self, webhooks: Webhooks, ctx: Ctx) -> list[schemas.Endpoint]:
        return await webhooks.list_endpoints(ctx)

    @post("/", summary="Register an endpoint (admins); its signing secret is shown once")
    async def create(
        self, data: JSONBody[schemas.EndpointCreate], webhooks: Webhooks, ctx: Ctx, meta: Meta
    ) -> schemas.EndpointCreated:
        """``events`` are names (``db.items.insert``, ``member.added``) or patterns with
        ``*`` (``db.*``, ``*``). Deliveries are signed as Standard Webhooks."""
        return await webhooks.create(ctx, data, meta)

    @get("/{endpoint_id:uuid}", summary="One endpoint (admins)")
    async def read(
        self, endpoint_id: FromPath[UUID], webhooks: Webhooks, ctx: Ctx
    ) -> schemas.Endpoint:
        return await webhooks.get(ctx, endpoint_id)

    @patch("/{endpoint_id:uuid}", summary="Change an endpoint, or enable it again (admins)")
    async def update(
        self,
        endpoint_id: FromPath[UUID],
        data: JSONBody[schemas.EndpointUpdate],
        webhooks: Webhooks,
        ctx: Ctx,
        meta: Meta,
    ) -> schemas.Endpoint:
        return await webhooks.update(ctx, endpoint_id, data, meta)

    @delete("/{endpoint_id:uuid}", summary="Delete an endpoint and its delivery log (admins)")
    async def remove(
        self, endpoint_id: FromPath[UUID], webhooks: Webhooks, ctx: Ctx, meta: Meta
    ) -> None:
        await webhooks.delete(ctx, endpoint_id, meta)

    @post("/{endpoint_id:uuid}/rotate-secret", status_code=HTTP_200_OK, summary="A new secret")
    async def rotate_secret(
        self, endpoint_id: FromPath[UUID], webhooks: Webhooks, ctx: Ctx, meta: Meta
    ) -> schemas.SecretRotated:
        """The old secret keeps signing alongside the new one for 24 hours."""
        return await webhooks.rotate_secret(ctx, endpoint_id, meta)

    @post("/{endpoint_id:uuid}/test", status_code=HTTP_202_ACCEPTED, summary="Send a test event")
    async def send_test(
        self, endpoint_id: FromPath[UUID], webhooks: Webhooks, ctx: Ctx, meta: Meta
    ) -> schemas.TestQueued:
        """A ``webhook.test`` event to this endpoint only, through the outbox."""
        return await webhooks.send_test(ctx, endpoint_id, meta)

    @get("/{endpoint_id:uuid}/deliveries", summary="The delivery log, newest first (admins)")
    async def deliveries(  # noqa: PLR0917 - one parameter per query option
        self,
        endpoint_id: FromPath[UUID],
        webhooks: Webhooks,
        ctx: Ctx,
        before: Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        status: Annotated[schemas.DeliveryStatus | None, QueryParameter()] = None,
    ) -> schemas.DeliveryPage:
        """Pages follow ``next_cursor`` (as ``before``). Kept 30 days."""
        return await webhooks.deliveries(ctx, endpoint_id, before, limit, status)

    @post(
        "/{endpoint_id:uuid}/deliveries/{delivery_id:int}/retry",
        status_code=HTTP_202_ACCEPTED,
        summary="Deliver again now (admins)",
    )
    async def retry(
        self,
        endpoint_id: FromPath[UUID],
        delivery_id: Annotated[int, PathParameter(ge=1, le=2**63 - 1)],
        webhooks: Webhooks,
        ctx: Ctx,
        meta: Meta,
    ) -> schemas.Delivery:
        return await webhooks.retry(ctx, endpoint_id, delivery_id, meta)

    @post(
        "/{endpoint_id:uuid}/replay",
        status_code=HTTP_202_ACCEPTED,
        summary="Deliver again everything since a time (admins)",
    )
    async def replay(
        self,
        endpoint_id: FromPath[UUID],
        data: JSONBody[schemas.Replay],
        webhooks: Webhooks,
        ctx: Ctx,
        meta: Meta,
    ) -> schemas.Requeued:
        """For recovery after a receiver's outage: in their original order."""
        return schemas.Requeued(await webhooks.replay(ctx, endpoint_id, data.since, meta))


webhook_handlers: list[ControllerRouterHandler] = [WebhookController]
