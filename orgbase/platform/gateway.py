"""Every area of one gateway process, built from the settings and wired together.

The areas never import each other; the few places where one must hear about another
(tokens for impersonations, the request-auth component, deleting an org everywhere,
revocations reaching open sockets) are wired here, by the platform.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import structlog

from orgbase import __version__
from orgbase.auth.area import AuthArea, build_auth, provider_client
from orgbase.auth.directory import AccountDirectory
from orgbase.core import audit
from orgbase.core.audit import AuditEvent
from orgbase.core.context import (
    IssuedToken,
    RequestMeta,
    Revocation,
)
from orgbase.core.events import (
    AfterCommit,
    DocumentChanged,
    EventBus,
    KeysRevoked,
    MembershipChanged,
    OrgClosing,
    OrgDeleted,
    OrgProviderReplaced,
    OrgPurging,
    OrgSweeping,
    PolicyChanged,
    SessionsRevoked,
    StorageObjectChanged,
)
from orgbase.core.lifecycle import Lifecycle, Part
from orgbase.core.org_usage import OrgUsage
from orgbase.core.postgres import Connection
from orgbase.core.resources import Resources
from orgbase.core.row_changes import ROW_EVENTS
from orgbase.core.settings import Settings
from orgbase.core.tasks import TaskSet
from orgbase.functions.area import FunctionsArea, build_functions
from orgbase.limits.area import LimitsArea, build_limits
from orgbase.observability.metrics import Metrics
from orgbase.observability.slo import SloRecorder
from orgbase.platform.function_services import FunctionOrgServices
from orgbase.platform.measures import measure
from orgbase.platform.migrations import migrate
from orgbase.platform.request_auth import RequestAuth
from orgbase.services.mongo.area import DocumentsArea, build_documents
from orgbase.services.postgres.area import DataArea, build_data
from orgbase.services.postgres.change_reads import ChangeReads
from orgbase.services.postgres.purge import purge_org_rows
from orgbase.services.redis.area import RedisArea, build_redis
from orgbase.services.redis.phoenix.changes import ChangeFeed
from orgbase.services.redis.phoenix.presence import PresenceStore
from orgbase.services.redis.phoenix.service import JoinRate, PhoenixRealtime
from orgbase.services.redis.realtime import RealtimeHub
from orgbase.storage.area import StorageArea, build_storage
from orgbase.tenants.area import TenancyArea, build_tenancy
from orgbase.webhooks.area import WebhooksArea, build_webhooks
from orgbase.webhooks.service import org_closing as webhooks_org_closing

log = structlog.get_logger("orgbase.app")


@dataclass
class Gateway:
    resources: Resources
    auth: AuthArea
    tenancy: TenancyArea
    data: DataArea
    documents: DocumentsArea
    redis: RedisArea
    hub: RealtimeHub
    phoenix: PhoenixRealtime
    metrics: Metrics | None
    slo: SloRecorder
    request_auth: RequestAuth
    webhooks: WebhooksArea
    limits: LimitsArea
    storage: StorageArea
    events: EventBus
    tasks: TaskSet
    functions: FunctionsArea | None = None

    lifecycle: Lifecycle = field(init=False)

    def __post_init__(self) -> None:
        self.lifecycle = Lifecycle(_running_parts(self))

    @property
    def settings(self) -> Settings:
        return self.resources.settings

    async def start(self) -> None:
        if self.settings.database.migrate_on_start:
            await migrate(
                self.settings.database.migration_url,
                app_directory=Path(self.settings.app.migrations_dir),
            )
        await self.lifecycle.start()
        # Objects made at start live as long as the process: keep them out of the garbage
        # collector's full passes (shorter pauses under load).
        gc.collect()
        gc.freeze()
        log.info("gateway started", env=self.settings.env, version=__version__)

    async def stop(self) -> None:
        await self.lifecycle.stop()
        log.info("gateway stopped")


def _running_parts(g: Gateway) -> list[Part]:
    """What runs while the gateway runs, in start order (stopped in reverse).

    The clients open first and close last: every part uses them. The auth area's password
    hasher and session cache are ready before anything asks them. The background tasks are
    drained once the parts that spawn them (storage, functions) stopped, and while what
    they use still runs; then the org rate limiter counts the requests it let in, before
    the usage flush's last round writes them. The storage sweep stops before the functions
    (it always has; neither uses the other). Metrics start last and stop first: they read
    the other parts. The Redis resync starts after every area: it calls their resyncs.
    """
    auth, tenancy, limits, storage = g.auth, g.tenancy, g.limits, g.storage
    functions, metrics = g.functions, g.metrics
    grace = g.settings.http.shutdown_grace_seconds
    lookback = g.settings.auth.session_cache_seconds
    return [
        Part("clients", g.resources.open, g.resources.close),
        Part("password hasher", auth.passwords.prepare, auth.passwords.close),
        Part("session cache", auth.warm_session_cache),
        Part("openid client", stop=auth.oidc.close),
        Part("mail outbox", tenancy.outbox.start, tenancy.outbox.stop),
        Part("org deletions cut short", tenancy.orgs.start),
        Part("schema cache", g.data.load_schema, g.data.schema.stop),
        Part("redis stats", g.redis.stats.start, g.redis.stats.stop),
        Part("slo", g.slo.start, g.slo.stop),
        Part("realtime hub", g.hub.start, g.hub.stop),
        Part("phoenix", g.phoenix.start, g.phoenix.stop),
        Part("webhook dispatcher", g.webhooks.dispatcher.start, g.webhooks.dispatcher.stop),
        Part("limits cache", limits.store.start),
        Part("usage flush", limits.periodic.start, limits.periodic.stop),  # a last flush
        Part("org rate limiter", stop=limits.limiter.close),
        Part("background tasks", stop=lambda: g.tasks.drain(grace)),
        Part("storage", storage.start),
        *([Part("functions", functions.start, functions.stop)] if functions else []),
        Part("storage sweep", stop=storage.periodic.stop),
        *([Part("metrics", metrics.start, metrics.stop)] if metrics else []),
        Part("redis resync", lambda: g.resources.redis.start_resync(lookback)),
    ]


def _auth_and_tenancy(
    resources: Resources, events: EventBus, tasks: TaskSet
) -> tuple[AuthArea, TenancyArea]:
    """Each area reads and writes only its own tables (core/tables.py); what one needs of
    another's it asks through core's protocols, handed in here: the auth area answers about
    accounts, the tenancy area about orgs, memberships and SSO, and queues mail."""
    settings = resources.settings

    def impersonation_token(
        user_id: UUID, session_id: UUID, org_id: UUID, impersonation_id: UUID, lifetime: int
    ) -> IssuedToken:
        return auth.tokens.issue(
            user_id, session_id, org_id, impersonation_id=impersonation_id, lifetime=lifetime
        )

    # The tenancy area asks the auth area's OpenID client about a provider before saving it.
    oidc_client = provider_client(settings)
    tenancy = build_tenancy(
        resources,
        impersonation_token,
        AccountDirectory(),
        events=events,
        tasks=tasks,
        check_issuer=oidc_client.check_org_issuer,
    )
    auth = build_auth(
        resources,
        memberships=tenancy.directory,
        sso=tenancy.directory,
        live_orgs=tenancy.live_orgs,
        outbox=tenancy.mail,
        events=events,
        tasks=tasks,
        oidc_client=oidc_client,
    )
    return auth, tenancy


def _request_auth(
    settings: Settings, auth: AuthArea, tenancy: TenancyArea, limits: LimitsArea
) -> RequestAuth:
    """Credentials (auth), org contexts (tenancy) and admission (limits), for every route."""
    return RequestAuth(
        auth.authenticator,
        tenancy.contexts,
        auth.sessions,
        settings.auth.publishable_key,
        limits.admission,
    )


def build_gateway(settings: Settings) -> Gateway:
    resources = Resources(settings)
    # The bus and the task set first: every area is given them when it is built.
    events, tasks = EventBus(), TaskSet()
    auth, tenancy = _auth_and_tenancy(resources, events, tasks)
    admins = tenancy.platform.require_admin  # the tenancy area knows the platform admins
    limits = build_limits(resources, tenancy.live_orgs, tasks, require_platform_admin=admins)
    # The limits lookup and the meter, for the services that enforce or count.
    usage = limits.org_usage
    request_auth = _request_auth(settings, auth, tenancy, limits)
    # The data API asks the request-auth component for each request's entry.
    data = build_data(resources, request_auth, tasks, usage)
    hub = RealtimeHub(resources.redis, settings.realtime, usage)
    # Row changes reach the sockets subscribed to db:{table} in this process.
    resources.notifications.subscribe(ROW_EVENTS, hub.row_changed)
    # Signed URLs and public links carry no credential: their org's allowance counts them.
    storage = build_storage(
        resources,
        events=events,
        tasks=tasks,
        usage=usage,
        admit=limits.admission.admit,
    )
    metrics = Metrics() if settings.observability.metrics_enabled else None
    latency = metrics.webhook_latency.observe if metrics is not None else None
    webhooks = build_webhooks(
        resources, tenancy.live_orgs, tenancy.mail, tasks, observe_latency=latency
    )
    gateway = Gateway(
        resources=resources,
        auth=auth,
        tenancy=tenancy,
        data=data,
        documents=build_documents(resources, events, usage, limits.document_gate),
        redis=build_redis(resources, usage),
        hub=hub,
        phoenix=_build_phoenix(
            resources=resources, hub=hub, data=data, identities=request_auth, tasks=tasks
        ),
        metrics=metrics,
        slo=SloRecorder(resources.redis, settings.observability),
        request_auth=request_auth,
        webhooks=webhooks,
        limits=limits,
        storage=storage,
        events=events,
        tasks=tasks,
        functions=_build_functions(resources, tasks, usage),
    )
    _wire(gateway)
    if gateway.metrics is not None:
        measure(gateway, gateway.metrics)
    return gateway


def _build_functions(resources: Resources, tasks: TaskSet, usage: OrgUsage) -> FunctionsArea | None:
    if not resources.settings.functions.enabled:
        return None
    return build_functions(resources, tasks=tasks, usage=usage)


def _build_phoenix(
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
    limits_of = hub.usage.limits_of
    per_second = (lambda org: limits_of(org).realtime_joins_per_second) if limits_of else None
    ttl = resources.settings.realtime.presence_ttl_seconds
    presence = PresenceStore(resources.redis, hub.send, ttl)
    return PhoenixRealtime(hub, identities, presence, feed, reader, JoinRate(per_second))


def _wire(gateway: Gateway) -> None:
    _wire_org_deletion(gateway)
    _wire_documents(gateway)
    # Sockets' publishes count against their org's allowance.
    gateway.hub.admit_publish = gateway.limits.admission.publish
    _wire_storage(gateway)
    _wire_functions(gateway)
    _wire_revocations(gateway)


def _wire_org_deletion(gateway: Gateway) -> None:
    """Deleting an org ends what the other areas hold of it (in the closing transaction)
    and closes its sockets; then its data goes everywhere."""
    auth, events, db = gateway.auth, gateway.events, gateway.resources.db

    async def close_auth(event: OrgClosing, connection: Connection) -> AfterCommit:
        await auth.sessions.drop_active_org(connection, event.org_id)
        hashes = await auth.api_keys.revoke_for_org(connection, event.org_id)
        return lambda: auth.api_keys.forget(hashes)

    async def close_webhooks(event: OrgClosing, connection: Connection) -> AfterCommit:
        await webhooks_org_closing(connection, event.org_id)
        return _nothing

    async def refuse_cache_writes(event: OrgDeleted) -> None:
        await gateway.redis.kv.org_closed(event.org_id)

    async def close_sockets(event: OrgDeleted) -> None:
        await gateway.hub.announce(Revocation(org=event.org_id, org_deleted=True))

    events.subscribe_in_transaction(OrgClosing, close_auth)
    events.subscribe_in_transaction(OrgClosing, close_webhooks)
    events.subscribe(OrgDeleted, refuse_cache_writes)
    events.subscribe(OrgDeleted, close_sockets)
    events.subscribe(OrgPurging, lambda event: purge_org_rows(db, event.org_id))
    for sweep in (
        gateway.limits.purge_org,
        gateway.documents.store.purge_org,
        gateway.redis.kv.purge_org,
        gateway.redis.stats.purge_org,
        gateway.slo.purge_org,
        gateway.storage.purge_org,
    ):
        events.subscribe(OrgSweeping, _of_org(sweep))


OrgWork = Callable[[UUID], Awaitable[object]]


def _of_org(purge: OrgWork) -> Callable[[OrgSweeping], Awaitable[object]]:
    """A store's ``purge_org(org_id)`` as a subscriber, named as the store's (the bus logs
    a failing subscriber by name)."""

    async def subscriber(event: OrgSweeping) -> object:
        return await purge(event.org_id)

    subscriber.__qualname__ = getattr(purge, "__qualname__", subscriber.__qualname__)
    return subscriber


def _wire_documents(gateway: Gateway) -> None:
    """Document changes reach the audit log, and through it the webhook outbox."""
    db = gateway.resources.db

    async def document_changed(event: DocumentChanged) -> None:
        request_id = structlog.contextvars.get_contextvars().get("request_id", "")
        meta = RequestMeta(ip=None, user_agent=None, request_id=str(request_id))
        action = f"docs.{event.collection}.{event.change}"
        record = AuditEvent.in_org(
            event.ctx, meta, action, target_table=f"docs.{event.collection}", details=event.details
        )
        async with db.system_connection() as connection:
            await audit.record(connection, record)

    gateway.events.subscribe(DocumentChanged, document_changed)


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


def _wire_functions(gateway: Gateway) -> None:
    """A function's ctx reaches the cache, documents, realtime and mail through the owning
    areas' services; platform admins are known to the tenancy area."""
    functions = gateway.functions
    if functions is None:
        return
    functions.host.org_services = FunctionOrgServices(
        gateway.redis.kv,
        gateway.documents.service,
        gateway.hub,
        gateway.tenancy.mail,
        gateway.resources.db,
    )
    functions.require_platform_admin = gateway.tenancy.platform.require_admin


def _wire_revocations(gateway: Gateway) -> None:
    """Revocations reach every open socket on every replica at once. Their publishers
    publish them with ``must_succeed``: a revocation whose announcement failed fails."""
    auth, tenancy, hub, events = gateway.auth, gateway.tenancy, gateway.hub, gateway.events

    async def sessions_ended(event: SessionsRevoked) -> None:
        await hub.announce(Revocation(sessions=event.sessions))

    async def membership_changed(event: MembershipChanged) -> None:
        await hub.announce(Revocation(org=event.org_id, user=event.user_id, role=event.role))

    async def creator_changed(event: MembershipChanged) -> None:
        # The keys they made above what they now hold were revoked with the change.
        await auth.api_keys.creator_changed(event.user_id, event.org_id)

    async def keys_revoked(event: KeysRevoked) -> None:
        await hub.announce(Revocation(org=event.org_id, keys=event.keys))

    async def keys_invitations(event: KeysRevoked) -> None:
        for key in event.keys:
            await tenancy.invitations.revoke_by_key(event.org_id, key)

    events.subscribe(SessionsRevoked, sessions_ended)
    events.subscribe(MembershipChanged, membership_changed)
    events.subscribe(MembershipChanged, creator_changed)
    events.subscribe(KeysRevoked, keys_revoked)
    events.subscribe(KeysRevoked, keys_invitations)
    _wire_sso(gateway)

    # An org's sign-in policy changes like a grant is revoked: read replicas serve no read
    # until they have replayed a tightening, and every replica drops its copy of the
    # policy (before its sockets are checked against it).
    async def policy_changed(event: PolicyChanged) -> None:
        if event.change != "relaxed":
            await gateway.resources.redis.revoked()
        await hub.announce(Revocation(org=event.org_id, policy=event.change))

    def policy_heard(notice: Revocation) -> None:
        if notice.policy is not None and notice.org is not None:
            tenancy.contexts.forget_mfa_flag(notice.org)

    events.subscribe(PolicyChanged, policy_changed)
    hub.revocations.heard.append(policy_heard)


def _wire_sso(gateway: Gateway) -> None:
    """An org's provider replaced or removed ends the auth area's links to it and its
    sessions (one being saved has its discovery document checked by the auth area's
    OpenID client, given to the tenancy area when it was built)."""
    auth = gateway.auth

    async def provider_replaced(event: OrgProviderReplaced, connection: Connection) -> AfterCommit:
        return await auth.oidc.org_provider_replaced(connection, event.org_id)

    gateway.events.subscribe_in_transaction(OrgProviderReplaced, provider_replaced)


async def _nothing() -> None:
    return None
