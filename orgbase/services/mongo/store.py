"""The MongoDB side of the document API: where an org's collections are, and every call
through one circuit breaker with its errors mapped to the API's.

Each org's collection is a MongoDB collection of its own, ``d<org id>_<name>``. A circuit
breaker makes calls fail at once with a 503 while MongoDB is down. On the local Mongo-wire
server the query shapes it answers wrongly are refused (``wire_gaps``).
"""

from __future__ import annotations

import inspect
from typing import Any
from uuid import UUID

from bson.errors import InvalidDocument, InvalidStringData
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteError,
)

from orgbase.core.breaker import CircuitBreaker
from orgbase.core.context import OrgContext
from orgbase.core.errors import Conflict, Invalid, OrgbaseError, TimedOut, Unavailable
from orgbase.core.mongo import MongoClients
from orgbase.core.settings import MongoSettings
from orgbase.core.statement_gate import GateTimeout, StatementGate
from orgbase.services.mongo import guard, wire_gaps
from orgbase.services.mongo.wire_gaps import Use

DOWN = (ServerSelectionTimeoutError, ConnectionFailure, AutoReconnect, NetworkTimeout)


def _store_down() -> Unavailable:
    return Unavailable(
        "the document store is unavailable", code="mongo_unavailable", dependency="mongo"
    )


def _duplicate(details: Any) -> Conflict:
    key = details.get("keyValue") if isinstance(details, dict) else None
    return Conflict(
        "a document with this unique key exists",
        code="duplicate_key",
        details={k: str(v) for k, v in key.items() if k not in guard.HIDDEN} if key else None,
    )


def _close(operation: Any) -> None:
    if inspect.iscoroutine(operation):
        operation.close()  # refused before it ran: not "never awaited"


def prefix(org_id: UUID) -> str:
    """The start of every collection name of an org."""
    return f"d{org_id.hex}_"


def physical(org_id: UUID, name: str) -> str:
    """The MongoDB collection that holds an org's collection ``name``."""
    return prefix(org_id) + guard.collection_name(name)


class DocumentStore:
    def __init__(
        self, mongo: MongoClients, settings: MongoSettings, gate: StatementGate | None = None
    ) -> None:
        self.mongo = mongo
        self.breaker = CircuitBreaker(
            "mongo",
            failure_threshold=settings.breaker_failures,
            reset_seconds=settings.breaker_reset_seconds,
        )
        self._local_server: bool | None = None
        self.gate = gate
        """Shares the store between orgs (the limits area's, given by the platform)."""
        self._gate_wait = settings.server_selection_timeout_ms / 1000

    def collection(self, ctx: OrgContext, name: str) -> Any:
        return self.mongo.database[physical(ctx.org_id, name)]

    async def on_local_server(self) -> bool:
        """Whether the server is the local Mongo-wire server, asked once (``buildInfo``)
        on the first call that needs to know: its silently wrong shapes are refused."""
        if self._local_server is None:
            info = await self.call(self.mongo.client.admin.command("buildInfo"))
            self._local_server = wire_gaps.is_local_wire_server(info)
        return self._local_server

    async def check_update(self, update: Any) -> None:
        guard.check_update(update)
        if await self.on_local_server():
            wire_gaps.check_update(update)

    async def check_filter(self, query: Any, use: Use) -> None:
        guard.check_filter(query)
        if await self.on_local_server():
            wire_gaps.check_filter(query, use)

    async def call(self, operation: Any, org: UUID | None = None) -> Any:
        """Run one MongoDB call through the breaker, mapping its errors; an org's call
        through the gate (its share of the store against the other orgs')."""
        if not self.breaker.allow():
            _close(operation)
            raise _store_down()
        gate = self.gate if org is not None else None
        if gate is None:
            return await self._run(operation)
        try:
            await gate.enter(org, self._gate_wait)
        except GateTimeout as exc:
            _close(operation)
            self.breaker.release_trial()
            raise Unavailable(
                "the document store is busy", code="mongo_unavailable", dependency="mongo"
            ) from exc
        try:
            return await self._run(operation)
        finally:
            gate.leave(org)

    async def _run(self, operation: Any) -> Any:
        try:
            result = await operation
        except DOWN as exc:
            self.breaker.record_failure()
            raise _store_down() from exc
        except DuplicateKeyError as exc:
            self.breaker.record_success()
            raise _duplicate(exc.details) from exc
        except BulkWriteError as exc:
            self.breaker.record_success()
            refused: OrgbaseError = Invalid("MongoDB refused a document", code="invalid_document")
            if any(e.get("code") == 11000 for e in exc.details.get("writeErrors", [])):
                refused = _duplicate(exc.details["writeErrors"][0])
            refused.details = {
                "inserted_before_error": exc.details.get("nInserted", 0),
                **(refused.details or {}),
            }
            raise refused from exc
        except ExecutionTimeout as exc:
            self.breaker.record_success()
            raise TimedOut(
                "the query ran out of time",
                code="query_timeout",
                hint="narrow the filter or add an index",
            ) from exc
        except (WriteError, OperationFailure) as exc:
            self.breaker.record_success()
            raise Invalid(
                f"MongoDB refused the request: {exc.details.get('errmsg') if exc.details else exc}",
                code="invalid_query",
            ) from exc
        except PyMongoError as exc:
            self.breaker.release_trial()
            raise Invalid(f"MongoDB refused the request: {exc}", code="invalid_query") from exc
        except (InvalidDocument, InvalidStringData, UnicodeEncodeError, OverflowError) as exc:
            # The document cannot be encoded as BSON (a lone surrogate, a huge integer...).
            self.breaker.release_trial()
            raise Invalid(
                f"the document cannot be stored: {exc}"[:300], code="invalid_document"
            ) from exc
        except BaseException:
            self.breaker.release_trial()
            raise
        self.breaker.record_success()
        return result

    async def purge_org(self, org_id: UUID) -> int:
        """Drop every collection of a deleted org."""
        names = await self.org_collections(org_id)
        for name in names:
            await self.call(self.mongo.database.drop_collection(name))
        return len(names)

    async def org_collections(self, org_id: UUID) -> list[str]:
        """The physical names of an org's collections."""
        start = prefix(org_id)
        names = await self.call(
            self.mongo.database.list_collection_names(filter={"name": {"$regex": f"^{start}"}})
        )
        # Filtered again: the local Mongo-wire server may ignore the filter.
        return [name for name in names if name.startswith(start)]
