"""Builds the document service's objects: the store (one MongoDB collection per org and
name, behind a breaker), the documents and the indexes."""

from __future__ import annotations

from dataclasses import dataclass

from orgbase.core.events import EventBus
from orgbase.core.org_usage import OrgUsage
from orgbase.core.resources import Resources
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
    resources: Resources, events: EventBus, usage: OrgUsage, gate: StatementGate | None
) -> DocumentsArea:
    """``events``: the gateway's bus (document changes are told on it); ``usage`` and
    ``gate`` (the store's share between orgs): the limits area's, as core types."""
    config = resources.settings.mongo
    store = DocumentStore(resources.mongo, config, gate)
    service = DocumentService(store, config, events, usage)
    return DocumentsArea(store=store, service=service, indexes=IndexService(store))
