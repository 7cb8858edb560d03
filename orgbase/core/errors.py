"""Domain errors.

Services raise these; one handler in ``orgbase.platform.errors`` turns them into the JSON
error shape of the README: ``{"code", "message", "details", "hint", "request_id"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class OrgbaseError(Exception):
    """Root of every error the API reports on purpose."""

    status_code: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details
        self.hint = hint
        self.headers = dict(headers or {})


class Invalid(OrgbaseError):
    status_code = 400
    default_code = "invalid_request"


class Unauthorized(OrgbaseError):
    status_code = 401
    default_code = "unauthorized"


class Forbidden(OrgbaseError):
    status_code = 403
    default_code = "forbidden"


class NotFound(OrgbaseError):
    status_code = 404
    default_code = "not_found"


class Conflict(OrgbaseError):
    status_code = 409
    default_code = "conflict"


class PreconditionFailed(OrgbaseError):
    status_code = 412
    default_code = "precondition_failed"


class PreconditionRequired(OrgbaseError):
    status_code = 428
    default_code = "precondition_required"


class PayloadTooLarge(OrgbaseError):
    status_code = 413
    default_code = "payload_too_large"


class Unprocessable(OrgbaseError):
    status_code = 422
    default_code = "unprocessable"


class RateLimited(OrgbaseError):
    status_code = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Retry-After"] = str(max(1, retry_after))
        super().__init__(message, headers=headers, **kwargs)
        self.retry_after = retry_after


class Unavailable(OrgbaseError):
    """A backing service (PostgreSQL, Redis, MongoDB) cannot serve the request."""

    status_code = 503
    default_code = "service_unavailable"
