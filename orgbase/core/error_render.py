"""One rendering of an error for every way it leaves the server: an HTTP answer (the
gateway's exception handlers and its raw ASGI layers, ``orgbase.platform.errors``), a
socket's error frame and a socket's close. Status and close code come from the catalog.

The body is the API's one error shape ``{"code", "message", "details", "hint",
"request_id"}`` (README, "The API"). Plain data and strings: no web framework here, so the
areas' sockets render with it as the platform's handlers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from orgbase.core import errors as kinds
from orgbase.core.error_catalog import CATALOG, close_for_status
from orgbase.core.pg_errors import is_sqlstate, status_for_sqlstate

# Each error kind and its status; a kind takes its nearest listed ancestor's. The catalog's
# status for a code must be the status of the kind that raises it (the catalog's test
# checks every raise site).
STATUS_BY_KIND: dict[type[kinds.OrgbaseError], int] = {
    kinds.OrgbaseError: 500,
    kinds.Invalid: 400,
    kinds.Unauthorized: 401,
    kinds.Forbidden: 403,
    kinds.NotFound: 404,
    kinds.MethodNotAllowed: 405,
    kinds.NotAcceptable: 406,
    kinds.Conflict: 409,
    kinds.Gone: 410,
    kinds.PreconditionFailed: 412,
    kinds.TooLarge: 413,
    kinds.UnsupportedMediaType: 415,
    kinds.RangeNotSatisfiable: 416,
    kinds.PreconditionRequired: 428,
    kinds.RateLimited: 429,
    kinds.BadGateway: 502,
    kinds.Unavailable: 503,
    kinds.TimedOut: 504,
}

_BEARER_CHALLENGES = {"missing": "Bearer", "invalid": 'Bearer error="invalid_token"'}


def kind_status(kind: type[kinds.OrgbaseError]) -> int:
    for ancestor in kind.__mro__:
        status = STATUS_BY_KIND.get(ancestor)
        if status is not None:
            return status
    return 500


def status_of(error: kinds.OrgbaseError) -> int:
    """The code's status in the catalog (a SQLSTATE's as PostgREST answers it); a code
    missing there answers its kind's (the catalog's test keeps every raised code listed)."""
    entry = CATALOG.get(error.code)
    if entry is not None:
        return entry.status
    if is_sqlstate(error.code):
        return status_for_sqlstate(error.code)
    return kind_status(type(error))


def close_of(error: kinds.OrgbaseError) -> int:
    """The WebSocket close code that ends a socket for ``error``."""
    entry = CATALOG.get(error.code)
    if entry is not None and entry.close is not None:
        return entry.close
    return close_for_status(status_of(error))


def headers_of(error: kinds.OrgbaseError) -> dict[str, str]:
    if isinstance(error, kinds.RateLimited):
        return {"Retry-After": str(error.retry_after)}
    if isinstance(error, kinds.Unauthorized) and error.bearer is not None:
        return {"WWW-Authenticate": _BEARER_CHALLENGES[error.bearer]}
    if isinstance(error, kinds.RangeNotSatisfiable) and isinstance(error.details, dict):
        size = error.details.get("size")
        if isinstance(size, int):  # a blob's range past its end (RFC 9110 15.5.17)
            return {"Content-Range": f"bytes */{size}"}
    return {}


def error_body(error: kinds.OrgbaseError, request_id: str | None) -> dict[str, Any]:
    return {
        "code": error.code,
        "message": error.message,
        "details": error.details,
        "hint": error.hint,
        "request_id": request_id,
    }


@dataclass(frozen=True, slots=True)
class Rendered:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]

    def json(self) -> bytes:
        return msgspec.json.encode(self.body)


def render(
    error: kinds.OrgbaseError, request_id: str | None, status: int | None = None
) -> Rendered:
    """The HTTP answer to ``error``; ``status`` only for a refusal whose status another
    party decided (the web framework's own)."""
    return Rendered(
        status if status is not None else status_of(error),
        headers_of(error),
        error_body(error, request_id),
    )


def socket_frame(error: kinds.OrgbaseError) -> dict[str, Any]:
    """The message a socket is sent when one of its commands is refused."""
    return {"type": "error", "code": error.code, "message": error.message}
