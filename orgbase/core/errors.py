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
    """The code of an error raised without one: a kind names it in its class line
    (``class Gone(OrgbaseError, code="gone")``)."""

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.default_code = code

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


class Invalid(OrgbaseError, code="invalid_request"):
    """The request itself is wrong (syntax, values, a rule of the domain)."""


class Unauthorized(OrgbaseError, code="unauthorized"):
    """No credential, or one that is not (or no longer) valid.

    ``bearer`` says which bearer-token challenge applies: ``missing`` when none was sent,
    ``invalid`` when the one sent is rejected; None for other credentials (a password)."""

    def __init__(
        self, message: str, *, bearer: Literal["missing", "invalid"] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.bearer = bearer


class Forbidden(OrgbaseError, code="forbidden"):
    """The credential is valid but may not do this."""


class NotFound(OrgbaseError, code="not_found"):
    """The thing asked for does not exist, or the caller may not know it does."""


class MethodNotAllowed(OrgbaseError, code="method_not_allowed"):
    """The route exists but not for this method (a function that writes, called with GET)."""


class NotAcceptable(OrgbaseError, code="not_acceptable"):
    """The representation asked for cannot be given (one object asked, several rows)."""


class Conflict(OrgbaseError, code="conflict"):
    """The request clashes with the current state (a duplicate, a concurrent change)."""


class Gone(OrgbaseError, code="gone"):
    """The thing existed and has ended (an invitation used, revoked or expired)."""


class PreconditionFailed(OrgbaseError, code="precondition_failed"):
    """The caller's view of a versioned thing is stale."""


class PreconditionRequired(OrgbaseError, code="precondition_required"):
    """A change of a versioned thing must say which version it changes."""


class TooLarge(OrgbaseError, code="payload_too_large"):
    """A body, value or message over its size limit."""


class RangeNotSatisfiable(OrgbaseError, code="range_not_satisfiable"):
    """The range asked for lies past the end of what there is."""


class RateLimited(OrgbaseError, code="rate_limited"):
    """Too many requests: ``retry_after`` says in how many seconds to try again."""

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, retry_after)


class UnsupportedMediaType(OrgbaseError, code="unsupported_media_type"):
    """The body's content type is not one this route takes."""


class BadGateway(OrgbaseError, code="bad_gateway"):
    """A third party we called (an OpenID provider) answered something unusable: not the
    caller's fault, and not a passing outage either."""


class Unavailable(OrgbaseError, code="service_unavailable"):
    """A backing service (PostgreSQL, Redis, MongoDB, the blob store) cannot serve the
    request now."""

    def __init__(self, message: str, *, dependency: Dependency | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.dependency = dependency


class TimedOut(OrgbaseError, code="timed_out"):
    """The work took longer than its time limit and was stopped."""
