"""Every area of one gateway process, built from the settings and wired together.

The areas never import each other; the few places where one must hear about another
(tokens for impersonations, the request-auth component, deleting an org everywhere,
revocations reaching open sockets) are wired here, by the platform.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog

from orgbase import __version__
from orgbase.auth.area import AuthArea, build_auth
from orgbase.auth.directory import AccountDirectory
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import (
    IssuedToken,
    OrgContext,
    PolicyChange,
    RequestMeta,
    Revocation,
    Role,
)
from orgbase.core.events import EventBus, StorageObjectChanged
from orgbase.core.postgres import Connection
from orgbase.core.resources import Resources
from orgbase.core.row_changes import ROW_EVENTS
from orgbase.core.settings import Settings
from orgbase.core.tasks import TaskSet
from orgbase.functions.area import FunctionsArea, build_functions
from orgbase.limits.area import LimitsArea, build_limits
from orgbase.observability.metrics import BREAKER_VALUES, Metrics
from orgbase.observability.slo import SloRecorder
from orgbase.platform.function_services import FunctionOrgServices
from orgbase.platform.migrations import migrate
from orgbase.platform.request_auth import RequestAuth
from orgbase.services.mongo.indexes import IndexService
from orgbase.services.mongo.service import DocumentService
from orgbase.services.mongo.store import DocumentStore
from orgbase.services.postgres.area import DataArea, build_data
from orgbase.services.postgres.change_reads import ChangeReads
from orgbase.services.postgres.purge import purge_org_rows
from orgbase.services.redis.dashboard import RedisDashboard
from orgbase.services.redis.kv import KeyValueStore
from orgbase.services.redis.phoenix.changes import ChangeFeed
from orgbase.services.redis.phoenix.presence import PresenceStore
from orgbase.services.redis.phoenix.service import JoinRate, PhoenixRealtime
from orgbase.services.redis.realtime import RealtimeHub
from orgbase.services.redis.stats import RedisStats
from orgbase.storage.area import StorageArea, build_storage
from orgbase.tenants.area import TenancyArea, build_tenancy
from orgbase.webhooks.area import WebhooksArea, build_webhooks
from orgbase.webhooks.service import org_closing as webhooks_org_closing

log = structlog.get_logger("orgbase.app")


@dataclass
class Gateway:
    settings: Settings
    resources: Resources
    auth: AuthArea
    tenancy: TenancyArea
    data: DataArea
    documents: DocumentService
    indexes: IndexService
    stats: RedisStats
    kv: KeyValueStore
    hub: RealtimeHub
    phoenix: PhoenixRealtime
    metrics: Metrics | None
    slo: SloRecorder
    dashboard: RedisDashboard
    request_auth: RequestAuth
    webhooks: WebhooksArea
    limits: LimitsArea
    storage: StorageArea
    events: EventBus
    tasks: TaskSet
    functions: FunctionsArea | None = None

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.database.migrate_on_start:
            await migrate(
                self.settings.database.migration_url,
                app_directory=Path(self.settings.app.migrations_dir),
            )
        await self.resources.open()
        await self.auth.start()
        self.tenancy.start()
        await self.data.start()
        self.stats.start()
        self.slo.start()
        self.hub.start()
        self.phoenix.start()
        self.webhooks.start()
        self.limits.start()
        self.storage.start()
        if self.functions is not None:
            await self.functions.start()
        if self.metrics is not None:
            self.metrics.start()
        self.resources.redis.start_resync(self.settings.auth.session_cache_seconds)
        # Objects made at start live as long as the process: keep them out of the garbage
        # collector's full passes (shorter pauses under load).
        gc.collect()
        gc.freeze()
        log.info("gateway started", env=self.settings.env, version=__version__)

    async def stop(self) -> None:
        if self.metrics is not None:
            await self.metrics.stop()
        await self.storage.stop()
        if self.functions is not None:
            await self.functions.stop()
        await self.tasks.drain(self.settings.http.shutdown_grace_seconds)
        await self.limits.stop()
        await self.webhooks.stop()
        await self.phoenix.stop()
        await self.hub.stop()
        await self.slo.stop()
        await self.stats.stop()
        await self.data.stop()
        await self.tenancy.stop()
        await self.auth.stop()
        await self.resources.close()
        log.info("gateway stopped")


def _auth_and_tenancy(settings: Settings, resources: Resources) -> tuple[AuthArea, TenancyArea]:
    """Each area reads and writes only its own tables (core/tables.py); what one needs of
    another's it asks through core's protocols, handed in here: the auth area answers about
    accounts, the tenancy area about orgs, memberships and SSO, and queues mail."""

    def impersonation_token(
        user_id: UUID, session_id: UUID, org_id: UUID, impersonation_id: UUID, lifetime: int
    ) -> IssuedToken:
        return auth.tokens.issue(
            user_id, session_id, org_id, impersonation_id=impersonation_id, lifetime=lifetime
        )

    tenancy = build_tenancy(settings, resources, impersonation_token, AccountDirectory())
    auth = build_auth(
        settings,
        resources,
        memberships=tenancy.directory,
        sso=tenancy.directory,
        live_orgs=tenancy.live_orgs,
        outbox=tenancy.mail,
    )
    return auth, tenancy


def build_gateway(settings: Settings) -> Gateway:
    resources = Resources(settings)
    auth, tenancy = _auth_and_tenancy(settings, resources)
    limits = build_limits(settings, resources, tenancy.live_orgs)
    # Per-org limits reach the data services as a core callable (from the cache, no I/O).
    limits_of = limits.store.of if settings.limits.enabled else None
    meter = limits.meter
    request_auth = RequestAuth(
        auth.authenticator,
        tenancy.contexts,
        auth.sessions,
        settings.auth.publishable_key,
        limits.admission,
    )
    # The data API asks the request-auth component for each request's entry.
    data = build_data(settings, resources, request_auth, limits_of, meter)
    store = DocumentStore(resources.mongo, settings.mongo)
    store.gate = limits.document_gate
    documents = DocumentService(store, settings.mongo, limits_of=limits_of, meter=meter)
    stats = RedisStats(resources.redis)
    resources.redis.observers.append(stats.latency)
    kv = KeyValueStore(resources.redis, settings.kv, stats, limits_of=limits_of, meter=meter)
    hub = RealtimeHub(resources.redis, resources.notifications, settings.realtime)
    hub.limits_of, hub.meter = limits_of, meter
    events, tasks = EventBus(), TaskSet()
    storage = build_storage(
        settings, resources, events=events, tasks=tasks, limits_of=limits_of, meter=meter
    )
    gateway = Gateway(
        settings=settings,
        resources=resources,
        auth=auth,
        tenancy=tenancy,
        data=data,
        documents=documents,
        indexes=IndexService(store),
        stats=stats,
        kv=kv,
        hub=hub,
        phoenix=_build_phoenix(
            settings, resources=resources, hub=hub, data=data, identities=request_auth, tasks=tasks
        ),
        metrics=Metrics() if settings.observability.metrics_enabled else None,
        slo=SloRecorder(resources.redis, settings.observability),
        dashboard=RedisDashboard(resources.redis, stats, settings.observability),
        request_auth=request_auth,
        webhooks=build_webhooks(settings, resources, tenancy.live_orgs, tenancy.mail),
        limits=limits,
        storage=storage,
        events=events,
        tasks=tasks,
    )
    if settings.functions.enabled:
        gateway.functions = build_functions(
            settings, resources, tasks=tasks, limits_of=limits_of, meter=meter
        )
    _wire(gateway)
    if gateway.metrics is not None:
        _measure(gateway, gateway.metrics)
    return gateway


def _build_phoenix(
    settings: Settings,
    *,
    resources: Resources,
    hub: RealtimeHub,
    data: DataArea,
    identities: RequestAuth,
    tasks: TaskSet,
) -> PhoenixRealtime:
    """Supabase Realtime's protocol on the hub; postgres_changes ask the data API's area
    which changes each caller may see."""
    reader = ChangeReads(resources.db, data.schema)
    feed = ChangeFeed(reader, tasks)
    resources.notifications.subscribe(ROW_EVENTS, feed.notified)
    limits_of = hub.limits_of
    per_second = (lambda org: limits_of(org).realtime_joins_per_second) if limits_of else None
    presence = PresenceStore(resources.redis, hub.send, settings.realtime.presence_ttl_seconds)
    return PhoenixRealtime(hub, identities, presence, feed, reader, JoinRate(per_second))


def _measure(gateway: Gateway, metrics: Metrics) -> None:
    """The areas' own counters and states, copied into the metrics every second."""
    auth, tenancy = gateway.auth, gateway.tenancy

    def totals() -> dict[tuple[str, ...], float]:
        counts: dict[tuple[str, ...], float] = {}
        for outcome, count in auth.grants.outcomes.items():
            counts[("auth", outcome)] = count
        for name, cache in (
            ("sessions", auth.sessions.cache),
            ("api_keys", auth.api_keys.cache),
            ("memberships", tenancy.memberships.cache),
        ):
            counts[("cache", name, "hit")] = cache.stats.hits
            counts[("cache", name, "miss")] = cache.stats.misses
            counts[("cache", name, "fallback")] = cache.stats.fallbacks
        counts[("rate_limited",)] = auth.limiter.rejections + gateway.limits.limiter.rejected
        counts[("org_limits_failed_open",)] = gateway.limits.limiter.failed_open
        counts[("usage_flush_failures",)] = gateway.limits.flusher.failures
        counts[("realtime_deliveries",)] = gateway.hub.delivered
        for outcome, count in gateway.webhooks.dispatcher.outcomes.items():
            counts[("webhook_deliveries", outcome)] = count
        for dependency, count in gateway.stats.dependency_errors_total.items():
            counts[("dependency_errors", dependency)] = count
        if gateway.functions is not None:
            counts.update(gateway.functions.counts())
        return counts

    def gauges() -> None:
        resources = gateway.resources
        metrics.breaker.labels("redis").set(BREAKER_VALUES[resources.redis.breaker.state])
        metrics.breaker.labels("mongo").set(BREAKER_VALUES[gateway.documents.store.breaker.state])
        for pool, figures in resources.db.pool_stats().items():
            for state in ("size", "in_use", "idle", "waiting"):
                if state in figures:
                    metrics.pool.labels(f"postgres_{pool}", state).set(figures[state])
        for state, value in resources.redis.pool_stats().items():
            metrics.pool.labels("redis", state).set(value)
        metrics.pool.labels("mongo", "open").set(resources.mongo.pool.open)
        metrics.pool.labels("mongo", "in_use").set(resources.mongo.pool.checked_out)
        metrics.realtime.set(gateway.hub.connections)
        metrics.org_limits_cached.set(gateway.limits.store.cached)
        metrics.usage_pending.set(gateway.limits.meter.pending)
        queue = gateway.webhooks.dispatcher.queue
        metrics.webhook_queue.labels("due").set(queue.due)
        metrics.webhook_queue.labels("oldest_due_seconds").set(queue.oldest_due_seconds)

    gateway.webhooks.dispatcher.latency_observers.append(metrics.webhook_latency.observe)
    if gateway.functions is not None:
        gateway.functions.service.durations.append(metrics.functions.duration.observe)
        if gateway.functions.events is not None:
            observe = metrics.functions.event_latency.observe
            gateway.functions.events.latency_observers.append(observe)
        if gateway.functions.schedules is not None:
            gateway.functions.schedules.drift_observers.append(metrics.functions.drift.observe)
    metrics.counts_from(totals)
    metrics.gauges_from(gauges)


def _wire(gateway: Gateway) -> None:
    auth, tenancy, hub = gateway.auth, gateway.tenancy, gateway.hub
    orgs = tenancy.orgs
    db = gateway.resources.db

    # Deleting an org ends what the auth area holds of it, then its data goes everywhere.
    async def close_auth(connection: Connection, org_id: UUID) -> Callable[[], Awaitable[None]]:
        await auth.sessions.drop_active_org(connection, org_id)
        hashes = await auth.api_keys.revoke_for_org(connection, org_id)
        return lambda: auth.api_keys.forget(hashes)

    async def org_deleted(org_id: UUID) -> None:
        await gateway.kv.org_closed(org_id)
        await hub.announce(Revocation(org=org_id, org_deleted=True))

    async def close_webhooks(connection: Connection, org_id: UUID) -> Callable[[], Awaitable[None]]:
        await webhooks_org_closing(connection, org_id)
        return _nothing

    orgs.closing += [close_auth, close_webhooks]
    orgs.on_deleted.append(org_deleted)
    orgs.purgers.append(lambda org_id: purge_org_rows(db, org_id))

    # Document changes reach the audit log, and through it the webhook outbox.
    async def document_changed(
        ctx: OrgContext, collection: str, change: str, details: dict[str, Any]
    ) -> None:
        request_id = structlog.contextvars.get_contextvars().get("request_id", "")
        meta = RequestMeta(ip=None, user_agent=None, request_id=str(request_id))
        action = f"docs.{collection}.{change}"
        event = AuditEvent.in_org(
            ctx, meta, action, target_table=f"docs.{collection}", details=details
        )
        async with db.system_connection() as connection:
            await audit.record(connection, event)

    gateway.documents.events.listeners.append(document_changed)
    # The limits area: platform admins are known to the tenancy area; sockets' publishes
    # count against their org's allowance.
    limits = gateway.limits
    limits.require_platform_admin = tenancy.platform.require_admin
    hub.admit_publish = limits.admission.publish
    orgs.sweepers += [
        limits.purge_org,
        gateway.documents.store.purge_org,
        gateway.kv.purge_org,
        gateway.stats.purge_org,
        gateway.slo.purge_org,
        gateway.storage.purge_org,
    ]
    _wire_storage(gateway)
    _wire_functions(gateway)
    _wire_revocations(gateway)


def _wire_storage(gateway: Gateway) -> None:
    """Object changes reach the org's realtime channel ``storage:{bucket}`` (webhooks have
    them already: the storage tables' triggers write the outbox in the change's
    transaction)."""
    hub = gateway.hub

    async def object_changed(event: StorageObjectChanged) -> None:
        payload = {
            "bucket": event.bucket,
            "name": event.name,
            "id": str(event.object_id),
            "size": event.size,
        }
        await hub.server_publish(event.org_id, f"storage:{event.bucket}", event.change, payload)

    gateway.events.subscribe(StorageObjectChanged, object_changed)
    # Signed URLs and public links carry no credential: their org's allowance counts them.
    gateway.storage.admit = gateway.limits.admission.admit


def _wire_functions(gateway: Gateway) -> None:
    """A function's ctx reaches the cache, documents, realtime and mail through the owning
    areas' services; platform admins are known to the tenancy area."""
    functions = gateway.functions
    if functions is None:
        return
    functions.host.org_services = FunctionOrgServices(
        gateway.kv, gateway.documents, gateway.hub, gateway.tenancy.mail, gateway.resources.db
    )
    functions.require_platform_admin = gateway.tenancy.platform.require_admin


def _wire_revocations(gateway: Gateway) -> None:
    """Revocations reach every open socket on every replica at once."""
    auth, tenancy, hub = gateway.auth, gateway.tenancy, gateway.hub

    async def sessions_ended(sessions: list[UUID]) -> None:
        await hub.announce(Revocation(sessions=tuple(sessions)))

    async def membership_changed(org: UUID, user: UUID, role: Role | None) -> None:
        await hub.announce(Revocation(org=org, user=user, role=role))
        # The keys they made above what they now hold were revoked with the change.
        await auth.api_keys.creator_changed(user, org)

    async def keys_revoked(org: UUID, keys: list[UUID]) -> None:
        await hub.announce(Revocation(org=org, keys=tuple(keys)))
        for key in keys:
            await tenancy.invitations.revoke_by_key(org, key)

    auth.sessions.on_revoked.append(sessions_ended)
    _wire_sso(auth, tenancy)
    tenancy.memberships.on_changed.append(membership_changed)
    auth.api_keys.on_revoked.append(keys_revoked)

    # An org's sign-in policy changes like a grant is revoked: read replicas serve no read
    # until they have replayed a tightening, and every replica drops its copy of the
    # policy (before its sockets are checked against it).
    async def policy_changed(org: UUID, change: PolicyChange) -> None:
        if change != "relaxed":
            await gateway.resources.redis.revoked()
        await hub.announce(Revocation(org=org, policy=change))

    def policy_heard(notice: Revocation) -> None:
        if notice.policy is not None and notice.org is not None:
            tenancy.contexts.forget_mfa_flag(notice.org)

    tenancy.contexts.on_policy_changed.append(policy_changed)
    hub.revocations.heard.append(policy_heard)


def _wire_sso(auth: AuthArea, tenancy: TenancyArea) -> None:
    """An org's provider replaced or removed ends the auth area's links to it and its
    sessions; one being saved has its discovery document checked by the auth area."""
    tenancy.sso_providers.replaced.append(auth.oidc.org_provider_replaced)
    tenancy.sso_providers.issuer_checks.append(auth.oidc.client.check_org_issuer)


async def _nothing() -> None:
    return None
