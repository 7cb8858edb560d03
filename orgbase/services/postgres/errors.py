"""The data API's own errors, in PostgREST's terms: a failed statement keeps its SQLSTATE
as the code, and the representation, range and media-type refusals keep PostgREST's
codes. ``orgbase.platform.errors`` gives each its HTTP status, as PostgREST does."""

from __future__ import annotations

import asyncpg

from orgbase.core.errors import (
    NotSatisfiable,
    OrgbaseError,
    TimedOut,
    Unavailable,
    UnsupportedMedia,
)
from orgbase.core.postgres import entry_error


class DatabaseError(OrgbaseError):
    """A statement failed for a reason of the request (constraint, type, permission...);
    ``code`` is its SQLSTATE."""

    @property
    def sqlstate(self) -> str:
        return self.code


class NotAcceptable(OrgbaseError):
    """The representation asked for cannot be given (one object asked, several rows)."""

    default_code = "PGRST116"


class RangeNotSatisfiable(NotSatisfiable):
    default_code = "PGRST103"


class UnsupportedMediaType(UnsupportedMedia):
    default_code = "PGRST107"


class MethodNotAllowed(OrgbaseError):
    """A VOLATILE function called with GET (PostgREST runs GET read-only)."""

    default_code = "PGRST101"


# SQLSTATE classes that are the server's condition, not the request's: connection
# exception, insufficient resources, operator intervention.
_SERVICE_FAULT_CLASSES = frozenset({"08", "53", "57"})
_QUERY_CANCELED = "57014"  # statement_timeout fired


def translate(error: asyncpg.PostgresError) -> OrgbaseError:
    entering = entry_error(error)
    if entering is not None:
        return entering
    sqlstate = error.sqlstate or "XX000"
    message = str(error.args[0] if error.args else error)
    detail = getattr(error, "detail", None)
    hint = getattr(error, "hint", None)
    if sqlstate == _QUERY_CANCELED:
        return TimedOut(message, code=sqlstate, details=detail, hint=hint)
    if sqlstate[:2] in _SERVICE_FAULT_CLASSES:
        return Unavailable(message, code=sqlstate, details=detail, hint=hint, dependency="postgres")
    return DatabaseError(message, code=sqlstate, details=detail, hint=hint)
