"""The one place that maps errors to HTTP: each domain error kind (``core/errors.py``
and the areas' own) to its status and headers, and every exception to the API's one
error shape (README, "The API").

``{"code", "message", "details", "hint", "request_id"}`` with a stable, machine-readable
``code``. Unexpected exceptions become a 500 with no internals in the body (the traceback
goes to the log with the request id).
"""

from __future__ import annotations

from collections.abc import Callable
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

from orgbase.core.errors import (
    Conflict,
    Dependency,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    NotSatisfiable,
    OrgbaseError,
    PreconditionFailed,
    PreconditionRequired,
    RateLimited,
    TimedOut,
    TooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMedia,
)
from orgbase.services.postgres.errors import (
    DatabaseError,
    MethodNotAllowed,
    NotAcceptable,
)

log = structlog.get_logger("orgbase.errors")

# Each kind of domain error, and the HTTP status it is answered with. Subclasses take
# their nearest listed ancestor's status.
_STATUS_BY_KIND: dict[type[OrgbaseError], int] = {
    Invalid: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    NotAcceptable: 406,
    Conflict: 409,
    Gone: 410,
    PreconditionFailed: 412,
    TooLarge: 413,
    UnsupportedMedia: 415,
    NotSatisfiable: 416,
    PreconditionRequired: 428,
    RateLimited: 429,
    Unavailable: 503,
    TimedOut: 504,
}

# A failed statement is answered as PostgREST answers its SQLSTATE: exact codes first,
# then the SQLSTATE's class, else 400. (The data API reports service faults, classes
# 08/53/57, as Unavailable or TimedOut; the table stays whole to answer any SQLSTATE.)
_STATUS_BY_SQLSTATE = {
    "23503": 409,  # foreign_key_violation
    "23505": 409,  # unique_violation
    "25006": 405,  # read_only_sql_transaction
    # undefined_function: here always an operator that does not apply to the column's
    # type (cs on text...), a fault of the request (PostgREST's 404 is for RPC).
    "42883": 400,
    "42P01": 404,  # undefined_table
    "42501": 403,  # insufficient_privilege (row-level security)
    "40001": 409,  # serialization_failure
    "40P01": 409,  # deadlock_detected
    "57014": 504,  # query_canceled (statement timeout)
    "P0001": 400,  # raise_exception
    "54000": 413,  # program_limit_exceeded
    "54001": 413,  # statement_too_complex
}
_STATUS_BY_SQLSTATE_CLASS = {
    "08": 503,
    "53": 503,
    "57": 503,
    "28": 403,
    "0L": 403,
    "0P": 403,
    "22": 400,
    "23": 400,
    "42": 400,
    "XX": 500,  # internal_error, data_corrupted: the server's fault, as PostgREST says
}

_BEARER_CHALLENGES = {"missing": "Bearer", "invalid": 'Bearer error="invalid_token"'}


def status_for_sqlstate(sqlstate: str) -> int:
    if sqlstate in _STATUS_BY_SQLSTATE:
        return _STATUS_BY_SQLSTATE[sqlstate]
    return _STATUS_BY_SQLSTATE_CLASS.get(sqlstate[:2], 400)


def http_status(exc: OrgbaseError) -> int:
    if isinstance(exc, DatabaseError):
        return status_for_sqlstate(exc.sqlstate)
    for kind in type(exc).__mro__:
        status = _STATUS_BY_KIND.get(kind)
        if status is not None:
            return status
    return 500


def http_headers(exc: OrgbaseError) -> dict[str, str]:
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, Unauthorized) and exc.bearer is not None:
        return {"WWW-Authenticate": _BEARER_CHALLENGES[exc.bearer]}
    if isinstance(exc, NotSatisfiable) and isinstance(exc.details, dict):
        size = exc.details.get("size")
        if isinstance(size, int):
            return {"Content-Range": f"bytes */{size}"}
    return {}


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


def encode_error(
    code: str,
    message: str,
    request_id: str | None,
    details: Any = None,
    *,
    storage_status: int | None = None,
) -> bytes:
    """The error shape as bytes; with ``storage_status``, with the storage API's fields."""
    body = error_body(code, message, request_id, details)
    if storage_status is not None:
        body = {**storage_fields(storage_status, code), **body}
    return msgspec.json.encode(body)


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


STORAGE_PREFIX = "/storage/v1"


def storage_fields(status: int, code: str) -> dict[str, str]:
    """What Supabase's storage clients read from an error besides ``message``: the status
    as a string in ``statusCode`` and a name in ``error`` (``not_found`` for every 404:
    storage-py's ``exists()`` tells a missing object by it)."""
    return {"statusCode": str(status), "error": "not_found" if status == 404 else code}


def _respond(
    request: Request[Any, Any, Any],
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    request.scope.setdefault("state", {})["error_code"] = body["code"]
    if request.scope.get("path", "").startswith(STORAGE_PREFIX):
        body = {**storage_fields(status, body["code"]), **body}
    return Response(body, status_code=status, headers=headers, media_type=MediaType.JSON)


def _orgbase_error_handler(
    dependency_failed: Callable[[Dependency], None],
) -> Callable[[Request[Any, Any, Any], OrgbaseError], Response[Any]]:
    def handle(request: Request[Any, Any, Any], exc: OrgbaseError) -> Response[Any]:
        status = http_status(exc)
        body = error_body(exc.code, exc.message, _request_id(request), exc.details, exc.hint)
        if status >= 500:
            cause = repr(exc.__cause__)
            log.warning("request failed", code=exc.code, error=exc.message, cause=cause)
            if isinstance(exc, Unavailable) and exc.dependency is not None:
                dependency_failed(exc.dependency)
        return _respond(request, status, body, http_headers(exc))

    return handle


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


def exception_handlers(dependency_failed: Callable[[Dependency], None]) -> ExceptionHandlersMap:
    """The app's handlers; ``dependency_failed`` counts a backing service's failures."""
    return {
        OrgbaseError: _orgbase_error_handler(dependency_failed),
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }
