"""Errors of the API as exceptions, one class per kind of failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(eq=False, repr=False)
class ApiError(Exception):
    """Any answer of 400 and above: ``status``, ``code``, ``message``, ``details``, ``hint``
    and ``request_id`` as the server sent them."""

    status: int
    code: str
    message: str
    details: Any = None
    hint: str | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.code}: {self.message}")


class ValidationError(ApiError):
    """400, 406, 412, 413, 415, 416, 422, 428: the request itself is wrong."""


class AuthError(ApiError):
    """401: no credentials, bad credentials, or a session that has ended."""


class ForbiddenError(ApiError):
    """403: authenticated, but not allowed."""


class NotFoundError(ApiError):
    """404."""


class ConflictError(ApiError):
    """409: a unique key, a foreign key, the last owner..."""


class RateLimitError(ApiError):
    """429: slow down; ``retry_after`` seconds."""

    retry_after: int = 1


class ServerError(ApiError):
    """500 and above; 503 means a backing service is unavailable."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_from(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ValidationError)
    error = kind(
        status,
        str(body.get("code") or status),
        str(body.get("message") or response.reason_phrase),
        body.get("details"),
        body.get("hint"),
        body.get("request_id") or response.headers.get("x-request-id"),
    )
    if isinstance(error, RateLimitError):
        error.retry_after = int(response.headers.get("retry-after", "1") or 1)
    return error
