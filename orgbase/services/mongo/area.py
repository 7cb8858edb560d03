"""Builds the document service's objects: the store (one MongoDB collection per org and
name, behind a breaker), the documents and the indexes."""

from __future__ import annotations

from dataclasses import dataclass

from orgbase.core.events import EventBus
from orgbase.core.metering import Meter
from orgbase.core.org_limits import LimitsOf
from orgbase.core.resources import Resources
from orgbase.core.settings import Settings
from orgbase.core.statement_gate import StatementGate
from orgbase.services.mongo.indexes import IndexService
from orgbase.services.mongo.service import DocumentService
from orgbase.services.mongo.store import DocumentStore


@dataclass(frozen=True)
class DocumentsArea:
    store: DocumentStore
    service: DocumentService
    indexes: IndexService


def build_documents(
    settings: Settings,
    resources: Resources,
    events: EventBus,
    *,
    limits_of: LimitsOf | None,
    meter: Meter | None,
    gate: StatementGate | None,
) -> DocumentsArea:
    """``events``: the gateway's bus (document changes are told on it); ``limits_of``,
    ``meter`` and ``gate`` (the store's share between orgs): the limits area's, as core
    types."""
    store = DocumentStore(resources.mongo, settings.mongo, gate)
    service = DocumentService(store, settings.mongo, events, limits_of=limits_of, meter=meter)
    return DocumentsArea(store=store, service=service, indexes=IndexService(store))
