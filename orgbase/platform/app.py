"""The application factory: ``create_app(settings)`` returns the ASGI app to serve."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler, Receive, Scope, Send
from litestar.types.asgi_types import LifeSpanReceive, LifeSpanScope, LifeSpanSend

from orgbase import __version__
from orgbase.auth.routes import auth_handlers
from orgbase.core.metering import Meter
from orgbase.core.settings import HttpSettings, Settings
from orgbase.functions.admin_routes import functions_admin_handlers
from orgbase.functions.routes import function_handlers
from orgbase.limits.routes import limits_handlers
from orgbase.limits.usage_layer import OrgUsageLayer
from orgbase.observability.health import health_handlers
from orgbase.observability.logging import configure_logging
from orgbase.platform.body_guard import JsonBodyGuard
from orgbase.platform.dev_routes import dev_handlers
from orgbase.platform.errors import exception_handlers
from orgbase.platform.export_routes import export_handlers
from orgbase.platform.gateway import build_gateway
from orgbase.platform.gotrue_admin_routes import gotrue_admin_handlers
from orgbase.platform.middleware import RequestContextMiddleware, RequestObserver
from orgbase.platform.openapi import FinishedJsonDocument
from orgbase.platform.ops_routes import ops_handlers
from orgbase.platform.recorder import RequestRecorder
from orgbase.platform.registry import app_state, route_dependencies
from orgbase.platform.supabase_paths import SupabasePaths
from orgbase.services.mongo.routes import document_handlers
from orgbase.services.postgres.routes import data_handlers
from orgbase.services.postgres.rpc_routes import rpc_handlers
from orgbase.services.postgres.schema_routes import schema_handlers
from orgbase.services.redis.phoenix.routes import phoenix_handlers
from orgbase.services.redis.routes import redis_handlers
from orgbase.storage.paths import streams_body
from orgbase.storage.routes import storage_handlers
from orgbase.studio.routes import studio_handlers
from orgbase.tenants.routes import tenancy_handlers
from orgbase.webhooks.routes import webhook_handlers

ROUTES: tuple[list[ControllerRouterHandler], ...] = (
    health_handlers,
    auth_handlers,
    gotrue_admin_handlers,
    tenancy_handlers,
    data_handlers,
    rpc_handlers,
    schema_handlers,
    document_handlers,
    redis_handlers,
    phoenix_handlers,
    ops_handlers,
    export_handlers,
    studio_handlers,
    webhook_handlers,
    dev_handlers,
    limits_handlers,
    storage_handlers,
    function_handlers,
    functions_admin_handlers,
)


def _cors(http: HttpSettings) -> CORSConfig | None:
    if not http.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(http.cors_origins),
        allow_credentials=True,
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-Request-ID",
            "Prefer",
            "Range",
            "Accept-Profile",
            "Content-Profile",
            "apikey",
            "If-Match",
            "X-CSRF-Token",
            # Storage (storage-js, tus-js-client)
            "x-upsert",
            "x-metadata",
            "Cache-Control",
            "If-None-Match",
            "Tus-Resumable",
            "Upload-Length",
            "Upload-Offset",
            "Upload-Metadata",
            # Functions (functions-js)
            "x-client-info",
            "x-region",
        ],
        expose_headers=[
            "X-Request-ID",
            "Content-Range",
            "Retry-After",
            "ETag",
            "RateLimit-Policy",
            "RateLimit",
            "Location",
            "Upload-Offset",
            "Upload-Length",
            "Tus-Resumable",
        ],
    )


class OrgbaseApp:
    """The Litestar app behind the layers that must see every request before routing.

    Litestar runs its own middleware per route, after routing: unrouted requests (404,
    405) would get no request id and no log line, and the routes would read bodies first.
    So the request-context layer (request id, security headers, access log) and the JSON
    body guard wrap the whole app, as plain ASGI; lifespan events go straight to Litestar.
    """

    def __init__(
        self,
        litestar: Litestar,
        settings: Settings,
        observer: RequestObserver,
        meter: Meter,
    ) -> None:
        self.litestar = litestar
        self._layers = RequestContextMiddleware(
            OrgUsageLayer(
                JsonBodyGuard(
                    SupabasePaths(litestar, settings.auth),
                    settings.http.max_body_bytes,
                    streamed=streams_body,
                ),
                meter,
            ),
            settings.http.trusted_proxies,
            observer=observer,
            access_log=settings.observability.access_log,
        )

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] == "lifespan":
            await self.litestar(scope, receive, send)
        else:
            await self._layers(scope, receive, send)  # type: ignore[arg-type]


def create_app(
    settings: Settings,
    *,
    extra_handlers: Sequence[ControllerRouterHandler] = (),
    configure_logs: bool = True,
) -> OrgbaseApp:
    """Build the gateway. Nothing is read from the environment here: settings come in."""
    if configure_logs:
        configure_logging(settings.log)
    gateway = build_gateway(settings)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    # A family switched off is not routed at all (404, as for any unknown path).
    switched_off = () if settings.storage.enabled else (storage_handlers,)
    handlers = [handler for group in ROUTES if group not in switched_off for handler in group]
    handlers.extend(extra_handlers)
    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        dependencies=route_dependencies(gateway),
        exception_handlers=exception_handlers(gateway.redis.stats.dependency_error),
        cors_config=_cors(settings.http),
        openapi_config=OpenAPIConfig(
            title="orgbase",
            version=__version__,
            path="/schema",
            render_plugins=[FinishedJsonDocument(path=["/", "/openapi.json"])],
        ),
        request_max_body_size=settings.http.max_body_bytes,
        state=app_state(gateway),
        logging_config=None,
        debug=False,
    )
    return OrgbaseApp(
        app,
        settings,
        observer=RequestRecorder(gateway.metrics, gateway.slo),
        meter=gateway.limits.meter,
    )
