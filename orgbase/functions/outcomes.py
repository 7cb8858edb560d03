"""How an invocation ended, as the caller hears it: the worker's answer, or the API error
for a failure (a function's internals never reach the caller: its log has them)."""

from __future__ import annotations

from orgbase.core.errors import BadGateway, OrgbaseError, TimedOut, Unavailable
from orgbase.functions.pool import FunctionTimeout, NoWorker
from orgbase.functions.process import WorkerLost
from orgbase.functions.protocol import Done, Failed

_FAILED_HINT = "the invocation log has the details under this request id"


def failure_error(failed: Failed, name: str) -> OrgbaseError:
    if failed.kind == "unavailable":
        return Unavailable(
            f"the function {name} cannot be loaded", code="function_unavailable", hint=_FAILED_HINT
        )
    if failed.kind == "bad_response":
        return BadGateway(
            f"the function {name} gave no usable answer", code="function_bad_response"
        )
    if failed.kind == "cancelled":
        return TimedOut(f"the function {name} was stopped", code="function_timeout")
    return OrgbaseError(f"the function {name} failed", code="function_failed", hint=_FAILED_HINT)


def fault_error(fault: BaseException, name: str, timeout: float) -> OrgbaseError:
    """The error for a failure of the machinery around the function."""
    if isinstance(fault, FunctionTimeout):
        return TimedOut(
            f"the function {name} ran longer than {timeout:g} s and was stopped",
            code="function_timeout",
        )
    if isinstance(fault, WorkerLost):
        return BadGateway(
            f"the worker running the function {name} ended before it answered",
            code="function_crashed",
            hint="a crash, the memory limit, or another function's hang; try again",
        )
    if isinstance(fault, NoWorker) and fault.busy:
        return Unavailable("every function worker is busy: try again", code="functions_busy")
    return Unavailable("no function worker is running", code="function_unavailable")


def outcome_name(result: Done | Failed | BaseException) -> str:
    """The outcome's label (the invocation log's ``outcome`` and the metrics')."""
    if isinstance(result, Done):
        return "ok" if result.status < 500 else "error_status"
    if isinstance(result, Failed):
        return {"exception": "exception", "unavailable": "unavailable"}.get(result.kind, "bad")
    if isinstance(result, FunctionTimeout):
        return "timeout"
    if isinstance(result, WorkerLost):
        return "crashed"
    return "busy"
