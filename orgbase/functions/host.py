"""The gateway's side of a function's ``ctx``: the host calls a worker makes, each run as
the invocation that made it (its caller's org and credential), and the log lines it sends.

A worker can name only the invocations it is running: a call naming any other is refused,
so one invocation's code cannot act with another's caller even inside one worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from orgbase.core.context import OrgContext
from orgbase.core.error_render import status_of
from orgbase.core.errors import Forbidden, Invalid, OrgbaseError
from orgbase.core.org_services import OrgServices
from orgbase.core.postgres import TenantEntry
from orgbase.functions.database import FunctionDatabase
from orgbase.functions.outbound import Outbound
from orgbase.functions.process import WorkerProcess
from orgbase.functions.protocol import Call, Log, RemoteError, Reply
from orgbase.functions.spec import FunctionSpec

log = structlog.get_logger("orgbase.functions")

KEPT_LINES = 50
_LEVELS = frozenset({"debug", "info", "warning", "error"})


@dataclass(frozen=True)
class InOrg:
    """How an invocation acts in its org: the context the cache, documents, realtime and
    mail act as, and the entry its database statements go in by."""

    ctx: OrgContext
    entry: TenantEntry


@dataclass
class Invocation:
    """One invocation while it runs (what its host calls act as)."""

    id: int
    spec: FunctionSpec
    kind: str
    request_id: str
    in_org: InOrg | None = None
    """The org it runs in (the caller's, the event's; None for an anonymous call)."""
    event: dict[str, Any] | None = None
    """The event or schedule tick it answers, a JSON object (None for an HTTP call)."""
    idempotency_key: str | None = None
    """The same for every try of one delivery or tick (the function can deduplicate)."""
    started: float = field(default_factory=time.monotonic)
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def org(self) -> UUID | None:
        return self.in_org.ctx.org_id if self.in_org is not None else None

    @property
    def org_id(self) -> str | None:
        return str(self.org) if self.org is not None else None


def _arguments(args: list[Any], count: int) -> list[Any]:
    if not isinstance(args, list) or len(args) != count:
        raise Invalid("the host call's arguments are malformed", code="function_call_refused")
    return args


_ORG_SERVICES = ("kv.", "docs.", "realtime.", "mail.")


class Host:
    def __init__(self, database: FunctionDatabase, outbound: Outbound) -> None:
        self.database = database
        self.outbound = outbound
        self.org_services: OrgServices | None = None
        """The cache, documents, realtime and mail (wired by the platform)."""
        self.running: dict[int, Invocation] = {}
        self.calls = 0

    async def serve(self, worker: WorkerProcess, call: Call) -> Reply:
        invocation = self.running.get(call.id)
        if invocation is None or call.id not in worker.pending:
            refused = RemoteError(
                code="function_call_refused",
                message="no such invocation in this worker",
                status=400,
            )
            return Reply(call=call.call, error=refused)
        self.calls += 1
        try:
            value = await self._dispatch(invocation, call.op, call.args)
        except OrgbaseError as error:
            remote = RemoteError(
                code=error.code,
                message=error.message,
                status=status_of(error),
                details=error.details,
            )
            return Reply(call=call.call, error=remote)
        except asyncpg.PostgresError as error:
            sqlstate = getattr(error, "sqlstate", None) or "XX000"
            remote = RemoteError(code=sqlstate, message=str(error)[:1000], status=400)
            return Reply(call=call.call, error=remote)
        except Exception as exc:
            log.exception("function host call failed", op=call.op, request_id=invocation.request_id)
            remote = RemoteError(code="internal_error", message="the host call failed", status=500)
            del exc
            return Reply(call=call.call, error=remote)
        return Reply(call=call.call, value=value)

    async def _dispatch(self, invocation: Invocation, op: str, args: list[Any]) -> Any:
        if op == "db.query":
            mode, sql, values = _arguments(args, 3)
            if invocation.in_org is None:
                raise Invalid(
                    "this invocation has no org (a public function called without a credential)",
                    code="function_no_org",
                )
            entry = invocation.in_org.entry
            return await self.database.query(entry, mode, sql, list(values or ()))
        if op == "system_db.query":
            mode, sql, values = _arguments(args, 3)
            if not invocation.spec.config.privileged:
                raise Forbidden(
                    "ctx.system_db is for functions whose config says privileged",
                    code="function_not_privileged",
                )
            return await self.database.as_platform(mode, sql, list(values or ()))
        if op == "http.fetch":
            method, url, headers, body, timeout = _arguments(args, 5)
            return await self.outbound.fetch(method, url, list(headers or ()), body, timeout)
        if op.startswith(_ORG_SERVICES) and self.org_services is not None:
            if invocation.in_org is None:
                raise Invalid(
                    f"{op} needs an org (this invocation has none)", code="function_no_org"
                )
            return await self.org_services.call(invocation.in_org.ctx, op, args)
        raise Invalid(
            f"{op!r} is not a host call this gateway offers", code="function_call_refused"
        )

    def heard(self, worker: WorkerProcess, line: Log) -> None:
        invocation = self.running.get(line.id)
        if invocation is None or line.id not in worker.pending:
            return
        level = line.level if line.level in _LEVELS else "info"
        fields = {str(k)[:64]: str(v)[:1000] for k, v in list(line.fields.items())[:20]}
        if len(invocation.lines) < KEPT_LINES:
            invocation.lines.append({"level": level, "message": line.message, **fields})
        getattr(log, level)(
            line.message,
            source="function",
            function=invocation.spec.name,
            invocation=invocation.id,
            request_id=invocation.request_id,
            org_id=invocation.org_id,
            **{f"fn_{k}": v for k, v in fields.items()},
        )
