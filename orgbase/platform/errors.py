"""Errors out of the gateway: Litestar's exception handlers and the raw ASGI layers'
``send_error`` both answer through ``orgbase.core.error_render.render``, so every error
has the status and close code of the catalog (``orgbase.core.error_catalog``) and the
API's one shape ``{"code", "message", "details", "hint", "request_id"}``.

Litestar's own refusals (no route, a wrong method, a body that does not fit) become the
domain error they stand for. Unexpected exceptions become a 500 with no internals in the
body (the traceback goes to the log with the request id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap, Scope, Send

from orgbase.core.error_catalog import code_for_status
from orgbase.core.error_render import Rendered, headers_of, render, status_of
from orgbase.core.errors import (
    Dependency,
    Invalid,
    MethodNotAllowed,
    NotFound,
    OrgbaseError,
    Unavailable,
)
from orgbase.core.pg_errors import status_for_sqlstate

__all__ = [
    "exception_handlers",
    "http_headers",
    "http_status",
    "send_error",
    "status_for_sqlstate",
]

log = structlog.get_logger("orgbase.errors")

http_status = status_of
"""An error's HTTP status (the catalog's)."""
http_headers = headers_of


async def send_error(
    scope: Scope, send: Send, error: OrgbaseError, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``error`` from a raw ASGI layer (before any route): the same status, headers
    and body as the exception handlers give, and the code for the access log."""
    state: dict[str, Any] = scope.setdefault("state", {})
    state["error_code"] = error.code
    rendered = render(error, state.get("request_id"))
    body = msgspec.json.encode(_shaped(scope, rendered))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in rendered.headers.items()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": rendered.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


STORAGE_PREFIX = "/storage/v1"


def _shaped(scope: Scope, rendered: Rendered) -> dict[str, Any]:
    """The error shape; under the storage API with the fields its clients read too."""
    if str(scope.get("path", "")).startswith(STORAGE_PREFIX):
        return {**storage_fields(rendered.status, rendered.body["code"]), **rendered.body}
    return rendered.body


def storage_fields(status: int, code: str) -> dict[str, str]:
    """What Supabase's storage clients read from an error besides ``message``: the status
    as a string in ``statusCode`` and a name in ``error`` (``not_found`` for every 404:
    storage-py's ``exists()`` tells a missing object by it)."""
    return {"statusCode": str(status), "error": "not_found" if status == 404 else code}


def _respond(
    request: Request[Any, Any, Any],
    error: OrgbaseError,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    request.scope.setdefault("state", {})["error_code"] = error.code
    rendered = render(error, _request_id(request), status)
    return Response(
        _shaped(request.scope, rendered),
        status_code=rendered.status,
        headers={**rendered.headers, **(headers or {})},
        media_type=MediaType.JSON,
    )


def _orgbase_error_handler(
    dependency_failed: Callable[[Dependency], None],
) -> Callable[[Request[Any, Any, Any], OrgbaseError], Response[Any]]:
    def handle(request: Request[Any, Any, Any], exc: OrgbaseError) -> Response[Any]:
        status = status_of(exc)
        if status >= 500:
            cause = repr(exc.__cause__)
            log.warning("request failed", code=exc.code, error=exc.message, cause=cause)
            if isinstance(exc, Unavailable) and exc.dependency is not None:
                dependency_failed(exc.dependency)
        return _respond(request, exc, status)

    return handle


def _framework_error(exc: HTTPException) -> OrgbaseError:
    """The domain error a refusal of Litestar's own stands for."""
    message = exc.detail or "request failed"
    if isinstance(exc, NotFoundException):
        hint = "check the path; the API is described at /schema"
        return NotFound("no such resource", code="not_found", hint=hint)
    if isinstance(exc, MethodNotAllowedException):
        return MethodNotAllowed(message, code="method_not_allowed")
    if isinstance(exc, ValidationException):
        return Invalid(message, code="validation_failed", details=exc.extra)
    if isinstance(exc.__cause__, SerializationException):
        details = str(exc.__cause__)[:300]
        return Invalid("the request body is not valid JSON", code="malformed_body", details=details)
    return OrgbaseError(message, code=code_for_status(exc.status_code))


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    # Litestar decided the status (a 405 its Allow header): both are kept.
    return _respond(request, _framework_error(exc), exc.status_code, dict(exc.headers or {}))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error", error_type=type(exc).__name__)
    return _respond(request, OrgbaseError("internal server error"))


def exception_handlers(dependency_failed: Callable[[Dependency], None]) -> ExceptionHandlersMap:
    """The app's handlers; ``dependency_failed`` counts a backing service's failures."""
    return {
        OrgbaseError: _orgbase_error_handler(dependency_failed),
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }
