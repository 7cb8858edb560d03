"""Builds the webhooks area from settings and the shared clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orgbase.core.destinations import DestinationPolicy
from orgbase.core.mail import Outbox
from orgbase.core.orgs import LiveOrgs
from orgbase.core.resources import Resources
from orgbase.core.tasks import TaskSet
from orgbase.webhooks.dispatcher import STOPPED_CHANNEL, WebhookDispatcher
from orgbase.webhooks.service import WebhookService


@dataclass(frozen=True)
class WebhooksArea:
    service: WebhookService
    dispatcher: WebhookDispatcher


def build_webhooks(
    resources: Resources,
    orgs: LiveOrgs,
    outbox: Outbox,
    tasks: TaskSet,
    *,
    observe_latency: Callable[[float], None] | None = None,
) -> WebhooksArea:
    """``orgs`` and ``outbox``: the tenancy area's (live orgs, mail to an org's admins);
    ``tasks``: the gateway's task set; ``observe_latency``: the metrics' (when on)."""
    settings = resources.settings
    policy = DestinationPolicy(
        allowed_hosts=frozenset(host.lower() for host in settings.webhooks.allowed_hosts),
        allow_loopback=settings.is_dev,
    )
    dispatcher = WebhookDispatcher(
        resources.db,
        settings.webhooks,
        policy,
        outbox,
        tasks=tasks,
        observe_latency=observe_latency,
    )
    if settings.webhooks.enabled:
        # Endpoints stopped elsewhere: their claimed, unsent deliveries stay unsent here.
        resources.notifications.subscribe(STOPPED_CHANNEL, dispatcher.endpoint_stopped)
    return WebhooksArea(
        service=WebhookService(resources.db, settings.webhooks, policy, orgs),
        dispatcher=dispatcher,
    )
