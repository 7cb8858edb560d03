"""HTTP routes of the webhooks area: ``/v1/orgs/{org_id}/webhooks`` (org admins)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from litestar.types import ControllerRouterHandler

from orgbase.core.context import OrgContext, RequestMeta
from orgbase.webhooks.schemas import (
    Delivery,
    DeliveryPage,
    Endpoint,
    EndpointCreate,
    EndpointCreated,
    EndpointUpdate,
    Replay,
    Requeued,
    SecretRotated,
    TestQueued,
)
from orgbase.webhooks.service import WebhookService

Webhooks = NamedDependency[WebhookService]
Ctx = NamedDependency[OrgContext]
Meta = NamedDependency[RequestMeta]
EndpointId = FromPath[UUID]
DeliveryId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]
Cursor = Annotated[int | None, QueryParameter(ge=1, le=2**63 - 1)]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]
Status = Annotated[Literal["pending", "delivered", "failed"] | None, QueryParameter()]


class WebhookController(Controller):
    path = "/v1/orgs/{org_id:uuid}/webhooks"
    tags = ["webhooks"]  # noqa: RUF012 - Litestar's declaration style

    @post("/", summary="Register an endpoint (admins); its signing secret is shown once")
    async def create(
        self, data: JSONBody[EndpointCreate], webhooks: Webhooks, ctx: Ctx, meta: Meta
    ) -> EndpointCreated:
        """``events`` are names (``db.items.insert``, ``member.added``) or patterns with
        ``*`` (``db.*``, ``*``). Deliveries are signed as Standard Webhooks."""
        return await webhooks.create(ctx, data, meta)

    @get("/", summary="The org's endpoints (admins)")
    async def list_endpoints(self, webhooks: Webhooks, ctx: Ctx) -> list[Endpoint]:
        return await webhooks.list_endpoints(ctx)

    @get("/{endpoint_id:uuid}", summary="One endpoint (admins)")
    async def read(self, endpoint_id: EndpointId, webhooks: Webhooks, ctx: Ctx) -> Endpoint:
        return await webhooks.get(ctx, endpoint_id)

    @patch("/{endpoint_id:uuid}", summary="Change an endpoint, or enable it again (admins)")
    async def update(
        self,
        endpoint_id: EndpointId,
        data: JSONBody[EndpointUpdate],
        webhooks: Webhooks,
        ctx: Ctx,
        meta: Meta,
    ) -> Endpoint:
        return await webhooks.update(ctx, endpoint_id, data, meta)

    @delete("/{endpoint_id:uuid}", summary="Delete an endpoint and its delivery log (admins)")
    async def remove(
        self, endpoint_id: EndpointId, webhooks: Webhooks, ctx: Ctx, meta: Meta
    ) -> None:
        await webhooks.delete(ctx, endpoint_id, meta)

    @post("/{endpoint_id:uuid}/rotate-secret", status_code=HTTP_200_OK, summary="A new secret")
    async def rotate_secret(
        self, endpoint_id: EndpointId, webhooks: Webhooks, ctx: Ctx, meta: Meta
    ) -> SecretRotated:
        """The old secret keeps signing alongside the new one for 24 hours."""
        return await webhooks.rotate_secret(ctx, endpoint_id, meta)

    @post("/{endpoint_id:uuid}/test", status_code=HTTP_202_ACCEPTED, summary="Send a test event")
    async def send_test(
        self, endpoint_id: EndpointId, webhooks: Webhooks, ctx: Ctx, meta: Meta
    ) -> TestQueued:
        """A ``webhook.test`` event to this endpoint only, through the outbox."""
        return await webhooks.send_test(ctx, endpoint_id, meta)

    @get("/{endpoint_id:uuid}/deliveries", summary="The delivery log, newest first (admins)")
    async def deliveries(  # noqa: PLR0917 - one parameter per query option
        self,
        endpoint_id: EndpointId,
        webhooks: Webhooks,
        ctx: Ctx,
        before: Cursor = None,
        limit: Limit = 50,
        status: Status = None,
    ) -> DeliveryPage:
        """Pages follow ``next_cursor`` (as ``before``). Kept 30 days."""
        return await webhooks.deliveries(ctx, endpoint_id, before, limit, status)

    @post(
        "/{endpoint_id:uuid}/deliveries/{delivery_id:int}/retry",
        status_code=HTTP_202_ACCEPTED,
        summary="Deliver again now (admins)",
    )
    async def retry(
        self,
        endpoint_id: EndpointId,
        delivery_id: DeliveryId,
        webhooks: Webhooks,
        ctx: Ctx,
        meta: Meta,
    ) -> Delivery:
        return await webhooks.retry(ctx, endpoint_id, delivery_id, meta)

    @post(
        "/{endpoint_id:uuid}/replay",
        status_code=HTTP_202_ACCEPTED,
        summary="Deliver again everything since a time (admins)",
    )
    async def replay(
        self,
        endpoint_id: EndpointId,
        data: JSONBody[Replay],
        webhooks: Webhooks,
        ctx: Ctx,
        meta: Meta,
    ) -> Requeued:
        """For recovery after a receiver's outage: in their original order."""
        return Requeued(await webhooks.replay(ctx, endpoint_id, data.since, meta))


webhook_handlers: list[ControllerRouterHandler] = [WebhookController]
