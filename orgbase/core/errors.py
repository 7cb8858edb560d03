"""Domain errors: what went wrong, in the areas' own terms.

Each class is a kind of failure (invalid input, not found, a service down...) with a
stable machine-readable ``code``; none of them knows HTTP. Every code is listed once in
``orgbase.core.error_catalog`` with its HTTP status, WebSocket close code and meaning, and
``orgbase.core.error_render`` turns an error into the API's one JSON error shape
``{"code", "message", "details", "hint", "request_id"}`` (or a socket's close).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Dependency = Literal["postgres", "redis", "mongo", "storage"]


class OrgbaseError(Exception):
    """Root of every error the API reports on purpose."""

    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details
        self.hint = hint


class Invalid(OrgbaseError):
    """The request itself is wrong (syntax, values, a rule of the domain)."""

    default_code = "invalid_request"


class Unauthorized(OrgbaseError):
    """No credential, or one that is not (or no longer) valid.

    ``bearer`` says which bearer-token challenge applies: ``missing`` when none was sent,
    ``invalid`` when the one sent is rejected; None for other credentials (a password)."""

    default_code = "unauthorized"

    def __init__(
        self, message: str, *, bearer: Literal["missing", "invalid"] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.bearer = bearer


class Forbidden(OrgbaseError):
    """The credential is valid but may not do this."""

    default_code = "forbidden"


class NotFound(OrgbaseError):
    default_code = "not_found"


class MethodNotAllowed(OrgbaseError):
    """The route exists but not for this method (a function that writes, called with GET)."""

    default_code = "method_not_allowed"


class NotAcceptable(OrgbaseError):
    """The representation asked for cannot be given (one object asked, several rows)."""

    default_code = "not_acceptable"


class Conflict(OrgbaseError):
    """The request clashes with the current state (a duplicate, a concurrent change)."""

    default_code = "conflict"


class Gone(OrgbaseError):
    """The thing existed and has ended (an invitation used, revoked or expired)."""

    default_code = "gone"


class PreconditionFailed(OrgbaseError):
    """The caller's view of a versioned thing is stale."""

    default_code = "precondition_failed"


class PreconditionRequired(OrgbaseError):
    """A change of a versioned thing must say which version it changes."""

    default_code = "precondition_required"


class TooLarge(OrgbaseError):
    """A body, value or message over its size limit."""

    default_code = "payload_too_large"


class RangeNotSatisfiable(OrgbaseError):
    """The range asked for lies past the end of what there is."""

    default_code = "range_not_satisfiable"


class RateLimited(OrgbaseError):
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, retry_after)


class UnsupportedMediaType(OrgbaseError):
    """The body's content type is not one this route takes."""

    default_code = "unsupported_media_type"


class BadGateway(OrgbaseError):
    """A third party we called (an OpenID provider) answered something unusable: not the
    caller's fault, and not a passing outage either."""

    default_code = "bad_gateway"


class Unavailable(OrgbaseError):
    """A backing service (PostgreSQL, Redis, MongoDB, the blob store) cannot serve the
    request now."""

    default_code = "service_unavailable"

    def __init__(self, message: str, *, dependency: Dependency | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.dependency = dependency


class TimedOut(OrgbaseError):
    """The work took longer than its time limit and was stopped."""

    default_code = "timed_out"
