"""The application factory: ``create_app(settings)``."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import structlog
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ControllerRouterHandler

from orgbase import __version__
from orgbase.auth.area import build_auth
from orgbase.auth.routes import auth_handlers
from orgbase.core.resources import Resources
from orgbase.core.settings import Settings
from orgbase.observability.health import health_handlers
from orgbase.observability.logging import configure_logging
from orgbase.platform.dependencies import request_dependencies
from orgbase.platform.errors import exception_handlers
from orgbase.platform.middleware import RequestContextMiddleware
from orgbase.platform.migrations import migrate
from orgbase.services.mongo.routes import document_handlers
from orgbase.services.mongo.service import DocumentService
from orgbase.services.postgres.area import build_data
from orgbase.services.postgres.purge import purge_org_rows
from orgbase.services.postgres.routes import data_handlers
from orgbase.tenants.area import build_tenancy
from orgbase.tenants.routes import tenancy_handlers

log = structlog.get_logger("orgbase.app")


def create_app(
    settings: Settings,
    *,
    extra_handlers: Sequence[ControllerRouterHandler] = (),
    configure_logs: bool = True,
) -> Litestar:
    """Build the gateway. Nothing is read from the environment here: settings come in."""
    if configure_logs:
        configure_logging(settings.log)
    resources = Resources(settings)
    auth = build_auth(settings, resources)

    def issue_impersonation_token(
        user_id: UUID, session_id: UUID, org_id: UUID, impersonation_id: UUID, lifetime: int
    ) -> tuple[str, int]:
        return auth.tokens.issue(
            user_id, session_id, org_id, impersonation_id=impersonation_id, lifetime=lifetime
        )

    tenancy = build_tenancy(settings, resources, issue_impersonation_token)
    tenancy.orgs.purgers.append(lambda ctx: purge_org_rows(resources.db, ctx))
    data = build_data(settings, resources)
    documents = DocumentService(resources.mongo, settings.mongo)
    tenancy.orgs.purgers.append(documents.purge_org)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if settings.database.migrate_on_start:
            await migrate(settings.database.migration_url)
        await resources.open()
        await auth.start()
        tenancy.start()
        await data.start()
        resources.redis.start_resync(settings.auth.session_cache_seconds)
        # Objects made at start live as long as the process: keep them out of the garbage
        # collector's full passes (shorter pauses under load).
        gc.collect()
        gc.freeze()
        log.info("gateway started", env=settings.env, version=__version__)
        try:
            yield
        finally:
            await data.stop()
            await tenancy.stop()
            await auth.stop()
            await resources.close()
            log.info("gateway stopped")

    cors = (
        CORSConfig(
            allow_origins=list(settings.http.cors_origins),
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
            ],
            expose_headers=["X-Request-ID", "Content-Range", "Retry-After", "ETag"],
        )
        if settings.http.cors_origins
        else None
    )
    handlers: list[ControllerRouterHandler] = [
        *health_handlers,
        *auth_handlers,
        *tenancy_handlers,
        *data_handlers,
        *document_handlers,
    ]
    handlers.extend(extra_handlers)
    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        dependencies={
            "resources": Provide(lambda: resources, sync_to_thread=False),
            "auth": Provide(lambda: auth.service, sync_to_thread=False),
            "tokens": Provide(lambda: auth.tokens, sync_to_thread=False),
            "tenancy": Provide(lambda: tenancy, sync_to_thread=False),
            "docs": Provide(lambda: documents, sync_to_thread=False),
            **request_dependencies(),
        },
        exception_handlers=exception_handlers(),
        cors_config=cors,
        openapi_config=OpenAPIConfig(
            title="orgbase",
            version=__version__,
            path="/schema",
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
        ),
        request_max_body_size=settings.http.max_body_bytes,
        state=State(
            {
                "settings": settings,
                "resources": resources,
                "auth": auth,
                "authenticator": auth.authenticator,
                "tenancy": tenancy,
                "org_contexts": tenancy.contexts,
                "data": data.service,
                "schema": data.schema,
            }
        ),
        logging_config=None,
        debug=False,
    )
    # Litestar applies its own middleware per route, after routing; wrapping the whole
    # handler instead gives unrouted requests (404/405) a request id and a log line too.
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler, settings.http.trusted_proxies)
    return app


def app_settings(app: Litestar) -> Settings:
    settings: Settings = app.state.settings
    return settings


def app_resources(app: Litestar) -> Any:
    return app.state.resources
