"""Invoking a function: find it, check the caller, hold an org slot, run it in a worker,
record what happened."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any
from uuid import UUID

import structlog

from orgbase.core.callers import CallerSource
from orgbase.core.context import OrgContext
from orgbase.core.error_render import status_of
from orgbase.core.org_usage import OrgUsage
from orgbase.core.postgres import TenantEntry
from orgbase.core.settings import FunctionsSettings
from orgbase.functions.access import check_caller
from orgbase.functions.host import Host, InOrg, Invocation
from orgbase.functions.outcomes import failure_error, fault_error, outcome_name
from orgbase.functions.pool import FunctionTimeout, NoWorker, WorkerPool
from orgbase.functions.process import WorkerLost
from orgbase.functions.protocol import Caller, Done, Failed, HttpRequest, Invoke
from orgbase.functions.registry import Registry
from orgbase.functions.slots import OrgSlots

log = structlog.get_logger("orgbase.functions")

# The caller's credentials stay in the gateway: the function acts as the caller through ctx.
_WITHHELD = frozenset({"authorization", "apikey", "cookie", "x-request-id"})
Recorder = Callable[[Invocation, str, int, float, float, str | None], None]
"""(invocation, outcome, status, seconds, cpu_ms, error) of each invocation that ended."""


def caller_of(ctx: OrgContext | None) -> Caller:
    if ctx is None:
        return Caller(kind="anonymous")
    return Caller(
        kind="api_key" if ctx.key_id is not None else "user",
        org_id=str(ctx.org_id),
        user_id=str(ctx.user_id) if ctx.user_id else None,
        role=ctx.role,
        aal=ctx.aal,
        key_id=str(ctx.key_id) if ctx.key_id else None,
    )


@dataclass(eq=False)
class FunctionService:
    settings: FunctionsSettings
    registry: Registry
    pool: WorkerPool
    host: Host
    _: KW_ONLY
    usage: OrgUsage
    default_concurrency: int
    slots: OrgSlots = field(init=False, default_factory=OrgSlots)
    outcomes: Counter[tuple[str, str]] = field(init=False, default_factory=Counter)
    """(kind, outcome) -> invocations (copied into the metrics)."""
    recorders: list[Recorder] = field(init=False, default_factory=list)
    durations: list[Callable[[float], None]] = field(init=False, default_factory=list)

    def _cap(self, org: UUID | None) -> int:
        limits_of = self.usage.limits_of
        if org is None or limits_of is None:
            return self.default_concurrency
        return limits_of(org).concurrent_functions

    async def call_http(self, connection: Any, callers: CallerSource, name: str, path: str) -> Done:
        """An HTTP invocation: the function's answer, or the API error (raised)."""
        spec = self.registry.lookup(name, connection.method)
        ctx = await callers.optional_context(connection)
        check_caller(spec, ctx, callers.publishable_ok(connection))
        state = connection.scope.get("state", {})
        request = HttpRequest(
            method=connection.method,
            path=path,
            query=connection.scope.get("query_string", b"").decode("latin-1"),
            headers=[(k, v) for k, v in connection.headers.items() if k not in _WITHHELD],
            body=await connection.body(),
        )
        invocation = Invocation(
            id=next(self.pool.ids),
            spec=spec,
            kind="http",
            request_id=str(state.get("request_id", "")),
            in_org=InOrg(ctx, TenantEntry.for_context(ctx)) if ctx is not None else None,
        )
        return await self.run(invocation, request, caller_of(ctx))

    async def run(self, invocation: Invocation, request: HttpRequest, caller: Caller) -> Done:
        spec = invocation.spec
        message = Invoke(
            id=invocation.id,
            function=spec.name,
            request=request,
            caller=caller,
            request_id=invocation.request_id,
            secrets=self.registry.secrets_of(spec),
            event=invocation.event,
            idempotency_key=invocation.idempotency_key,
        )
        org = invocation.org
        timeout = spec.config.timeout_seconds or self.settings.timeout_seconds
        with self.slots.hold(org, self._cap(org)):
            self.host.running[invocation.id] = invocation
            started = time.monotonic()
            try:
                result: Done | Failed | BaseException = await self.pool.run(message, timeout)
            except (FunctionTimeout, WorkerLost, NoWorker) as fault:
                result = fault
            finally:
                del self.host.running[invocation.id]
        seconds = time.monotonic() - started
        if isinstance(result, Done):
            self._record(invocation, seconds, result, result.status)
            return result
        error = (
            failure_error(result, spec.name)
            if isinstance(result, Failed)
            else fault_error(result, spec.name, timeout)
        )
        self._record(invocation, seconds, result, status_of(error))
        raise error

    def _record(self, invocation: Invocation, seconds: float, result: Any, status: int) -> None:
        outcome = outcome_name(result)
        self.outcomes[(invocation.kind, outcome)] += 1
        cpu_ms = result.cpu_ms if isinstance(result, (Done, Failed)) else 0.0
        org = invocation.org
        if org is not None:
            self.usage.meter.add(org, "function_invocations")
            if cpu_ms >= 1:
                self.usage.meter.add(org, "function_cpu_ms", round(cpu_ms))
        for observe in self.durations:
            observe(seconds)
        error = None
        if not isinstance(result, Done):
            error = self._failure_text(invocation, outcome, seconds, result)
        for recorder in self.recorders:
            recorder(invocation, outcome, status, seconds, cpu_ms, error)

    def _failure_text(
        self, invocation: Invocation, outcome: str, seconds: float, result: Any
    ) -> str:
        """The failure for the operator (the log and the invocation log), secrets masked."""
        secrets = self.registry.secrets_of(invocation.spec)
        details = result.traceback or result.message if isinstance(result, Failed) else repr(result)
        for value in secrets.values():
            details = details.replace(value, "[secret]") if len(value) >= 4 else details
        log.error(
            "function invocation failed",
            function=invocation.spec.name,
            outcome=outcome,
            request_id=invocation.request_id,
            org_id=invocation.org_id,
            duration_ms=round(seconds * 1000, 1),
            error=details[-8000:],
        )
        return details[-16000:]
