"""One place that turns every exception into the API's one error shape
(README, "The API").

``{"code", "message", "details", "hint", "request_id"}`` with a stable, machine-readable
``code``. Unexpected exceptions become a 500 with no internals in the body (the traceback
goes to the log with the request id).
"""

from __future__ import annotations

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
from litestar.types import ExceptionHandlersMap

from orgbase.core.errors import OrgbaseError

log = structlog.get_logger("orgbase.errors")

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}


def error_body(
    code: str,
    message: str,
    request_id: str | None,
    details: Any = None,
    hint: str | None = None,
) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "details": details,
        "hint": hint,
        "request_id": request_id,
    }


def encode_error(code: str, message: str, request_id: str | None, details: Any = None) -> bytes:
    return msgspec.json.encode(error_body(code, message, request_id, details))


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _respond(
    request: Request[Any, Any, Any],
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    request.scope.setdefault("state", {})["error_code"] = body["code"]
    return Response(body, status_code=status, headers=headers, media_type=MediaType.JSON)


_DEPENDENCY_BY_CODE = {
    "database_unavailable": "postgres",
    "redis_unavailable": "redis",
    "mongo_unavailable": "mongo",
}


def handle_orgbase_error(request: Request[Any, Any, Any], exc: OrgbaseError) -> Response[Any]:
    body = error_body(exc.code, exc.message, _request_id(request), exc.details, exc.hint)
    if exc.status_code >= 500:
        log.warning("request failed", code=exc.code, error=exc.message, cause=repr(exc.__cause__))
        dependency = _DEPENDENCY_BY_CODE.get(exc.code)
        gateway = getattr(request.app.state, "gateway", None)
        if dependency and gateway is not None:
            gateway.dependency_failed(dependency)
    return _respond(request, exc.status_code, body, exc.headers)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    code = _CODES_BY_STATUS.get(status, "bad_request" if status < 500 else "internal_error")
    message = exc.detail or "request failed"
    details: Any = None
    hint = None
    if isinstance(exc, NotFoundException):
        code, message = "not_found", "no such resource"
        hint = "check the path; the API is described at /schema"
    elif isinstance(exc, MethodNotAllowedException):
        code = "method_not_allowed"
    elif isinstance(exc, ValidationException):
        code = "validation_failed"
        details = exc.extra
    elif isinstance(exc.__cause__, SerializationException):
        code, message = "malformed_body", "the request body is not valid JSON"
        details = str(exc.__cause__)[:300]
    headers = dict(exc.headers or {})
    return _respond(
        request, status, error_body(code, message, _request_id(request), details, hint), headers
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error", error_type=type(exc).__name__)
    body = error_body("internal_error", "internal server error", _request_id(request))
    return _respond(request, 500, body)


def exception_handlers() -> ExceptionHandlersMap:
    return {
        OrgbaseError: handle_orgbase_error,
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }
